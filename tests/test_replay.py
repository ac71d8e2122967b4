"""The replay buffer against a brute-force model of the episodes that were fed to it."""

from __future__ import annotations

import numpy as np
import pytest

from anew.agents.replay import ReplayBuffer
from anew.errors import AnewError

GAMMA = 0.9


def play(num_envs: int, steps: int, seed: int, stack: int = 0):
    """Random episodes; each observation carries a unique id so samples can be traced back.

    Returns the per-step feed for the buffer and, per id, the env's episode stream (list of
    (id, reward, terminated, truncated)) plus that env's zero-padded frame stacks.
    """
    rng = np.random.default_rng(seed)
    next_id = 1
    current = np.zeros(num_envs, dtype=np.int64)
    episodes: dict[int, list[int]] = {}  # id -> the ids of its episode, in order
    info: dict[int, tuple[float, bool, bool, int]] = {}  # id -> (reward, term, trunc, next id)
    frames_before: dict[int, list[int]] = {}  # id -> ids of the frames in its stack (0 = padding)
    episode_ids: list[list[int]] = [[] for _ in range(num_envs)]

    def new_obs(env: int, start: bool) -> int:
        nonlocal next_id
        uid = next_id
        next_id += 1
        if start:
            episode_ids[env] = []
        episode_ids[env].append(uid)
        episodes[uid] = episode_ids[env]
        history = [0] * stack + episode_ids[env]
        frames_before[uid] = history[-stack:] if stack else [uid]
        return uid

    for env in range(num_envs):
        current[env] = new_obs(env, True)
    feed = []
    for _ in range(steps):
        reward = rng.normal(size=num_envs).round(2)
        terminated = rng.random(num_envs) < 0.08
        truncated = ~terminated & (rng.random(num_envs) < 0.05)
        nxt = np.array([new_obs(e, False) for e in range(num_envs)])
        for e in range(num_envs):
            info[current[e]] = (reward[e], bool(terminated[e]), bool(truncated[e]), nxt[e])
        feed.append((current.copy(), reward, terminated, truncated, nxt.copy()))
        current = nxt
        for e in np.flatnonzero(terminated | truncated):
            current[e] = new_obs(e, True)
    return feed, info, frames_before


def encode(ids: np.ndarray, frames_before: dict[int, list[int]], stack: int) -> np.ndarray:
    if not stack:
        return ids.astype(np.float32)[:, None]
    # Frame value = id mod 251 + 1 (0 stays padding); tests keep fewer than 251 ids in a buffer.
    return np.stack(
        [[np.full((2, 2), (f % 251) + 1 if f else 0, np.uint8) for f in frames_before[i]] for i in ids]
    )


def expected(uid: int, info, n: int) -> tuple[float, float, int]:
    """(n-step reward, discount, id of the bootstrap observation) from the brute-force model."""
    total, current = 0.0, uid
    for k in range(n):
        reward, terminated, truncated, nxt = info[current]
        total += GAMMA**k * reward
        if terminated:
            return total, 0.0, nxt
        if truncated or k == n - 1:
            return total, GAMMA ** (k + 1), nxt
        current = nxt
    raise AssertionError


def fill(buffer: ReplayBuffer, feed, frames_before, stack: int) -> None:
    for ids, reward, terminated, truncated, nxt in feed:
        buffer.add(
            encode(ids, frames_before, stack),
            np.zeros(len(ids), np.int32),
            reward,
            terminated,
            truncated,
            encode(nxt, frames_before, stack),
        )


@pytest.mark.parametrize("num_envs,n_step,capacity", [(1, 1, 1000), (3, 3, 90), (4, 5, 400)])
def test_n_step_samples_match_brute_force(num_envs: int, n_step: int, capacity: int) -> None:
    feed, info, frames_before = play(num_envs, 300, seed=num_envs)
    buffer = ReplayBuffer(capacity, num_envs, (1,), n_step=n_step, gamma=GAMMA, seed=0)
    fill(buffer, feed, frames_before, 0)
    for _ in range(20):
        batch = buffer.sample(64)
        for obs, reward, discount, next_obs in zip(batch.obs, batch.reward, batch.discount, batch.next_obs):
            want_reward, want_discount, want_next = expected(int(obs[0]), info, n_step)
            assert reward == pytest.approx(want_reward, abs=1e-5)
            assert discount == pytest.approx(want_discount, abs=1e-6)
            if want_discount > 0:  # after a terminal the next observation is never used
                assert int(next_obs[0]) == want_next


def test_truncation_bootstraps_from_the_final_observation() -> None:
    buffer = ReplayBuffer(40, 1, (1,), n_step=3, gamma=GAMMA)
    obs = lambda v: np.array([[v]], np.float32)
    buffer.add(obs(1), np.array([0]), np.array([1.0]), np.array([False]), np.array([False]), obs(2))
    buffer.add(obs(2), np.array([0]), np.array([2.0]), np.array([False]), np.array([True]), obs(99))
    buffer.add(obs(10), np.array([0]), np.array([5.0]), np.array([False]), np.array([False]), obs(11))
    for _ in range(4):
        buffer.add(obs(11), np.array([0]), np.array([0.0]), np.array([False]), np.array([False]), obs(11))
    sample = buffer.transitions(np.array([0]), np.array([0]))
    assert sample.reward[0] == pytest.approx(1.0 + GAMMA * 2.0)
    assert sample.discount[0] == pytest.approx(GAMMA**2)
    assert sample.next_obs[0, 0] == 99  # the final observation, not the next episode's first


def test_frame_stacks_equal_zero_padded_env_stacks() -> None:
    stack = 4
    feed, info, frames_before = play(2, 100, seed=7, stack=stack)
    buffer = ReplayBuffer(240, 2, (stack, 2, 2), obs_dtype=np.uint8, frame_stack=stack, n_step=3, gamma=GAMMA)
    fill(buffer, feed, frames_before, stack)
    assert buffer.obs.shape[2:] == (2, 2)  # one frame per row, not four
    id_of_frame = {(uid % 251) + 1: uid for uid in frames_before}
    for _ in range(10):
        batch = buffer.sample(32)
        for obs, next_obs, discount in zip(batch.obs, batch.next_obs, batch.discount):
            uid = id_of_frame[int(obs[-1, 0, 0])]
            np.testing.assert_array_equal(obs, encode(np.array([uid]), frames_before, stack)[0])
            _, want_discount, want_next = expected(uid, info, 3)
            if want_discount > 0:
                np.testing.assert_array_equal(
                    next_obs, encode(np.array([want_next]), frames_before, stack)[0]
                )


def test_save_load_round_trip_gives_identical_samples(tmp_path) -> None:
    feed, _, frames_before = play(2, 150, seed=3)
    buffer = ReplayBuffer(200, 2, (1,), n_step=2, gamma=GAMMA, seed=5)
    fill(buffer, feed, frames_before, 0)
    buffer.save(tmp_path / "replay")
    restored = ReplayBuffer(200, 2, (1,), n_step=2, gamma=GAMMA, seed=999)
    restored.load(tmp_path / "replay")
    a, b = buffer.sample(50), restored.sample(50)
    for field in ("obs", "action", "reward", "discount", "next_obs", "indices"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_memory_mapped_storage(tmp_path) -> None:
    feed, info, frames_before = play(1, 120, seed=4)
    buffer = ReplayBuffer(500, 1, (1,), n_step=1, gamma=GAMMA, storage_dir=tmp_path / "mm")
    fill(buffer, feed, frames_before, 0)
    assert isinstance(buffer.obs, np.memmap)
    batch = buffer.sample(16)
    for obs, reward in zip(batch.obs, batch.reward):
        assert reward == pytest.approx(expected(int(obs[0]), info, 1)[0], abs=1e-6)


def test_load_rejects_incomplete_directory(tmp_path) -> None:
    feed, _, frames_before = play(1, 30, seed=2)
    buffer = ReplayBuffer(100, 1, (1,))
    fill(buffer, feed, frames_before, 0)
    buffer.save(tmp_path / "replay")
    next((tmp_path / "replay").glob("reward.00000.*")).unlink()
    with pytest.raises(AnewError, match=r"reward\.00000\.npy\S* is missing"):
        ReplayBuffer(100, 1, (1,)).load(tmp_path / "replay")
    with pytest.raises(AnewError, match="num_envs"):
        ReplayBuffer(100, 2, (1,)).load(tmp_path / "replay")


def test_prioritized_sampling_follows_priorities_and_skips_final_rows() -> None:
    feed, _info, frames_before = play(1, 200, seed=11)
    buffer = ReplayBuffer(400, 1, (1,), n_step=1, gamma=GAMMA, prioritized=True, priority_exponent=1.0)
    fill(buffer, feed, frames_before, 0)
    batch = buffer.sample(32, beta=0.5)
    favourite = batch.indices[0]
    others = np.setdiff1d(batch.indices, [favourite])
    buffer.update_priorities(np.array([favourite]), np.array([1e6]))
    buffer.update_priorities(others, np.full(len(others), 1e-6))
    counts = np.bincount(buffer.sample(256, beta=0.5).indices, minlength=400)
    assert counts[favourite] > 128  # it now holds most of the mass
    assert counts[np.flatnonzero(buffer.flags[0] & 4)].sum() == 0  # FINAL rows are never drawn
    weights = buffer.sample(64, beta=0.5).weights
    assert weights.max() == pytest.approx(1.0) and weights.min() > 0
