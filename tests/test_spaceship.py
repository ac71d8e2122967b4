"""Spaceship (PD-VF): API conformance, the force, one step, every termination and the reward, env selection,
theta buckets, batched sim == single envs, resume, rendering."""

from __future__ import annotations

import json
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from anew.envs.spaceship import (
    TEST_ENVS,
    TRAIN_ENVS,
    SpaceshipEnv,
    SpaceshipSim,
    SpaceshipVectorEnv,
    register_spaceship_envs,
    theta_bucket,
)
from anew.envs.spaceship_force import GridForce, analytic_force
from anew.errors import AnewError

register_spaceship_envs()


def _quiet_check(env: gym.Env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # Gymnasium's advice to use a [-1, 1] action box: the paper's is [-3, 3]
        check_env(env, skip_render_check=False)


def test_check_env_and_registration():
    _quiet_check(SpaceshipEnv(render_mode="rgb_array"))
    _quiet_check(SpaceshipEnv(env_index=17, force="grid", render_mode="rgb_array"))
    env = gym.make("anew/Spaceship-v0", env_index=3)
    assert env.spec.max_episode_steps is None
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and np.allclose(obs, [2.5, 0.2]) and info["env_index"] == 3
    vec = gym.make_vec("anew/Spaceship-v0", num_envs=4, env_index=16)
    assert isinstance(vec, SpaceshipVectorEnv) and vec.reset(seed=0)[0].shape == (4, 2)
    assert list(TRAIN_ENVS) == list(range(15)) and list(TEST_ENVS) == [15, 16, 17, 18, 19]


def _hand_force(x: float, y: float, q1: float, q2: float) -> tuple[float, float]:
    """F = sum_i q_i (p - P_i) / (|p - P_i|^3 + 0.1), written out coordinate by coordinate."""
    fx = fy = 0.0
    for q, (cx, cy) in ((q1, (0.0, 0.0)), (q2, (0.0, 5.0))):
        r = math.hypot(x - cx, y - cy)
        fx += q * (x - cx) / (r**3 + 0.1)
        fy += q * (y - cy) / (r**3 + 0.1)
    return fx, fy


def test_force_at_known_points():
    # p = (1, 1), q = (1.5, 0): 1.5 / (2 sqrt 2 + 0.1) = 0.51222036 along (1, 1).
    assert np.allclose(analytic_force(np.array([[1.0, 1.0]]), np.array([[1.5, 0.0]])), 0.51222036, atol=1e-8)
    # On a charge its own term vanishes (0 / 0.1); only the other charge pulls: p = (0, 5), q = (1, 1).
    assert np.allclose(analytic_force(np.array([[0.0, 5.0]]), np.array([[1.0, 1.0]])), [[0.0, 5 / 125.1]])
    points = np.array([[2.5, 0.2], [1.3, 4.1], [4.0, 2.2], [0.3, 0.1]])
    charges = np.array([[1.5, 0.0], [-0.4, 1.2], [0.9, -1.1], [-1.5, 0.3]])
    expected = [_hand_force(x, y, q1, q2) for (x, y), (q1, q2) in zip(points, charges)]
    assert np.allclose(analytic_force(points, charges), expected, rtol=1e-12)


def test_grid_force_is_the_clamped_bilinear_table():
    grid, charges = GridForce(), np.array([[0.7, -1.2]] * 3)
    nodes = np.array([[1.0, 2.0], [1.1, 2.0], [4.9, 0.3]])
    assert np.allclose(grid(nodes, charges), analytic_force(nodes, charges), atol=1e-12)
    midpoint = grid(np.array([[1.05, 2.0]]), charges[:1])
    assert np.allclose(midpoint, grid(nodes[:2], charges[:2]).mean(axis=0))
    outside = np.array([[1.0, 4.97], [5.3, -0.2]])  # clamped to the edge rows 4.9 and 0
    assert np.allclose(
        grid(outside, charges[:2]), analytic_force(np.array([[1.0, 4.9], [4.9, 0.0]]), charges[:2])
    )


def _sim_at(position: tuple[float, float], charges: tuple[float, float] = (0.0, 0.0)) -> SpaceshipSim:
    sim = SpaceshipSim(1, seed=0)
    sim.position[0], sim.charges[0] = position, charges
    return sim


def test_one_step_from_a_known_state_and_theta():
    theta = 0.3
    sim = _sim_at((1.0, 2.0), (1.5 * math.cos(theta), 1.5 * math.sin(theta)))
    fx, fy = _hand_force(1.0, 2.0, 1.5 * math.cos(theta), 1.5 * math.sin(theta))
    obs, reward, terminated, truncated = sim.step(np.array([[1.0, -0.5]]))
    expected = (1.0 + (1.0 + 5 * fx) * 0.045, 2.0 + (-0.5 + 5 * fy) * 0.045)
    assert np.allclose(sim.position[0], expected, rtol=1e-12) and np.allclose(obs[0], expected, atol=1e-6)
    assert reward[0] == 0.0 and not terminated[0] and not truncated[0] and sim.t[0] == 1


def _goal_reward(position: np.ndarray) -> float:
    return math.exp(-3 * math.hypot(position[0] - 2.5, position[1] - 5.0))


@pytest.mark.parametrize(
    "start, action, outcome",
    [
        ((2.5, 4.9), (0.0, 3.0), "door"),
        ((0.05, 2.5), (-3.0, 0.0), "wall"),  # left
        ((4.95, 2.5), (3.0, 0.0), "wall"),  # right
        ((2.5, 0.05), (0.0, -3.0), "wall"),  # bottom
        ((4.95, 4.95), (3.0, 3.0), "wall"),  # above y = 5 but right of the door
        (
            (0.05, 4.95),
            (-3.0, 3.0),
            "wall",
        ),  # left of the door and within 0.2 of P2: the wall is checked first
        ((0.25, 0.25), (-3.0, -3.0), "charge"),  # inside the room, 0.163 from P1
        ((0.3, 4.7), (0.0, 0.0), "charge"),  # 0.42 from P2, pulled to 0.15 by q2 = -0.5
    ],
)
def test_each_termination_and_its_reward(start, action, outcome):
    charges = (0.0, -0.5) if start == (0.3, 4.7) else (0.0, 0.0)
    sim = _sim_at(start, charges)
    _, reward, terminated, truncated = sim.step(np.array([action]))
    assert terminated[0] and not truncated[0]
    assert ("running", "door", "wall", "charge", "time")[sim.outcome[0]] == outcome
    assert reward[0] == pytest.approx(_goal_reward(sim.position[0]), rel=1e-12) and 0 < reward[0] <= 1


def test_time_limit_truncates_at_50_and_pays_the_distance_reward():
    env = SpaceshipEnv()
    env.reset(seed=1)
    env.sim.charges[:] = 0.0  # no force: the ship rests at the start
    for t in range(1, 51):
        obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
        assert not terminated and truncated == (t == 50) and info["t"] == t
        assert reward == (pytest.approx(math.exp(-3 * 4.8)) if t == 50 else 0.0)
    assert info["outcome"] == "time" and np.allclose(obs, [2.5, 0.2])


def test_env_index_selection_including_zero():
    env = SpaceshipEnv(env_index=5)
    _, info = env.reset(seed=0)
    assert info["env_index"] == 5
    _, info = env.reset(seed=0, options={"env_index": 0})
    low, high = theta_bucket(0)
    assert info["env_index"] == 0 and low <= info["theta"] < high
    _, info = env.reset()  # the choice persists
    assert info["env_index"] == 0 and low <= info["theta"] < high
    for bad in (20, -1, 1.5, True):
        with pytest.raises(AnewError, match="env_index"):
            env.reset(options={"env_index": bad})
    with pytest.raises(AnewError, match="env_index"):
        SpaceshipEnv(env_index=20)
    vec = SpaceshipVectorEnv(3, env_index=9, seed=0)
    _, info = vec.reset(options={"env_index": [0, 19, 0]})
    assert info["env_index"].tolist() == [0, 19, 0]


def test_theta_stays_in_its_bucket_and_is_redrawn_at_each_reset():
    sim = SpaceshipSim(20 * 50, seed=4, env_index=np.repeat(np.arange(20), 50).tolist())
    low, high = np.array([theta_bucket(k) for k in sim.env_index]).T
    first = sim.theta.copy()
    for _ in range(5):
        assert np.all((low <= sim.theta) & (sim.theta < high))
        assert np.allclose(sim.charges, 1.5 * np.stack([np.cos(sim.theta), np.sin(sim.theta)], axis=1))
        sim.reset()
    assert np.all(sim.theta != first)  # re-drawn, not fixed per env
    pool = SpaceshipSim(600, seed=2, env_pool=TRAIN_ENVS)
    assert set(pool.env_index.tolist()) == set(TRAIN_ENVS)


def test_batched_sim_equals_single_envs_stepped_one_by_one():
    seed, steps = 11, 140
    actions = np.random.default_rng(0).uniform(-3, 3, size=(steps, 20, 2))
    sim = SpaceshipSim(20, seed=seed, env_index=list(range(20)))
    vec = SpaceshipVectorEnv(20, env_index=list(range(20)), seed=seed)
    vec_obs, _ = vec.reset()
    envs = [SpaceshipEnv() for _ in range(20)]
    singles = [env.reset(seed=seed + i, options={"env_index": i}) for i, env in enumerate(envs)]
    assert np.allclose(sim.theta, [info["theta"] for _, info in singles], rtol=0, atol=0)
    episodes_ended = 0
    for t in range(steps):
        obs, reward, terminated, truncated = sim.step(actions[t])
        vec_obs, vec_reward, _, _, vec_info = vec.step(actions[t])
        for i, env in enumerate(envs):
            o, r, te, tr, info = env.step(actions[t, i])
            assert np.array_equal(o, obs[i]) and r == reward[i] and (te, tr) == (terminated[i], truncated[i])
            assert info["theta"] == sim.theta[i] and vec_reward[i] == r
            if te or tr:
                assert np.array_equal(vec_info["final_obs"][i], o) and vec_info["_final_obs"][i]
                env.reset()
        done = terminated | truncated
        episodes_ended += int(done.sum())
        sim.reset(done)
        assert np.array_equal(vec_obs, sim.observation()) and np.array_equal(vec.sim.theta, sim.theta)
    assert episodes_ended >= 40  # the comparison crossed many resets


def test_vector_env_state_dict_resumes_exactly():
    actions = np.random.default_rng(1).uniform(-3, 3, size=(60, 8, 2))
    a, b = SpaceshipVectorEnv(8, env_pool=TRAIN_ENVS, seed=3), SpaceshipVectorEnv(8, seed=99)
    a.reset()
    for t in range(30):
        a.step(actions[t])
    obs_b = b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert np.array_equal(obs_b, a.sim.observation())
    for t in range(30, 60):
        out_a, out_b = a.step(actions[t]), b.step(actions[t])
        for x, y in zip(out_a[:4], out_b[:4]):
            assert np.array_equal(x, y)


def test_render_shape_and_charge_colours():
    env = SpaceshipEnv(env_index=17, render_mode="rgb_array")  # q1 > 0 (red), q2 < 0 (blue)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (248, 248, 3) and frame.dtype == np.uint8
    colours = {tuple(c) for c in frame.reshape(-1, 3)}
    assert (215, 50, 50) in colours and (50, 90, 215) in colours and (20, 20, 20) in colours
    assert SpaceshipEnv().render() is None
    frames = SpaceshipVectorEnv(2, render_mode="rgb_array", seed=0).render()
    assert len(frames) == 1 and frames[0].shape == (248, 248, 3)
