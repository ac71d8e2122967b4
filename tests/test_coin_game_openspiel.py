"""anew's coin game against OpenSpiel's ``coin_game``: the same layouts and moves give the same states
and returns (1,000 random episodes, through the PettingZoo view and through the batched sim)."""

from __future__ import annotations

import numpy as np
import pytest

pyspiel = pytest.importorskip("pyspiel", reason="open_spiel is not installed (pip install open_spiel)")
pytest.importorskip("pettingzoo", reason="the parallel view needs pettingzoo")

from anew.envs.coin_game import CoinGameSim, layout_from_openspiel
from anew.envs.multiagent import make_parallel

EPISODES = 1000


def play_openspiel(game, rng: np.random.Generator) -> tuple[dict, list[int], list[dict], list[float]]:
    """One random episode: its layout after the chance phase, the moves, the layout after each move
    and the final returns."""
    state = game.new_initial_state()
    while state.is_chance_node():
        outcomes = state.chance_outcomes()
        state.apply_action(outcomes[rng.integers(len(outcomes))][0])
    start = layout_from_openspiel(str(state))
    moves, layouts = [], []
    while not state.is_terminal():
        action = int(rng.choice(state.legal_actions()))
        state.apply_action(action)
        moves.append(action)
        layouts.append(layout_from_openspiel(str(state)))
    return start, moves, layouts, state.returns()


@pytest.fixture(scope="module")
def episodes() -> list[tuple[dict, list[int], list[dict], list[float]]]:
    game = pyspiel.load_game("coin_game")
    rng = np.random.default_rng(2024)
    return [play_openspiel(game, rng) for _ in range(EPISODES)]


def test_defaults_match_openspiel() -> None:
    params = pyspiel.load_game("coin_game").get_parameters()
    sim = CoinGameSim(1)
    assert params["players"] == 2
    assert (params["rows"], params["columns"]) == sim.shape
    assert params["episode_length"] == sim.max_steps
    assert params["num_extra_coin_colors"] + 2 == sim.num_colors
    assert params["num_coins_per_color"] == sim.coins_per_color
    assert pyspiel.load_game("coin_game").num_distinct_actions() == sim.action_space.n


def test_parallel_view_replays_openspiel_states_and_returns(episodes) -> None:
    env = make_parallel("anew/CoinGame-SOM-v0")
    rng = np.random.default_rng(0)
    seen_collect = seen_block = 0
    for start, moves, layouts, returns in episodes:
        _, infos = env.reset(options={"layout": start})
        assert [infos[f"player_{i}"]["goal"] for i in range(2)] == start["goals"]
        totals = np.zeros(2)
        for action, expected in zip(moves, layouts, strict=True):
            mover = [agent for agent in env.agents if infos[agent]["to_move"]]
            assert len(mover) == 1
            # The other player sends a random move: only the mover's is applied.
            actions = {agent: int(rng.integers(5)) for agent in env.agents} | {mover[0]: action}
            before = env.sim.layout(0)
            _, rewards, terminations, _, infos = env.step(actions)
            totals += [rewards["player_0"], rewards["player_1"]]
            assert env.sim.layout(0) == expected
            seen_collect += len(expected["coins"]) < len(before["coins"])
            seen_block += action != 4 and expected["players"] == before["players"]
        assert all(terminations.values()) and not env.agents
        np.testing.assert_array_equal(totals, returns)
    assert seen_collect > 100 and seen_block > 100  # both rules were exercised


def test_batched_sim_replays_openspiel_returns(episodes) -> None:
    sim = CoinGameSim(len(episodes), seed=1)
    sim.reset(options={"layout": [start for start, *_ in episodes]})
    moves = np.array([m for _, m, _, _ in episodes])
    noise = np.random.default_rng(1).integers(0, 5, moves.shape)
    totals = np.zeros((len(episodes), 2))
    for step in range(moves.shape[1]):
        mover = sim.to_move().argmax(axis=1)
        actions = np.stack([noise[:, step], noise[:, step]], axis=1)
        actions[np.arange(len(episodes)), mover] = moves[:, step]
        rewards, terminated, _ = sim.step(actions)
        totals += rewards
    assert terminated.all()
    np.testing.assert_array_equal(totals, np.array([r for *_, r in episodes]))
    assert len({tuple(r) for *_, r in episodes}) > 5  # the returns vary: not a trivially constant game
