"""Lever pulling: the shared reward, its random level, the supervised target, API and state."""

from __future__ import annotations

import numpy as np
import pytest

from anew.envs.levers import LeversSim, distinct_count, target_levers
from anew.envs.multiagent import TeamVectorEnv, make_parallel, make_team_env
from anew.errors import AnewError


def test_parallel_api() -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    parallel_api_test(make_parallel("anew/Levers-v0"), num_cycles=5)


def test_reward_counts_distinct_levers() -> None:
    sim = LeversSim(3, seed=0)
    sim.reset()
    actions = np.array([[0, 1, 2, 3, 4], [0, 0, 0, 0, 0], [1, 1, 2, 2, 4]])
    rewards, terminated, truncated = sim.step(actions)
    np.testing.assert_allclose(rewards, np.repeat([[1.0], [0.0], [0.5]], 5, axis=1))
    assert terminated.all() and not truncated.any() and sim.shared_reward
    assert sim.episode_metrics()["distinct_levers"].tolist() == [5, 1, 3]
    np.testing.assert_allclose(sim.team_reward(rewards), [1.0, 0.0, 0.5])


def test_random_pulls_reach_the_analytic_level() -> None:
    sim = LeversSim(40_000, seed=1)
    sim.reset()
    rewards, *_ = sim.step(np.random.default_rng(2).integers(0, 5, (40_000, 5)))
    analytic = (5 * (1 - 0.8**5) - 1) / 4
    assert analytic == pytest.approx(0.5904)
    assert rewards[:, 0].mean() == pytest.approx(analytic, abs=0.006)  # ~5 standard errors


def test_ids_drawn_with_replacement_unless_distinct() -> None:
    sim = LeversSim(20_000, seed=3)
    sim.reset()
    duplicates = (distinct_count(sim.observe()) < 5).mean()
    assert duplicates == pytest.approx(1 - np.prod(1 - np.arange(5) / 500), abs=0.006)  # about 2%
    distinct = LeversSim(20_000, seed=3, distinct_ids=True)
    distinct.reset()
    assert (distinct_count(distinct.observe()) == 5).all()
    assert distinct.observe().min() >= 0 and distinct.observe().max() < 500


def test_supervised_target_is_the_rank_of_the_id() -> None:
    ids = np.array([[40, 7, 300, 12, 8], [5, 5, 1, 9, 5]])
    assert target_levers(ids).tolist() == [[3, 0, 4, 2, 1], [1, 2, 0, 4, 3]]  # ties: lower slot first
    sim = LeversSim(500, seed=4)
    sim.reset()
    targets = sim.info()["target_lever"]
    assert (np.sort(targets, axis=1) == np.arange(5)).all()
    rewards, *_ = sim.step(targets)
    assert (rewards == 1.0).all()


def test_vector_env_autoresets_every_step_and_round_trips() -> None:
    env = make_team_env("anew/Levers-v0", num_envs=4, seed=0)
    obs, info = env.reset(seed=5)
    assert obs.shape == (4, 5) and info["active"].all()
    obs2, rewards, terminated, truncated, info = env.step(np.zeros((4, 5), int))
    assert terminated.all() and not truncated.any() and info["_final_obs"].all() and (rewards == 0).all()
    np.testing.assert_array_equal(info["final_obs"], obs)
    assert not np.array_equal(obs2, obs)  # new groups
    np.testing.assert_allclose(info["final_metrics"]["reward"], 0.0)
    state = env.state_dict()
    expected = [env.step(np.ones((4, 5), int))[0] for _ in range(3)]
    other = TeamVectorEnv(LeversSim(4, seed=9))
    other.reset(seed=1)
    other.load_state_dict(state)
    for want in expected:
        np.testing.assert_array_equal(other.step(np.ones((4, 5), int))[0], want)


def test_options_and_render() -> None:
    with pytest.raises(AnewError, match="pool"):
        LeversSim(1, pool=3, distinct_ids=True)
    sim = LeversSim(1, seed=0, levers=4)
    sim.reset()
    sim.step(np.array([[0, 0, 3, 1]]))
    image = sim.render(0)
    assert image.shape == (48, 96, 3) and image.dtype == np.uint8
    assert tuple(image[24 + 1, 12]) == (220, 30, 30)  # lever 0 pulled twice
    assert tuple(image[24 + 12, 2 * 24 + 12]) == (150, 150, 150)  # lever 2 idle
