"""Dopamine's legacy replay files (``$store$_<field>_ckpt.<N>.gz``): read, sample exactly like Dopamine, write.

This is the format of ``OutOfGraphReplayBuffer.save`` (Dopamine 2019 .. 4.1.x), of the public DQN Replay
Dataset and of the reincarnating_rl teacher buffers. Each file is a gzip stream of a ``.npy`` array, except
``episode_end_indices`` (a pickled ``set``; optional, absent from old files and the DQN Replay Dataset).

Sampling reproduces ``OutOfGraphReplayBuffer.sample_transition_batch`` bit for bit: a state is the stack of
rows ``i-k+1 .. i`` (zero rows are episode padding; stack axis last), the n-step return is truncated at the
first terminal in ``i .. i+n-1`` and summed in float32 in Dopamine's order, ``next_state`` is the stack at
``i+L``; ``is_valid_transition`` is reproduced vectorised over all slots. Big arrays (a DQN Replay Dataset
observation file is 7 GB uncompressed) are decompressed once to a temporary ``.npy`` and memory-mapped.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from anew.agents.replay import ReplayBuffer
from anew.errors import AnewError
from anew.reincarnation.safe_pickle import safe_loads

STORE_PREFIX = "$store$_"
REQUIRED_FIELDS = ("observation", "action", "reward", "terminal")
_FILE_RE = re.compile(r"^(?P<name>.+)_ckpt\.(?P<suffix>\d+)\.gz$")
_GZIP_MAGIC, _NPY_MAGIC = b"\x1f\x8b", b"\x93NUMPY"
_CHUNK = 16 << 20


def complete_suffixes(directory: str | os.PathLike) -> list[int]:
    """Suffixes N for which the 4 ``$store$`` files, ``add_count`` and ``invalid_range`` all exist, sorted."""
    names: dict[int, set[str]] = {}
    for entry in os.listdir(directory):
        match = _FILE_RE.match(entry)
        if match:
            names.setdefault(int(match["suffix"]), set()).add(match["name"])
    needed = {STORE_PREFIX + f for f in REQUIRED_FIELDS} | {"add_count", "invalid_range"}
    return sorted(n for n, found in names.items() if needed <= found)


def _corrupt(path: Path, error: BaseException) -> AnewError:
    return AnewError(
        f"{path} is not a readable Dopamine replay file (truncated, corrupt or foreign: {type(error).__name__}: "
        f"{error}); copy it again from where Dopamine wrote it"
    )


def _npy_header(stream) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and payload size from a ``.npy`` stream's header (leaves the stream after it)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed")
    return tuple(shape), bool(fortran), dtype, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def read_npy(path: str | os.PathLike, *, mmap_threshold_bytes: int = 256 << 20,
             cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Load a (gzipped) ``.npy`` file without pickle; arrays over the threshold come back memory-mapped.

    A gzipped big array is streamed into ``cache_dir`` (default: a fresh temporary folder) and mapped from
    there. Without ``cache_dir`` the temporary file is unlinked at once on POSIX: the mapping stays valid and
    the disk space is returned when the array is freed. With ``cache_dir`` it is kept and reused next time.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            magic = raw.read(6)
        if magic.startswith(_NPY_MAGIC):
            with open(path, "rb") as raw:
                nbytes = _npy_header(raw)[-1]
            return np.load(path, mmap_mode="r" if nbytes > mmap_threshold_bytes else None, allow_pickle=False)
        if not magic.startswith(_GZIP_MAGIC):
            raise ValueError("neither gzip nor .npy")
        with gzip.open(path, "rb") as stream:
            shape, fortran, dtype, nbytes = _npy_header(stream)
            if nbytes <= mmap_threshold_bytes:
                return _read_payload(stream, shape, dtype, fortran, nbytes)
        return _decompress_to_mmap(path, nbytes, cache_dir)
    except FileNotFoundError:
        raise AnewError(f"{path} does not exist: the replay folder is missing this file") from None
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise _corrupt(path, error) from None


def _read_payload(stream, shape: tuple[int, ...], dtype: np.dtype, fortran: bool, nbytes: int) -> np.ndarray:
    """Decompress straight into the array's memory, 1 MiB at a time (one huge readinto is ~2x slower)."""
    array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = memoryview(array.reshape(-1, order="A").view(np.uint8))
    filled = 0
    while filled < nbytes:
        count = stream.readinto(view[filled:filled + (1 << 20)])
        if not count:
            raise ValueError(f"payload has {filled} bytes, its header promises {nbytes}")
        filled += count
    if stream.read(1):
        raise ValueError("trailing data after the array")
    return array


def _decompress_to_mmap(path: Path, nbytes: int, cache_dir: str | os.PathLike | None) -> np.ndarray:
    stat = path.stat()
    keep = cache_dir is not None
    folder = Path(cache_dir) if keep else Path(tempfile.mkdtemp(prefix="anew_dopamine_"))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.name}.{stat.st_size}.{stat.st_mtime_ns}.npy"
    if not target.exists():
        partial = target.with_suffix(".partial")
        with gzip.open(path, "rb") as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink, _CHUNK)
        os.replace(partial, target)
    array = np.load(target, mmap_mode="r", allow_pickle=False)
    if array.nbytes != nbytes or target.stat().st_size < nbytes:
        raise ValueError("decompressed size does not match the header")
    if not keep and os.name == "posix":
        shutil.rmtree(folder, ignore_errors=True)  # the mapping keeps the data alive until freed
    return array


def _read_episode_ends(path: Path) -> set[int]:
    """``episode_end_indices``: a pickled set (Dopamine <= 4.1.2) or a msgpack'd one (later Dopamine)."""
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise _corrupt(path, error) from None
    if data[:1] == b"\x80":
        value = safe_loads(data, str(path))
    else:
        try:
            import msgpack

            value = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except ImportError:
            raise AnewError(f"{path} is msgpack-encoded: `pip install msgpack` to read it") from None
        except (msgpack.UnpackException, ValueError, TypeError) as error:
            raise _corrupt(path, error) from None
        if isinstance(value, dict) and value.get("__dopamine_type__") == "set":
            value = value.get("items", [])
    if not isinstance(value, (set, frozenset, list, tuple)):
        raise AnewError(f"{path} does not hold a set of indices; it is not a Dopamine episode_end_indices file")
    return {int(i) for i in value}


def invalid_range(cursor: int, capacity: int, stack_size: int, update_horizon: int) -> np.ndarray:
    """Dopamine's slots next to the cursor that cannot be sampled: ``cursor-n .. cursor+k-1`` (mod capacity)."""
    return np.array([(cursor - update_horizon + j) % capacity for j in range(stack_size + update_horizon)])


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

    def __init__(self, directory: str | os.PathLike, suffix: int | None = None, *, stack_size: int = 4,
                 update_horizon: int | None = None, gamma: float = 0.99, batch_size: int = 32,
                 seed: int | None = None, mmap_threshold_bytes: int = 256 << 20,
                 cache_dir: str | os.PathLike | None = None):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise AnewError(f"{self.directory} is not a folder: pass the folder holding the *_ckpt.N.gz files")
        suffixes = complete_suffixes(self.directory)
        if suffix is None:
            if not suffixes:
                raise AnewError(
                    f"no complete Dopamine replay checkpoint in {self.directory}: expected $store$_observation, "
                    "$store$_action, $store$_reward, $store$_terminal, add_count and invalid_range *_ckpt.N.gz files"
                )
            suffix = suffixes[-1]
        elif int(suffix) not in suffixes:
            raise AnewError(f"replay checkpoint {suffix} in {self.directory} is missing files; complete ones: "
                            f"{suffixes or 'none'}")
        self.suffix = int(suffix)
        load = {"mmap_threshold_bytes": mmap_threshold_bytes, "cache_dir": cache_dir}

        self.store: dict[str, np.ndarray] = {}
        for entry in sorted(os.listdir(self.directory)):
            match = _FILE_RE.match(entry)
            if match and int(match["suffix"]) == self.suffix and match["name"].startswith(STORE_PREFIX):
                self.store[match["name"][len(STORE_PREFIX):]] = read_npy(self.directory / entry, **load)
        add_count = read_npy(self._path("add_count"))
        saved_invalid = read_npy(self._path("invalid_range"))
        if add_count.size != 1 or add_count.dtype.kind not in "iu" or saved_invalid.ndim != 1:
            raise AnewError(f"add_count/invalid_range of replay checkpoint {self.suffix} in {self.directory} "
                            "are malformed; this is not a Dopamine replay checkpoint")
        self.add_count = int(add_count.reshape(()))
        self.saved_invalid_range = saved_invalid.astype(np.int64)
        end_path = self._path("episode_end_indices")
        self.episode_end_indices = _read_episode_ends(end_path) if end_path.exists() else set()

        self.capacity = len(self.store["observation"])
        for name, array in self.store.items():
            if array.ndim == 0 or len(array) != self.capacity:
                raise AnewError(f"{STORE_PREFIX}{name} has {array.shape[:1]} rows but the observations have "
                                f"{self.capacity}; the replay checkpoint {self.suffix} is inconsistent")
        self.stack_size = int(stack_size)
        if update_horizon is None:
            update_horizon = len(self.saved_invalid_range) - self.stack_size
            if update_horizon < 1:
                raise AnewError(f"cannot infer update_horizon from an invalid range of {len(saved_invalid)} slots "
                                f"with stack_size={stack_size}; pass update_horizon= explicitly")
        self.update_horizon = int(update_horizon)
        if self.capacity < self.stack_size + self.update_horizon:
            raise AnewError(f"capacity {self.capacity} is smaller than stack_size + update_horizon")
        self.gamma = float(gamma)
        self.batch_size = int(batch_size)
        self._discounts = discount_vector(self.gamma, self.update_horizon)
        self.rng = np.random.default_rng(seed)
        self._valid: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"DopamineReplay({str(self.directory)!r}, suffix={self.suffix}, capacity={self.capacity}, "
                f"add_count={self.add_count}, stack_size={self.stack_size}, update_horizon={self.update_horizon}, "
                f"gamma={self.gamma})")

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
            raise AnewError(f"replay checkpoint {self.suffix} in {self.directory} has no valid transition to sample")
        return self.rng.choice(valid, size=batch_size).astype(np.int32)

    # --- sampling ---------------------------------------------------------------------------------------
    def stacks(self, indices: np.ndarray, channels_first: bool = False) -> np.ndarray:
        """Frame stacks ending at each index: (B, *obs_shape, k), or (B, k, *obs_shape) if channels_first."""
        rows = (np.asarray(indices, dtype=np.int64)[:, None] + np.arange(1 - self.stack_size, 1)) % self.capacity
        observations = self.store["observation"]
        if channels_first:
            return np.asarray(observations[rows.reshape(-1)]).reshape(rows.shape + self.observation_shape)
        # One gather per stack position into the strided slot is ~6x faster than gather-then-transpose.
        stacked = np.empty((len(rows), *self.observation_shape, self.stack_size), dtype=observations.dtype)
        for position in range(self.stack_size):
            stacked[..., position] = observations[rows[:, position]]
        return stacked

    def sample_transition_batch(self, batch_size: int | None = None, indices: Iterable[int] | None = None,
                                channels_first: bool = False) -> dict[str, np.ndarray]:
        """Dopamine's transition batch by name: state, action, reward, next_state, next_action, next_reward,
        terminal, indices (+ any extra stored fields). States are uint8 with the stack axis last."""
        if indices is None:
            batch_size = self.batch_size if batch_size is None else int(batch_size)
            indices = self.sample_index_batch(batch_size)
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        batch_size = len(idx) if batch_size is None else int(batch_size)
        if idx.shape != (batch_size,):
            raise AnewError(f"got {idx.size} indices for a batch of {batch_size}; pass as many indices as batch_size")
        upper = self.capacity if self.is_full() else self.cursor - self.update_horizon
        if len(idx) and (idx.min() < 0 or idx.max() >= upper):
            raise AnewError(f"indices must lie in [0, {upper}) for this buffer; take them from valid_indices()")
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
    def to_replay(self, capacity: int | None = None, *, n_step: int | None = None, gamma: float | None = None,
                  seed: int = 0, storage_dir: str | os.PathLike | None = None) -> ReplayBuffer:
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
        order = (np.arange(self.cursor + 1, self.cursor + capacity_rows) % capacity_rows if self.is_full()
                 else np.arange(self.cursor))
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
            capacity=capacity or rows_needed + k + n_step + 2, num_envs=1, obs_shape=(k, *frame_shape),
            obs_dtype=observation.dtype, action_dtype=action.dtype, frame_stack=k, n_step=n_step, gamma=gamma,
            seed=seed, storage_dir=storage_dir,
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
                buffer.add(obs, action[row:row + 1], reward[row:row + 1], yes if is_terminal else no,
                           yes if is_truncated else no, next_obs)
        return buffer


def write_dopamine_replay(directory: str | os.PathLike, suffix: int, store: Mapping[str, np.ndarray], *,
                          add_count: int, invalid_range: np.ndarray, episode_end_indices: Iterable[int] = (),
                          compresslevel: int = 6) -> list[Path]:
    """Write a replay checkpoint in Dopamine's legacy format; ``OutOfGraphReplayBuffer.load`` reads it.

    ``store`` maps field names (observation, action, reward, terminal, extras) to arrays with one row per
    slot. ``episode_end_indices`` is pickled as a set of Python ints (no numpy globals, so Dopamine under
    numpy 1.x or 2.x can read it). Each file is written to a temporary name and renamed when complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    missing = [f for f in REQUIRED_FIELDS if f not in store]
    if missing:
        raise AnewError(f"cannot write a Dopamine replay without the fields {missing}")
    contents: dict[str, object] = {STORE_PREFIX + name: array for name, array in store.items()}
    contents["add_count"] = np.array(int(add_count), dtype=np.int64)
    contents["invalid_range"] = np.asarray(invalid_range)
    contents["episode_end_indices"] = {int(i) for i in episode_end_indices}
    written = []
    for name, value in contents.items():
        target = directory / f"{name}_ckpt.{int(suffix)}.gz"
        partial = target.with_name(target.name + ".partial")
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel) as out:
            if isinstance(value, set):
                pickle.dump(value, out, protocol=4)
            else:
                np.save(out, value, allow_pickle=False)
        os.replace(partial, target)
        written.append(target)
    return written


class DopamineReplayWriter:
    """Fills slots the way ``OutOfGraphReplayBuffer.add`` does (4.x rules), then saves the legacy files.

    Before each episode's first row it writes ``stack_size - 1`` zero rows; a row added with ``terminal``
    or ``episode_end`` (a time-out) ends the episode and is recorded in ``episode_end_indices``; the
    circular cursor, ``add_count`` and ``invalid_range`` follow Dopamine. Row t holds the observation seen
    *before* action t, the action, the reward after it and whether that step was terminal.
    """

    def __init__(self, capacity: int, observation_shape: tuple[int, ...] = (84, 84), *, stack_size: int = 4,
                 update_horizon: int = 1, observation_dtype=np.uint8, action_dtype=np.int32,
                 reward_dtype=np.float32, terminal_dtype=np.uint8):
        if capacity < stack_size + update_horizon:
            raise AnewError(f"capacity {capacity} must be at least stack_size + update_horizon")
        self.capacity, self.stack_size, self.update_horizon = int(capacity), int(stack_size), int(update_horizon)
        self.observation_shape = tuple(observation_shape)
        self.store = {
            "observation": np.zeros((capacity, *self.observation_shape), dtype=observation_dtype),
            "action": np.zeros(capacity, dtype=action_dtype),
            "reward": np.zeros(capacity, dtype=reward_dtype),
            "terminal": np.zeros(capacity, dtype=terminal_dtype),
        }
        self.add_count = 0
        self.invalid_range = np.zeros(stack_size)  # Dopamine's value before the first add
        self.episode_end_indices: set[int] = set()
        self._episode_start = True

    @property
    def cursor(self) -> int:
        return self.add_count % self.capacity

    def _put(self, observation, action, reward, terminal) -> None:
        cursor = self.cursor
        self.store["observation"][cursor] = observation
        self.store["action"][cursor] = action
        self.store["reward"][cursor] = reward
        self.store["terminal"][cursor] = terminal
        self.add_count += 1
        self.invalid_range = invalid_range(self.cursor, self.capacity, self.stack_size, self.update_horizon)

    def add(self, observation: np.ndarray, action: int, reward: float, terminal: bool,
            episode_end: bool = False) -> None:
        """One row, exactly like Dopamine's ``add(observation, action, reward, terminal, episode_end=...)``."""
        if np.shape(observation) != self.observation_shape:
            raise AnewError(f"observation has shape {np.shape(observation)}, this replay stores "
                            f"{self.observation_shape}; pass single frames, not stacks")
        if self._episode_start:
            for _ in range(self.stack_size - 1):
                self.episode_end_indices.discard(self.cursor)
                self._put(0, 0, 0, 0)
            self._episode_start = False
        if episode_end or terminal:
            self.episode_end_indices.add(self.cursor)
            self._episode_start = True
        else:
            self.episode_end_indices.discard(self.cursor)
        self._put(observation, action, reward, terminal)

    def add_episode(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                    terminated: bool) -> None:
        """A whole episode of T steps: ``observations[t]`` is the frame before ``actions[t]``; the last row
        is terminal if the episode ``terminated`` and a time-out (episode_end only) otherwise."""
        steps = len(actions)
        if steps == 0 or len(observations) != steps or len(rewards) != steps:
            raise AnewError("add_episode needs equally many observations, actions and rewards (at least one)")
        for t in range(steps):
            last = t == steps - 1
            self.add(observations[t], actions[t], rewards[t], terminal=last and terminated, episode_end=last)

    def save(self, directory: str | os.PathLike, suffix: int, compresslevel: int = 6) -> list[Path]:
        """Write ``*_ckpt.<suffix>.gz`` files that Dopamine's ``load`` and :class:`DopamineReplay` read."""
        return write_dopamine_replay(directory, suffix, self.store, add_count=self.add_count,
                                     invalid_range=self.invalid_range,
                                     episode_end_indices=self.episode_end_indices, compresslevel=compresslevel)
