"""Playing whole episodes through the runner's env factory, and the policies PD-VF plays them with.

PD-VF never owns an env: every phase asks ``make_envs(num_envs, seed, **options)`` (the runner's factory) for
a Gymnasium vector env (SAME_STEP autoreset, ``info["final_obs"]``) and plays exactly one episode in each slot
(later episodes of a slot are stepped but not recorded). Episodes come back padded to ``max_steps``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from anew.agents.core import EnvFactory

ActFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class EpisodeBatch:
    """N episodes padded to T steps: ``obs[i, t]`` for t <= ``lengths[i]`` (the last one the final observation),
    ``actions[i, t]`` and ``rewards[i, t]`` for t < ``lengths[i]``; zeros elsewhere."""

    obs: np.ndarray  # [N, T + 1, |S|] float32
    actions: np.ndarray  # [N, T, |A|] float32
    rewards: np.ndarray  # [N, T] float64
    lengths: np.ndarray  # [N] int64

    def returns(self, gamma: float) -> np.ndarray:
        """The reference's return R <- gamma R + r in time order (Spaceship: the terminal reward)."""
        total = np.zeros(len(self.lengths))
        for t in range(self.rewards.shape[1]):
            live = t < self.lengths
            total[live] = gamma * total[live] + self.rewards[live, t]
        return total


def concat_episodes(batches: Sequence[EpisodeBatch]) -> EpisodeBatch:
    return EpisodeBatch(
        *(np.concatenate([getattr(b, name) for b in batches]) for name in EpisodeBatch.__annotations__)
    )


def episode_seed(*keys: int) -> int:
    """A 32-bit seed mixed from integer keys (run seed, phase, unit, ...): stateless, so resumes replay it."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def _final_obs(next_obs: np.ndarray, done: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """The true last observations of finished slots (SAME_STEP autoreset puts them in ``info["final_obs"]``)."""
    if not done.any():
        return next_obs
    real = np.array(next_obs, copy=True)
    for i in np.flatnonzero(done):
        real[i] = info["final_obs"][i]
    return real


def play_episodes(envs: Any, seed: int, act: ActFn, max_steps: int) -> EpisodeBatch:
    """One episode per slot of ``envs`` (reset with ``seed``), acting with ``act(obs [N, |S|]) -> [N, |A|]``.

    ``act`` is called for every slot at every step (finished slots play on, unrecorded), so a controller
    that counts steps sees all slots in step. A slot still running after ``max_steps`` is cut there.
    """
    obs, _ = envs.reset(seed=seed)
    num = envs.num_envs
    obs_size, action_size = int(np.prod(obs.shape[1:])), int(np.prod(envs.single_action_space.shape))
    out = EpisodeBatch(
        np.zeros((num, max_steps + 1, obs_size), np.float32),
        np.zeros((num, max_steps, action_size), np.float32),
        np.zeros((num, max_steps)),
        np.full(num, max_steps, np.int64),
    )
    out.obs[:, 0] = obs.reshape(num, -1)
    live = np.ones(num, dtype=bool)
    for t in range(max_steps):
        actions = act(obs)
        obs, reward, terminated, truncated, info = envs.step(actions)
        done = np.asarray(terminated) | np.asarray(truncated)
        out.actions[live, t] = np.asarray(actions, np.float32).reshape(num, -1)[live]
        out.rewards[live, t] = np.asarray(reward)[live]
        out.obs[live, t + 1] = _final_obs(obs, done, info).reshape(num, -1)[live]
        out.lengths[live & done] = t + 1
        live &= ~done
        if not live.any():
            break
    envs.close()
    return out


def play_in(
    make_envs: EnvFactory, num: int, seed: int, act: ActFn, max_steps: int, **options: Any
) -> EpisodeBatch:
    """``play_episodes`` in ``num`` fresh envs built by the runner's factory with env ``options``."""
    return play_episodes(make_envs(num, seed, **options), seed, act, max_steps)


def with_noise(act: ActFn, std: float, low: np.ndarray, high: np.ndarray, seed: int) -> ActFn:
    """``act`` with Gaussian noise of std ``std`` on its actions, clipped to [low, high]."""
    rng = np.random.default_rng(seed)
    return lambda obs: np.clip(act(obs) + rng.normal(0.0, std, (len(obs), *low.shape)), low, high).astype(
        np.float32
    )


class PolicyLibrary:
    """Deterministic acting with a list of trained policies (anything with ``act(obs, explore=False)``):
    slot i acts with policy ``which[i]``. ``probes`` are the indices fit to probe a new environment (the
    policies that learned their own; all by default)."""

    def __init__(self, policies: Sequence[Any], probes: Sequence[int] | None = None):
        self.policies = list(policies)
        self.probes = np.asarray(range(len(self.policies)) if probes is None else probes, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.policies)

    @torch.no_grad()
    def act(self, which: np.ndarray, obs: np.ndarray) -> np.ndarray:
        actions: np.ndarray | None = None
        for index in np.unique(which):
            rows = np.flatnonzero(which == index)
            chosen = np.asarray(self.policies[int(index)].act(obs[rows], explore=False))
            if actions is None:
                actions = np.zeros((len(obs), *chosen.shape[1:]), chosen.dtype)
            actions[rows] = chosen
        assert actions is not None
        return actions

    def fixed(self, index: int) -> ActFn:
        """Acting with policy ``index`` alone."""
        return lambda obs: self.act(np.full(len(obs), index), obs)
