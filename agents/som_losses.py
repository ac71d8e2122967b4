"""Pure maths of SOM's training: advantages over each player's own turns and the actor-critic loss.

In a turn-based game a player decides only on its turns, yet rewards arrive on every step (the other's move
can end the game). :func:`turn_based_advantages` is GAE over one player's decision steps: the TD error of a
decision at step t runs to the player's next decision t' (rewards of the steps between, discounted per env
step, plus V at t'); the lambda-recursion skips the other player's steps. Time first (``[T, N]``): each
column is one player of one game.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


def turn_based_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    decision: torch.Tensor,
    terminated: torch.Tensor,
    done: torch.Tensor,
    bootstrap: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """GAE advantages ``[T, N]`` at the steps where ``decision`` is true (0 elsewhere).

    ``rewards[t]`` is what the column's player received at step t (whoever moved); ``values[t]`` its value
    estimate at step t (read on decision steps only); ``done[t]`` ends the episode after step t, and
    ``terminated[t]`` says it ended for good: otherwise (a time limit) ``bootstrap[t]`` is V of the final
    observation. With ``gae_lambda`` = 1 the advantage is the discounted return minus V (Monte Carlo).
    """
    advantages = torch.zeros_like(rewards)
    after = torch.zeros_like(rewards[0])  # value of what follows step t: V at the next decision, or rewards
    carry = torch.zeros_like(rewards[0])  # (gamma lambda)^(gap) A at the player's next decision
    for t in reversed(range(rewards.shape[0])):
        ended = done[t].bool()
        after = torch.where(ended, bootstrap[t] * (~terminated[t].bool()).float(), after)
        carry = torch.where(ended, torch.zeros_like(carry), carry)
        advantage = rewards[t] + gamma * after - values[t] + gamma * gae_lambda * carry
        decides = decision[t].bool()
        advantages[t] = torch.where(decides, advantage, torch.zeros_like(advantage))
        after = torch.where(decides, values[t], rewards[t] + gamma * after)
        carry = torch.where(decides, advantage, gamma * gae_lambda * carry)
    return advantages


class ActorCriticLosses(NamedTuple):
    """The terms of SOM's A2C loss (means over the masked decisions)."""

    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor


def actor_critic_losses(
    logits: torch.Tensor,
    actions: torch.Tensor,
    old_log_prob: torch.Tensor,
    values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_coef: float,
) -> ActorCriticLosses:
    """Policy loss, half squared value error and policy entropy, averaged over the rows where ``mask`` is true.

    The policy loss is PPO's clipped surrogate ``-min(r A, clip(r) A)`` with ``r = pi(a) / pi_old(a)``: at the
    weights that acted (r = 1) its gradient is A2C's ``-A grad log pi(a)``; it only differs when a batch is
    reused (``clip_coef`` 0 turns the clipping off). ``logits [..., A]``; the rest ``[...]``."""
    weights = mask.float() / mask.float().sum().clamp(min=1.0)
    log_probs = torch.log_softmax(logits, dim=-1)
    chosen = log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    ratio = torch.exp(chosen - old_log_prob.detach())
    advantages = advantages.detach()
    surrogate = ratio * advantages
    if clip_coef > 0:
        surrogate = torch.min(surrogate, ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * advantages)
    return ActorCriticLosses(
        policy=-(surrogate * weights).sum(),
        value=(0.5 * (values - returns.detach()) ** 2 * weights).sum(),
        entropy=(entropy * weights).sum(),
    )


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``targets [...]`` under ``logits [..., A]`` over the entries where ``mask`` is true
    (IPP's and SPP's prediction of the other's action)."""
    losses = F.cross_entropy(logits.flatten(0, -2), targets.long().flatten(), reduction="none").view(
        mask.shape
    )
    return (losses * mask.float()).sum() / mask.float().sum().clamp(min=1.0)
