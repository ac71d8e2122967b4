"""Lever pulling (CommNet, Sukhbaatar et al. 2016, §4.1) as a batched :class:`TeamSim`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from anew.envs import grid_render
from anew.envs.multiagent import TeamSim
from anew.errors import AnewError

CELL_PIXELS = 24


class LeversSim(TeamSim):
    """``num_envs`` rounds of lever pulling; slots ``agent_0 … agent_{m-1}``, one per lever.

    Each round draws ``levers`` (m, default 5) ids from a pool of ``pool`` (default 500) agents; every
    slot observes only its own id (``Discrete(pool)``) and pulls one lever (``Discrete(m)``), once: the
    episode terminates after one step. Every slot gets the shared reward ``(#distinct levers - 1)/(m - 1)``
    (``shared_reward``; ``facebookarchive/CommNet`` ``levers/levers.lua`` ``get_reward``).

    - Ids are drawn with replacement, as ``levers.lua`` does (about 2% of 5-id groups from 500 hold a
      duplicate); ``distinct_ids=True`` draws groups of distinct ids (uniformly, by redrawing groups with a
      duplicate).
    - ``slot_info()["target_lever"]`` is the supervised target of ``levers.lua``'s ``make_batch``: the rank
      (0-based) of the slot's id within its group. Ties between equal ids are broken by slot order (the
      lower slot gets the lower rank; torch's sort leaves this unspecified), so the targets of a group are
      always a permutation of the levers and pulling them earns reward 1.
    - ``episode_metrics``: ``distinct_levers`` and ``reward`` of the round (0 before the pull).
    With uniformly random pulls E[#distinct] = m(1 - (1 - 1/m)^m), so the expected reward is 0.5904 for
    m = 5: the best any team without communication can do.
    """

    shared_reward = True

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        pool: int = 500,
        levers: int = 5,
        distinct_ids: bool = False,
    ):
        super().__init__(num_envs, seed)
        if levers < 2:
            raise AnewError(f"lever pulling needs at least 2 levers (got levers={levers})")
        if pool < (levers if distinct_ids else 1):
            raise AnewError(f"a pool of {pool} ids cannot fill groups of {levers}; raise pool")
        self.pool, self.levers, self.distinct_ids = int(pool), int(levers), bool(distinct_ids)
        self.agents = tuple(f"agent_{i}" for i in range(self.levers))
        self.observation_space = gym.spaces.Discrete(self.pool)
        self.action_space = gym.spaces.Discrete(self.levers)
        self.max_steps = 1
        self.ids = np.zeros((num_envs, self.levers), np.int64)
        self.pulled = np.full((num_envs, self.levers), -1, np.int64)  # -1 until the pull
        self.t = np.zeros(num_envs, np.int64)

    def reset(self, mask: np.ndarray | None = None, options: dict[str, Any] | None = None) -> None:
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        self.ids[mask] = self._draw_groups(int(mask.sum()))
        self.pulled[mask] = -1
        self.t[mask] = 0

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.pulled = np.asarray(actions, np.int64).reshape(self.num_envs, self.levers).copy()
        self.t = self.t + 1
        rewards = np.repeat(self._reward()[:, None], self.levers, axis=1).astype(np.float32)
        return rewards, np.ones(self.num_envs, bool), np.zeros(self.num_envs, bool)

    def observe(self) -> np.ndarray:
        return self.ids.copy()

    def active(self) -> np.ndarray:
        return np.ones((self.num_envs, self.levers), bool)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids, "pulled": self.pulled, "t": self.t}

    def slot_info(self) -> dict[str, np.ndarray]:
        return {"target_lever": target_levers(self.ids)}

    def episode_metrics(self) -> dict[str, np.ndarray]:
        pulled = self.t > 0
        return {
            "distinct_levers": np.where(pulled, distinct_count(self.pulled), 0).astype(np.float64),
            "reward": np.where(pulled, self._reward(), 0.0),
        }

    def render(self, index: int = 0) -> np.ndarray:
        """Top row: the slots, one colour each; bottom row: the levers, each showing who pulled it
        (gray when nobody did, red frame when pulled twice or more)."""
        colours = grid_render.slot_colours(self.levers)
        cells = np.full((2, self.levers, 3), 70, np.uint8)
        cells[0] = colours
        image = grid_render.upscale(cells, CELL_PIXELS)
        for lever in range(self.levers):
            pullers = np.flatnonzero(self.pulled[index] == lever)
            if pullers.size == 0:
                grid_render.fill(image, 1, lever, CELL_PIXELS, (150, 150, 150), 8)
            for part, slot in enumerate(pullers[:4]):
                grid_render.fill(image, 1, lever, CELL_PIXELS, colours[slot], 2, part, min(pullers.size, 4))
            if pullers.size > 1:
                grid_render.frame(image, 1, lever, CELL_PIXELS, grid_render.RED, 2)
        return image

    def _reward(self) -> np.ndarray:
        return (distinct_count(self.pulled) - 1) / (self.levers - 1)

    def _draw_groups(self, count: int) -> np.ndarray:
        groups = self.rng.integers(0, self.pool, (count, self.levers))
        while self.distinct_ids and count:
            again = distinct_count(groups) < self.levers
            if not again.any():
                break
            groups[again] = self.rng.integers(0, self.pool, (int(again.sum()), self.levers))
        return groups


def distinct_count(values: np.ndarray) -> np.ndarray:
    """``[B]`` number of distinct values in each row of ``values [B, m]``."""
    ordered = np.sort(values, axis=1)
    return 1 + (np.diff(ordered, axis=1) != 0).sum(axis=1)


def target_levers(ids: np.ndarray) -> np.ndarray:
    """``[B, m]`` rank of each id within its row; equal ids ranked by position (stable sort)."""
    order = np.argsort(ids, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(ids.shape[1])[None, :].repeat(len(ids), axis=0), axis=1)
    return ranks
