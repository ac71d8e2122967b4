"""The PettingZoo face of a :class:`~anew.envs.multiagent.TeamSim`: a ``ParallelEnv`` of one game.

Slots are fixed: every slot is in ``agents`` from ``reset`` until the episode ends (then ``agents`` is
empty), and ``infos[slot]["active"]`` says whether it is on the board. In turn-based games every slot
submits an action each step and only the one whose ``infos[slot]["to_move"]`` is true has it applied.
Per-game measures (``success``, …) are in every slot's info.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from anew.envs.multiagent import TeamSim


class ParallelView(ParallelEnv):
    """A PettingZoo Parallel API view over a batched sim holding exactly one game."""

    def __init__(self, sim: TeamSim, render_mode: str | None = None):
        if sim.num_envs != 1:
            raise ValueError("a ParallelView shows one game: build the sim with num_envs=1")
        if render_mode not in (None, *sim.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not one of {sim.metadata['render_modes']}")
        self.sim = sim
        self.render_mode = render_mode
        self.metadata = {**sim.metadata, "name": type(sim).__name__, "is_parallelizable": True}
        self.possible_agents = list(sim.agents)
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> gym.Space:
        return self.sim.observation_space

    def action_space(self, agent: str) -> gym.Space:
        return self.sim.action_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.sim.rng = np.random.default_rng(seed)
        self.sim.reset(None, options)
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos()

    def step(self, actions: dict[str, Any]):
        default = self.sim.action_space.sample() * 0  # a valid placeholder for slots that sent nothing
        batch = np.array([[actions.get(agent, default) for agent in self.possible_agents]])
        rewards, terminated, truncated = self.sim.step(batch)
        observations, infos = self._observations(), self._infos()
        reward = {
            agent: float(rewards[0, i])
            for i, agent in enumerate(self.possible_agents)
            if agent in self.agents
        }
        terminations = {agent: bool(terminated[0]) for agent in self.agents}
        truncations = {agent: bool(truncated[0]) for agent in self.agents}
        if terminated[0] or truncated[0]:
            self.agents = []
        return observations, reward, terminations, truncations, infos

    def render(self) -> np.ndarray | None:
        return self.sim.render(0) if self.render_mode == "rgb_array" else None

    def state(self) -> np.ndarray:
        return self.sim.observe()[0]

    def close(self) -> None:
        pass

    def _observations(self) -> dict[str, np.ndarray]:
        obs = self.sim.observe()[0]
        return {agent: obs[i] for i, agent in enumerate(self.possible_agents) if agent in self.agents}

    def _infos(self) -> dict[str, dict[str, Any]]:
        slots = {k: v[0] for k, v in self.sim.info().items()}
        game = {k: v[0].item() for k, v in self.sim.episode_metrics().items()}
        return {
            agent: {**{k: _plain(v[i]) for k, v in slots.items()}, **game}
            for i, agent in enumerate(self.possible_agents)
            if agent in self.agents
        }


def _plain(value: Any) -> Any:
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value
