"""A replay buffer on disk: what it holds, in blocks, compressed where it pays, shared between checkpoints.

Format 2 (``manifest.json`` + block files). Rows ``[b * block_rows, (b + 1) * block_rows)`` of every env
stream form block ``b``; only the blocks the buffer has filled are written (a 3,000-step Atari run writes
~20 MB, not the 7 GB of an empty 1M-row buffer). Each field of a block is one ``.npy`` file, or
``.npy.zlib`` (zlib level 1 of the same bytes) when that saves at least a fifth (Atari frames: ~5-10x;
float vectors: stored raw). Saving next to an earlier save of the same buffer (``reuse_from``: the
checkpoint before) hard-links the blocks no step has written since, so a checkpoint of a full 1M-row buffer
writes only the rows added since the last one. Loading checks every file (a truncated or corrupt block is
a one-line :class:`AnewError`). Format 1 (one full-capacity ``.npy`` per field) still loads.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anew.errors import AnewError

FORMAT = "anew-replay"
VERSION = 2
FIELDS = ("obs", "action", "reward", "flags")
BLOCK_BYTES = 64 << 20  # raw bytes of one block (all fields, all streams): ~100 blocks for a 1M Atari buffer
WORTH_COMPRESSING = 0.8  # keep the compressed bytes only below this fraction of the raw ones

Progress = Callable[[int, int], None]  # (blocks done, blocks to do)


def new_lineage() -> str:
    """A token naming one buffer's history (saves of the same history may share unchanged blocks)."""
    return secrets.token_hex(8)


def block_rows(buffer: Any) -> int:
    row_bytes = sum(getattr(buffer, name)[:, :1].nbytes for name in FIELDS)
    return int(min(buffer.rows_per_env, max(1, BLOCK_BYTES // max(row_bytes, 1))))


def _dirty_blocks(count: np.ndarray, before: np.ndarray, rows_per_env: int, rows: int) -> set[int]:
    """Blocks holding a row written after the save that recorded ``before`` (per-stream row counts)."""
    dirty: set[int] = set()
    for now, then in zip(count.tolist(), before.tolist()):
        written = min(now - then, rows_per_env)
        start = then % rows_per_env
        spans = [(start, min(start + written, rows_per_env)), (0, max(start + written - rows_per_env, 0))]
        for low, high in spans:  # the written rows, as at most two physical ranges (the stream wraps around)
            if high > low:
                dirty.update(range(low // rows, (high - 1) // rows + 1))
    return dirty


def _reusable(previous: Path | None, manifest: dict[str, Any]) -> tuple[dict[str, Any] | None, set[int]]:
    """The earlier save's manifest if its blocks may be shared, and the blocks written since it."""
    everything = set(range(len(manifest["blocks"])))
    if previous is None or not (previous / "manifest.json").is_file():
        return None, everything
    try:
        before = json.loads((previous / "manifest.json").read_text())
    except (OSError, ValueError):
        return None, everything
    same = all(
        before.get(key) == manifest[key]
        for key in ("version", "lineage", "num_envs", "rows_per_env", "block_rows", "fields")
    )
    if not same or any(then > now for then, now in zip(before["count"], manifest["count"])):
        return None, everything
    dirty = _dirty_blocks(
        np.array(manifest["count"]),
        np.array(before["count"]),
        manifest["rows_per_env"],
        manifest["block_rows"],
    )
    return before, dirty | set(range(len(before["blocks"]), len(manifest["blocks"])))


def _share(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links: a copy is still cheaper than compressing again
        shutil.copy2(source, target)


def _write_array(array: np.ndarray, stem: Path) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    raw = buffer.getbuffer()
    packed = zlib.compress(raw, 1)
    if len(packed) < WORTH_COMPRESSING * len(raw):
        path, data = stem.with_name(stem.name + ".npy.zlib"), packed
    else:
        path, data = stem.with_name(stem.name + ".npy"), raw
    path.unlink(missing_ok=True)  # never write into a file another checkpoint shares (a hard link)
    with open(path, "wb") as file:
        file.write(data)
    return path.name


def save_replay(
    buffer: Any, directory: Path, reuse_from: Path | None = None, progress: Progress | None = None
) -> None:
    """Write ``buffer``'s filled blocks into ``directory``, sharing unchanged ones with ``reuse_from``."""
    directory.mkdir(parents=True, exist_ok=True)
    if reuse_from is not None and reuse_from.resolve() == directory.resolve():
        reuse_from = None
    rows = block_rows(buffer)
    filled = int(min(int(buffer.count.max()), buffer.rows_per_env))
    count = -(-filled // rows)
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "lineage": buffer.lineage,
        "num_envs": buffer.num_envs, "rows_per_env": buffer.rows_per_env, "obs_shape": list(buffer.obs_shape),
        "frame_stack": buffer.frame_stack, "n_step": buffer.n_step, "gamma": buffer.gamma,
        "prioritized": buffer.prioritized, "count": buffer.count.tolist(),
        "episode_start": buffer.episode_start.tolist(), "rng_state": buffer.rng.bit_generator.state,
        "block_rows": rows, "filled": filled,
        "fields": {name: {"dtype": array.dtype.str, "shape": list(array.shape)}
                   for name, array in ((name, getattr(buffer, name)) for name in FIELDS)},
        "blocks": [{} for _ in range(count)],
    }  # fmt: skip
    before, dirty = _reusable(reuse_from, manifest)
    for block in range(count):
        if before is not None and block not in dirty:
            for file in before["blocks"][block].values():
                _share(reuse_from / file, directory / file)
            manifest["blocks"][block] = dict(before["blocks"][block])
        else:
            span = slice(block * rows, min((block + 1) * rows, filled))
            manifest["blocks"][block] = {
                name: _write_array(getattr(buffer, name)[:, span], directory / f"{name}.{block:05d}")
                for name in FIELDS
            }
        if progress is not None:
            progress(block + 1, count)
    if buffer.tree is not None:
        buffer.tree.save(str(directory / "sum_tree_"))
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _read_array(path: Path) -> np.ndarray:
    try:
        data = path.read_bytes()
        if path.name.endswith(".zlib"):
            data = zlib.decompress(data)
        return np.load(io.BytesIO(data), allow_pickle=False)
    except FileNotFoundError:
        raise AnewError(
            f"replay file {path} is missing; the checkpoint is incomplete: resume from an earlier one "
            "(anew resume RUN_DIR/checkpoints/step_N)"
        ) from None
    except (OSError, ValueError, EOFError, zlib.error) as error:
        raise AnewError(
            f"replay file {path} is truncated or corrupt ({str(error).splitlines()[0]}); resume from an "
            "earlier checkpoint (anew resume RUN_DIR/checkpoints/step_N)"
        ) from None


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / "manifest.json"
    if not path.is_file():
        raise AnewError(f"{directory} is not an anew replay directory (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AnewError(
            f"{path} is truncated or corrupt ({error}); resume from an earlier checkpoint"
        ) from None
    if manifest.get("version", 1) > VERSION:
        raise AnewError(
            f"{directory} was written by a newer anew (replay format {manifest['version']}); upgrade anew"
        )
    return manifest


def saved_layout(directory: Path) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Each field's dtype and full shape as saved (to build a buffer that can load the directory)."""
    manifest = read_manifest(directory)
    if manifest.get("version", 1) >= 2:
        return {name: (np.dtype(f["dtype"]), tuple(f["shape"])) for name, f in manifest["fields"].items()}
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in FIELDS}
    return {name: (array.dtype, array.shape) for name, array in arrays.items()}


def load_replay(buffer: Any, directory: Path) -> None:
    """Restore what :func:`save_replay` (or format 1) wrote into the identically configured ``buffer``.

    Rows past the filled part are left as they are: sampling never reads a row that was not written."""
    manifest = read_manifest(directory)
    expected = {
        "num_envs": buffer.num_envs,
        "rows_per_env": buffer.rows_per_env,
        "frame_stack": buffer.frame_stack,
    }
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise AnewError(
                f"replay in {directory} has {key}={manifest.get(key)}, this agent expects {value}"
            )
    if manifest.get("version", 1) >= 2:
        rows = int(manifest["block_rows"])
        for block, files in enumerate(manifest["blocks"]):
            for name in FIELDS:
                if name not in files:
                    raise AnewError(f"{directory / 'manifest.json'} lists no {name} file for block {block}")
                _fill(
                    getattr(buffer, name),
                    _read_array(directory / files[name]),
                    block * rows,
                    directory / files[name],
                )
        buffer.lineage = manifest["lineage"]
    else:
        for name in FIELDS:
            path = directory / f"{name}.npy"
            if not path.is_file():
                raise AnewError(f"replay directory {directory} is missing {path.name}; it is incomplete")
            _fill(getattr(buffer, name), np.load(path, mmap_mode="r"), 0, path, whole=True)
    if buffer.tree is not None:
        buffer.tree.load(str(directory / "sum_tree_"))
    buffer.count[...] = manifest["count"]
    buffer.episode_start[...] = manifest["episode_start"]
    buffer.rng.bit_generator.state = manifest["rng_state"]


def _fill(target: np.ndarray, array: np.ndarray, start: int, path: Path, whole: bool = False) -> None:
    width = array.shape[1] if array.ndim >= 2 else 0
    expected = target.shape if whole else target[:, start : start + max(width, 1)].shape
    if array.dtype != target.dtype or array.shape != expected:
        raise AnewError(
            f"{path} holds {array.dtype}{array.shape}, expected {target.dtype}{expected}; the replay "
            "does not belong to this agent or is corrupt"
        )
    target[:, start : start + array.shape[1]] = array
