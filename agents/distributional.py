"""Categorical (C51) distributional RL maths: pure, batched torch functions (Bellemare et al., 2017).

A return distribution is a probability vector over a fixed, evenly spaced support
``z_0 = v_min < ... < z_{K-1} = v_max``. The Bellman target ``r + gamma^n z`` moves the atoms off
the support; :func:`categorical_projection` puts their mass back onto it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_support(
    v_min: float, v_max: float, num_atoms: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """``num_atoms`` evenly spaced atoms from ``v_min`` to ``v_max`` (Dopamine: 51 atoms on [-10, 10])."""
    if num_atoms < 2 or not v_min < v_max:
        raise ValueError(f"need num_atoms >= 2 and v_min < v_max, got {num_atoms}, [{v_min}, {v_max}]")
    return torch.linspace(v_min, v_max, num_atoms, device=device)


def categorical_projection(
    support: torch.Tensor,
    next_probs: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
) -> torch.Tensor:
    """Project the distribution of ``rewards + discounts * Z`` onto ``support``.

    Args:
        support: (K,) evenly spaced atoms.
        next_probs: (B, K) probabilities of the bootstrap distribution Z (the target network's, at
            the chosen next action).
        rewards: (B,) the (n-step discounted) reward sum.
        discounts: (B,) ``gamma ** n`` for a bootstrapped transition and 0 for a terminal one, so a
            terminal target collapses onto the reward.

    Returns:
        (B, K) target probabilities; each row sums to the row sum of ``next_probs``.

    Each shifted atom ``Tz_j = clip(r + d z_j, v_min, v_max)`` gives its mass to the two nearest
    support atoms in proportion to closeness: atom i receives ``p_j * max(0, 1 - |Tz_j - z_i| / dz)``.
    This triangular-kernel form (as in Dopamine's ``project_distribution``) needs no floor/ceil
    special case when ``Tz_j`` lands exactly on an atom: that atom then receives all of it.
    """
    if support.dim() != 1 or next_probs.dim() != 2 or next_probs.shape[1] != support.shape[0]:
        raise ValueError(
            f"expected support (K,) and next_probs (B, K), "
            f"got {tuple(support.shape)} and {tuple(next_probs.shape)}"
        )
    v_min, v_max = support[0], support[-1]
    delta_z = (v_max - v_min) / (support.shape[0] - 1)
    shifted = rewards.reshape(-1, 1) + discounts.reshape(-1, 1) * support.reshape(1, -1)  # (B, K)
    shifted = shifted.clamp(v_min, v_max)
    # closeness[b, i, j]: share of shifted atom j that lands on support atom i.
    distance = (shifted.unsqueeze(1) - support.reshape(1, -1, 1)).abs()
    closeness = (1.0 - distance / delta_z).clamp(min=0.0)
    return torch.einsum("bij,bj->bi", closeness, next_probs)


def categorical_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Per-example C51 loss ``-sum_i target_i * log softmax(logits)_i``: (B, K), (B, K) -> (B,).

    The target is treated as a constant (no gradient flows into it). Per-example values are
    returned so the caller can weight them by importance weights and use them as new priorities.
    """
    return -(target_probs.detach() * F.log_softmax(logits, dim=-1)).sum(dim=-1)


def expected_q(probs: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Mean of each distribution: (..., K) probabilities -> (...) Q-values."""
    return (probs * support).sum(dim=-1)


def q_from_logits(logits: torch.Tensor, support: torch.Tensor | None) -> torch.Tensor:
    """Q-values (B, A) from head logits (B, A, K): the expectation under softmax when distributional
    (``support`` given), else the single atom (K = 1)."""
    if support is None:
        if logits.shape[-1] != 1:
            raise ValueError(f"logits have {logits.shape[-1]} atoms but no support was given")
        return logits.squeeze(-1)
    return expected_q(F.softmax(logits, dim=-1), support)
