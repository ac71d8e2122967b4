"""MinAtar Gymnasium envs: API conformance, seeding, agreement with the minatar package, rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from anew.envs.minatar import (
    MINATAR_GAMES,
    MINATAR_MAX_EPISODE_STEPS,
    MinAtarEnv,
    minatar_env_id,
    register_minatar_envs,
)
from anew.errors import AnewError

pytest.importorskip("minatar")
register_minatar_envs()

MINIMAL_ACTIONS = {"Breakout": 3, "Asterix": 5, "Freeway": 3, "Seaquest": 6, "SpaceInvaders": 4}


@pytest.mark.parametrize("game", MINATAR_GAMES)
def test_check_env_and_spaces(game):
    env = gym.make(minatar_env_id(game), render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    assert env.spec.max_episode_steps == MINATAR_MAX_EPISODE_STEPS
    assert env.action_space.n == MINIMAL_ACTIONS[game]
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == env.observation_space.shape and obs.shape[1:] == (10, 10)
    assert set(np.unique(obs)) <= {0, 1}
    assert MinAtarEnv(game, minimal_action_set=False).action_space.n == 6


def _rollout(env: gym.Env, seed: int, steps: int) -> list:
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trace += [obs, reward, terminated]
        if terminated or truncated:
            trace.append(env.reset()[0])  # unseeded reset continues the seeded stream
    return trace


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("game", MINATAR_GAMES)
def test_seeding_is_deterministic(game):
    first = _rollout(gym.make(minatar_env_id(game)), seed=3, steps=300)
    second = _rollout(gym.make(minatar_env_id(game)), seed=3, steps=300)
    assert _same(first, second)
    env = gym.make(minatar_env_id(game))  # reseeding one env replays the same episode
    assert _same(_rollout(env, seed=3, steps=300), first)
    assert not _same(_rollout(env, seed=4, steps=300), first)


@pytest.mark.parametrize("game", ["Breakout", "Seaquest"])
def test_matches_the_minatar_package_step_for_step(game):
    """Same seed, same actions: our observations are minatar.Environment's states, transposed."""
    from minatar import Environment

    env = MinAtarEnv(game)
    obs, _ = env.reset(seed=11)
    reference = Environment(MINATAR_GAMES[game], sticky_action_prob=0.1)
    # Our reset seeds the game with one draw from default_rng(seed) (Gymnasium's np_random).
    reference.seed(int(np.random.default_rng(11).integers(2**32 - 1)))
    reference.reset()
    reference.last_action = 0
    actions = np.random.default_rng(0).integers(0, env.action_space.n, 200)
    minimal = reference.minimal_action_set()
    for action in actions:
        np.testing.assert_array_equal(obs, reference.state().transpose(2, 0, 1))
        obs, reward, terminated, _, _ = env.step(action)
        expected_reward, expected_terminal = reference.act(minimal[action])
        assert (reward, terminated) == (expected_reward, expected_terminal)
        if terminated:
            break


def test_sticky_actions_repeat_the_previous_action_from_noop():
    # With probability 1 every action is replaced by the previous one, which starts as no-op:
    # the episode must equal one where the agent only ever chose no-op.
    always_sticky = MinAtarEnv("Breakout", sticky_action_prob=0.0)
    always_sticky.reset(seed=1)
    always_sticky.step(2)  # the game's last action is now "right"...
    always_sticky._game.sticky_action_prob = 1.0
    noop = MinAtarEnv("Breakout", sticky_action_prob=0.0)
    obs_a, _ = always_sticky.reset(seed=5)  # ...and reset must forget it
    obs_b, _ = noop.reset(seed=5)
    for _ in range(30):
        np.testing.assert_array_equal(obs_a, obs_b)
        obs_a, *_ = always_sticky.step(2)  # "right"
        obs_b, *_ = noop.step(0)
    # Without stickiness "right" really moves the paddle (row 9 of channel 0).
    moving = MinAtarEnv("Breakout", sticky_action_prob=0.0)
    before, _ = moving.reset(seed=5)
    after, *_ = moving.step(2)
    assert np.argmax(after[0, 9]) == np.argmax(before[0, 9]) + 1


def test_freeway_ends_by_its_own_clock():
    env = MinAtarEnv("Freeway")
    env.reset(seed=0)
    for step in range(1, 2600):
        *_, terminated, truncated, _ = env.step(0)
        if terminated:
            break
    assert terminated and not truncated and step == 2501  # its timer of 2,500 runs below zero


def test_render_draws_one_colour_per_channel():
    env = MinAtarEnv("Breakout", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8
    cells = frame[::16, ::16]
    np.testing.assert_array_equal(cells.any(-1), obs.any(0))  # empty cells black, others coloured
    paddle = cells[9][obs[0, 9] == 1]
    assert len(np.unique(paddle, axis=0)) == 1
    assert MinAtarEnv("Breakout").render() is None


def test_bad_arguments_are_named():
    with pytest.raises(AnewError, match="unknown MinAtar game"):
        MinAtarEnv("Pong")
    with pytest.raises(AnewError, match="render_mode"):
        MinAtarEnv("Breakout", render_mode="human")
    register_minatar_envs()  # idempotent
    assert minatar_env_id("Breakout") in gym.registry
