"""Pure policy-gradient maths (anew.agents.policy_losses) against hand computations and reference formulas,
and the shared actor-critic network (anew.agents.networks.ActorCritic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from anew.agents.networks import ActorCritic
from anew.agents.policy_losses import (
    categorical_log_prob_and_entropy,
    clipped_surrogate_loss,
    gae_advantages,
    gaussian_entropy,
    gaussian_log_prob,
    value_loss,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------------- GAE
def test_gae_matches_hand_computation_with_terminated_and_truncated_steps() -> None:
    gamma, lam = 0.9, 0.5
    # env 0: no episode end.  env 1: terminated at t=0, truncated at t=2 (final obs worth 4).
    # env 2: truncated at t=0 with final obs worth 3, then running.
    rewards = torch.tensor([[1.0, 1.0, 0.0], [2.0, 1.0, 0.0], [3.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 2.0, 1.0], [1.0, 2.0, 1.0], [1.5, 2.0, 1.0]])
    next_values = torch.tensor([[1.0, 5.0, 3.0], [1.5, 2.0, 1.0], [2.0, 4.0, 1.0]])
    terminated = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    truncated = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    advantages = gae_advantages(rewards, values, next_values, terminated, terminated + truncated, gamma, lam)
    # deltas by hand: env0 1.4, 2.35, 3.3; env1 -1 (no bootstrap), 0.8, 2.6 (bootstraps on 4); env2 1.7, -0.1, -0.1
    expected = torch.tensor(
        [
            [1.4 + 0.45 * (2.35 + 0.45 * 3.3), -1.0, 1.7],
            [2.35 + 0.45 * 3.3, 0.8 + 0.45 * 2.6, -0.1 + 0.45 * -0.1],
            [3.3, 2.6, -0.1],
        ]
    )
    torch.testing.assert_close(advantages, expected)


def test_gae_with_lambda_one_is_the_discounted_return_minus_value() -> None:
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.3], [0.2], [0.1]])
    next_values = torch.tensor([[0.2], [0.1], [10.0]])
    zeros = torch.zeros(3, 1)
    advantages = gae_advantages(rewards, values, next_values, zeros, zeros, 0.9, 1.0)
    returns = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 10, 2 + 0.9 * 3 + 0.81 * 10, 3 + 0.9 * 10]
    torch.testing.assert_close(advantages + values, torch.tensor(returns).unsqueeze(1))


# ---------------------------------------------------------------------- losses
def test_clipped_surrogate_loss_values_kl_clipfrac_and_gradients() -> None:
    ratios = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1])
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    new_log_prob = ratios.log().requires_grad_()
    loss, approx_kl, clip_fraction = clipped_surrogate_loss(new_log_prob, torch.zeros(5), advantages, 0.2)
    # per sample max(-A r, -A clip(r)): -1.2, 1.5, -0.5, 0.8, -1.1
    assert loss.item() == pytest.approx((-1.2 + 1.5 - 0.5 + 0.8 - 1.1) / 5)
    assert clip_fraction.item() == pytest.approx(4 / 5)
    assert approx_kl.item() == pytest.approx(float(((ratios - 1) - ratios.log()).mean()))
    loss.backward()
    # Clipped terms carry no gradient; unclipped ones d(-A r)/dlogp = -A r, averaged.
    torch.testing.assert_close(new_log_prob.grad, torch.tensor([0.0, 1.5, -0.5, 0.0, -1.1]) / 5)


def test_value_loss_clipped_and_unclipped() -> None:
    new, old, returns = torch.tensor([2.0, 0.1]), torch.tensor([0.0, 0.0]), torch.tensor([3.0, 0.0])
    # sample 0: unclipped (2-3)^2 = 1, clipped value 0.2 -> (0.2-3)^2 = 7.84; sample 1: both 0.01
    assert value_loss(new, old, returns, 0.2, clip=True).item() == pytest.approx(0.5 * (7.84 + 0.01) / 2)
    assert value_loss(new, old, returns, 0.2, clip=False).item() == pytest.approx(0.5 * (1.0 + 0.01) / 2)


def test_gaussian_log_prob_and_entropy_against_scipy_and_torch() -> None:
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(6, 3, generator=generator)
    log_std = torch.randn(3, generator=generator).expand(6, 3)
    actions = torch.randn(6, 3, generator=generator) * 2
    ours = gaussian_log_prob(actions, mean, log_std)
    reference = stats.norm.logpdf(actions.numpy(), mean.numpy(), log_std.exp().numpy()).sum(-1)
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-5)
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(gaussian_entropy(log_std), normal.entropy().sum(-1))


def naive_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """GAE by its definition, one env and one step at a time: A_t = sum_k (gamma lam)^k delta_{t+k}, the sum
    stopping after the step that ends the episode; delta bootstraps unless the step terminated."""
    steps, envs = rewards.shape
    out = np.zeros((steps, envs))
    for env in range(envs):
        for t in range(steps):
            total, weight = 0.0, 1.0
            for k in range(t, steps):
                bootstrap = 0.0 if terminated[k, env] else gamma * next_values[k, env]
                total += weight * (rewards[k, env] + bootstrap - values[k, env])
                if terminated[k, env] or truncated[k, env]:
                    break
                weight *= gamma * lam
            out[t, env] = total
    return out


@pytest.mark.parametrize("lam", [0.0, 0.7, 1.0])
def test_gae_matches_the_definition_on_random_rollouts(lam: float) -> None:
    rng = np.random.default_rng(3)
    steps, envs, gamma = 12, 5, 0.95
    rewards, values, next_values = (rng.normal(size=(steps, envs)) for _ in range(3))
    terminated = rng.random((steps, envs)) < 0.15
    truncated = (rng.random((steps, envs)) < 0.15) & ~terminated
    as_tensor = lambda array: torch.as_tensor(array, dtype=torch.float64)
    ours = gae_advantages(
        as_tensor(rewards),
        as_tensor(values),
        as_tensor(next_values),
        as_tensor(terminated),
        as_tensor(terminated | truncated),
        gamma,
        lam,
    )
    expected = naive_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_surrogate_without_clipping_is_the_importance_weighted_advantage() -> None:
    generator = torch.Generator().manual_seed(1)
    old = torch.randn(64, generator=generator)
    new = old + 0.01 * torch.randn(64, generator=generator)  # every ratio within 1 +- 0.2
    advantages = torch.randn(64, generator=generator)
    loss, _, clip_fraction = clipped_surrogate_loss(new, old, advantages, 0.2)
    torch.testing.assert_close(loss, -(advantages * (new - old).exp()).mean())
    assert clip_fraction.item() == 0.0


def test_unclipped_value_loss_is_half_the_mse() -> None:
    generator = torch.Generator().manual_seed(2)
    new, old, returns = (torch.randn(32, generator=generator) for _ in range(3))
    unclipped = value_loss(new, old, returns, 0.2, clip=False)
    torch.testing.assert_close(unclipped, 0.5 * torch.nn.functional.mse_loss(new, returns))
    # A huge clip range never binds: the clipped loss equals the plain one.
    torch.testing.assert_close(value_loss(new, old, returns, 1e9, clip=True), unclipped)


def test_gaussian_terms_match_torch_distributions() -> None:
    generator = torch.Generator().manual_seed(4)
    mean = torch.randn(10, 2, generator=generator)
    log_std = (0.5 * torch.randn(2, generator=generator)).expand(10, 2)
    actions = mean + torch.randn(10, 2, generator=generator) * log_std.exp()
    normal = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)
    torch.testing.assert_close(gaussian_log_prob(actions, mean, log_std), normal.log_prob(actions))
    torch.testing.assert_close(gaussian_entropy(log_std), normal.entropy())


def test_categorical_terms_match_torch_distributions() -> None:
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(7, 4, generator=generator) * 3
    actions = torch.randint(0, 4, (7,), generator=generator)
    log_prob, entropy = categorical_log_prob_and_entropy(logits, actions)
    reference = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(log_prob, reference.log_prob(actions))
    torch.testing.assert_close(entropy, reference.entropy())


# ---------------------------------------------------------------------- the actor-critic network
def test_actor_critic_heads_and_seeded_initialisation() -> None:
    obs = torch.randn(5, 4)
    make = lambda seed, continuous: ActorCritic((4,), 3, continuous, torch.Generator().manual_seed(seed))
    discrete, gaussian = make(0, False), make(0, True)
    head, value = discrete(obs)
    assert head.shape == (5, 3) and value.shape == (5,) and discrete.log_std is None
    assert gaussian.log_std.shape == (3,) and torch.equal(gaussian.log_std, torch.zeros(3))
    torch.testing.assert_close(discrete.policy(obs), head)
    torch.testing.assert_close(discrete.value(obs), value)
    again, other = make(0, False), make(1, False)
    assert all(torch.equal(a, b) for a, b in zip(discrete.parameters(), again.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(discrete.parameters(), other.parameters()))
    # CleanRL's init: orthogonal actor output layer with gain 0.01, zero biases.
    last = discrete.actor[-1]
    gram = last.weight @ last.weight.T
    torch.testing.assert_close(gram, 1e-4 * torch.eye(3), atol=1e-9, rtol=1e-5)
    assert torch.equal(last.bias, torch.zeros(3))


def test_actor_critic_shares_one_cnn_torso_for_images() -> None:
    network = ActorCritic((4, 10, 10), 6, False, torch.Generator().manual_seed(0))
    head, value = network(torch.zeros(2, 4, 10, 10, dtype=torch.uint8))
    assert head.shape == (2, 6) and value.shape == (2,)
    assert (
        isinstance(network.actor, torch.nn.Linear) and network.actor.in_features == network.torso.out_features
    )
