"""Dopamine's legacy replay files (``$store$_<field>_ckpt.<N>.gz``): find, read without pickle, write.

This is the format of ``OutOfGraphReplayBuffer.save`` (Dopamine 2019 .. 4.1.x), of the public DQN Replay
Dataset and of the reincarnating_rl teacher buffers. Each file is a gzip stream of a ``.npy`` array, except
``episode_end_indices`` (a pickled ``set``; optional, absent from old files and the DQN Replay Dataset),
which goes through the restricted unpickler. Big arrays (a DQN Replay Dataset observation file is 7 GB
uncompressed) are decompressed once to a temporary ``.npy`` and memory-mapped. ``DopamineReplayWriter``
fills slots with Dopamine's ``add`` rules; :mod:`anew.reincarnation.formats.dopamine_replay` samples them.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from anew.errors import AnewError
from anew.reincarnation.formats.safe_pickle import safe_loads

STORE_PREFIX = "$store$_"
REQUIRED_FIELDS = ("observation", "action", "reward", "terminal")
FILE_RE = re.compile(r"^(?P<name>.+)_ckpt\.(?P<suffix>\d+)\.gz$")
_GZIP_MAGIC, _NPY_MAGIC = b"\x1f\x8b", b"\x93NUMPY"
_CHUNK = 16 << 20


def complete_suffixes(directory: str | os.PathLike) -> list[int]:
    """Suffixes N for which the 4 ``$store$`` files, ``add_count`` and ``invalid_range`` all exist, sorted."""
    names: dict[int, set[str]] = {}
    for entry in os.listdir(directory):
        match = FILE_RE.match(entry)
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


def read_npy(
    path: str | os.PathLike,
    *,
    mmap_threshold_bytes: int = 256 << 20,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
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
        count = stream.readinto(view[filled : filled + (1 << 20)])
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


def read_episode_ends(path: Path) -> set[int]:
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
        raise AnewError(
            f"{path} does not hold a set of indices; it is not a Dopamine episode_end_indices file"
        )
    return {int(i) for i in value}


def invalid_range(cursor: int, capacity: int, stack_size: int, update_horizon: int) -> np.ndarray:
    """Dopamine's slots next to the cursor that cannot be sampled: ``cursor-n .. cursor+k-1`` (mod capacity)."""
    return np.array([(cursor - update_horizon + j) % capacity for j in range(stack_size + update_horizon)])


def write_dopamine_replay(
    directory: str | os.PathLike,
    suffix: int,
    store: Mapping[str, np.ndarray],
    *,
    add_count: int,
    invalid_range: np.ndarray,
    episode_end_indices: Iterable[int] = (),
    compresslevel: int = 6,
) -> list[Path]:
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
        with (
            open(partial, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel) as out,
        ):
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

    def __init__(
        self,
        capacity: int,
        observation_shape: tuple[int, ...] = (84, 84),
        *,
        stack_size: int = 4,
        update_horizon: int = 1,
        observation_dtype=np.uint8,
        action_dtype=np.int32,
        reward_dtype=np.float32,
        terminal_dtype=np.uint8,
    ):
        if capacity < stack_size + update_horizon:
            raise AnewError(f"capacity {capacity} must be at least stack_size + update_horizon")
        self.capacity, self.stack_size, self.update_horizon = (
            int(capacity),
            int(stack_size),
            int(update_horizon),
        )
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

    def add(
        self, observation: np.ndarray, action: int, reward: float, terminal: bool, episode_end: bool = False
    ) -> None:
        """One row, exactly like Dopamine's ``add(observation, action, reward, terminal, episode_end=...)``."""
        if np.shape(observation) != self.observation_shape:
            raise AnewError(
                f"observation has shape {np.shape(observation)}, this replay stores "
                f"{self.observation_shape}; pass single frames, not stacks"
            )
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

    def add_episode(
        self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: bool
    ) -> None:
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
        return write_dopamine_replay(
            directory,
            suffix,
            self.store,
            add_count=self.add_count,
            invalid_range=self.invalid_range,
            episode_end_indices=self.episode_end_indices,
            compresslevel=compresslevel,
        )
