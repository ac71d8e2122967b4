"""CommNet's learning signals as pure functions (``facebookarchive/CommNet`` ``train.lua``).

Time-major ``[T, B, A]`` tensors: T buffered steps, B games, A agent slots. ``done[T, B]`` marks the last step
of an episode (terminated or truncated: CommNet does not discount and never bootstraps, so a time limit ends
the return like a terminal state does).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


def team_returns_to_go(rewards: torch.Tensor, done: torch.Tensor, cooperative: bool = True) -> torch.Tensor:
    """Undiscounted reward-to-go ``[T, B, A]`` within each episode; ``cooperative`` averages it over the game's
    slots (all of them, inactive ones contributing 0, as Lua's ``R:mean(2)`` unless ``--no_coop``)."""
    per_step = rewards.mean(-1, keepdim=True).expand_as(rewards) if cooperative else rewards
    returns = torch.zeros_like(per_step)
    running = torch.zeros_like(per_step[0])
    for t in reversed(range(per_step.shape[0])):
        running = per_step[t] + (~done[t].bool()).to(per_step.dtype)[:, None] * running
        returns[t] = running
    return returns


class ReinforceLoss(NamedTuple):
    policy: torch.Tensor
    baseline: torch.Tensor


def reinforce_loss(
    log_probs: torch.Tensor,
    baselines: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    alpha: float,
    episodes: int,
) -> ReinforceLoss:
    """REINFORCE with a baseline, per episode of the batch (the paper's update, Lua's gradients):

    policy   = -1/E sum_{t,j in mask} (R_t - b_t) log pi(a_t^j)    (b treated as a constant here)
    baseline = alpha/E sum_{t,j in mask} (R_t - b_t)^2

    ``log_probs`` are those of the taken actions (plus any discrete symbols sent), ``mask`` selects the active
    slots of trainable steps and ``episodes`` (E) is the number of whole episodes in the batch."""
    mask = mask.to(log_probs.dtype)
    advantage = (returns - baselines).detach()
    policy = -(advantage * log_probs * mask).sum() / episodes
    baseline = alpha * ((returns - baselines) ** 2 * mask).sum() / episodes
    return ReinforceLoss(policy, baseline)


def action_entropy(log_probs: torch.Tensor, mask: torch.Tensor, episodes: int) -> torch.Tensor:
    """Entropy of the action distributions ``log_probs[T, B, A, n]`` summed over the masked slots, per episode
    (the policy term's normalisation, so ``entropy_cost`` weighs the two on one scale)."""
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return (entropy * mask.to(entropy.dtype)).sum() / episodes


def supervised_loss(log_probs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``targets[T, B, A]`` under ``log_probs[T, B, A, n]`` over the masked
    slots (the levers' supervised variant: the target lever is the rank of the agent's id in its group)."""
    chosen = log_probs.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    mask = mask.to(log_probs.dtype)
    return -(chosen * mask).sum() / mask.sum().clamp(min=1)


def curriculum_value(update: int, start: int, end: int, low: float, high: float, step: float) -> float:
    """Lua ``OptsHelper:set_hardness``: hardness h = (update - start)/(end - start) clipped to [0, 1], the value
    low + h (high - low) rounded to a multiple of ``step`` (half away from zero, as ``torch.round``)."""
    hardness = min(1.0, max(0.0, (update - start) / (end - start))) if end > start else 1.0
    value = low + hardness * (high - low)
    return round(math.floor(value / step + 0.5) * step, 10)
