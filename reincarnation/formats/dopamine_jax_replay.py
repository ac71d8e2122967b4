"""Replay checkpoints of Dopamine 4.1.x JAX agents (``<N>/replay/checkpoint.msgpack``), without JAX or orbax.

Dopamine's ``ReplayBuffer.to_state_dict`` goes through orbax and a msgpack handler: numpy arrays are maps
``{dtype: repr(dtype.str or descr), shape, data[, order]}``, integers over 32 bits are ``{integer: str}``.
The memory is an ordered FIFO of ready-to-train elements ``[state, action, reward, next_state, is_terminal,
episode_end]`` (stacks precomputed, reward already the n-step return); ``state``/``next_state`` are snappy
(raw block format) compressed into a structured array ``(data, shape, dtype)``. The sampling distribution
stores ``key_by_index``, ``index_by_key``, the numpy PCG64 state and, for prioritized replay, a sum tree.

:class:`DopamineJaxReplay` decodes all of it and samples exactly like ``ReplayBuffer.sample``: for given keys,
or with Dopamine's own sampler continuing from the RNG state saved in the file. Snappy comes from
``cramjam`` (or ``python-snappy`` if that is what is installed); msgpack from ``msgpack``.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import numpy as np

from anew.errors import AnewError

MEMORY_FIELDS = ("state", "action", "reward", "next_state", "is_terminal", "episode_end")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def _snappy_decompress(data: bytes) -> bytes:
    """Raw (block format) snappy, as python-snappy's ``compress`` writes it."""
    try:
        import cramjam

        decompress, errors = cramjam.snappy.decompress_raw, (cramjam.DecompressionError,)
    except ImportError:
        try:
            import snappy

            decompress, errors = snappy.uncompress, (snappy.UncompressError,)
        except ImportError:
            raise AnewError(
                "reading Dopamine 4.x replay needs snappy: `pip install cramjam` (or python-snappy)"
            ) from None
    try:
        return bytes(decompress(data))
    except (*errors, ValueError) as error:
        raise AnewError(
            f"a compressed replay state is not valid snappy data ({error}); the file is corrupt; "
            "copy it again from where Dopamine wrote it"
        ) from None


def _decode_hook(obj: dict) -> Any:
    """Dopamine's ``serialization.decode``, refusing object dtypes and checking the byte count."""
    if "dtype" in obj and "shape" in obj and "data" in obj:
        dtype = np.dtype(ast.literal_eval(obj["dtype"]))
        if dtype.hasobject:
            raise ValueError(f"object dtype {dtype} in a replay file")
        shape = tuple(int(d) for d in obj["shape"])
        if len(obj["data"]) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ValueError(f"array of shape {shape} and dtype {dtype} has {len(obj['data'])} bytes")
        return np.ndarray(shape=shape, dtype=dtype, buffer=obj["data"], order=obj.get("order") or "C")
    if len(obj) == 1 and "integer" in obj:
        return int(obj["integer"])
    return obj


def decode_msgpack(data: bytes, source: str = "<msgpack>") -> Any:
    """Decode a Dopamine/orbax msgpack checkpoint into dicts, lists, numpy arrays and ints."""
    try:
        import msgpack
    except ImportError:
        raise AnewError("reading Dopamine 4.x replay needs msgpack: `pip install msgpack`") from None
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, object_hook=_decode_hook)
    except (msgpack.UnpackException, ValueError, TypeError, SyntaxError, KeyError, RecursionError) as error:
        raise AnewError(
            f"{source} is not a readable Dopamine replay msgpack (truncated, corrupt or foreign: "
            f"{type(error).__name__}: {error}); copy it again from where Dopamine wrote it"
        ) from None


def uncompress_state(element: np.ndarray) -> np.ndarray:
    """Dopamine's ``elements.uncompress``: a structured (data, shape, dtype) array back to the stacked state."""
    if element.dtype.names is None:  # saved with compress=False
        return np.asarray(element)
    shape = tuple(int(d) for d in element["shape"])
    dtype = np.dtype(element["dtype"].item().decode("ascii"))
    if dtype.hasobject:
        raise AnewError("a compressed replay state declares an object dtype; the file is not from Dopamine")
    raw = _snappy_decompress(element["data"].tobytes())
    if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise AnewError(
            f"a compressed replay state decompresses to {len(raw)} bytes, not shape {shape} {dtype}; "
            "the file is corrupt"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def sum_tree_query(nodes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Leaf index whose cumulative range holds each target (Dopamine's vectorised ``SumTree.query``)."""
    first_leaf = (len(nodes) + 1) // 2 - 1
    targets = np.asarray(targets, dtype=np.float64)
    node = np.zeros(targets.shape, dtype=np.int32)
    while (inner := node < first_leaf).any():
        left = 2 * node + 1
        left_sums = nodes[left]
        go_left = targets < left_sums
        node = np.where(inner, np.where(go_left, left, left + 1), node)
        targets = np.where(go_left, targets, targets - left_sums)
    return node - first_leaf


def find_replay_msgpack(path: str | os.PathLike, iteration: int | None = None) -> Path:
    """The ``checkpoint.msgpack`` for a file, an ``<N>`` or ``<N>/replay`` folder, or a checkpoints folder."""
    path = Path(path)
    if path.is_file():
        return path
    for candidate in (path / "checkpoint.msgpack", path / "replay" / "checkpoint.msgpack"):
        if candidate.is_file() and iteration is None:
            return candidate
    if path.is_dir():
        found = {
            int(p.name): p / "replay" / "checkpoint.msgpack"
            for p in path.iterdir()
            if p.name.isdigit() and (p / "replay" / "checkpoint.msgpack").is_file()
        }
        if iteration is not None:
            if int(iteration) in found:
                return found[int(iteration)]
            raise AnewError(
                f"no {iteration}/replay/checkpoint.msgpack in {path}; found iterations {sorted(found)}"
            )
        complete = [n for n in found if (path / f"sentinel_checkpoint_complete.{n}").exists()]
        if complete or found:
            return found[max(complete or found)]
    raise AnewError(
        f"no Dopamine 4.x replay under {path}: expected <N>/replay/checkpoint.msgpack "
        "(a Dopamine checkpoints folder) or the checkpoint.msgpack file itself"
    )


def _restore_rng(state: Any, source: str) -> np.random.Generator:
    try:
        name = state["bit_generator"]
        if name not in _BIT_GENERATORS:
            raise ValueError(f"unknown bit generator {name!r}")
        generator = getattr(np.random, name)()
        generator.state = state
        return np.random.Generator(generator)
    except (KeyError, TypeError, ValueError) as error:
        raise AnewError(
            f"{source} has an unreadable sampler RNG state ({error}); the file is not from Dopamine 4.x"
        ) from None


class DopamineJaxReplay:
    """The replay buffer a Dopamine 4.1.x JAX agent saved, sampled exactly like its ``ReplayBuffer.sample``.

    Args:
        path: the msgpack file, its ``<N>`` or ``<N>/replay`` folder, or the agent's ``checkpoints`` folder.
        iteration: which ``<N>`` to read from a checkpoints folder (default: the latest).
    """

    def __init__(self, path: str | os.PathLike, iteration: int | None = None):
        self.path = find_replay_msgpack(path, iteration)
        source = str(self.path)
        state = decode_msgpack(self.path.read_bytes(), source)
        try:
            self.add_count = int(state["add_count"])
            keys, values = state["memory"]["keys"], state["memory"]["values"]
            distribution = state["sampling_distribution"]
            if len(keys) != len(values) or any(len(v) != len(MEMORY_FIELDS) for v in values):
                raise ValueError("memory keys and values do not line up as 6-field elements")
            self.keys = np.asarray(keys, dtype=np.int64)
            self._states = [v[0] for v in values]
            self._next_states = [v[3] for v in values]
            self._position = {int(k): i for i, k in enumerate(keys)}
            # Stacked like ReplayBuffer.sample stacks them, so dtypes are Dopamine's (int32, float64, bool).
            self.action = np.stack([v[1] for v in values]) if values else np.zeros(0, np.int32)
            self.reward = np.stack([v[2] for v in values]) if values else np.zeros(0)
            self.is_terminal = np.stack([v[4] for v in values]) if values else np.zeros(0, bool)
            self.episode_end = np.stack([v[5] for v in values]) if values else np.zeros(0, bool)
            self.key_by_index = np.asarray(distribution["key_by_index"], dtype=np.int64)
            self.index_by_key = {int(k): int(i) for k, i in distribution["index_by_key"].items()}
            tree = distribution.get("sum_tree")
            self.sum_tree = None if tree is None else np.asarray(tree["nodes"], dtype=np.float64)
            rng_state = distribution["rng_state"]
            self.accumulator_state = state.get("transition_accumulator")
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise AnewError(
                f"{source} is msgpack but not a Dopamine 4.x replay buffer ({type(error).__name__}: "
                f"{error}); point at <N>/replay/checkpoint.msgpack of a JAX agent"
            ) from None
        self.rng = _restore_rng(rng_state, source)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def prioritized(self) -> bool:
        return self.sum_tree is not None

    def priorities(self, keys: np.ndarray) -> np.ndarray:
        """Sum-tree leaf values of the given keys (prioritized replay only)."""
        if self.sum_tree is None:
            raise AnewError("this replay is uniform: it has no sum tree and no priorities")
        first_leaf = (len(self.sum_tree) + 1) // 2 - 1
        return self.sum_tree[first_leaf + np.array([self.index_by_key[int(k)] for k in keys], dtype=np.int64)]

    def sample_keys(self, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Dopamine's sampler, continuing from the RNG state in the file: (keys int32, probabilities or None)."""
        if len(self.key_by_index) == 0:
            raise AnewError(f"{self.path} holds an empty replay buffer; there is nothing to sample")
        if self.sum_tree is not None and self.sum_tree[0] != 0.0:
            targets = self.rng.uniform(0.0, self.sum_tree[0], size=batch_size)
            indices = sum_tree_query(self.sum_tree, targets)
            first_leaf = (len(self.sum_tree) + 1) // 2 - 1
            return self.key_by_index[indices].astype(np.int32), self.sum_tree[
                first_leaf + indices
            ] / self.sum_tree[0]
        indices = self.rng.integers(len(self.key_by_index), size=batch_size)
        keys = self.key_by_index[indices].astype(np.int32)
        if self.sum_tree is not None:  # an all-zero tree samples uniformly
            return keys, np.full(batch_size, 1.0 / len(self.key_by_index))
        return keys, None

    def sample(self, batch_size: int = 32, keys: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """A batch by name: state, action, reward, next_state, is_terminal, episode_end (stacked like Dopamine:
        uint8 (B, 84, 84, 4), int32, float64, bool, bool), keys, and probabilities when Dopamine's prioritized
        sampler drew the keys."""
        probabilities = None
        if keys is None:
            keys, probabilities = self.sample_keys(batch_size)
        keys = np.asarray(keys)
        try:
            rows = np.array([self._position[int(k)] for k in keys], dtype=np.int64)
        except KeyError as error:
            raise AnewError(
                f"key {error.args[0]} is not in this replay; valid keys are {self.keys[0]}.."
                f"{self.keys[-1]} (see .keys)"
            ) from None
        batch = {
            "state": np.stack([uncompress_state(self._states[r]) for r in rows]),
            "action": self.action[rows],
            "reward": self.reward[rows],
            "next_state": np.stack([uncompress_state(self._next_states[r]) for r in rows]),
            "is_terminal": self.is_terminal[rows],
            "episode_end": self.episode_end[rows],
            "keys": keys,
        }
        if probabilities is not None:
            batch["probabilities"] = probabilities
        return batch
