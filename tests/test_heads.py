"""QHead: Dopamine-compatible layout, dueling identity, noisy switch; RainbowNetwork's Q-values."""

from __future__ import annotations

import pytest
import torch

from anew.agents.distributional import make_support, q_from_logits
from anew.agents.heads import QHead, RainbowNetwork
from anew.agents.networks import MLP, NatureCNN
from anew.agents.noisy import NoisyLinear

torch.set_num_threads(1)


def test_plain_head_is_one_linear_reshaped_action_major():
    torch.manual_seed(0)
    head = QHead(16, num_actions=3, num_atoms=5)
    shapes = {name: tuple(p.shape) for name, p in head.named_parameters()}
    assert shapes == {"out.weight": (15, 16), "out.bias": (15,)}
    x = torch.randn(4, 16)
    flat = x @ head.out.weight.T + head.out.bias
    logits = head(x)
    assert logits.shape == (4, 3, 5)
    for action in range(3):  # action-major: row block a*K .. a*K+K-1 belongs to action a
        torch.testing.assert_close(logits[:, action], flat[:, action * 5 : action * 5 + 5])


def test_rainbow_network_on_nature_cnn_has_dopamine_parameter_count():
    # Dopamine's NatureDQNNetwork has 4,046,502 parameters for 6 actions (reference note, sec. 2.3);
    # RainbowNetwork swaps Dense_1 (512 x 6) for 512 x 306, everything else identical.
    network = RainbowNetwork(NatureCNN(4), QHead(512, 6, 51), make_support(-10, 10, 51))
    expected = 4_046_502 - (512 * 6 + 6) + (512 * 306 + 306)
    assert sum(p.numel() for p in network.parameters()) == expected
    assert tuple(network.head.out.weight.shape) == (306, 512)


@pytest.mark.parametrize("num_atoms", [1, 7])
def test_dueling_combines_value_and_mean_centred_advantage(num_atoms):
    torch.manual_seed(1)
    head = QHead(10, num_actions=4, num_atoms=num_atoms, dueling=True)
    x = torch.randn(3, 10)
    advantage = head.out(x).view(3, 4, num_atoms)
    value = head.value(x).view(3, 1, num_atoms)
    expected = value + advantage - advantage.mean(dim=1, keepdim=True)
    logits = head(x)
    torch.testing.assert_close(logits, expected)
    # Identifiability: the mean over actions of the output is the value stream.
    torch.testing.assert_close(logits.mean(dim=1), value[:, 0])
    assert tuple(head.value.weight.shape) == (num_atoms, 10)


def test_full_rainbow_layout_noisy_dueling_with_hidden_layer():
    # Dopamine's FullRainbowNetwork on conv features: NoisyNetwork_0 (F->512), _1 (512->A*K), _2 (512->K).
    head = QHead(64, num_actions=6, num_atoms=51, dueling=True, noisy=True, hidden=(32,))
    assert isinstance(head.hidden[0], NoisyLinear) and isinstance(head.out, NoisyLinear)
    shapes = {name: tuple(p.shape) for name, p in head.named_parameters()}
    assert shapes["hidden.0.weight_mu"] == (32, 64)
    assert shapes["out.weight_sigma"] == (306, 32)
    assert shapes["value.bias_mu"] == (51,)
    assert not any(isinstance(m, torch.nn.Linear) for m in head.modules())


def test_noisy_head_is_deterministic_in_eval_and_noisy_in_train():
    torch.manual_seed(2)
    network = RainbowNetwork(
        MLP(5, (16,)), QHead(16, 3, 11, noisy=True, dueling=True), make_support(-1, 1, 11)
    )
    obs = torch.randn(4, 5)
    network.eval()
    q_eval = network(obs)
    network.reset_noise()
    torch.testing.assert_close(network(obs), q_eval, rtol=0, atol=0)
    network.train()
    q_train = network(obs)
    network.reset_noise()
    assert not torch.allclose(network(obs), q_train)


def test_rainbow_network_q_values():
    torch.manual_seed(3)
    support = make_support(-10, 10, 51)
    network = RainbowNetwork(MLP(5, (8,)), QHead(8, 2, 51), support)
    obs = torch.randn(6, 5)
    probs = torch.softmax(network.logits(obs), dim=-1)
    torch.testing.assert_close(network(obs), (probs * support).sum(-1))
    # Without atoms the logits are the Q-values.
    dqn = RainbowNetwork(MLP(5, (8,)), QHead(8, 2))
    torch.testing.assert_close(dqn(obs), dqn.logits(obs)[..., 0])


def test_support_must_match_atoms():
    with pytest.raises(ValueError, match="needs a support"):
        RainbowNetwork(MLP(5, (8,)), QHead(8, 2, 51))
    with pytest.raises(ValueError, match="atoms"):
        RainbowNetwork(MLP(5, (8,)), QHead(8, 2, 51), make_support(-10, 10, 21))


def test_action_major_reshape_and_q_values_match_dopamine_rainbow(fixtures_dir):
    """Dopamine's RainbowNetwork outputs for 8 Breakout states: Dense_1's raw output (8, 204) must
    become its logits (8, 4, 51) and Q-values under our reshape and expectation."""
    import numpy as np

    expected = np.load(fixtures_dir / "dopamine" / "jax_rainbow_breakout" / "q_values_expected.npz")
    head = QHead(204, num_actions=4, num_atoms=51)
    with torch.no_grad():  # make the head's linear layer the identity to see only the reshape
        head.out.weight.copy_(torch.eye(204))
        head.out.bias.zero_()
    logits = head(torch.from_numpy(expected["dense1_out"]))
    torch.testing.assert_close(logits, torch.from_numpy(expected["logits"]))
    support = torch.from_numpy(expected["support"])
    torch.testing.assert_close(torch.softmax(logits, -1), torch.from_numpy(expected["probabilities"]))
    torch.testing.assert_close(q_from_logits(logits, support), torch.from_numpy(expected["q_values"]))
