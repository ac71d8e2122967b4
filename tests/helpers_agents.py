"""Small agents that unit tests build many times: one place for their sizes and schedules, a teacher network
with fixed Q-values, and a few CartPole steps of acting, observing and learning."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.dqn import PRESETS, DQNAgent

BOX = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)  # CartPole-sized observations
# Learns from step 20, 2 gradient steps every 10 on batches of 8: a few dozen env steps make updates.
QUICK_LEARNING = {
    "learning_starts": 20,
    "train_every": 10,
    "gradient_steps": 2,
    "target_update_every": 50,
    "batch_size": 8,
}


def small_dqn(seed: int = 0, *, quick: bool = True, obs_space: gym.Space = BOX, **overrides: Any) -> DQNAgent:
    """The classic-control DQN with a 500-row buffer and one hidden layer of 16, for 2 actions and one env.

    ``quick``: learn on :data:`QUICK_LEARNING`'s schedule (False keeps the preset's); ``overrides``: any other
    ``DQNConfig`` field (``hidden``, ``n_step``, ``max_grad_norm``...), applied last."""
    settings = {"buffer_size": 500, "hidden": (16,)} | (QUICK_LEARNING if quick else {}) | overrides
    config = dataclasses.replace(PRESETS["classic-control"], **settings)
    return DQNAgent(config, AgentSpec(obs_space, gym.spaces.Discrete(2), num_envs=1, seed=seed))


class FixedQ(torch.nn.Module):
    """Q-values that ignore the input: a teacher whose greedy action is known."""

    def __init__(self, values: list[float]):
        super().__init__()
        self.values = torch.tensor(values)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.values.expand(obs.shape[0], -1)


def step_cartpole(learner: Any, steps: int) -> dict[str, float]:
    """``steps`` steps of one CartPole-v1 env (reset with seed 0, again at each episode's end) in which ``learner``
    acts, observes the transition and updates; returns the metrics of the last update that gave any."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    metrics = {}
    for _ in range(steps):
        action = learner.act(obs[None])
        next_obs, reward, terminated, truncated, _ = env.step(int(action[0]))
        learner.observe(
            TransitionBatch(
                obs[None],
                action,
                np.array([reward]),
                np.array([terminated]),
                np.array([truncated]),
                next_obs[None],
            )
        )
        metrics = learner.update() or metrics
        obs = next_obs if not (terminated or truncated) else env.reset()[0]
    return metrics
