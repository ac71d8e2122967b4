"""C51 maths: projection against hand-computed targets and an independent loop, mass, terminals, loss."""

from __future__ import annotations

import math

import pytest
import torch

from anew.agents.distributional import (
    categorical_cross_entropy,
    categorical_projection,
    expected_q,
    make_support,
    q_from_logits,
)

SUPPORT = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
PROBS = torch.tensor([[0.1, 0.2, 0.3, 0.2, 0.2]])


def project(reward: float, discount: float, probs: torch.Tensor = PROBS) -> torch.Tensor:
    return categorical_projection(SUPPORT, probs, torch.tensor([reward]), torch.tensor([discount]))[0]


def test_projection_matches_hand_computed_example():
    # Tz = 0.5 + 0.5 z = [-0.5, 0, 0.5, 1, 1.5]: -0.5 splits 0.1 evenly onto -1 and 0; 0 lands
    # exactly on atom 0; 0.5 splits 0.3 onto 0 and 1; 1 lands on atom 1; 1.5 splits 0.2 onto 1 and 2.
    expected = torch.tensor([0.0, 0.05, 0.05 + 0.2 + 0.15, 0.15 + 0.2 + 0.1, 0.1])
    torch.testing.assert_close(project(0.5, 0.5), expected)


def test_projection_clips_to_the_support():
    # Tz = 1.5 + z = [-0.5, 0.5, 1.5, 3.5, 3.5] -> the last two are clipped onto v_max = 2.
    expected = torch.tensor([0.0, 0.05, 0.05 + 0.1, 0.1 + 0.15, 0.15 + 0.2 + 0.2])
    torch.testing.assert_close(project(1.5, 1.0), expected)
    # Far below v_min everything lands on v_min.
    torch.testing.assert_close(project(-50.0, 0.9), torch.tensor([1.0, 0, 0, 0, 0]))


def test_terminal_collapses_onto_the_reward():
    torch.testing.assert_close(project(1.0, 0.0), torch.tensor([0.0, 0, 0, 1.0, 0]))  # exactly on an atom
    torch.testing.assert_close(project(0.3, 0.0), torch.tensor([0.0, 0, 0.7, 0.3, 0]))  # between atoms
    torch.testing.assert_close(project(7.0, 0.0), torch.tensor([0.0, 0, 0, 0, 1.0]))  # beyond v_max


def test_identity_when_reward_zero_and_discount_one_on_dopamine_support():
    support = make_support(-10.0, 10.0, 51)
    assert support[1] - support[0] == pytest.approx(0.4)
    probs = torch.softmax(torch.randn(8, 51, generator=torch.Generator().manual_seed(0)), dim=-1)
    target = categorical_projection(support, probs, torch.zeros(8), torch.ones(8))
    torch.testing.assert_close(target, probs, atol=1e-5, rtol=0)


def _projection_by_loops(support, probs, rewards, discounts):
    """Textbook C51 (Bellemare et al. 2017, Algorithm 1) with floor/ceil, written independently."""
    v_min, v_max, k = support[0].item(), support[-1].item(), support.numel()
    delta = (v_max - v_min) / (k - 1)
    out = torch.zeros_like(probs, dtype=torch.float64)
    for b in range(probs.shape[0]):
        for j in range(k):
            tz = min(max(rewards[b].item() + discounts[b].item() * support[j].item(), v_min), v_max)
            position = (tz - v_min) / delta
            lower, upper = math.floor(position), math.ceil(position)
            p = probs[b, j].item()
            if lower == upper:  # exactly on an atom: the textbook's l == u case
                out[b, lower] += p
            else:
                out[b, lower] += p * (upper - position)
                out[b, upper] += p * (position - lower)
    return out


def test_projection_matches_textbook_algorithm_with_n_step_discounts_and_terminals():
    gen = torch.Generator().manual_seed(1)
    support = torch.linspace(-10.0, 10.0, 51, dtype=torch.float64)
    probs = torch.softmax(torch.randn(16, 51, generator=gen, dtype=torch.float64), dim=-1)
    rewards = torch.randn(16, generator=gen, dtype=torch.float64) * 4
    terminated = torch.arange(16) % 4 == 0
    discounts = torch.where(terminated, 0.0, 0.99**3).double()  # n = 3
    expected = _projection_by_loops(support, probs, rewards, discounts)
    torch.testing.assert_close(categorical_projection(support, probs, rewards, discounts), expected)


def test_projection_conserves_probability_mass():
    gen = torch.Generator().manual_seed(2)
    support = make_support(-10.0, 10.0, 51)
    probs = torch.softmax(torch.randn(64, 51, generator=gen) * 3, dim=-1)
    rewards = torch.randn(64, generator=gen) * 30  # many far outside [v_min, v_max]
    discounts = torch.rand(64, generator=gen) * (torch.rand(64, generator=gen) > 0.2)
    target = categorical_projection(support, probs, rewards, discounts)
    assert (target >= 0).all()
    torch.testing.assert_close(target.sum(-1), torch.ones(64), atol=1e-5, rtol=0)


def test_projection_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="next_probs"):
        categorical_projection(SUPPORT, torch.ones(2, 4) / 4, torch.zeros(2), torch.ones(2))


def test_cross_entropy_gradient_is_softmax_minus_target():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 51, generator=gen, requires_grad=True)
    target = torch.softmax(torch.randn(4, 51, generator=gen), dim=-1).requires_grad_()
    loss = categorical_cross_entropy(logits, target)
    assert loss.shape == (4,)
    loss.sum().backward()
    torch.testing.assert_close(logits.grad, torch.softmax(logits.detach(), -1) - target.detach())
    assert target.grad is None  # the target is a constant
    # At logits = log(target) the loss is the target's entropy.
    entropy = -(target * target.log()).sum(-1)
    torch.testing.assert_close(categorical_cross_entropy(target.log(), target), entropy)


def test_expected_q_and_q_from_logits():
    torch.testing.assert_close(expected_q(PROBS, SUPPORT), torch.tensor([-0.2 - 0.2 + 0.2 + 0.4]))
    logits = torch.log(PROBS).reshape(1, 1, 5).repeat(2, 3, 1)  # (B=2, A=3, K=5)
    torch.testing.assert_close(q_from_logits(logits, SUPPORT), torch.full((2, 3), 0.2))
    plain = torch.randn(2, 3, 1)
    torch.testing.assert_close(q_from_logits(plain, None), plain[..., 0])
    with pytest.raises(ValueError, match="support"):
        q_from_logits(logits, None)
