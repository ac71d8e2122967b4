"""Small agents that unit tests build many times: one place for their sizes and schedules."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from anew.agents.core import AgentSpec
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
