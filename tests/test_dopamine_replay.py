"""Legacy Dopamine replay files: exact sampling on Dopamine's own files, Dopamine's add rules, lossless writing."""

from __future__ import annotations

import gzip
import math
import pickle
import shutil

import numpy as np
import pytest

from anew.errors import AnewError
from anew.reincarnation.formats.dopamine_replay import DopamineReplay
from anew.reincarnation.formats.dopamine_replay_files import (
    DopamineReplayWriter,
    complete_suffixes,
    read_npy,
    write_dopamine_replay,
)
from anew.reincarnation.formats.safe_pickle import UnsafePickleError

FIELDS = ("state", "action", "reward", "next_state", "next_action", "next_reward", "terminal", "indices")


# --- a literal, per-index port of OutOfGraphReplayBuffer (independent of the vectorised reader) ------------
def reference_is_valid(store, add_count, invalid, ends, k, n, i):
    capacity = len(store["terminal"])
    cursor = add_count % capacity
    if add_count < capacity and (i >= cursor - n or i < k - 1):
        return False
    if i in {int(x) for x in invalid}:
        return False
    if any(store["terminal"][(i - back) % capacity] for back in range(1, k)):
        return False
    return not any((i + j) % capacity in ends and not store["terminal"][(i + j) % capacity] for j in range(n))


def reference_transition(store, k, n, gamma, i):
    capacity = len(store["terminal"])
    discounts = np.array([math.pow(gamma, j) for j in range(n)], dtype=np.float32)
    terminals = store["terminal"][[(i + j) % capacity for j in range(n)]]
    length = int(np.argmax(terminals.astype(bool))) + 1 if terminals.any() else n
    rewards = store["reward"][[(i + j) % capacity for j in range(length)]]
    nxt = (i + length) % capacity

    def stack(end):
        return np.stack([store["observation"][(end - k + 1 + j) % capacity] for j in range(k)], axis=-1)

    return {
        "state": stack(i),
        "action": store["action"][i],
        "reward": np.sum(discounts[:length] * rewards),
        "next_state": stack(nxt),
        "next_action": store["action"][nxt],
        "next_reward": store["reward"][nxt],
        "terminal": terminals.any(),
        "indices": i,
    }


def assert_matches_reference(replay: DopamineReplay, store, ends):
    expected_valid = [
        i
        for i in range(replay.capacity)
        if reference_is_valid(
            store,
            replay.add_count,
            replay.saved_invalid_range,
            ends,
            replay.stack_size,
            replay.update_horizon,
            i,
        )
    ]
    np.testing.assert_array_equal(replay.valid_indices(), expected_valid)
    indices = np.asarray(expected_valid, dtype=np.int32)
    batch = replay.sample_transition_batch(len(indices), indices)
    for row, i in enumerate(indices):
        reference = reference_transition(
            store, replay.stack_size, replay.update_horizon, replay.gamma, int(i)
        )
        for name in FIELDS:
            assert np.array_equal(batch[name][row], reference[name]), (name, int(i))


# --- Dopamine's own files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def legacy(fixtures_dir):
    return fixtures_dir / "dopamine" / "legacy_replay_pong"


def test_valid_indices_equal_dopamine(legacy):
    replay = DopamineReplay(legacy / "replay")
    assert (replay.suffix, replay.capacity, replay.add_count, replay.update_horizon) == (7, 1000, 1333, 3)
    assert replay.episode_end_indices == {129, 332, 826}
    expected = np.load(legacy / "valid_indices.npy")
    np.testing.assert_array_equal(replay.valid_indices(), expected)
    assert replay.valid_indices().dtype == expected.dtype


@pytest.mark.parametrize("mmap_threshold_bytes", [256 << 20, 0], ids=["in-memory", "memory-mapped"])
def test_samples_equal_dopamine(legacy, mmap_threshold_bytes):
    replay = DopamineReplay(legacy / "replay", mmap_threshold_bytes=mmap_threshold_bytes)
    expected = np.load(legacy / "expected_samples.npz")
    assert isinstance(replay.store["observation"], np.memmap) == (mmap_threshold_bytes == 0)
    for position, name in enumerate(expected["set_names"]):
        batch = replay.sample_transition_batch(32, expected["requested_indices"][position])
        assert list(batch) == list(FIELDS), name
        for field in FIELDS:
            want = expected[field][position]
            assert batch[field].dtype == want.dtype and batch[field].shape == want.shape, (name, field)
            if field in ("reward", "next_reward"):
                np.testing.assert_allclose(batch[field], want, rtol=0, atol=1e-6)
            assert np.array_equal(batch[field], want), (name, field)  # in fact bit for bit


def test_fixture_matches_literal_port(legacy):
    replay = DopamineReplay(legacy / "replay")
    assert_matches_reference(replay, replay.store, replay.episode_end_indices)


def test_missing_episode_end_file_means_no_timeouts(legacy, tmp_path):
    """Old checkpoints and the DQN Replay Dataset have no episode_end_indices file: Dopamine uses an empty set."""
    for source in (legacy / "replay").iterdir():
        if not source.name.startswith("episode_end_indices"):
            shutil.copy(source, tmp_path / source.name)
    replay = DopamineReplay(tmp_path)
    assert replay.episode_end_indices == set()
    assert_matches_reference(replay, replay.store, set())
    # Without the time-out markers the windows that cross slot 129 / 332 become valid again.
    assert {127, 128, 129} <= set(replay.valid_indices()) and 127 not in set(
        np.load(legacy / "valid_indices.npy")
    )


def test_writer_reproduces_dopamine_add_sequence(legacy):
    """Re-adding the fixture's episodes through DopamineReplayWriter gives Dopamine's arrays and bookkeeping."""
    replay = DopamineReplay(legacy / "replay")
    store = replay.store
    writer = DopamineReplayWriter(1000, (84, 84), stack_size=4, update_horizon=3)

    def add_episode(first_global, last_global, terminal):
        for g in range(first_global + 3, last_global + 1):  # the first 3 adds of each episode are padding
            slot = g % 1000
            overwritten = g < 1000 and slot <= 332  # rows of episode 1 that episodes 2-3 overwrote
            observation = np.full((84, 84), 7, np.uint8) if overwritten else store["observation"][slot]
            action, reward = (1, 0.5) if overwritten else (store["action"][slot], store["reward"][slot])
            last = g == last_global
            writer.add(observation, action, reward, terminal=last and terminal, episode_end=last)

    add_episode(0, 826, terminal=True)
    add_episode(827, 1129, terminal=False)
    add_episode(1130, 1332, terminal=False)
    for name in ("observation", "action", "reward", "terminal"):
        assert writer.store[name].dtype == store[name].dtype
        np.testing.assert_array_equal(writer.store[name], store[name])
    assert writer.add_count == replay.add_count
    np.testing.assert_array_equal(writer.invalid_range, replay.saved_invalid_range)
    assert writer.episode_end_indices == replay.episode_end_indices


def test_rewriting_the_fixture_is_lossless(legacy, tmp_path):
    original = DopamineReplay(legacy / "replay")
    write_dopamine_replay(
        tmp_path,
        7,
        original.store,
        add_count=original.add_count,
        invalid_range=original.saved_invalid_range,
        episode_end_indices=original.episode_end_indices,
    )
    for source in (legacy / "replay").glob("*.gz"):  # same .npy bytes inside the gzip as Dopamine wrote
        if not source.name.startswith("episode_end_indices"):
            assert gzip.decompress(source.read_bytes()) == gzip.decompress(
                (tmp_path / source.name).read_bytes()
            )
    copy = DopamineReplay(tmp_path)
    assert copy.episode_end_indices == original.episode_end_indices and copy.add_count == original.add_count
    np.testing.assert_array_equal(copy.valid_indices(), original.valid_indices())
    indices = original.valid_indices()[::7][:64]
    a = original.sample_transition_batch(len(indices), indices)
    b = copy.sample_transition_batch(len(indices), indices)
    assert all(np.array_equal(a[f], b[f]) and a[f].dtype == b[f].dtype for f in FIELDS)


# --- synthetic buffers: both terminal conventions, not-full buffers, the DQN Replay Dataset layout --------
def fill(writer: DopamineReplayWriter, rng, episodes, tf_convention=False):
    for _ in range(episodes):
        steps = int(rng.integers(1, 12))
        terminated = bool(rng.random() < 0.5)
        for t in range(steps):
            last = t == steps - 1
            observation = rng.integers(1, 255, writer.observation_shape, dtype=np.uint8)
            reward = float(rng.choice([-1.0, 0.0, 1.0, 0.37]))
            if (
                tf_convention
            ):  # TF agents: terminal=1 at every episode end, time-outs included; no episode_end
                writer.add(observation, int(rng.integers(6)), reward, terminal=last)
            else:
                writer.add(
                    observation, int(rng.integers(6)), reward, terminal=last and terminated, episode_end=last
                )


@pytest.mark.parametrize("tf_convention", [False, True], ids=["jax-convention", "tf-convention"])
@pytest.mark.parametrize("update_horizon", [1, 3, 9])
@pytest.mark.parametrize("episodes", [4, 40], ids=["not-full", "wrapped"])
def test_write_read_round_trip_and_sampling(tmp_path, tf_convention, update_horizon, episodes):
    rng = np.random.default_rng(update_horizon * 100 + episodes)
    writer = DopamineReplayWriter(60, (5, 3), stack_size=4, update_horizon=update_horizon)
    fill(writer, rng, episodes, tf_convention)
    writer.save(tmp_path, 3)
    replay = DopamineReplay(tmp_path, gamma=0.9)
    assert replay.update_horizon == update_horizon and replay.is_full() == (writer.add_count >= 60)
    for name, array in writer.store.items():
        assert replay.store[name].dtype == array.dtype
        np.testing.assert_array_equal(replay.store[name], array)
    assert replay.episode_end_indices == writer.episode_end_indices
    if len(replay.valid_indices()):
        assert_matches_reference(replay, writer.store, writer.episode_end_indices)


@pytest.mark.parametrize("log_count", [0, 2])
def test_dqn_replay_dataset_logged_layout(tmp_path, log_count):
    """batch_rl logs the buffer when add_count % capacity == capacity - 1: first log not full, later ones full,
    TF terminal convention, no episode_end_indices file."""
    capacity = 50
    rng = np.random.default_rng(log_count)
    writer = DopamineReplayWriter(capacity, (4, 4), stack_size=4, update_horizon=1)
    while writer.add_count < log_count * capacity + capacity - 1:
        fill(writer, rng, 1, tf_convention=True)
        if (
            writer.add_count > log_count * capacity + capacity - 1
        ):  # overshot: start again (keeps the test simple)
            writer = DopamineReplayWriter(capacity, (4, 4), stack_size=4, update_horizon=1)
    writer.save(tmp_path, log_count)
    (tmp_path / f"episode_end_indices_ckpt.{log_count}.gz").unlink()
    replay = DopamineReplay(tmp_path, log_count)
    assert replay.cursor == capacity - 1 and replay.episode_end_indices == set()
    valid = set(replay.valid_indices())
    assert not valid & {capacity - 2, capacity - 1, 0, 1, 2}
    assert_matches_reference(replay, writer.store, set())


def test_sampling_without_indices_draws_valid_indices(legacy):
    replay = DopamineReplay(legacy / "replay", seed=3)
    batch = replay.sample_transition_batch()
    assert batch["state"].shape == (32, 84, 84, 4) and set(batch["indices"]) <= set(replay.valid_indices())
    again = DopamineReplay(legacy / "replay", seed=3).sample_transition_batch()
    np.testing.assert_array_equal(batch["indices"], again["indices"])
    first = replay.sample_transition_batch(indices=batch["indices"][:4], channels_first=True)
    np.testing.assert_array_equal(first["state"], np.moveaxis(batch["state"][:4], -1, 1))


# --- bad input -----------------------------------------------------------------------------------------
def copy_replay(legacy, tmp_path):
    target = tmp_path / "replay"
    shutil.copytree(legacy / "replay", target)
    return target


def test_truncated_corrupt_and_foreign_files(legacy, tmp_path):
    folder = copy_replay(legacy, tmp_path)
    observation = folder / "$store$_observation_ckpt.7.gz"
    data = observation.read_bytes()
    for broken, how in (
        (data[: len(data) // 2], "truncated"),
        (data[:20] + bytes(len(data) - 20), "corrupt"),
        (b"timestamp,reward\n1,0\n", "foreign"),
    ):
        observation.write_bytes(broken)
        for threshold in (256 << 20, 0):
            with pytest.raises(AnewError, match="not a readable Dopamine replay file"):
                DopamineReplay(folder, mmap_threshold_bytes=threshold)
    observation.write_bytes(gzip.compress(pickle.dumps(np.zeros((3, 84, 84), np.uint8))))
    with pytest.raises(AnewError, match="not a readable Dopamine replay file"):
        DopamineReplay(folder)


def test_missing_files_wrong_suffix_and_bad_indices(legacy, tmp_path):
    folder = copy_replay(legacy, tmp_path)
    assert complete_suffixes(folder) == [7]
    with pytest.raises(AnewError, match="missing files"):
        DopamineReplay(folder, suffix=6)
    (folder / "invalid_range_ckpt.7.gz").unlink()
    with pytest.raises(AnewError, match="no complete Dopamine replay checkpoint"):
        DopamineReplay(folder)
    with pytest.raises(AnewError, match="not a folder"):
        DopamineReplay(folder / "nothing-here")
    replay = DopamineReplay(legacy / "replay")
    with pytest.raises(AnewError, match="indices must lie"):
        replay.sample_transition_batch(2, [0, 1000])
    with pytest.raises(AnewError, match="as many indices"):
        replay.sample_transition_batch(3, [0, 1])


def test_pickled_episode_ends_go_through_the_restricted_unpickler(legacy, tmp_path):
    folder = copy_replay(legacy, tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    with gzip.open(folder / "episode_end_indices_ckpt.7.gz", "wb") as out:
        pickle.dump({1, Evil()}, out)
    with pytest.raises(UnsafePickleError, match="builtins.print"):
        DopamineReplay(folder)


def test_read_npy_plain_and_big_files(tmp_path):
    array = np.arange(5000, dtype=np.int32).reshape(50, 100)
    np.save(tmp_path / "plain.npy", array)
    assert not isinstance(read_npy(tmp_path / "plain.npy"), np.memmap)
    assert isinstance(read_npy(tmp_path / "plain.npy", mmap_threshold_bytes=10), np.memmap)
    with gzip.open(tmp_path / "big.gz", "wb") as out:
        np.save(out, array)
    cache = tmp_path / "cache"
    mapped = read_npy(tmp_path / "big.gz", mmap_threshold_bytes=10, cache_dir=cache)
    np.testing.assert_array_equal(mapped, array)
    assert isinstance(mapped, np.memmap) and len(list(cache.iterdir())) == 1
    np.testing.assert_array_equal(
        read_npy(tmp_path / "big.gz", mmap_threshold_bytes=10, cache_dir=cache), array
    )
    for value in (
        np.asfortranarray(array[:7, :9].astype(np.float64)),
        np.array(1333),
        np.zeros((0, 3), np.uint8),
    ):
        with gzip.open(tmp_path / "small.gz", "wb") as out:
            np.save(out, value)
        loaded = read_npy(tmp_path / "small.gz")
        assert loaded.dtype == value.dtype and loaded.shape == value.shape
        np.testing.assert_array_equal(loaded, value)


def test_msgpack_episode_ends_of_later_dopamine(legacy, tmp_path):
    """Dopamine after 4.1.2 writes non-array attributes with msgpack instead of pickle."""
    msgpack = pytest.importorskip("msgpack")
    folder = copy_replay(legacy, tmp_path)
    with gzip.open(folder / "episode_end_indices_ckpt.7.gz", "wb") as out:
        out.write(msgpack.packb({"__dopamine_type__": "set", "items": [826, 129, 332]}, use_bin_type=True))
    replay = DopamineReplay(folder)
    assert replay.episode_end_indices == {129, 332, 826}
    np.testing.assert_array_equal(replay.valid_indices(), np.load(legacy / "valid_indices.npy"))
