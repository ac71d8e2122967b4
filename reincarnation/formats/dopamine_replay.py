"""Dopamine's legacy replay checkpoints, sampled exactly like Dopamine, or turned into an anew replay.

Sampling reproduces ``OutOfGraphReplayBuffer.sample_transition_batch`` bit for bit: a state is the stack of
rows ``i-k+1 .. i`` (zero rows are episode padding; stack axis last), the n-step return is truncated at the
first terminal in ``i .. i+n-1`` and summed in float32 in Dopamine's order, ``next_state`` is the stack at
``i+L``; ``is_valid_transition`` is reproduced vectorised over all slots. The files themselves are read and
written by :mod:`anew.reincarnation.formats.dopamine_replay_files`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from anew.agents.replay import ReplayBuffer
from anew.errors import AnewError
from anew.reincarnation.formats.dopamine_replay_files import (
    FILE_RE,
    REQUIRED_FIELDS,
    STORE_PREFIX,
    complete_suffixes,
    invalid_range,
    read_episode_ends,
    read_npy,
)


def discount_vector(gamma: float, update_horizon: int) -> np.ndarray:
    """``[γ^0 .. γ^(n-1)]`` as float32, computed the way Dopamine does (``math.pow`` then cast)."""
    return np.array([math.pow(gamma, j) for j in range(update_horizon)], dtype=np.float32)


def nstep_returns(rewards: np.ndarray, lengths: np.ndarray, discounts: np.ndarray) -> np.ndarray:
    """Discounted sums of ``rewards[b, :lengths[b]]`` with Dopamine's float rounding.

    Dopamine calls ``np.sum(discounts[:L] * rewards[i:i+L])`` on a 1-D array; numpy sums fewer than 8 items
    sequentially from zero (pairwise only beyond), which the loop below reproduces; longer windows (n >= 9)
    fall back to numpy's own 1-D sum per row.
    """
    products = discounts[None, : rewards.shape[1]] * rewards
    out = np.zeros(len(rewards), dtype=products.dtype)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        if length < 8:
            total = np.zeros(len(rows), dtype=products.dtype)
            for j in range(int(length)):
                total += products[rows, j]
            out[rows] = total
        else:
            out[rows] = [np.sum(products[r, :length]) for r in rows]
    return out


class DopamineReplay:
    """A Dopamine legacy replay checkpoint, sampled exactly as ``OutOfGraphReplayBuffer`` samples it.

    Args:
        directory: folder with the ``*_ckpt.<N>.gz`` files (a Dopamine ``checkpoints/`` folder or a DQN
            Replay Dataset ``replay_logs/`` folder).
        suffix: which N to read; default the largest complete one.
        stack_size: frames per state (not stored in the files; Dopamine's Atari default is 4).
        update_horizon: n of the n-step return; default inferred from the saved invalid range (k + n slots).
        gamma: discount (not stored in the files; Dopamine's default 0.99).
        batch_size: default batch size of ``sample_transition_batch``.
        seed: seed of the index sampler used when no indices are given.
        mmap_threshold_bytes, cache_dir: see :func:`read_npy`.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        suffix: int | None = None,
        *,
        stack_size: int = 4,
        update_horizon: int | None = None,
        gamma: float = 0.99,
        batch_size: int = 32,
        seed: int | None = None,
        mmap_threshold_bytes: int = 256 << 20,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise AnewError(
                f"{self.directory} is not a folder: pass the folder holding the *_ckpt.N.gz files"
            )
        suffixes = complete_suffixes(self.directory)
        if suffix is None:
            if not suffixes:
                raise AnewError(
                    f"no complete Dopamine replay checkpoint in {self.directory}: expected $store$_observation, "
                    "$store$_action, $store$_reward, $store$_terminal, add_count and invalid_range *_ckpt.N.gz files"
                )
            suffix = suffixes[-1]
        elif int(suffix) not in suffixes:
            raise AnewError(
                f"replay checkpoint {suffix} in {self.directory} is missing files; complete ones: "
                f"{suffixes or 'none'}"
            )
        self.suffix = int(suffix)
        load = {"mmap_threshold_bytes": mmap_threshold_bytes, "cache_dir": cache_dir}

        self.store: dict[str, np.ndarray] = {}
        for entry in sorted(os.listdir(self.directory)):
            match = FILE_RE.match(entry)
            if match and int(match["suffix"]) == self.suffix and match["name"].startswith(STORE_PREFIX):
                self.store[match["name"][len(STORE_PREFIX) :]] = read_npy(self.directory / entry, **load)
        add_count = read_npy(self._path("add_count"))
        saved_invalid = read_npy(self._path("invalid_range"))
        if add_count.size != 1 or add_count.dtype.kind not in "iu" or saved_invalid.ndim != 1:
            raise AnewError(
                f"add_count/invalid_range of replay checkpoint {self.suffix} in {self.directory} "
                "are malformed; this is not a Dopamine replay checkpoint"
            )
        self.add_count = int(add_count.reshape(()))
        self.saved_invalid_range = saved_invalid.astype(np.int64)
        end_path = self._path("episode_end_indices")
        self.episode_end_indices = read_episode_ends(end_path) if end_path.exists() else set()

        self.capacity = len(self.store["observation"])
        for name, array in self.store.items():
            if array.ndim == 0 or len(array) != self.capacity:
                raise AnewError(
                    f"{STORE_PREFIX}{name} has {array.shape[:1]} rows but the observations have "
                    f"{self.capacity}; the replay checkpoint {self.suffix} is inconsistent"
                )
        self.stack_size = int(stack_size)
        if update_horizon is None:
            update_horizon = len(self.saved_invalid_range) - self.stack_size
            if update_horizon < 1:
                raise AnewError(
                    f"cannot infer update_horizon from an invalid range of {len(saved_invalid)} slots "
                    f"with stack_size={stack_size}; pass update_horizon= explicitly"
                )
        self.update_horizon = int(update_horizon)
        if self.capacity < self.stack_size + self.update_horizon:
            raise AnewError(f"capacity {self.capacity} is smaller than stack_size + update_horizon")
        self.gamma = float(gamma)
        self.batch_size = int(batch_size)
        self._discounts = discount_vector(self.gamma, self.update_horizon)
        self.rng = np.random.default_rng(seed)
        self._valid: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"DopamineReplay({str(self.directory)!r}, suffix={self.suffix}, capacity={self.capacity}, "
            f"add_count={self.add_count}, stack_size={self.stack_size}, update_horizon={self.update_horizon}, "
            f"gamma={self.gamma})"
        )

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}_ckpt.{self.suffix}.gz"

    # --- Dopamine's bookkeeping -------------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        return self.add_count % self.capacity

    def is_full(self) -> bool:
        return self.add_count >= self.capacity

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return tuple(self.store["observation"].shape[1:])

    def valid_mask(self) -> np.ndarray:
        """``is_valid_transition(i)`` for every slot i, as a boolean array of length capacity."""
        if self._valid is not None:
            return self._valid
        capacity, k, n = self.capacity, self.stack_size, self.update_horizon
        slots = np.arange(capacity)
        valid = np.ones(capacity, dtype=bool)
        if not self.is_full():
            valid &= (slots < self.cursor - n) & (slots >= k - 1)
        # The saved range is what Dopamine checks; the recomputed one only differs if update_horizon was
        # overridden, and then keeps n-step windows from reading across the cursor.
        valid[self.saved_invalid_range % capacity] = False
        valid[invalid_range(self.cursor, capacity, k, n)] = False
        terminal = np.asarray(self.store["terminal"]) != 0
        for back in range(1, k):  # no terminal among the older frames of the stack
            valid &= ~np.roll(terminal, back)
        timeout = np.zeros(capacity, dtype=bool)
        ends = np.array(sorted(i for i in self.episode_end_indices if 0 <= i < capacity), dtype=np.int64)
        timeout[ends] = True
        timeout &= ~terminal
        for ahead in range(n):  # the n-step window may not cross an episode end without a terminal
            valid &= ~np.roll(timeout, -ahead)
        self._valid = valid
        return valid

    def valid_indices(self) -> np.ndarray:
        """Every slot Dopamine's ``is_valid_transition`` accepts, ascending (int64)."""
        return np.flatnonzero(self.valid_mask()).astype(np.int64)

    def __len__(self) -> int:
        return int(self.valid_mask().sum())

    def sample_index_batch(self, batch_size: int) -> np.ndarray:
        """Uniform valid indices with replacement: the distribution of Dopamine's rejection sampler."""
        valid = self.valid_indices()
        if len(valid) == 0:
            raise AnewError(
                f"replay checkpoint {self.suffix} in {self.directory} has no valid transition to sample"
            )
        return self.rng.choice(valid, size=batch_size).astype(np.int32)

    # --- sampling ---------------------------------------------------------------------------------------
    def stacks(self, indices: np.ndarray, channels_first: bool = False) -> np.ndarray:
        """Frame stacks ending at each index: (B, *obs_shape, k), or (B, k, *obs_shape) if channels_first."""
        rows = (
            np.asarray(indices, dtype=np.int64)[:, None] + np.arange(1 - self.stack_size, 1)
        ) % self.capacity
        observations = self.store["observation"]
        if channels_first:
            return np.asarray(observations[rows.reshape(-1)]).reshape(rows.shape + self.observation_shape)
        # One gather per stack position into the strided slot is ~6x faster than gather-then-transpose.
        stacked = np.empty((len(rows), *self.observation_shape, self.stack_size), dtype=observations.dtype)
        for position in range(self.stack_size):
            stacked[..., position] = observations[rows[:, position]]
        return stacked

    def sample_transition_batch(
        self,
        batch_size: int | None = None,
        indices: Iterable[int] | None = None,
        channels_first: bool = False,
    ) -> dict[str, np.ndarray]:
        """Dopamine's transition batch by name: state, action, reward, next_state, next_action, next_reward,
        terminal, indices (+ any extra stored fields). States are uint8 with the stack axis last."""
        if indices is None:
            batch_size = self.batch_size if batch_size is None else int(batch_size)
            indices = self.sample_index_batch(batch_size)
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        batch_size = len(idx) if batch_size is None else int(batch_size)
        if idx.shape != (batch_size,):
            raise AnewError(
                f"got {idx.size} indices for a batch of {batch_size}; pass as many indices as batch_size"
            )
        upper = self.capacity if self.is_full() else self.cursor - self.update_horizon
        if len(idx) and (idx.min() < 0 or idx.max() >= upper):
            raise AnewError(
                f"indices must lie in [0, {upper}) for this buffer; take them from valid_indices()"
            )
        n, capacity = self.update_horizon, self.capacity
        window = (idx[:, None] + np.arange(n)) % capacity
        terminal_window = np.asarray(self.store["terminal"])[window] != 0
        is_terminal = terminal_window.any(axis=1)
        lengths = np.where(is_terminal, terminal_window.argmax(axis=1) + 1, n)
        next_idx = (idx + lengths) % capacity
        reward = np.asarray(self.store["reward"])
        batch = {
            "state": self.stacks(idx, channels_first),
            "action": np.asarray(self.store["action"][idx]),
            "reward": nstep_returns(reward[window], lengths, self._discounts).astype(reward.dtype),
            "next_state": self.stacks(next_idx, channels_first),
            "next_action": np.asarray(self.store["action"][next_idx]),
            "next_reward": reward[next_idx],
            "terminal": is_terminal.astype(self.store["terminal"].dtype),
            "indices": idx.astype(np.int32),
        }
        for name, array in self.store.items():
            if name not in REQUIRED_FIELDS:
                batch[name] = np.asarray(array[idx])
        return batch

    # --- into anew's buffer -----------------------------------------------------------------------------
    def to_replay(
        self,
        capacity: int | None = None,
        *,
        n_step: int | None = None,
        gamma: float | None = None,
        seed: int = 0,
        storage_dir: str | os.PathLike | None = None,
    ) -> ReplayBuffer:
        """The stored episodes as an anew ``ReplayBuffer`` (one env stream; frames re-stacked when sampled).

        Rows are replayed oldest first; the oldest slot of a full buffer (the cursor row, stale in DQN Replay
        Dataset logs) is left out. Dopamine's zero padding rows are dropped (anew zero-pads stacks at episode
        starts itself). A terminal row ends its episode. An episode end without a terminal (a timeout) becomes a
        truncation of the step before it, with the timeout row's frame as final observation; the timeout row's own
        transition, which Dopamine never samples, is dropped. Every transition Dopamine samples is then one anew
        samples too (same stacks, action, n-step reward, next stack, terminal), except those starting on the
        padding rows after a timeout (Dopamine's validity check lets them through; their stacks mix two
        episodes). anew additionally bootstraps n-step windows that cross a timeout, where Dopamine rejects the
        index. Rows are added one by one: about 0.2 ms each, so a 1M-row buffer takes a few minutes.
        """
        n_step = self.update_horizon if n_step is None else int(n_step)
        gamma = self.gamma if gamma is None else float(gamma)
        k, capacity_rows = self.stack_size, self.capacity
        order = (
            np.arange(self.cursor + 1, self.cursor + capacity_rows) % capacity_rows
            if self.is_full()
            else np.arange(self.cursor)
        )
        observation, terminal = self.store["observation"], np.asarray(self.store["terminal"]) != 0
        action, reward = np.asarray(self.store["action"]), np.asarray(self.store["reward"])
        ends = terminal.copy()
        ends[[i for i in self.episode_end_indices if 0 <= i < capacity_rows]] = True

        def is_padding(row: int) -> bool:
            return not (action[row] or reward[row] or terminal[row] or np.asarray(observation[row]).any())

        # Group the rows (oldest first) into episodes of real rows, skipping the padding after each end.
        episodes: list[list[int]] = []
        current: list[int] = []
        skip = k - 1  # leading padding of the first (or a cut-off) episode
        for row in order.tolist():
            if skip > 0 and not current and is_padding(row):
                skip -= 1
                continue
            skip = 0
            current.append(row)
            if ends[row]:
                episodes.append(current)
                current, skip = [], k - 1
        if current:
            episodes.append(current)

        rows_needed = sum(len(e) for e in episodes) + len(episodes)
        frame_shape = self.observation_shape
        buffer = ReplayBuffer(
            capacity=capacity or rows_needed + k + n_step + 2,
            num_envs=1,
            obs_shape=(k, *frame_shape),
            obs_dtype=observation.dtype,
            action_dtype=action.dtype,
            frame_stack=k,
            n_step=n_step,
            gamma=gamma,
            seed=seed,
            storage_dir=storage_dir,
        )
        obs = np.zeros((1, k, *frame_shape), dtype=observation.dtype)
        next_obs = np.zeros_like(obs)
        no, yes = np.zeros(1, dtype=bool), np.ones(1, dtype=bool)
        for episode in episodes:
            last = episode[-1]
            timeout = ends[last] and not terminal[last]
            steps = episode[:-1] if timeout else episode
            for position, row in enumerate(steps):
                obs[0, -1] = observation[row]
                final = position == len(steps) - 1
                is_terminal = final and bool(terminal[row])
                is_truncated = final and timeout
                next_obs[0, -1] = observation[last] if is_truncated else 0
                buffer.add(
                    obs,
                    action[row : row + 1],
                    reward[row : row + 1],
                    yes if is_terminal else no,
                    yes if is_truncated else no,
                    next_obs,
                )
        return buffer
