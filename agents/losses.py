"""Losses, targets and schedules of the value-based agents as pure functions (rlax style)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def q_learning_target(
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_q_target: torch.Tensor,
    next_q_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """n-step Q-learning target ``r + discount * Q_target(s', a*)``.

    ``discount`` is gamma**L, already zero after a true terminal. With ``next_q_online`` given,
    a* = argmax of the online net (double DQN, van Hasselt et al. 2016); otherwise a* = argmax of the
    target net (Mnih et al. 2015).
    """
    if next_q_online is None:
        next_value = next_q_target.max(dim=1).values
    else:
        best = next_q_online.argmax(dim=1, keepdim=True)
        next_value = next_q_target.gather(1, best).squeeze(1)
    return reward + discount * next_value


def td_loss(q_taken: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Per-sample TD loss. ``mse`` is Dopamine's (t - q)^2 (no 1/2); ``huber`` has delta 1."""
    if kind == "mse":
        return (target - q_taken).pow(2)
    if kind == "huber":
        return F.huber_loss(q_taken, target, reduction="none", delta=1.0)
    raise ValueError(f"unknown loss {kind!r}: use 'mse' or 'huber'")


def linear_schedule(step: int, start: float, end: float, duration: int, warmup_steps: int = 0) -> float:
    """``start`` during warm-up, then linear to ``end`` over ``duration`` steps (Dopamine's
    ``linearly_decaying_epsilon``); schedules epsilon, Rainbow's beta and DQN's learning-rate decay."""
    if duration <= 0:
        return end
    progress = min(max(step - warmup_steps, 0) / duration, 1.0)
    return start + (end - start) * progress


def epsilon_greedy(
    greedy: np.ndarray, epsilon: float, num_actions: int, rng: np.random.Generator
) -> np.ndarray:
    """``greedy`` actions with each one replaced, with probability ``epsilon``, by a uniform random action.

    Draws one uniform per action, then the random actions, from ``rng`` (nothing when none is replaced);
    modifies and returns ``greedy``.
    """
    random_mask = rng.random(len(greedy)) < epsilon
    if random_mask.any():
        greedy[random_mask] = rng.integers(0, num_actions, size=int(random_mask.sum()))
    return greedy


def distillation_loss(student_q: torch.Tensor, teacher_q: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-sample KL(softmax(Q_T/τ) || softmax(Q_S/τ)), QDagger's distillation term."""
    teacher_log_p = F.log_softmax(teacher_q.detach() / temperature, dim=1)
    student_log_p = F.log_softmax(student_q / temperature, dim=1)
    return (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(dim=1)
