"""Pure policy-gradient maths: GAE, PPO's clipped losses and the log-prob/entropy of the policy heads.

Every function is a pure function of tensors (no module state), tested on its own in
``tests/test_policy_losses.py``; PPO composes them, and PD-VF, CommNet and SOM can reuse them.
Rollouts are time first (``[T, N]``); losses are means over the batch, to be minimised.
"""

from __future__ import annotations

import math

import torch


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    episode_over: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """Generalized advantage estimates for [T, N] rollouts (time first).

    ``next_values[t]`` is V of the observation after step t: the true final observation when the
    episode ended at t, so a truncated step still bootstraps. ``terminated`` zeroes that bootstrap;
    ``episode_over`` (terminated or truncated) stops the lambda-recursion at the episode boundary.
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminated[t]) - values[t]
        running = delta + gamma * gae_lambda * (1.0 - episode_over[t]) * running
        advantages[t] = running
    return advantages


def clipped_surrogate_loss(
    new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip_coef: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped policy loss (to minimise), the approximate KL (Schulman's k3) and the clip fraction."""
    log_ratio = new_log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
    loss = torch.max(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_coef).float().mean()
    return loss, approx_kl, clip_fraction


def value_loss(
    new_values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_coef: float, clip: bool
) -> torch.Tensor:
    """Half the mean squared error to the returns; with ``clip``, the larger of the clipped and unclipped
    errors per sample (PPO2's value clipping)."""
    unclipped = (new_values - returns) ** 2
    if not clip:
        return 0.5 * unclipped.mean()
    clipped_values = old_values + (new_values - old_values).clamp(-clip_coef, clip_coef)
    return 0.5 * torch.max(unclipped, (clipped_values - returns) ** 2).mean()


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian, summed over the last (action) axis."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian, summed over the last (action) axis."""
    return (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(-1)


def categorical_log_prob_and_entropy(
    logits: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-prob of the integer ``actions`` [B], entropy [B]) of the categorical policy ``logits`` [B, A]."""
    log_probs = torch.log_softmax(logits, dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return log_probs.gather(1, actions.unsqueeze(1)).squeeze(1), entropy
