"""A synchronous vector env whose state can be saved and restored exactly, without pickling envs.

Every episode of every sub-env starts from ``reset(seed=...)`` with a seed derived from
(run seed, env index, episode index). A sub-env's state is then fully described by that episode
number and the actions taken since its reset, which is what ``state_dict`` stores (as JSON-able
lists). ``load_state_dict`` re-plays those actions, so a resumed run sees the very same
observations as a run that was never stopped, for any Gymnasium env that is deterministic given
its reset seed and actions (all of ours, classic control, and ALE with its seeded sticky actions).

Autoreset follows Gymnasium's SAME_STEP mode: a finished sub-env is reset inside ``step``; its
last observation is in ``info["final_obs"]`` (masked by ``info["_final_obs"]``). What a sub-env reports
about its episode in the info of its last step (``EPISODE_INFO``: dicts of numbers, e.g. an inventory
env's average cost) is passed on as one array per name, NaN where no episode ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

EPISODE_INFO = ("episode_measures", "episode_references")
"""Info keys of per-episode numbers that evaluations average (``anew.runners.evaluate``)."""


def episode_seed(run_seed: int, env_index: int, episode: int) -> int:
    """A well-mixed 32-bit seed for one episode of one sub-env."""
    return int(np.random.SeedSequence([run_seed, env_index, episode]).generate_state(1)[0])


class SeededVectorEnv(gym.vector.VectorEnv):
    """N envs stepped in turn, each episode seeded from (seed, env, episode); exact save/restore."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], seed: int = 0):
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        first = self.envs[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(first.observation_space, self.num_envs)
        self.action_space = batch_space(first.action_space, self.num_envs)
        self.metadata = {**first.metadata, "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
        self.render_mode = first.render_mode
        self.run_seed = seed
        self.episodes = [0] * self.num_envs
        self.actions: list[list[Any]] = [[] for _ in self.envs]
        self._obs = create_empty_array(self.single_observation_space, self.num_envs)

    def _reset_one(self, index: int) -> tuple[Any, dict]:
        self.actions[index] = []
        return self.envs[index].reset(seed=episode_seed(self.run_seed, index, self.episodes[index]))

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.run_seed = int(seed)
            self.episodes = [0] * self.num_envs
        observations = [self._reset_one(i)[0] for i in range(self.num_envs)]
        return concatenate(self.single_observation_space, observations, self._obs).copy(), {}

    def step(self, actions: np.ndarray):
        observations, rewards = [], np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        final_obs = np.full(self.num_envs, None, dtype=object)
        episodes: dict[str, dict[str, np.ndarray]] = {}
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            obs, rewards[i], terminated[i], truncated[i], step_info = env.step(action)
            self.actions[i].append(np.asarray(action).tolist())
            if terminated[i] or truncated[i]:
                final_obs[i] = obs
                for key in EPISODE_INFO:
                    for name, value in step_info.get(key, {}).items():
                        episodes.setdefault(key, {}).setdefault(name, np.full(self.num_envs, np.nan))[i] = (
                            value
                        )
                self.episodes[i] += 1
                obs, _ = self._reset_one(i)
            observations.append(obs)
        batch = concatenate(self.single_observation_space, observations, self._obs).copy()
        done = terminated | truncated
        info = {"final_obs": final_obs, "_final_obs": done, **episodes} if done.any() else {}
        return batch, rewards, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return {
            "run_seed": self.run_seed,
            "episodes": list(self.episodes),
            "actions": [list(a) for a in self.actions],
        }

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        """Rebuild every sub-env's state by re-playing its current episode; returns the observations."""
        self.run_seed = int(state["run_seed"])
        self.episodes = [int(e) for e in state["episodes"]]
        observations = []
        for i, actions in enumerate(state["actions"]):
            obs, _ = self._reset_one(i)
            for action in actions:
                obs, *_ = self.envs[i].step(np.asarray(action, dtype=self.single_action_space.dtype))
            self.actions[i] = [list(a) if isinstance(a, list) else a for a in actions]
            observations.append(obs)
        return concatenate(self.single_observation_space, observations, self._obs).copy()

    def render(self) -> Any:
        return self.envs[0].render()

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()


def final_next_obs(next_obs: np.ndarray, done: np.ndarray, info: dict) -> np.ndarray:
    """Replace the reset observations of finished envs by their true final observations (SAME_STEP)."""
    if not np.any(done):
        return next_obs
    real = next_obs.copy()
    for i in np.flatnonzero(done):
        real[i] = info["final_obs"][i]
    return real
