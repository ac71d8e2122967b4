"""The replay on disk: only the filled part, compressed where it pays, blocks shared with the previous save,
an exact round trip (resume continues bit for bit), and one-line errors for damaged files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from anew.agents import replay_files
from anew.agents.replay import ReplayBuffer
from anew.errors import AnewError

FRAME = (4, 42, 42)  # a stack of 4 small frames: one 42x42 uint8 frame stored per row


def image_buffer(capacity: int = 4_000, num_envs: int = 2, seed: int = 0) -> ReplayBuffer:
    return ReplayBuffer(capacity, num_envs, FRAME, obs_dtype=np.uint8, frame_stack=4, n_step=3, seed=seed)


def game_frames(rng: np.random.Generator, num_envs: int, step: int) -> np.ndarray:
    """Frames like a game screen: a flat background, a moving block and a little noise (they compress)."""
    frames = np.full((num_envs, *FRAME), 40, np.uint8)
    x = (step * 3 + np.arange(num_envs) * 7) % 34
    for env in range(num_envs):
        frames[env, :, 10:18, x[env] : x[env] + 8] = 200
    frames[rng.random(frames.shape) < 0.01] = 90
    return frames


def feed(buffer: ReplayBuffer, steps: int, seed: int, start: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = buffer.num_envs
    for step in range(start, start + steps):
        done = rng.random(n) < 0.02
        buffer.add(game_frames(rng, n, step), rng.integers(0, 6, n), rng.normal(size=n), done,
                   np.zeros(n, bool), game_frames(rng, n, step + 1))  # fmt: skip


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


def assert_same_buffer(a: ReplayBuffer, b: ReplayBuffer) -> None:
    filled = int(min(a.count.max(), a.rows_per_env))
    for name in replay_files.FIELDS:
        np.testing.assert_array_equal(getattr(a, name)[:, :filled], getattr(b, name)[:, :filled])
    np.testing.assert_array_equal(a.count, b.count)
    np.testing.assert_array_equal(a.episode_start, b.episode_start)


def test_saved_size_grows_with_the_filled_part_and_frames_are_compressed(tmp_path: Path) -> None:
    sizes = {}
    for steps in (250, 1_000):
        buffer = image_buffer()
        feed(buffer, steps, seed=1)
        buffer.save(tmp_path / str(steps))
        sizes[steps] = folder_bytes(tmp_path / str(steps))
    raw_filled = 1_000 * 2 * 42 * 42  # the observation bytes of 1,000 steps of 2 envs
    capacity_bytes = buffer.obs.nbytes
    assert sizes[1_000] < raw_filled / 3  # the frames compress
    assert sizes[1_000] < capacity_bytes / 10  # an Atari-like buffer is not written whole
    assert 2.5 < sizes[1_000] / sizes[250] < 5.5  # ~4x the steps, ~4x the bytes
    assert list((tmp_path / "1000").glob("obs.*.npy.zlib"))


def test_incompressible_fields_are_stored_raw(tmp_path: Path) -> None:
    buffer = ReplayBuffer(500, 1, (3,), seed=0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        obs = rng.normal(size=(1, 3)).astype(np.float32)
        buffer.add(obs, np.zeros(1, np.int32), rng.normal(size=1), np.zeros(1, bool), np.zeros(1, bool), obs)
    buffer.save(tmp_path / "replay")
    assert (tmp_path / "replay" / "obs.00000.npy").is_file()  # random floats do not compress: kept as .npy


def test_round_trip_then_training_on_continues_bit_for_bit(tmp_path: Path) -> None:
    original = image_buffer(capacity=600, seed=3)
    feed(original, 450, seed=4)  # wraps around: 2 streams of 300 rows each
    original.save(tmp_path / "replay")
    restored = image_buffer(capacity=600, seed=99)
    restored.load(tmp_path / "replay")
    assert_same_buffer(original, restored)
    for buffer in (original, restored):
        feed(buffer, 40, seed=5, start=450)
    for _ in range(3):
        a, b = original.sample(32), restored.sample(32)
        for field in ("obs", "action", "reward", "discount", "next_obs", "indices"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_blocks_unchanged_since_the_previous_save_are_shared_not_rewritten(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(replay_files, "BLOCK_BYTES", 100 * 2 * (42 * 42 + 4 + 4 + 1))  # 100 rows per block
    buffer = image_buffer(capacity=1_000)  # 500 rows per stream: 5 blocks
    feed(buffer, 260, seed=6)
    buffer.save(tmp_path / "first")
    feed(buffer, 30, seed=7, start=260)  # rows 260-289 (+ episode ends): only block 2 changes
    buffer.save(tmp_path / "second", reuse_from=tmp_path / "first")
    first = json.loads((tmp_path / "first" / "manifest.json").read_text())["blocks"]
    second = json.loads((tmp_path / "second" / "manifest.json").read_text())["blocks"]
    assert len(first) == 3 and len(second) == 3
    inode = lambda folder, name: os.stat(tmp_path / folder / name).st_ino
    shared = [b for b in range(3) if inode("first", first[b]["obs"]) == inode("second", second[b]["obs"])]
    assert shared == [0, 1]
    restored = image_buffer(capacity=1_000)
    restored.load(tmp_path / "second")
    assert_same_buffer(buffer, restored)
    feed(buffer, 600, seed=8, start=290)  # wraps around: every block written again
    buffer.save(tmp_path / "third", reuse_from=tmp_path / "second")
    restored.load(tmp_path / "third")
    assert_same_buffer(buffer, restored)


def test_another_buffers_save_is_never_shared(tmp_path: Path) -> None:
    other = image_buffer()
    feed(other, 100, seed=1)
    other.save(tmp_path / "other")
    mine = image_buffer()
    feed(mine, 100, seed=2)
    mine.save(tmp_path / "mine", reuse_from=tmp_path / "other")
    restored = image_buffer()
    restored.load(tmp_path / "mine")
    assert_same_buffer(mine, restored)


@pytest.mark.parametrize("rows,then,now", [(4, 7, 12), (4, 0, 10), (3, 5, 5), (4, 2, 30), (5, 9, 11)])
def test_dirty_blocks_are_the_blocks_of_the_rows_written(rows: int, then: int, now: int) -> None:
    rows_per_env = 10  # blocks [0, 4) [4, 8) [8, 10) for rows = 4: the last one is short
    expected = {((then + k) % rows_per_env) // rows for k in range(now - then)}
    got = replay_files._dirty_blocks(np.array([now]), np.array([then]), rows_per_env, rows)
    assert got == expected


def test_a_truncated_or_missing_block_is_a_one_line_error(tmp_path: Path) -> None:
    buffer = image_buffer()
    feed(buffer, 200, seed=1)
    buffer.save(tmp_path / "replay")
    block = next((tmp_path / "replay").glob("obs.00000.*"))
    block.write_bytes(block.read_bytes()[:500])
    with pytest.raises(AnewError, match="truncated or corrupt.*resume from an earlier checkpoint"):
        image_buffer().load(tmp_path / "replay")
    block.unlink()
    with pytest.raises(AnewError, match="is missing"):
        image_buffer().load(tmp_path / "replay")


def test_format_1_full_arrays_still_load(tmp_path: Path) -> None:
    buffer = image_buffer(capacity=400)
    feed(buffer, 120, seed=2)
    folder = tmp_path / "v1"
    folder.mkdir()
    for name in replay_files.FIELDS:
        np.save(folder / f"{name}.npy", getattr(buffer, name))
    manifest = {"format": "anew-replay", "version": 1, "num_envs": 2, "rows_per_env": 200,
                "obs_shape": list(FRAME), "frame_stack": 4, "n_step": 3, "gamma": 0.99, "prioritized": False,
                "count": buffer.count.tolist(), "episode_start": buffer.episode_start.tolist(),
                "rng_state": buffer.rng.bit_generator.state}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    restored = image_buffer(capacity=400)
    restored.load(folder)
    assert_same_buffer(buffer, restored)
    assert replay_files.saved_layout(folder)["obs"] == (np.dtype(np.uint8), (2, 200, 42, 42))
