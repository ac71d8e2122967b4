"""Dopamine 4.1.x JAX replay checkpoints (msgpack + snappy) read without JAX, sampled exactly like Dopamine."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from anew.errors import AnewError
from anew.reincarnation.formats.dopamine_jax_replay import (
    DopamineJaxReplay,
    find_replay_msgpack,
    sum_tree_query,
)

msgpack = pytest.importorskip("msgpack")
cramjam = pytest.importorskip("cramjam")

AGENTS = {"jax_dqn_pong": 3, "jax_rainbow_breakout": 5}
ELEMENT_FIELDS = ("state", "action", "reward", "next_state", "is_terminal", "episode_end", "keys")


@pytest.fixture(scope="module", params=sorted(AGENTS))
def agent(request, fixtures_dir):
    return fixtures_dir / "dopamine" / request.param, AGENTS[request.param]


def test_pinned_keys_equal_dopamine(agent):
    folder, iteration = agent
    replay = DopamineJaxReplay(folder / "checkpoints")
    assert replay.path == folder / "checkpoints" / str(iteration) / "replay" / "checkpoint.msgpack"
    expected = np.load(folder / "replay_expected_samples.npz")
    assert replay.add_count == int(expected["add_count"])
    np.testing.assert_array_equal(replay.keys, expected["all_memory_keys"])
    batch = replay.sample(32, expected["keys"])
    for name in ELEMENT_FIELDS:
        assert batch[name].dtype == expected[name].dtype and batch[name].shape == expected[name].shape, name
        assert np.array_equal(batch[name], expected[name]), name
    assert batch["is_terminal"].any(), "the pinned keys include the terminal elements"


def test_dopamine_sampler_continues_from_the_saved_rng(agent):
    folder, _ = agent
    replay = DopamineJaxReplay(folder / "checkpoints")
    expected = np.load(folder / "replay_expected_samples.npz")
    batch = replay.sample(32)
    for name, key in (
        ("keys", "rng_keys"),
        ("state", "rng_state"),
        ("action", "rng_action"),
        ("reward", "rng_reward"),
    ):
        assert batch[name].dtype == expected[key].dtype and np.array_equal(batch[name], expected[key]), name
    assert ("probabilities" in batch) == replay.prioritized
    if replay.prioritized:
        np.testing.assert_allclose(
            batch["probabilities"], replay.priorities(batch["keys"]) / replay.sum_tree[0]
        )


def test_network_input_states_come_from_this_replay(agent):
    folder, _ = agent
    replay = DopamineJaxReplay(folder / "checkpoints")
    expected = np.load(folder / "q_values_expected.npz")
    np.testing.assert_array_equal(
        replay.sample(8, expected["replay_keys_of_states"])["state"], expected["states"]
    )


def test_rainbow_sum_tree_layout(fixtures_dir):
    replay = DopamineJaxReplay(fixtures_dir / "dopamine" / "jax_rainbow_breakout" / "checkpoints")
    nodes = replay.sum_tree
    assert replay.prioritized and len(nodes) == 2 ** (int(np.ceil(np.log2(150))) + 1) - 1 == 511
    inner = np.arange((len(nodes) - 1) // 2)
    np.testing.assert_allclose(nodes[inner], nodes[2 * inner + 1] + nodes[2 * inner + 2])
    assert replay.priorities(replay.keys).sum() == pytest.approx(nodes[0])
    assert not DopamineJaxReplay(fixtures_dir / "dopamine" / "jax_dqn_pong" / "checkpoints").prioritized


def test_sum_tree_query_is_inverse_cdf():
    rng = np.random.default_rng(0)
    leaves = rng.random(13) * (rng.random(13) > 0.3)  # some zero priorities
    depth = int(np.ceil(np.log2(len(leaves)))) + 1
    nodes = np.zeros(2**depth - 1)
    first_leaf = 2 ** (depth - 1) - 1
    nodes[first_leaf : first_leaf + len(leaves)] = leaves
    for node in range(first_leaf - 1, -1, -1):
        nodes[node] = nodes[2 * node + 1] + nodes[2 * node + 2]
    targets = rng.uniform(0, nodes[0], size=2000)
    expected = np.searchsorted(np.cumsum(leaves), targets, side="right")
    np.testing.assert_array_equal(sum_tree_query(nodes, targets), expected)
    assert leaves[sum_tree_query(nodes, targets)].min() > 0


# --- a synthetic file in Dopamine's encoding --------------------------------------------------------------
def encode(array: np.ndarray) -> dict:
    dtype = repr(array.dtype.descr) if array.dtype.kind == "V" else repr(array.dtype.str)
    return {"dtype": dtype, "shape": list(array.shape), "data": array.tobytes(), "order": "C"}


def compressed(state: np.ndarray) -> dict:
    data = np.frombuffer(bytes(cramjam.snappy.compress_raw(state.tobytes())), dtype=np.uint8)
    packed = np.array(
        (data, state.shape, state.dtype.str),
        dtype=[("data", "u1", data.shape), ("shape", "i4", (3,)), ("dtype", "S3")],
    )
    return encode(packed)


def write_synthetic(path, compress=True, count=5, seed=0):
    rng = np.random.default_rng(seed)
    states = rng.integers(0, 255, (count + 1, 6, 5, 4), dtype=np.uint8)
    pack = compressed if compress else encode
    values = [
        [
            pack(states[i]),
            encode(np.array(i % 3, np.int32)),
            0.5 * i,
            pack(states[i + 1]),
            i == count - 1,
            i == count - 1,
        ]
        for i in range(count)
    ]
    generator = np.random.PCG64(seed)
    rng_state = generator.state
    rng_state["state"] = {k: {"integer": str(v)} for k, v in rng_state["state"].items()}
    state = {
        "add_count": 10 + count,
        "memory": {"keys": list(range(10, 10 + count)), "values": values, "treedef": b"ignored"},
        "sampling_distribution": {
            "key_by_index": list(range(10, 10 + count)),
            "index_by_key": {10 + i: i for i in range(count)},
            "rng_state": rng_state,
        },
        "transition_accumulator": {"trajectory": [], "treedef": b"ignored"},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgpack.packb(state, use_bin_type=True))
    return states, np.random.Generator(np.random.PCG64(seed))


@pytest.mark.parametrize("compress", [True, False], ids=["snappy", "uncompressed"])
def test_synthetic_buffer_round_trip(tmp_path, compress):
    path = tmp_path / "checkpoints" / "2" / "replay" / "checkpoint.msgpack"
    states, rng = write_synthetic(path, compress)
    replay = DopamineJaxReplay(path)
    batch = replay.sample(3, np.array([12, 10, 14], np.int32))
    np.testing.assert_array_equal(batch["state"], states[[2, 0, 4]])
    np.testing.assert_array_equal(batch["next_state"], states[[3, 1, 5]])
    np.testing.assert_array_equal(batch["action"], np.array([2, 0, 1], np.int32))
    np.testing.assert_array_equal(batch["reward"], [1.0, 0.0, 2.0])
    np.testing.assert_array_equal(batch["is_terminal"], [False, False, True])
    np.testing.assert_array_equal(
        replay.sample(6)["keys"], 10 + rng.integers(5, size=6)
    )  # Dopamine's uniform draw


def test_path_resolution(tmp_path):
    for n in (2, 4):
        write_synthetic(tmp_path / "checkpoints" / str(n) / "replay" / "checkpoint.msgpack", seed=n)
    (tmp_path / "checkpoints" / "sentinel_checkpoint_complete.2").write_bytes(b"done")
    checkpoints = tmp_path / "checkpoints"
    assert find_replay_msgpack(checkpoints).parts[-3] == "2"  # the latest *complete* iteration
    assert find_replay_msgpack(checkpoints, 4).parts[-3] == "4"
    assert find_replay_msgpack(checkpoints / "4").parts[-3] == "4"
    assert find_replay_msgpack(checkpoints / "4" / "replay").parts[-3] == "4"
    with pytest.raises(AnewError, match="found iterations"):
        find_replay_msgpack(checkpoints, 3)
    with pytest.raises(AnewError, match="no Dopamine 4.x replay"):
        find_replay_msgpack(tmp_path / "elsewhere")


def test_truncated_corrupt_and_foreign_files(tmp_path, fixtures_dir):
    source = (
        fixtures_dir / "dopamine" / "jax_dqn_pong" / "checkpoints" / "3" / "replay" / "checkpoint.msgpack"
    )
    path = tmp_path / "checkpoint.msgpack"
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(AnewError, match="truncated, corrupt or foreign"):
        DopamineJaxReplay(path)
    path.write_bytes(msgpack.packb({"weights": [1, 2, 3]}))
    with pytest.raises(AnewError, match="not a Dopamine 4.x replay buffer"):
        DopamineJaxReplay(path)
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(AnewError, match="truncated, corrupt or foreign"):
        DopamineJaxReplay(path)
    shutil.copy(source, path)
    replay = DopamineJaxReplay(path)
    replay._states[0] = replay._states[0].copy()
    replay._states[0]["data"][:40] = 255  # corrupt the snappy stream of one element
    with pytest.raises(AnewError):
        replay.sample(1, replay.keys[:1])
    with pytest.raises(AnewError, match="not in this replay"):
        replay.sample(1, np.array([5]))
