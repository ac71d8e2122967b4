"""The multi-agent contract itself (TeamSim, TeamVectorEnv, ParallelView) on a toy game."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from anew.envs.multiagent import TeamSim, TeamVectorEnv


class CountingGame(TeamSim):
    """Two slots; slot 1 joins at step 1; each step rewards each active slot with its action; 3 steps."""

    def __init__(self, num_envs: int, seed: int | None = None):
        super().__init__(num_envs, seed)
        self.agents = ("p_0", "p_1")
        self.observation_space = gym.spaces.Box(0, 10, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.max_steps = 3
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.offset = np.zeros(num_envs)

    def reset(self, mask=None, options=None):
        mask = np.ones(self.num_envs, bool) if mask is None else mask
        self.t[mask] = 0
        self.offset[mask] = self.rng.integers(0, 5, int(mask.sum()))

    def active(self):
        return np.stack([np.ones(self.num_envs, bool), self.t >= 1], axis=1)

    def step(self, actions):
        rewards = actions * self.active()
        self.t += 1
        return rewards.astype(np.float32), np.zeros(self.num_envs, bool), self.t >= self.max_steps

    def observe(self):
        obs = np.stack([self.t + self.offset, self.t + self.offset], axis=1)[..., None].repeat(2, -1)
        return (obs * self.active()[..., None]).astype(np.float32)

    def state_arrays(self):
        return {"t": self.t, "offset": self.offset}

    def episode_metrics(self):
        return {"steps": self.t.copy()}

    def render(self, index=0):
        return np.zeros((8, 8, 3), np.uint8)


def test_team_vector_env_autoresets_and_reports_final_metrics() -> None:
    env = TeamVectorEnv(CountingGame(4, seed=0))
    obs, info = env.reset(seed=3)
    assert obs.shape == (4, 2, 2) and info["active"].tolist() == [[True, False]] * 4
    for _ in range(2):
        obs, rewards, terminated, truncated, info = env.step(np.full((4, 2), 2))
    assert rewards.tolist() == [[2, 2]] * 4 and not truncated.any()
    obs, rewards, terminated, truncated, info = env.step(np.full((4, 2), 1))
    assert truncated.all() and not terminated.any() and info["_final_obs"].all()
    assert info["final_metrics"]["steps"].tolist() == [3] * 4
    assert info["active"].tolist() == [[True, False]] * 4  # the reset games' slot 1 has left
    np.testing.assert_array_equal(info["team_reward"], [2.0] * 4)


def test_team_state_round_trip_is_exact() -> None:
    env = TeamVectorEnv(CountingGame(3, seed=0))
    env.reset(seed=1)
    env.step(np.ones((3, 2), int))
    state = env.state_dict()
    expected = [env.step(np.ones((3, 2), int))[0] for _ in range(4)]
    other = TeamVectorEnv(CountingGame(3, seed=99))
    other.reset(seed=5)
    other.load_state_dict(state)
    for want in expected:
        np.testing.assert_array_equal(other.step(np.ones((3, 2), int))[0], want)


def test_parallel_view_passes_pettingzoo_api_test() -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    from anew.envs.parallel_view import ParallelView

    parallel_api_test(ParallelView(CountingGame(1)), num_cycles=20)
