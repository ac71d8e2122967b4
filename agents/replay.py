"""One circular numpy replay buffer for every value-based agent.

Layout. Each of the N parallel envs writes its own stream of rows (arrays shaped [N, T, ...] with
T = capacity // N), so an env's episodes stay contiguous however the envs interleave. Row t of a
stream holds the observation acted on, the action, the reward that followed and whether the step
terminated or truncated. When an episode ends, one extra FINAL row holds its last observation
(needed to bootstrap after a time limit), and the next row starts the new episode (FIRST).

Images are stored as single uint8 frames and re-stacked at sample time, with frames from before the
episode start zeroed, exactly like a zero-padded frame stack (Dopamine's layout: ~7 KB per Atari
transition instead of 28 KB).

n-step returns stop at the first terminated or truncated step of the window; ``discount`` is
gamma**L for a window of L steps and 0 after a true terminal, so time limits still bootstrap.

Prioritized sampling is an option of this same buffer (a sum tree over row slots).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anew.agents.replay_files import FIELDS, Progress, load_replay, new_lineage, save_replay
from anew.agents.sum_tree import SumTree, importance_weights
from anew.errors import AnewError

TERMINATED, TRUNCATED, FINAL, FIRST = 1, 2, 4, 8
__all__ = ["FIELDS", "ReplayBuffer", "ReplaySample"]


@dataclass
class ReplaySample:
    """A training batch; ``discount`` already folds in gamma**L and the terminal mask."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    next_obs: np.ndarray
    indices: np.ndarray
    weights: np.ndarray  # importance-sampling weights (ones when sampling uniformly)


class ReplayBuffer:
    """Circular buffer of N env streams with frame stacking, n-step returns and optional priorities.

    Args:
        capacity: total rows over all envs (one row per stored step, plus one per finished episode).
        num_envs: number of parallel env streams.
        obs_shape: shape of one observation as the env returns it, e.g. (4, 84, 84).
        frame_stack: if > 1, ``obs_shape[0]`` is the stack axis and only the newest frame is stored.
        n_step, gamma: multi-step return settings.
        prioritized: sample in proportion to priority ** alpha (see ``update_priorities``).
        storage_dir: if given, observation rows live in a memory-mapped file there, not in RAM.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.float32,
        action_shape: tuple[int, ...] = (),
        action_dtype: np.dtype | type = np.int32,
        frame_stack: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        prioritized: bool = False,
        priority_exponent: float = 0.5,
        seed: int = 0,
        storage_dir: str | Path | None = None,
    ):
        if capacity < num_envs * (frame_stack + n_step + 2):
            raise AnewError(
                f"replay capacity {capacity} is too small for {num_envs} envs; raise --buffer-size"
            )
        self.num_envs = num_envs
        self.rows_per_env = capacity // num_envs
        self.obs_shape = tuple(obs_shape)
        self.frame_stack = frame_stack
        self.frame_shape = self.obs_shape[1:] if frame_stack > 1 else self.obs_shape
        self.n_step = n_step
        self.gamma = gamma
        self.prioritized = prioritized
        self.priority_exponent = priority_exponent
        self.storage_dir = Path(storage_dir) if storage_dir else None
        shape = (num_envs, self.rows_per_env)
        self.obs = self._allocate("obs", shape + tuple(self.frame_shape), np.dtype(obs_dtype))
        self.action = np.zeros(shape + tuple(action_shape), dtype=action_dtype)
        self.reward = np.zeros(shape, dtype=np.float32)
        self.flags = np.zeros(shape, dtype=np.uint8)
        self.count = np.zeros(num_envs, dtype=np.int64)  # rows ever written per stream
        self.episode_start = np.ones(num_envs, dtype=bool)  # next row opens an episode
        self.rng = np.random.default_rng(seed)
        self.tree = SumTree(num_envs * self.rows_per_env) if prioritized else None
        self.lineage = new_lineage()  # saves of one history share unchanged blocks (see replay_files)

    def _allocate(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if self.storage_dir is None:
            return np.zeros(shape, dtype=dtype)
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(
            self.storage_dir / f"{name}.npy", mode="w+", dtype=dtype, shape=shape
        )

    # ------------------------------------------------------------------ writing
    def __len__(self) -> int:
        return int(np.minimum(self.count, self.rows_per_env).sum())

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
    ) -> None:
        """Store one step of every env; ``next_obs`` is only kept where the episode ended."""
        envs = np.arange(self.num_envs)
        done = np.asarray(terminated, bool) | np.asarray(truncated, bool)
        flags = (
            np.asarray(terminated, bool) * TERMINATED
            + np.asarray(truncated, bool) * TRUNCATED
            + self.episode_start * FIRST
        ).astype(np.uint8)
        self._write(envs, self._frame(obs), action, reward, flags)
        if done.any():
            ended = envs[done]
            final_action = np.zeros_like(self.action[ended, 0])
            self._write(
                ended, self._frame(next_obs[done]), final_action, 0.0, np.full(len(ended), FINAL, np.uint8)
            )
        self.episode_start = done

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, -1] if self.frame_stack > 1 else obs

    def _write(self, envs: np.ndarray, obs: np.ndarray, action, reward, flags: np.ndarray) -> None:
        rows = self.count[envs] % self.rows_per_env
        self.obs[envs, rows] = obs
        self.action[envs, rows] = action
        self.reward[envs, rows] = reward
        self.flags[envs, rows] = flags
        if self.tree is not None:
            # FINAL rows are never the start of a transition: zero priority keeps them out.
            priority = np.where(flags & FINAL, 0.0, self.tree.max_priority)
            self.tree.update(envs * self.rows_per_env + rows, priority)
        self.count[envs] += 1

    # ------------------------------------------------------------------ sampling
    def _valid_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per stream, the [low, high) absolute row numbers that can start a full transition."""
        low = np.maximum(self.count - self.rows_per_env, 0) + self.frame_stack - 1
        high = self.count - self.n_step  # the n-step window and its next row must be written
        return low, np.maximum(high, low)

    def can_sample(self, batch_size: int) -> bool:
        low, high = self._valid_range()
        return int((high - low).sum()) >= batch_size

    def sample(self, batch_size: int, beta: float = 0.0) -> ReplaySample:
        """Draw a batch uniformly (or by priority), skipping FINAL rows."""
        envs, rows = self._draw_indices(batch_size)
        return self.transitions(envs, rows, beta)

    def _draw_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        low, high = self._valid_range()
        sizes = high - low
        if sizes.sum() <= 0:
            raise RuntimeError("replay buffer has no complete transition yet")
        envs = np.empty(batch_size, dtype=np.int64)
        absolute = np.empty(batch_size, dtype=np.int64)
        todo = np.arange(batch_size)
        for _ in range(1000):  # rejection of FINAL rows (rare) and, with priorities, of unfinished rows
            if self.tree is None:
                flat = self.rng.integers(0, sizes.sum(), size=len(todo))
                e = np.searchsorted(np.cumsum(sizes), flat, side="right")
                a = low[e] + flat - np.concatenate([[0], np.cumsum(sizes)])[e]
            else:
                slots = self.tree.sample(len(todo), self.rng)
                e, row = np.divmod(slots, self.rows_per_env)
                a = self._absolute(e, row)
            envs[todo], absolute[todo] = e, a
            bad = (self.flags[e, a % self.rows_per_env] & FINAL).astype(bool) | (a < low[e]) | (a >= high[e])
            todo = todo[bad]
            if len(todo) == 0:
                return envs, absolute % self.rows_per_env
        raise RuntimeError("could not draw valid replay indices after 1000 attempts")

    def _absolute(self, envs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Absolute row numbers of physical rows (the most recent write to each slot)."""
        last = self.count[envs] - 1
        return last - ((last - rows) % self.rows_per_env)

    def transitions(self, envs: np.ndarray, rows: np.ndarray, beta: float = 0.0) -> ReplaySample:
        """Assemble n-step transitions starting at physical rows ``rows`` of streams ``envs``."""
        steps = np.arange(self.n_step)
        window = (rows[:, None] + steps) % self.rows_per_env
        flags = self.flags[envs[:, None], window]
        ended = (flags & (TERMINATED | TRUNCATED)).astype(bool)
        # L = steps up to and including the first terminated/truncated step, else n.
        length = np.where(ended.any(1), ended.argmax(1) + 1, self.n_step)
        in_window = steps[None, :] < length[:, None]
        discounts = self.gamma ** steps.astype(np.float64)
        reward = (self.reward[envs[:, None], window] * discounts * in_window).sum(1).astype(np.float32)
        last_flags = flags[np.arange(len(rows)), length - 1]
        terminal = (last_flags & TERMINATED).astype(bool)
        discount = np.where(terminal, 0.0, self.gamma**length).astype(np.float32)
        next_rows = (rows + length) % self.rows_per_env
        weights = np.ones(len(rows), dtype=np.float32)
        if self.tree is not None and beta > 0:
            probs = self.tree.probabilities(envs * self.rows_per_env + rows)
            weights = importance_weights(probs, beta).astype(np.float32)
        return ReplaySample(
            obs=self.stacked(envs, rows),
            action=self.action[envs, rows],
            reward=reward,
            discount=discount,
            next_obs=self.stacked(envs, next_rows),
            indices=envs * self.rows_per_env + rows,
            weights=weights,
        )

    def stacked(self, envs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Observations at the given rows, re-stacked with zeros before each episode's first frame."""
        if self.frame_stack == 1:
            return self.obs[envs, rows]
        k = self.frame_stack
        offsets = np.arange(-(k - 1), 1)
        stack_rows = (rows[:, None] + offsets) % self.rows_per_env
        frames = self.obs[envs[:, None], stack_rows]  # (B, k, *frame)
        first = (self.flags[envs[:, None], stack_rows] & FIRST).astype(bool)
        # Frame j is kept only if no later frame in the stack opens an episode.
        later_first = np.flip(np.cumsum(np.flip(first[:, 1:], 1), 1), 1) > 0
        keep = np.concatenate([~later_first, np.ones((len(rows), 1), bool)], axis=1)
        frames *= keep.reshape(keep.shape + (1,) * len(self.frame_shape)).astype(frames.dtype)
        return frames

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set new priorities (e.g. from the loss) for sampled ``indices``."""
        if self.tree is None:
            raise RuntimeError("update_priorities needs a buffer built with prioritized=True")
        self.tree.update(
            np.asarray(indices), np.asarray(priorities, dtype=np.float64) ** self.priority_exponent
        )

    # ------------------------------------------------------------------ persistence
    def save(
        self, directory: str | Path, reuse_from: str | Path | None = None, progress: Progress | None = None
    ) -> None:
        """Write the filled part (compressed where it pays) and ``manifest.json``, no pickle; blocks
        unchanged since this buffer's earlier save in ``reuse_from`` are hard-linked from there."""
        save_replay(self, Path(directory), Path(reuse_from) if reuse_from is not None else None, progress)

    def load(self, directory: str | Path) -> None:
        """Restore a buffer written by ``save`` into this (identically configured) buffer."""
        load_replay(self, Path(directory))
