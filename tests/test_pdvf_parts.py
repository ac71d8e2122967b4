"""PD-VF networks and pure pieces: unit-norm, permutation-invariant embeddings; decoders and their losses;
a PSD value matrix whose top eigenvector maximises the value; phase-2 mixing; return normalisation; a fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anew.agents.pdvf import (
    DynamicsDecoder,
    PDVFNetwork,
    PolicyDecoder,
    SetEncoder,
    behaviour_cloning_loss,
    denormalise_returns,
    dynamics_loss,
    dynamics_tokens,
    mix_counts,
    mix_minibatch,
    normalise_returns,
    optimal_policy_embedding,
    policy_tokens,
    quadratic_value,
    reference_return,
    value_loss,
)

torch.set_num_threads(1)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_set_encoder_is_unit_norm_and_permutation_invariant():
    g = _generator()
    encoder = SetEncoder(token_size=6, embedding_size=8, generator=g).eval()
    tokens = torch.randn(5, 7, 6, generator=g)
    z = encoder(tokens)
    assert z.shape == (5, 8) and torch.allclose(z.norm(dim=-1), torch.ones(5))
    shuffled = tokens[:, torch.randperm(7, generator=g)]
    assert torch.allclose(encoder(shuffled), z, atol=1e-6)
    assert not torch.allclose(encoder(tokens[:, :3]), z, atol=1e-3)  # the tokens matter


def test_set_encoder_ignores_padded_tokens_and_is_reproducible():
    encoder = SetEncoder(token_size=4, embedding_size=8, generator=_generator(3)).eval()
    same = SetEncoder(token_size=4, embedding_size=8, generator=_generator(3)).eval()
    tokens, mask = torch.randn(2, 6, 4), torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    changed = tokens.clone()
    changed[0, 4:] = 100.0  # padding content must not leak in
    assert torch.allclose(encoder(tokens, mask), encoder(changed, mask), atol=1e-6)
    assert torch.allclose(encoder(tokens[:1, :4]), encoder(tokens, mask)[:1], atol=1e-6)
    assert torch.equal(encoder(tokens, mask), same(tokens, mask))


def test_dropout_acts_only_in_train_mode():
    encoder = SetEncoder(token_size=4, embedding_size=8, generator=_generator())
    tokens = torch.randn(3, 5, 4)
    encoder.eval()
    assert torch.equal(encoder(tokens), encoder(tokens))
    encoder.train()
    assert not torch.equal(encoder(tokens), encoder(tokens))


def test_dynamics_decoder_and_loss():
    g = _generator()
    states, actions, next_states = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    assert dynamics_tokens(states[:, None], actions[:, None], next_states[:, None]).shape == (4, 1, 6)
    z = SetEncoder(6, 8, generator=g)(
        dynamics_tokens(states[:, None], actions[:, None], next_states[:, None])
    )
    gaussian = DynamicsDecoder(8, 2, 2, generator=g)
    mean, std = gaussian.distribution(z, states, actions)
    assert mean.shape == (4, 2) and bool((std > 0).all())
    noise_a, noise_b = (
        gaussian(z, states, actions, _generator(1)),
        gaussian(z, states, actions, _generator(1)),
    )
    assert torch.equal(noise_a, noise_b) and not torch.allclose(noise_a, mean)
    deterministic = DynamicsDecoder(8, 2, 2, gaussian=False, generator=g)
    assert deterministic.distribution(z, states, actions)[1] is None
    assert torch.equal(deterministic(z, states, actions), deterministic(z, states, actions))
    assert dynamics_loss(next_states + 1.0, next_states).item() == pytest.approx(8.0)  # sum over 4 x 2
    loss = dynamics_loss(gaussian(z, states, actions), next_states)
    loss.backward()  # trains the encoder through z
    assert all(p.grad is not None for p in gaussian.parameters())


def test_policy_decoder_and_masked_behaviour_cloning_loss():
    decoder = PolicyDecoder(8, 2, 2, generator=_generator())
    z, states = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1), torch.randn(3, 5, 2)
    actions = decoder(z, states)
    assert actions.shape == (3, 5, 2) and torch.allclose(actions[:, 1], decoder(z, states[:, 1]))
    assert policy_tokens(states, actions).shape == (3, 5, 4)
    targets, mask = actions.detach() + 2.0, torch.tensor([[True] * 5, [True] * 2 + [False] * 3, [False] * 5])
    assert behaviour_cloning_loss(actions, targets, mask).item() == pytest.approx(4.0 * 2 * 7, rel=1e-5)
    assert behaviour_cloning_loss(actions, targets).item() == pytest.approx(4.0 * 2 * 15, rel=1e-5)


def test_value_matrix_is_symmetric_psd():
    g = _generator()
    net = PDVFNetwork(state_size=2, dynamics_size=8, policy_size=8, generator=g)
    matrices = net.matrix(torch.randn(64, 2, generator=g), torch.randn(64, 8, generator=g))
    assert matrices.shape == (64, 8, 8) and torch.allclose(matrices, matrices.transpose(1, 2))
    assert bool((torch.linalg.eigvalsh(matrices.double()) > -1e-5).all())
    z = torch.randn(64, 8, generator=g)
    assert bool((quadratic_value(matrices, z) >= -1e-6).all())


def test_top_eigenvector_maximises_the_value_over_unit_vectors():
    g = _generator(1)
    net = PDVFNetwork(2, 8, 8, generator=g)
    states, dynamics = torch.randn(5, 2, generator=g), torch.randn(5, 8, generator=g)
    matrices = net.matrix(states, dynamics).detach()
    plus, minus = optimal_policy_embedding(matrices)
    assert torch.allclose(plus.norm(dim=-1), torch.ones(5)) and torch.equal(minus, -plus)
    best = quadratic_value(matrices, plus)
    assert torch.allclose(best, torch.linalg.eigvalsh(matrices)[:, -1], rtol=1e-4)
    assert torch.allclose(net(states, dynamics, minus), best, rtol=1e-4)  # both signs score the same
    candidates = torch.nn.functional.normalize(torch.randn(20_000, 8, generator=g), dim=-1)
    for matrix, value in zip(matrices, best):
        assert float(torch.einsum("ni,ij,nj->n", candidates, matrix, candidates).max()) <= float(value) + 1e-5
    single_plus, _ = optimal_policy_embedding(matrices[0])
    assert torch.allclose(single_plus, plus[0], atol=1e-5)


def test_mixing_proportions_sources_and_shuffle():
    assert mix_counts(128) == (32, 96) and mix_counts(10) == (2, 8)
    old = {"z": np.zeros((500, 3)), "source": np.zeros(500)}
    new = {"z": np.ones((300, 3)), "source": np.ones(300)}
    batch = mix_minibatch(old, new, 128, np.random.default_rng(0))
    assert batch["z"].shape == (128, 3) and int(batch["source"].sum()) == 96
    assert np.array_equal(batch["z"][:, 0], batch["source"])  # rows stay whole
    assert batch["source"][:32].sum() not in (0, 32)  # shuffled, not old-then-new
    again = mix_minibatch(old, new, 128, np.random.default_rng(0))
    assert np.array_equal(again["source"], batch["source"])
    ids_old = {"id": torch.arange(40)}
    mixed = mix_minibatch(ids_old, {"id": torch.arange(100, 1000)}, 128, np.random.default_rng(1))
    old_ids = mixed["id"][mixed["id"] < 100]
    assert isinstance(mixed["id"], torch.Tensor) and len(old_ids) == 32 and len(set(old_ids.tolist())) == 32
    few = mix_minibatch({"id": np.arange(5)}, {"id": np.arange(100, 110)}, 128, np.random.default_rng(2))
    assert (few["id"] < 100).sum() == 32  # smaller buffers are drawn with replacement
    with pytest.raises(ValueError, match="same fields"):
        mix_minibatch({"a": np.zeros(3)}, {"b": np.zeros(3)}, 4, np.random.default_rng(0))


def test_return_normalisation_and_reference_return():
    returns = np.array([-60.0, 70.0, 200.0])
    normalised = normalise_returns(returns, (-60.0, 200.0))
    assert np.allclose(normalised, [0.0, 0.5, 1.0])
    assert np.allclose(denormalise_returns(normalised, (-60.0, 200.0)), returns)
    assert normalise_returns(returns, None) is returns
    assert reference_return([0.0, 0.0, 0.7]) == pytest.approx(0.7)  # a terminal reward is not discounted
    assert reference_return([1.0, 0.0, 0.0], gamma=0.5) == pytest.approx(0.25)  # early rewards are


def test_a_tiny_fit_on_quadratic_data_reduces_the_loss():
    g = _generator(2)
    rng = np.random.default_rng(0)
    factor = rng.normal(size=(4, 4)) / 3
    true_matrix = torch.as_tensor(factor @ factor.T, dtype=torch.float32)
    states = torch.as_tensor(rng.normal(size=(512, 2)), dtype=torch.float32)
    dynamics = torch.nn.functional.normalize(
        torch.as_tensor(rng.normal(size=(512, 4)), dtype=torch.float32), dim=-1
    )
    policies = torch.nn.functional.normalize(
        torch.as_tensor(rng.normal(size=(512, 4)), dtype=torch.float32), dim=-1
    )
    targets = quadratic_value(true_matrix.expand(512, 4, 4), policies) * (1 + 0.5 * dynamics[:, 0])
    net = PDVFNetwork(2, 4, 4, hidden=32, generator=g)
    optimiser = torch.optim.Adam(net.parameters(), lr=5e-3, eps=1e-5)
    with torch.no_grad():
        start = value_loss(net(states, dynamics, policies), targets).item()
    for _ in range(300):
        rows = torch.as_tensor(rng.choice(512, 128, replace=False))
        loss = value_loss(net(states[rows], dynamics[rows], policies[rows]), targets[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        end = value_loss(net(states, dynamics, policies), targets).item()
    assert end < start / 5, (start, end)
