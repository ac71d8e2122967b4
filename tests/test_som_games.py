"""The SOM games (coin, recipe, door): PettingZoo conformance, scripted rewards, turns, blocking, the
perspective swap, batched == single games, exact state round trips, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from anew.envs.coin_game import CoinGameSim, split_observation, swap_perspective
from anew.envs.door_game import DoorGameSim
from anew.envs.multiagent import TeamVectorEnv, make_team_sim
from anew.envs.recipe_game import RecipeGameSim
from anew.envs.som_grid import with_goal
from anew.errors import AnewError

IDS = ["anew/CoinGame-SOM-v0", "anew/RecipeGame-SOM-v0", "anew/DoorGame-SOM-v0"]
UP, DOWN, LEFT, RIGHT, STAND = range(5)


def play(sim, moves: list[tuple[int, int]]) -> tuple[np.ndarray, list[bool]]:
    """Step game 0 through ``(player, action)`` moves, checking that player is the one to move; the
    other slot sends a different move, which must be ignored. Returns summed rewards and the ends."""
    total, ends = np.zeros(2), []
    for player, action in moves:
        assert sim.to_move()[0].tolist() == [player == 0, player == 1]
        actions = np.full((sim.num_envs, 2), (action + 1) % 5)
        actions[0, player] = action
        rewards, terminated, truncated = sim.step(actions)
        total += rewards[0]
        ends.append(bool(terminated[0]))
        assert not truncated.any()
    return total, ends


@pytest.mark.parametrize("env_id", IDS)
def test_parallel_api(env_id: str) -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    from anew.envs.multiagent import make_parallel

    parallel_api_test(make_parallel(env_id), num_cycles=100)


# ---------------------------------------------------------------- coin game
def coin_sim(coins: list[list[int]], players=((0, 0), (7, 7)), goals=(0, 1), **kwargs) -> CoinGameSim:
    sim = CoinGameSim(1, seed=0, **kwargs)
    sim.reset(
        options={"layout": {"goals": list(goals), "players": [list(p) for p in players], "coins": coins}}
    )
    return sim


def test_coin_reward_counts_both_goal_colours_and_penalises_the_third() -> None:
    # Player 0 takes two colour-0 coins and one colour-2 coin, player 1 one colour-1 coin: 2² + 1² − 1² = 4.
    sim = coin_sim([[0, 1, 0], [0, 2, 0], [1, 2, 2], [7, 6, 1], [5, 5, 1]])
    moves = (
        [(0, RIGHT), (1, LEFT), (0, RIGHT), (1, STAND), (0, DOWN)] + [(1, STAND), (0, STAND)] * 7 + [(1, UP)]
    )
    total, ends = play(sim, moves)
    assert ends == [False] * 19 + [True]
    np.testing.assert_array_equal(total, [4.0, 4.0])
    assert sim.episode_metrics()["good_coins"][0] == 3 and sim.episode_metrics()["bad_coins"][0] == 1


def test_coin_reward_is_shared_and_symmetric_in_the_goals() -> None:
    # Only the other's colour collected (3 coins, by player 0): 0² + 3² = 9 for both players.
    sim = coin_sim([[0, 1, 1], [0, 2, 1], [0, 3, 1]], goals=(0, 1), episode_length=6)
    total, _ = play(sim, [(0, RIGHT), (1, STAND)] * 3)
    np.testing.assert_array_equal(total, [9.0, 9.0])
    assert sim.team_reward(np.array([[9.0, 9.0]]))[0] == 9.0


def test_coin_blocking_off_grid_and_into_the_other_player() -> None:
    sim = coin_sim([[3, 3, 0]], players=((0, 0), (0, 1)))
    play(sim, [(0, UP), (1, LEFT), (0, LEFT), (1, UP), (0, RIGHT)])
    assert sim.pos[0].tolist() == [[0, 0], [0, 1]]
    play(sim, [(1, DOWN), (0, RIGHT)])
    assert sim.pos[0].tolist() == [[0, 1], [1, 1]]


def test_coin_turns_alternate_from_player_0() -> None:
    sim = CoinGameSim(3, seed=1)
    for step in range(sim.max_steps):
        np.testing.assert_array_equal(sim.to_move(), [[step % 2 == 0, step % 2 == 1]] * 3)
        before = sim.pos.copy()
        sim.step(np.full((3, 2), RIGHT if step % 4 < 2 else LEFT))
        assert (sim.pos[:, 1 - step % 2] == before[:, 1 - step % 2]).all()  # the other never moves


def test_coin_observation_channels_and_goal_planes() -> None:
    sim = coin_sim([[2, 3, 2]], players=((1, 1), (5, 6)), goals=(2, 0))
    obs = sim.observe()[0]
    assert obs.shape == (2, 8, 8, 8)
    assert obs[0, 0, 1, 1] == 1 and obs[0, 1, 5, 6] == 1 and obs[1, 0, 5, 6] == 1 and obs[1, 1, 1, 1] == 1
    assert obs[0, 4, 2, 3] == 1 and obs[:, 2:5].sum() == 2  # one coin of colour 2, seen by both
    board, goal = split_observation(obs)
    assert board.shape == (2, 5, 8, 8)
    np.testing.assert_array_equal(goal, [[0, 0, 1], [1, 0, 0]])
    assert (obs[0, 5:] == np.array([0, 0, 1.0])[:, None, None]).all()  # constant planes


# ---------------------------------------------------------------- recipe game
def test_recipe_race_for_the_shared_ingredient() -> None:
    sim = RecipeGameSim(1, seed=0)
    assert sim.recipes.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    # Recipes (0, 1) and (1, 2) share type 1, at (2, 2) between the players.
    items = [[2, 2, 1], [3, 0, 0], [3, 4, 2], [2, 3, 3]]
    sim.reset(options={"layout": {"goals": [0, 3], "players": [[2, 0], [2, 4]], "items": items}})
    total, ends = play(sim, [(0, RIGHT), (1, LEFT)])  # player 1 walks over type 3, which it does not need
    assert sim.layout()["items"] == [[2, 2, 1], [2, 3, 3], [3, 0, 0], [3, 4, 2]]
    total2, ends2 = play(
        sim, [(0, RIGHT), (1, LEFT), (0, DOWN), (1, STAND), (0, LEFT), (1, STAND), (0, LEFT)]
    )
    assert sim.pos[0, 1].tolist() == [2, 3]  # blocked by player 0 standing on (2, 2)
    assert ends + ends2 == [False] * 8 + [True]
    np.testing.assert_array_equal(total + total2, [1.0, -1.0])
    assert sim.layout()["held"] == [[0, 1], []] and sim.episode_metrics()["winner"][0] == 0


def test_recipe_draw_when_nobody_finishes() -> None:
    sim = RecipeGameSim(1, seed=0, episode_length=4)
    sim.reset(options={"layout": {"goals": [0, 5], "players": [[0, 0], [4, 4]], "items": [[0, 1, 0]]}})
    total, ends = play(sim, [(0, RIGHT), (1, UP), (0, STAND), (1, UP)])
    assert ends == [False, False, False, True] and total.tolist() == [0.0, 0.0]
    assert sim.layout()["held"] == [[0], []] and sim.episode_metrics()["winner"][0] == -1


def test_recipe_goals_share_exactly_the_set_number_of_ingredients() -> None:
    for shared in (0, 1):
        sim = RecipeGameSim(500, seed=3, num_ingredients=5, shared_ingredients=shared)
        needs = sim.needs[sim.goals]
        assert ((needs[:, 0] & needs[:, 1]).sum(axis=1) == shared).all()
        assert (sim.items >= 0).sum(axis=(1, 2)).tolist() == [5] * 500


# ---------------------------------------------------------------- door game
def door_sim(goals=(0, 2), players=((3, 3), (3, 1)), **kwargs) -> DoorGameSim:
    kwargs = {"door_layout": "wall", "episode_length": 30} | kwargs
    sim = DoorGameSim(1, seed=0, **kwargs)
    sim.reset(options={"layout": {"goals": list(goals), "players": [list(p) for p in players]}})
    return sim


def test_door_each_opens_the_others_door_then_both_leave() -> None:
    sim = door_sim()
    assert sim.door_columns.tolist() == [0, 2, 4]
    total, ends = play(sim, [(0, DOWN), (1, DOWN), (0, RIGHT), (1, LEFT)])  # presses: door 2, door 0
    assert sim.opened[0].tolist() == [[False, True], [False, False], [True, False]]
    walk0, walk1 = [UP, UP, LEFT, LEFT, LEFT, LEFT, UP], [UP, RIGHT, RIGHT, RIGHT, RIGHT, UP, UP]
    moves = [move for pair in zip(walk0, walk1, strict=True) for move in ((0, pair[0]), (1, pair[1]))]
    total2, ends2 = play(sim, moves)
    assert sim.pos[0].tolist() == [[1, 0], [1, 4]] and total2.sum() == 0
    total3, ends3 = play(sim, [(0, UP), (1, UP)])  # player 0 leaves, then player 1 moves at once
    np.testing.assert_array_equal(total + total2 + total3, [2.0, 2.0])
    assert ends + ends2 + ends3 == [False] * 19 + [True]
    assert sim.episode_metrics()["success"][0]


def test_door_blocks_the_wall_unopened_doors_and_the_others_door() -> None:
    sim = door_sim(goals=(2, 0), players=((1, 4), (1, 0)))
    play(sim, [(0, UP), (1, UP)])  # own doors, but nobody opened them
    assert sim.pos[0].tolist() == [[1, 4], [1, 0]]
    sim.opened[0, 0, 1] = True  # player 1 opened door 0: only player 0 may pass, and it is not its goal
    play(sim, [(0, LEFT), (1, UP)])
    assert sim.pos[0].tolist() == [[1, 3], [1, 0]] and not sim.exited.any()


def test_door_the_first_out_opens_the_others_door() -> None:
    # Player 1 opens door 0 (player 0's goal); player 0 leaves and so opens door 2 for player 1.
    for opens in (True, False):
        sim = door_sim(goals=(0, 2), players=((1, 0), (3, 0)), exit_opens_other=opens)
        total, ends = play(sim, [(0, STAND), (1, DOWN), (0, UP)])
        assert total.tolist() == [1.0, 1.0] and sim.exited[0].tolist() == [True, False]
        assert sim.opened[0, 2, 0] == opens and sim.to_move()[0].tolist() == [False, True]
        walk = [(1, UP), (1, UP), (1, RIGHT), (1, RIGHT), (1, RIGHT), (1, RIGHT), (1, UP), (1, UP)]
        total, ends = play(sim, walk)
        assert total.tolist() == ([1.0, 1.0] if opens else [0.0, 0.0]) and ends[-1] == opens
        assert sim.pos[0, 1].tolist() == ([0, 4] if opens else [1, 4])


def test_door_one_press_per_player() -> None:
    sim = door_sim(players=((3, 0), (1, 1)))
    play(sim, [(0, DOWN), (1, STAND), (0, RIGHT), (1, STAND), (0, RIGHT), (1, STAND)])
    assert sim.pos[0, 0].tolist() == [4, 2]
    assert sim.opened[0, :, 0].tolist() == [True, False, False]
    sim2 = door_sim(players=((3, 0), (1, 1)), presses_per_player=2)
    play(sim2, [(0, DOWN), (1, STAND), (0, RIGHT), (1, STAND), (0, RIGHT), (1, STAND)])
    assert sim2.opened[0, :, 0].tolist() == [True, True, False]


def test_door_vestibule_pushes_open_doors_and_the_wall_blocks() -> None:
    sim = door_sim(goals=(0, 2), players=((1, 2), (3, 1)), door_layout="vestibule")
    assert sim.door_cells.tolist() == [[0, 1], [0, 2], [0, 3]]  # left, up, right of the vestibule
    total, _ = play(sim, [(0, UP), (1, DOWN), (0, LEFT), (1, LEFT)])  # in; a closed door; press switch 0
    assert sim.pos[0].tolist() == [[0, 2], [4, 0]] and sim.opened[0, :, 1].tolist() == [True, False, False]
    total2, _ = play(sim, [(0, UP), (1, STAND), (0, RIGHT), (1, STAND)])  # doors 1 and 2 are not its goal
    assert sim.pos[0, 0].tolist() == [0, 2] and total.sum() + total2.sum() == 0
    total3, _ = play(sim, [(0, LEFT)])  # through its own, opened door: off the board, door 2 opens
    assert total3.tolist() == [1.0, 1.0] and sim.pos[0, 0].tolist() == [-1, -1] and sim.opened[0, 2, 0]
    walk = [UP, UP, UP, UP, RIGHT, UP, RIGHT, UP, RIGHT]  # row 0 blocks (twice), then in and out right
    total4, ends = play(sim, [(1, move) for move in walk[:-1]])
    assert sim.pos[0, 1].tolist() == [0, 2] and total4.sum() == 0
    total5, ends2 = play(sim, [(1, walk[-1])])
    assert total5.tolist() == [1.0, 1.0] and ends + ends2 == [False] * 8 + [True]
    assert sim.episode_metrics()["success"][0]


def test_door_vestibule_board_does_not_show_a_waiting_players_goal() -> None:
    boards = []
    for goal in (0, 1):  # player 0 waits in the vestibule pushing its door, left or up
        sim = door_sim(goals=(goal, 2), players=((1, 2), (3, 1)), door_layout="vestibule")
        play(sim, [(0, UP), (1, STAND), (0, LEFT if goal == 0 else UP), (1, STAND)])
        boards.append(sim.split_observation(sim.observe()[:, 1])[0])
    np.testing.assert_array_equal(boards[0], boards[1])
    with pytest.raises(AnewError, match="3 doors"):
        DoorGameSim(1, num_doors=4)
    with pytest.raises(AnewError, match="door_layout"):
        DoorGameSim(1, door_layout="ring")


# ---------------------------------------------------------------- every game
@pytest.mark.parametrize("env_id", IDS)
def test_perspective_swap(env_id: str) -> None:
    sim = make_team_sim(env_id, 16, seed=5)
    for _ in range(7):  # mid-episode states: things collected, doors opened
        sim.step(sim.rng.integers(0, 5, (16, 2)))
    obs = sim.observe()
    for slot in range(2):
        np.testing.assert_array_equal(sim.swap_perspective(sim.swap_perspective(obs[:, slot])), obs[:, slot])
        board_swapped, own_goal = sim.split_observation(sim.swap_perspective(obs[:, slot]))
        board_other, other_goal = sim.split_observation(obs[:, 1 - slot])
        np.testing.assert_array_equal(board_swapped, board_other)
        np.testing.assert_array_equal(own_goal.argmax(-1), sim.slot_info()["goal"][:, slot])
        np.testing.assert_array_equal(other_goal.argmax(-1), sim.slot_info()["goal"][:, 1 - slot])
        estimate = with_goal(sim.swap_perspective(obs[:, slot]), other_goal)
        np.testing.assert_array_equal(estimate, obs[:, 1 - slot])
    assert sim.observation_space.contains(obs[0, 0])
    if env_id == IDS[0]:
        np.testing.assert_array_equal(swap_perspective(obs), sim.swap_perspective(obs))


@pytest.mark.parametrize("env_id", IDS)
def test_batched_sim_equals_single_games(env_id: str) -> None:
    batch = make_team_sim(env_id, 6, seed=2)
    state = batch.state_dict()
    singles = []
    for i in range(6):
        single = make_team_sim(env_id, 1, seed=99)
        single.load_state_dict(
            {"arrays": {k: v[i : i + 1] for k, v in state["arrays"].items()}, "rng": state["rng"]}
        )
        singles.append(single)
    actions = np.random.default_rng(0).integers(0, 5, (40, 6, 2))
    for step_actions in actions:
        rewards, terminated, _ = batch.step(step_actions)
        for i, single in enumerate(singles):
            single_rewards, single_terminated, _ = single.step(step_actions[i : i + 1])
            np.testing.assert_array_equal(single_rewards[0], rewards[i])
            assert single_terminated[0] == terminated[i]
            np.testing.assert_array_equal(single.observe()[0], batch.observe()[i])
            np.testing.assert_array_equal(single.to_move()[0], batch.to_move()[i])


@pytest.mark.parametrize("env_id", IDS)
def test_state_round_trip_is_exact_across_autoresets(env_id: str) -> None:
    env = TeamVectorEnv(make_team_sim(env_id, 5, seed=0), seed=0)
    env.reset(seed=3)
    actions = np.random.default_rng(1).integers(0, 5, (80, 5, 2))
    env.step(actions[0])
    state = env.state_dict()
    expected = [env.step(a) for a in actions[1:]]
    assert any(out[2].any() for out in expected)  # episodes ended and restarted in between
    other = TeamVectorEnv(make_team_sim(env_id, 5, seed=7), seed=7)
    other.reset()
    other.load_state_dict(state)
    for a, (obs, rewards, terminated, _, info) in zip(actions[1:], expected, strict=True):
        got = other.step(a)
        np.testing.assert_array_equal(got[0], obs)
        np.testing.assert_array_equal(got[1], rewards)
        np.testing.assert_array_equal(got[4]["goal"], info["goal"])


@pytest.mark.parametrize("env_id", IDS)
def test_render_and_bad_input(env_id: str) -> None:
    sim = make_team_sim(env_id, 2, seed=0)
    image = sim.render(1)
    rows, cols = sim.shape
    extra = 24 if env_id == IDS[1] else 0  # the recipe game draws what each player holds under the board
    assert image.dtype == np.uint8 and image.shape == (rows * 24 + extra, cols * 24, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) >= 4
    with pytest.raises(AnewError, match="shape"):
        sim.step(np.zeros((3, 2), int))
    with pytest.raises(AnewError, match="moves"):
        sim.step(np.full((2, 2), 5))
    with pytest.raises(AnewError, match="goals"):
        sim.reset(
            options={"layout": {"goals": [1, 1], "players": [[1, 1], [2, 2]], "coins": [], "items": []}}
        )
    with pytest.raises(AnewError, match="layout"):
        sim.reset(options={"layout": [{}, {}, {}]})
