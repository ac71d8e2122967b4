"""Combat: attack, cooldown, the bots' rule, terminal rewards, API, batching and state."""

from __future__ import annotations

import numpy as np
import pytest

from anew.envs.combat import NO_OP, CombatSim
from anew.envs.multiagent import TeamVectorEnv, make_parallel, make_team_env


def duel(**options) -> CombatSim:
    """Marine 0 at (5, 5) and bot 5 at (5, 6); every other unit dead in a far corner."""
    sim = CombatSim(1, seed=0, **options)
    sim.reset()
    sim.alive[:] = False
    sim.hp[:] = 0
    sim.y[:], sim.x[:] = 14, 14
    for unit, (y, x) in ((0, (5, 5)), (5, (5, 6))):
        sim.alive[0, unit], sim.hp[0, unit], sim.y[0, unit], sim.x[0, unit] = True, 3, y, x
    return sim


def marine_action(first: int) -> np.ndarray:
    return np.array([[first, NO_OP, NO_OP, NO_OP, NO_OP]])


SHOOT_BOT_5 = 5 + 5


def test_parallel_api() -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    parallel_api_test(make_parallel("anew/Combat-v0", render_mode="rgb_array"), num_cycles=50)


def test_attack_and_cooldown() -> None:
    sim = duel()
    hp = []
    for _ in range(4):
        sim.step(marine_action(SHOOT_BOT_5))
        hp.append((sim.hp[0, 0], sim.hp[0, 5]))
    # both fire on steps 1 and 3; on steps 2 and 4 their counters are still 1
    assert hp == [(2, 2), (2, 2), (1, 1), (1, 1)]
    assert sim.hit[0].sum() == 0  # nobody hit in the last step


def test_shots_that_cannot_hit_are_no_ops() -> None:
    sim = duel()
    sim.y[0, 5], sim.x[0, 5] = 5, 8  # out of range; the bot cannot see the marine (sight 1)
    sim.step(marine_action(SHOOT_BOT_5))
    assert sim.hp[0, 5] == 3 and sim.counter[0, 0] == 0
    sim.step(marine_action(5 + 1))  # a teammate's id
    assert sim.hp[0].tolist()[:2] == [3, 0] and sim.counter[0, 0] == 0
    lua = duel(miss_costs_cooldown=True)
    lua.y[0, 5], lua.x[0, 5] = 5, 8
    lua.step(marine_action(SHOOT_BOT_5))
    assert lua.hp[0, 5] == 3 and lua.counter[0, 0] == 1  # spent (2), then lowered by its turn


def test_bot_steps_toward_a_visible_target_or_waits() -> None:
    sim = duel(fog=False)
    sim.y[0, 5], sim.x[0, 5] = 5, 9
    sim.step(marine_action(NO_OP))
    assert (sim.y[0, 5], sim.x[0, 5]) == (5, 8)  # same row: always horizontal
    sim.y[0, 5], sim.x[0, 5] = 9, 5
    sim.step(marine_action(NO_OP))
    assert (sim.y[0, 5], sim.x[0, 5]) == (8, 5)  # same column: always vertical
    foggy = duel()  # fog on, sight 1: the bots do not see a marine 3 cells away
    foggy.y[0, 5], foggy.x[0, 5] = 5, 8
    foggy.step(marine_action(NO_OP))
    assert (foggy.y[0, 5], foggy.x[0, 5]) == (5, 8)
    foggy.y[0, 6], foggy.x[0, 6], foggy.alive[0, 6], foggy.hp[0, 6] = 4, 4, True, 3  # a bot beside the marine
    foggy.step(marine_action(NO_OP))
    assert (foggy.y[0, 5], foggy.x[0, 5]) == (5, 7)  # now its team sees it


def test_moves_blocked_by_living_units_and_walls() -> None:
    sim = duel()
    sim.step(marine_action(3))  # right, into the bot's cell
    assert (sim.y[0, 0], sim.x[0, 0]) == (5, 5)
    sim.y[0, 0], sim.x[0, 0] = 0, 0
    sim.step(marine_action(0))  # up, off the grid
    assert (sim.y[0, 0], sim.x[0, 0]) == (0, 0)


def test_win_and_loss_rewards_every_slot() -> None:
    win = duel()
    win.hp[0, 5] = 1
    rewards, terminated, truncated = win.step(marine_action(SHOOT_BOT_5))
    assert terminated[0] and not truncated[0]
    np.testing.assert_allclose(rewards, 0.0)
    assert win.episode_metrics()["win"][0] == 1.0
    loss = duel()
    loss.hp[0, 0] = 1
    rewards, terminated, _ = loss.step(marine_action(NO_OP))
    assert terminated[0] and loss.episode_metrics()["win"][0] == 0.0
    np.testing.assert_allclose(rewards, np.full((1, 5), -0.1 * 3 - 1.0))  # dead slots get it too


def test_timeout_costs_a_draw_and_the_enemy_hp_left() -> None:
    sim = duel(max_steps=2)
    sim.y[0, 5], sim.x[0, 5] = 10, 10  # far apart and unseen: nothing happens
    rewards, terminated, truncated = sim.step(marine_action(NO_OP))
    assert not truncated[0] and (rewards == 0).all()
    rewards, terminated, truncated = sim.step(marine_action(NO_OP))
    assert truncated[0] and not terminated[0]
    np.testing.assert_allclose(rewards, np.full((1, 5), -0.1 * 3 - 1.0))


def test_teams_spawn_together_and_dead_marines_are_inactive() -> None:
    sim = CombatSim(200, seed=3)
    sim.reset()
    for team in (slice(0, 5), slice(5, 10)):
        spread = np.maximum(np.ptp(sim.y[:, team], axis=1), np.ptp(sim.x[:, team], axis=1))
        assert spread.max() <= 10 and spread.mean() > 3
    sim.hp[0, 2] = 0
    sim.step(np.full((200, 5), NO_OP))
    assert not sim.active()[0, 2]
    assert not sim.observe()[0, 2].any()


def test_observation_words() -> None:
    sim = duel()
    sim.counter[0, 5] = 1
    obs = sim.observe()[0, 0].reshape(9, sim.vocab_size)
    own = set(np.flatnonzero(obs[4]))  # the centre of the window
    assert own == {0, sim._team_word, sim._hp_word + 2, sim._cooldown_word, sim._cell_word + 5 * 15 + 5}
    bot = set(np.flatnonzero(obs[5]))  # one cell to the right
    assert bot == {
        5,
        sim._team_word + 1,
        sim._hp_word + 2,
        sim._cooldown_word + 1,
        sim._cell_word + 5 * 15 + 6,
    }
    assert obs.sum() == 10


def slice_state(state: dict, game: int) -> dict:
    return {"arrays": {k: v[game : game + 1] for k, v in state["arrays"].items()}, "rng": state["rng"]}


def test_batched_sim_equals_single_games() -> None:
    B, rng = 5, np.random.default_rng(0)
    batched = CombatSim(B, seed=1, size=8, fog=False)
    batched.reset()
    singles = []
    for game in range(B):
        singles.append(CombatSim(1, seed=50, size=8, fog=False))
        singles[-1].load_state_dict(slice_state(batched.state_dict(), game))
    for _ in range(25):
        actions, noise = rng.integers(0, 15, (B, 5)), batched.draw_noise()
        rewards, terminated, truncated = batched.step_with_noise(actions, noise)
        obs = batched.observe()
        for game, single in enumerate(singles):
            part = type(noise)(*(u[game : game + 1] for u in noise))
            r, te, tr = single.step_with_noise(actions[game : game + 1], part)
            np.testing.assert_array_equal(r[0], rewards[game])
            np.testing.assert_array_equal(single.observe()[0], obs[game])
            assert (te[0], tr[0]) == (terminated[game], truncated[game])
    assert batched.hp.sum() < 2 * 5 * 3 * B  # there was fighting


def test_team_vector_env_state_round_trip_and_render() -> None:
    env = make_team_env("anew/Combat-v0", num_envs=3, seed=0)
    env.reset(seed=2)
    actions = np.random.default_rng(1).integers(0, 15, (60, 3, 5))
    for a in actions[:10]:
        env.step(a)
    state = env.state_dict()
    expected = [env.step(a)[:2] for a in actions[10:]]
    other = TeamVectorEnv(CombatSim(3, seed=8))
    other.reset(seed=3)
    other.load_state_dict(state)
    for a, (obs, rewards) in zip(actions[10:], expected, strict=True):
        got_obs, got_rewards, *_ = other.step(a)
        np.testing.assert_array_equal(got_obs, obs)
        np.testing.assert_array_equal(got_rewards, rewards)
    image = env.render()
    assert image.shape == (15 * 24, 15 * 24, 3) and image.dtype == np.uint8
