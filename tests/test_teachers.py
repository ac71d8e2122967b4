"""Teachers answer on the student's observation layout; teacher data comes from rollouts or replay files."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from helpers_agents import FixedQ, small_dqn

from anew.agents.replay import ReplayBuffer
from anew.envs import make_vector_env
from anew.errors import AnewError
from anew.reincarnation import Teacher, collect_teacher_replay, is_dopamine_checkpoint
from anew.reincarnation.formats import DopamineReplay
from anew.reincarnation.teachers import (
    DopamineJaxReplaySource,
    DopamineReplaySource,
    load_teacher_data,
    replay_like,
    to_dopamine_layout,
)
from anew.runners.teacher_setup import load_teacher

torch.set_num_threads(1)
# The preset's schedule, with 1-step rows: the tests below read discounts of 0 or gamma.
small_agent = partial(small_dqn, quick=False, n_step=1)


def test_teacher_from_agent_is_a_frozen_copy():
    agent = small_agent()
    teacher = Teacher.from_agent(agent)
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = agent.online(torch.as_tensor(obs)).detach()
    q = teacher.q_values(obs)
    assert torch.allclose(q, expected) and not q.requires_grad
    with torch.no_grad():  # training the agent further must not move the teacher
        for parameter in agent.online.parameters():
            parameter.add_(1.0)
    assert torch.allclose(teacher.q_values(obs), expected)
    assert teacher.eval_epsilon == agent.config.eval_epsilon


def test_teacher_acts_greedily_or_explores():
    teacher = Teacher(FixedQ([0.0, 1.0, 0.5]), 3, eval_epsilon=0.0, explore_epsilon=1.0, seed=3)
    obs = np.zeros((400, 2), np.float32)
    assert (teacher.act(obs, explore=False) == 1).all()
    counts = np.bincount(teacher.act(obs, explore=True), minlength=3)
    assert (counts > 90).all(), counts  # uniform over 3 actions: ~133 each


def test_agent_without_q_network_cannot_teach():
    with pytest.raises(AnewError, match="Q-network"):
        Teacher.from_agent(object())


def test_dopamine_teacher_reads_anew_layout(fixtures_dir):
    folder = fixtures_dir / "dopamine" / "jax_dqn_pong"
    expected = np.load(folder / "q_values_expected.npz")
    teacher = Teacher.from_dopamine(folder / "checkpoints", "dqn")
    anew_obs = np.ascontiguousarray(expected["states"].transpose(0, 3, 1, 2))  # what anew's Atari envs return
    q = teacher.q_values(anew_obs).numpy()
    np.testing.assert_allclose(q, expected["q_values"], atol=1e-5)
    assert to_dopamine_layout(torch.as_tensor(anew_obs)).shape == (8, 84, 84, 4)
    assert is_dopamine_checkpoint(folder) and is_dopamine_checkpoint(folder / "checkpoints")
    assert not is_dopamine_checkpoint(fixtures_dir / "dopamine" / "legacy_replay_pong")


def test_rainbow_teacher_gives_expected_q(fixtures_dir):
    folder = fixtures_dir / "dopamine" / "jax_rainbow_breakout"
    expected = np.load(folder / "q_values_expected.npz")
    teacher = Teacher.from_dopamine(folder, "rainbow")
    q = teacher.q_values(expected["states"].transpose(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(q, expected["q_values"], atol=1e-5)


def test_collect_teacher_replay_on_cartpole():
    teacher = Teacher(FixedQ([0.0, 1.0]), 2, explore_epsilon=0.0)
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    agent = small_agent()
    replay = replay_like(agent.replay, 1_000, num_envs=2)
    stats = collect_teacher_replay(teacher, envs, 300, replay, seed=0)
    envs.close()
    # Always pushing right ends CartPole episodes after ~10 steps: many episodes, each adds a FINAL row.
    assert stats["episodes"] >= 20 and stats["mean_return"] < 20
    assert len(replay) == 300 + stats["episodes"]
    sample = replay.sample(64)
    assert (sample.action == 1).all()
    assert np.all(np.isclose(sample.discount, 0.0) | np.isclose(sample.discount, 0.99))


def test_collect_teacher_replay_clips_rewards():
    teacher = Teacher(FixedQ([1.0, 0.0]), 2, explore_epsilon=0.0)
    envs = make_vector_env("CartPole-v1", 1, seed=0)
    replay = replay_like(small_agent().replay, 200, num_envs=1)
    collect_teacher_replay(teacher, envs, 50, replay, reward_clip=0.5)
    envs.close()
    assert np.isclose(replay.sample(32).reward.max(), 0.5)


def test_anew_replay_dir_as_teacher_data(tmp_path):
    buffer = ReplayBuffer(100, 1, (3,), n_step=1, gamma=0.5)
    for t in range(30):
        obs = np.full((1, 3), t, np.float32)
        buffer.add(obs, np.array([t % 2]), np.array([1.0]), np.array([False]), np.array([t == 29]), obs + 1)
    buffer.save(tmp_path / "replay")
    data = load_teacher_data(tmp_path, n_step=2, gamma=0.5)  # a checkpoint folder holding replay/
    sample = data.sample(16)
    assert sample.obs.shape == (16, 3)
    # n-step is applied at sampling: 2-step windows inside the episode give 1 + 0.5, discount 0.25.
    inside = sample.obs[:, 0] < 28
    np.testing.assert_allclose(sample.reward[inside], 1.5)
    np.testing.assert_allclose(sample.discount[inside], 0.25)


def test_dopamine_legacy_replay_as_teacher_data(fixtures_dir):
    folder = fixtures_dir / "dopamine" / "legacy_replay_pong" / "replay"
    source = load_teacher_data(folder.parent, n_step=3, gamma=0.99, seed=0)
    assert isinstance(source, DopamineReplaySource)
    sample = source.sample(32)
    assert sample.obs.shape == (32, 4, 84, 84) and sample.obs.dtype == np.uint8
    # The same indices through Dopamine's own layout: stack-last states, terminal flags.
    reference = DopamineReplay(folder).sample_transition_batch(indices=sample.indices)
    np.testing.assert_array_equal(sample.obs, reference["state"].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(sample.next_obs, reference["next_state"].transpose(0, 3, 1, 2))
    np.testing.assert_allclose(sample.discount, 0.99**3 * (1 - reference["terminal"]), rtol=1e-6)
    np.testing.assert_allclose(sample.reward, reference["reward"], atol=1e-6)


def test_dopamine_jax_replay_as_teacher_data(fixtures_dir):
    folder = fixtures_dir / "dopamine" / "jax_dqn_pong" / "checkpoints"
    source = load_teacher_data(folder / "3", n_step=1, gamma=0.99)
    assert isinstance(source, DopamineJaxReplaySource)
    sample = source.sample(8)
    assert sample.obs.shape == (8, 4, 84, 84) and sample.next_obs.shape == (8, 4, 84, 84)
    assert np.all(np.isclose(sample.discount, 0.0) | np.isclose(sample.discount, 0.99))


def test_teacher_data_errors(tmp_path):
    with pytest.raises(AnewError, match="does not exist"):
        load_teacher_data(tmp_path / "missing", n_step=1, gamma=0.99)
    with pytest.raises(AnewError, match="no replay"):
        load_teacher_data(tmp_path, n_step=1, gamma=0.99)


def test_to_replay_keeps_every_transition_dopamine_samples(fixtures_dir):
    """Every (state, action, n-step reward, next state, terminal) Dopamine can sample is in the anew buffer."""
    dopamine = DopamineReplay(fixtures_dir / "dopamine" / "legacy_replay_pong" / "replay")
    buffer = dopamine.to_replay()
    low, high = buffer._valid_range()
    rows = np.arange(low[0], high[0]) % buffer.rows_per_env
    ours = buffer.transitions(np.zeros(len(rows), np.int64), rows)
    keys = {}
    for i in range(len(rows)):
        key = (
            ours.obs[i].tobytes(),
            int(ours.action[i]),
            ours.next_obs[i].tobytes(),
            float(ours.discount[i]) == 0,
        )
        keys[key] = float(ours.reward[i])
    valid = dopamine.valid_indices()
    # Dopamine also samples the zero padding rows that open an episode after a timeout (its stacks then mix
    # two episodes); anew drops padding, so those are the only transitions it leaves out.
    store = dopamine.store
    padding = np.array(
        [
            not (
                store["observation"][i].any()
                or store["action"][i]
                or store["reward"][i]
                or store["terminal"][i]
            )
            for i in valid
        ]
    )
    timeouts = [i for i in dopamine.episode_end_indices if not store["terminal"][i]]
    assert padding.sum() <= (dopamine.stack_size - 1) * len(timeouts)
    valid = valid[~padding]
    batch = dopamine.sample_transition_batch(indices=valid, channels_first=True)
    for i in range(len(valid)):
        key = (
            batch["state"][i].tobytes(),
            int(batch["action"][i]),
            batch["next_state"][i].tobytes(),
            bool(batch["terminal"][i]),
        )
        assert key in keys, f"Dopamine index {valid[i]} has no anew counterpart"
        assert abs(keys[key] - float(batch["reward"][i])) < 1e-6
    # anew only adds windows that end at a timeout (it bootstraps them) and the cut-off first stacks.
    assert len(valid) <= len(rows) <= len(valid) + 3 * (dopamine.update_horizon + dopamine.stack_size)


def test_load_teacher_errors_name_the_fix(tmp_path):
    with pytest.raises(AnewError, match="does not exist"):
        load_teacher(tmp_path / "nothing")
    with pytest.raises(AnewError, match="Dopamine checkpoints folder"):
        load_teacher(tmp_path)


def test_teacher_data_can_live_on_disk(tmp_path):
    replay = replay_like(small_agent().replay, 200, num_envs=1, storage_dir=tmp_path / "teacher")
    teacher = Teacher(FixedQ([1.0, 0.0]), 2, explore_epsilon=0.0)
    envs = make_vector_env("CartPole-v1", 1, seed=0)
    collect_teacher_replay(teacher, envs, 30, replay)
    envs.close()
    on_disk = np.load(tmp_path / "teacher" / "obs.npy", mmap_mode="r")
    assert np.isin(replay.sample(8).obs, on_disk).all()
