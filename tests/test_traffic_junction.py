"""Traffic junction: the rules pinned on scripted situations, the batched sim against single games and the
per-car peer of the speed benchmark, the PettingZoo API, state round trips and the picture."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from anew.envs.multiagent import TeamVectorEnv, make_parallel, make_team_env
from anew.envs.traffic_junction import BRAKE, GAS, TrafficJunctionSim
from anew.errors import AnewError

REPO = Path(__file__).resolve().parents[1]
IDS = ["anew/TrafficJunction-easy-v0", "anew/TrafficJunction-medium-v0", "anew/TrafficJunction-hard-v0"]


def load_percar():
    spec = importlib.util.spec_from_file_location(
        "traffic_junction_percar", REPO / "benchmarks" / "traffic_junction_percar.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def place(sim: TrafficJunctionSim, slot: int, route: int, pos: int, tau: int = 1, game: int = 0) -> None:
    sim.put_car(game, slot, route, pos, tau)


def quiet_sim(**options) -> TrafficJunctionSim:
    sim = TrafficJunctionSim(1, seed=0, p_arrive=0.0, **options)
    sim.reset()
    return sim


@pytest.mark.parametrize("env_id", IDS)
def test_parallel_api(env_id: str) -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    parallel_api_test(make_parallel(env_id, p_arrive=0.5), num_cycles=60)


def test_parallel_api_ic3net_layout() -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    parallel_api_test(make_parallel(IDS[0], layout="ic3net", render_mode="rgb_array"), num_cycles=30)


@pytest.mark.parametrize(
    ("difficulty", "layout", "sources", "routes"),
    [
        ("easy", "commnet", 2, 4),
        ("medium", "commnet", 4, 12),
        ("hard", "commnet", 8, 56),
        ("easy", "ic3net", 2, 2),
    ],
)
def test_maps_have_the_published_sources_and_routes(difficulty, layout, sources, routes) -> None:
    sim = TrafficJunctionSim(1, difficulty=difficulty, layout=layout)
    assert (sim.map.num_sources, sim.map.num_routes) == (sources, routes)
    assert sim.map.size == {"easy": 7, "medium": 14, "hard": 18}[difficulty]
    assert len(sim.agents) == {"easy": 5, "medium": 10, "hard": 20}[difficulty]


def test_scripted_crash_costs_each_car_five_and_fails_the_episode() -> None:
    sim = quiet_sim()
    assert sim.episode_metrics()["success"][0] == 1.0
    place(sim, 0, route=0, pos=2, tau=2)  # top straight, one cell above the junction (3, 3)
    place(sim, 1, route=1, pos=2, tau=4)  # left straight, one cell left of it
    rewards, terminated, truncated = sim.step(np.array([[GAS, GAS, GAS, GAS, GAS]]))
    np.testing.assert_allclose(rewards[0, :2], [-5 - 0.03, -5 - 0.05], rtol=1e-6)
    assert rewards[0, 2:].tolist() == [0, 0, 0]
    metrics = sim.episode_metrics()
    assert metrics["n_collisions"][0] == 1.0 and metrics["success"][0] == 0.0
    assert not terminated[0] and not truncated[0]
    assert sim.crash_cell[0, :2].tolist() == [3 * 7 + 3] * 2
    rewards, *_ = sim.step(np.array([[GAS, BRAKE, 0, 0, 0]]))  # apart again: only time penalties
    np.testing.assert_allclose(rewards[0, :2], [-0.04, -0.06], rtol=1e-6)
    assert sim.episode_metrics()["success"][0] == 0.0  # a crash fails the whole episode
    sim.reset()
    assert sim.episode_metrics()["success"][0] == 1.0


def test_ic3net_layout_charges_ten_per_car() -> None:
    sim = quiet_sim(layout="ic3net")
    place(sim, 0, route=0, pos=2)
    place(sim, 1, route=1, pos=2)
    rewards, *_ = sim.step(np.zeros((1, 5), int))
    np.testing.assert_allclose(rewards[0, :2], [-10.02, -10.02], rtol=1e-6)


def test_car_leaves_on_its_routes_last_cell() -> None:
    sim = quiet_sim()
    last = sim.map.route_len[2] - 1
    place(sim, 3, route=2, pos=last - 1, tau=5)
    rewards, *_ = sim.step(np.zeros((1, 5), int))
    assert not sim.active()[0, 3]
    np.testing.assert_allclose(rewards[0, 3], -0.06, rtol=1e-6)  # paid for the step that brought it there
    rewards, *_ = sim.step(np.zeros((1, 5), int))
    assert rewards[0, 3] == 0.0


def test_ic3net_car_leaves_one_gas_step_after_its_last_cell() -> None:
    sim = quiet_sim(layout="ic3net")
    last = sim.map.route_len[0] - 1
    place(sim, 0, route=0, pos=last - 1)
    sim.step(np.array([[GAS, 0, 0, 0, 0]]))
    assert sim.active()[0, 0]  # standing on the last cell
    sim.step(np.array([[BRAKE, 0, 0, 0, 0]]))
    assert sim.active()[0, 0]
    rewards, *_ = sim.step(np.array([[GAS, 0, 0, 0, 0]]))
    assert not sim.active()[0, 0]
    np.testing.assert_allclose(rewards[0, 0], -0.04, rtol=1e-6)


def test_time_penalty_grows_with_time_on_the_board() -> None:
    sim = quiet_sim()
    place(sim, 2, route=1, pos=0, tau=0)
    seen = [sim.step(np.full((1, 5), BRAKE))[0][0, 2] for _ in range(4)]
    np.testing.assert_allclose(seen, [-0.01, -0.02, -0.03, -0.04], rtol=1e-6)


@pytest.mark.parametrize("max_active", [5, 3])
def test_arrivals_are_capped(max_active: int) -> None:
    sim = TrafficJunctionSim(64, seed=1, p_arrive=1.0, max_active=max_active)
    sim.reset()
    assert not sim.active().any()  # episodes start with an empty board
    counts = []
    for _ in range(6):
        sim.step(np.full((64, 5), BRAKE))
        counts.append(sim.active().sum(axis=1))
    counts = np.array(counts)
    assert counts.max() == max_active and (counts[-1] == max_active).all()
    np.testing.assert_array_equal(counts[0], 2)  # one arrival per source per step


def test_arrival_rate_and_random_slots() -> None:
    sim = TrafficJunctionSim(4000, seed=2, p_arrive=0.3)
    sim.reset()
    sim.step(np.zeros((4000, 5), int))
    arrivals = sim.active().sum(axis=1)
    assert abs(arrivals.mean() - 0.6) < 0.04  # 2 sources x 0.3
    single = sim.active()[arrivals == 1]
    assert np.all(np.abs(single.mean(axis=0) - 0.2) < 0.04)  # any free slot, uniformly
    assert set(np.unique(sim.slot_info()["route"])) == {-1, 0, 1, 2, 3}


def test_never_terminates_and_truncates_at_max_steps() -> None:
    sim = TrafficJunctionSim(3, seed=0, difficulty="medium")
    sim.reset()
    for step in range(40):
        _, terminated, truncated = sim.step(np.zeros((3, 10), int))
        assert not terminated.any()
        assert truncated.all() == (step == 39)


def test_observation_words_of_own_cell_and_crash() -> None:
    sim = quiet_sim()
    place(sim, 0, route=0, pos=2)
    place(sim, 1, route=1, pos=2)
    place(sim, 4, route=3, pos=0)
    sim.step(np.array([[GAS, GAS, GAS, GAS, BRAKE]]))
    obs = sim.observe()[0]
    assert sim.observation_space.contains(obs[0]) and obs.shape == (5, sim.vocab_size)
    words = [set(np.flatnonzero(row)) for row in obs]
    cell_word, route_word = sim._cell_word, sim._route_word
    crash = {0, 1, 2, cell_word + 24, route_word + 0, route_word + 1}
    assert words[0] == words[1] == crash  # both cars' words in the shared cell
    assert words[4] == {0, 5, cell_word + 21, route_word + 3}
    assert words[2] == words[3] == set()  # off the board


def test_easy_map_shows_its_walls_to_cars_that_see_around() -> None:
    sim = quiet_sim(vision=1)
    place(sim, 4, route=3, pos=0)  # (3, 0): walls above and below
    obs = sim.observe()[0, 4].reshape(9, sim.vocab_size)
    assert np.flatnonzero(obs[:, -1]).tolist() == [
        1,
        2,
        7,
        8,
    ]  # window cells (-1, 0), (-1, 1), (1, 0), (1, 1)


def test_vision_window_sees_neighbours() -> None:
    sim = TrafficJunctionSim(1, seed=0, difficulty="medium", p_arrive=0.0)
    sim.reset()
    place(sim, 0, route=0, pos=3)
    place(sim, 1, route=0, pos=4)  # the cell below car 0
    obs = sim.observe()[0].reshape(10, 9, sim.vocab_size)
    assert set(np.flatnonzero(obs[0, 7])) == {0, 2, sim._cell_word + sim._cells()[0, 1], sim._route_word}
    assert set(np.flatnonzero(obs[1, 1])) == {0, 1, sim._cell_word + sim._cells()[0, 0], sim._route_word}
    assert obs[0].sum() == obs[1].sum() == 8


def test_options_take_effect_at_episode_start() -> None:
    env = make_team_env(IDS[0], num_envs=2, seed=0, p_arrive=0.1)
    env.reset(seed=0)
    assert env.sim.p_arrive.tolist() == [0.1, 0.1]
    env.set_options({"p_arrive": 0.25})
    assert env.sim.p_arrive.tolist() == [0.1, 0.1]  # running episodes keep theirs
    for _ in range(20):
        env.step(np.zeros((2, 5), int))
    assert env.sim.p_arrive.tolist() == [0.25, 0.25]
    env.reset(options={"p_arrive": 0.3})
    assert env.sim.p_arrive.tolist() == [0.3, 0.3]
    with pytest.raises(AnewError, match="p_arrive"):
        env.set_options({"p_arrive": 1.5})
    with pytest.raises(AnewError, match="speed"):
        env.set_options({"speed": 2})
    with pytest.raises(AnewError, match="difficulty"):
        TrafficJunctionSim(1, difficulty="extreme")


def slice_state(state: dict, game: int) -> dict:
    arrays = {k: (v[game : game + 1] if v.ndim else v) for k, v in state["arrays"].items()}
    return {"arrays": arrays, "rng": state["rng"]}


@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_batched_sim_equals_single_games(difficulty: str) -> None:
    B, rng = 6, np.random.default_rng(5)
    batched = TrafficJunctionSim(B, seed=3, difficulty=difficulty, p_arrive=0.6)
    batched.reset()
    for _ in range(7):
        batched.step(rng.integers(0, 2, (B, batched.nmax)))
    singles = []
    for game in range(B):
        single = TrafficJunctionSim(1, seed=99, difficulty=difficulty)
        single.load_state_dict(slice_state(batched.state_dict(), game))
        singles.append(single)
    for _ in range(12):
        actions, noise = rng.integers(0, 2, (B, batched.nmax)), batched.draw_noise()
        rewards, _, truncated = batched.step_with_noise(actions, noise)
        obs = batched.observe()
        for game, single in enumerate(singles):
            part = type(noise)(*(u[game : game + 1] for u in noise))
            r, _, tr = single.step_with_noise(actions[game : game + 1], part)
            np.testing.assert_array_equal(r[0], rewards[game])
            np.testing.assert_array_equal(single.observe()[0], obs[game])
            assert tr[0] == truncated[game]
            assert (
                single.episode_metrics()["n_collisions"][0] == batched.episode_metrics()["n_collisions"][game]
            )


def test_team_vector_env_state_round_trip() -> None:
    env = make_team_env(IDS[1], num_envs=3, seed=0)
    env.reset(seed=4)
    actions = np.random.default_rng(0).integers(0, 2, (30, 3, 10))
    for a in actions[:10]:
        env.step(a)
    state = env.state_dict()
    expected = [env.step(a)[:2] for a in actions[10:]]
    other = TeamVectorEnv(TrafficJunctionSim(3, seed=11, difficulty="medium"))
    other.reset(seed=1)
    other.load_state_dict(state)
    for a, (obs, rewards) in zip(actions[10:], expected, strict=True):
        got_obs, got_rewards, *_ = other.step(a)
        np.testing.assert_array_equal(got_obs, obs)
        np.testing.assert_array_equal(got_rewards, rewards)


@pytest.mark.parametrize(
    ("difficulty", "layout", "max_active"),
    [("easy", "commnet", None), ("easy", "commnet", 3), ("easy", "ic3net", None), ("medium", "commnet", None),
     ("hard", "commnet", None), ("hard", "ic3net", None)],
)  # fmt: skip
def test_percar_peer_does_the_same_work(difficulty: str, layout: str, max_active: int | None) -> None:
    """Same rewards, boards, observations and collisions step by step; max_active 3 is the curriculum's car cap."""
    percar = load_percar()
    B, rng = 8, np.random.default_rng(1)
    options = {"difficulty": difficulty, "layout": layout, "p_arrive": 0.5, "max_active": max_active}
    sim = TrafficJunctionSim(B, seed=7, **options)
    peer = percar.PerCarTrafficJunction(B, seed=7, **options)
    sim.reset()
    total, most_on_board = 0.0, 0
    for _ in range(sim.max_steps):
        actions = (rng.random((B, sim.nmax)) < 0.3).astype(int)
        rewards, _, truncated = sim.step(actions)
        peer_rewards, _, peer_truncated = peer.step(actions)
        np.testing.assert_array_equal(rewards, peer_rewards)
        np.testing.assert_array_equal(sim.active(), peer.on_board())
        np.testing.assert_array_equal(sim.observe(), peer.observe())
        total += rewards.sum()
        most_on_board = max(most_on_board, int(sim.active().sum(axis=1).max()))
    np.testing.assert_array_equal(truncated, peer_truncated)
    np.testing.assert_array_equal(sim.episode_metrics()["n_collisions"], peer.n_collisions())
    assert sim.episode_metrics()["n_collisions"].sum() > 0 and total < 0  # the comparison saw crashes
    assert most_on_board == (max_active or sim.nmax)  # the cap was reached and never passed


def test_render_draws_roads_cars_and_crashes() -> None:
    sim = quiet_sim()
    place(sim, 0, route=0, pos=2)
    place(sim, 1, route=1, pos=2)
    place(sim, 2, route=3, pos=0)
    sim.step(np.array([[GAS, GAS, BRAKE, GAS, GAS]]))
    image = sim.render(0)
    assert image.shape == (7 * 24, 7 * 24, 3) and image.dtype == np.uint8
    assert tuple(image[3 * 24 + 1, 3 * 24 + 12]) == (220, 30, 30)  # the crash cell's red frame
    car = image[3 * 24 + 12, 0 * 24 + 12]
    assert tuple(car) == tuple(image[3 * 24 + 12, 0 * 24 + 8]) and car[1] != 150  # car 2, not road gray
    assert tuple(image[0 * 24 + 12, 0 * 24 + 12]) != tuple(image[1 * 24 + 12, 3 * 24 + 12])  # grass vs road


def test_step_uses_the_numbers_draw_noise_gives() -> None:
    """step() draws its uniforms a block of steps at a time; they are the numbers of one draw per step,
    also across option changes at partial resets."""
    rng = np.random.default_rng(3)
    blocked = TrafficJunctionSim(5, seed=9, p_arrive=0.5, max_active=4)
    replayed = TrafficJunctionSim(5, seed=9, p_arrive=0.5, max_active=4)
    per_step = np.random.default_rng(9)
    blocked.reset(), replayed.reset()
    for step in range(45):  # more than two blocks
        if step == 21:
            mask = np.array([True, False, True, False, False])
            blocked.reset(mask, {"p_arrive": 0.9}), replayed.reset(mask, {"p_arrive": 0.9})
        actions = rng.integers(0, 2, (5, 5))
        noise = replayed.draw_noise()
        np.testing.assert_array_equal(np.hstack(noise), per_step.random((5, 2 * 2 + 5)))
        np.testing.assert_array_equal(blocked.step(actions)[0], replayed.step_with_noise(actions, noise)[0])
        np.testing.assert_array_equal(blocked.observe(), replayed.observe())
    assert blocked.episode_metrics()["n_collisions"].sum() > 0


def test_state_round_trip_inside_a_block_of_random_numbers() -> None:
    sim = TrafficJunctionSim(4, seed=1, difficulty="hard", p_arrive=0.6)
    sim.reset()
    actions = np.random.default_rng(0).integers(0, 2, (40, 4, 20))
    for a in actions[:5]:
        sim.step(a)
    state = sim.state_dict()
    per_step = np.random.default_rng(1)
    per_step.random((5, 4, 2 * 8 + 20))
    assert state["rng"] == per_step.bit_generator.state  # the generator state of step 5, not of the block
    expected = [sim.step(a)[0] for a in actions[5:]]
    sim.load_state_dict(state)  # back into the same sim
    np.testing.assert_array_equal([sim.step(a)[0] for a in actions[5:]], expected)


def test_time_penalty_keeps_growing_past_max_steps() -> None:
    sim = quiet_sim()
    place(sim, 1, route=0, pos=0, tau=0)
    seen = [sim.step(np.full((1, 5), BRAKE))[0][0, 1] for _ in range(3 * sim.max_steps)]
    np.testing.assert_array_equal(seen, np.float32(-0.01 * np.arange(1, 3 * sim.max_steps + 1)))


def test_scripted_cars_must_be_on_the_board() -> None:
    sim = quiet_sim()
    with pytest.raises(AnewError, match="route 0"):
        sim.put_car(0, 0, route=0, cells_travelled=sim.map.route_len[0] - 1)  # commnet: left on its last cell
    with pytest.raises(AnewError, match="vision"):
        TrafficJunctionSim(1, vision=8)


@pytest.mark.parametrize(("difficulty", "vision"), [("easy", 0), ("medium", 1), ("medium", 0)])
def test_pair_and_sort_strategies_agree(monkeypatch, difficulty: str, vision: int) -> None:
    """Cell mates and slot ranks from slot pairs (<= PAIR_SLOTS slots) or from a bincount and a sort; own
    words from a row table (vision 0) or from the window pairs: the same rewards and observations."""
    import anew.envs.traffic_junction_pairs as pairs
    import anew.envs.traffic_junction_tables as tables

    fast = TrafficJunctionSim(6, seed=2, difficulty=difficulty, vision=vision, p_arrive=0.7, max_active=4)
    monkeypatch.setattr(pairs, "PAIR_SLOTS", 0)
    monkeypatch.setattr(tables, "OWN_ROWS_BYTES", 0)
    other = TrafficJunctionSim(6, seed=2, difficulty=difficulty, vision=vision, p_arrive=0.7, max_active=4)
    assert fast._car_pairs.compare_pairs and not other._car_pairs.compare_pairs
    assert (fast._tables.own is not None) == (vision == 0) and other._tables.own is None
    fast.reset(), other.reset()
    actions = np.random.default_rng(4).integers(0, 2, (30, 6, fast.nmax))
    for a in actions:
        np.testing.assert_array_equal(fast.step(a)[0], other.step(a)[0])
        np.testing.assert_array_equal(fast.observe(), other.observe())
    assert fast.episode_metrics()["n_collisions"].sum() > 0
