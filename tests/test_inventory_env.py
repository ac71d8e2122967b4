"""Inventory simulators: dynamics by hand, Gymnasium conformance, the vector face, differentiability,
history replay reducing to lost sales, vendor constraints, shared capacity, and history files."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from scipy import stats

from anew.agents.inventory_policies import BaseStockPolicy
from anew.envs.inventory import InventoryConfig, InventorySim, inventory_step, rollout
from anew.envs.inventory_capacity import apply_capacity
from anew.envs.inventory_gym import ENV_IDS, InventoryEnv, InventoryVectorEnv, register_inventory_envs
from anew.envs.inventory_history import History, load_history, save_history, synthetic_history
from anew.envs.inventory_replay import (
    DemandHistorySim,
    Exogenous,
    ReplayConfig,
    ReplayState,
    replay_step,
    vendor_constraints,
)
from anew.errors import AnewError

register_inventory_envs()
SMALL = {  # keep the replay catalogues small in tests
    "anew/HistoryReplay-v0": {"synthetic_products": 20},
    "anew/VendorConstraints-v0": {"synthetic_products": 20},
    "anew/CapacitatedMultiProduct-v0": {"synthetic_products": 20, "num_products": 3},
}


def test_lost_sales_and_backlog_step_by_hand() -> None:
    state = torch.tensor([[3.0, 2.0]])  # x0 = 3 on hand, 2 arriving next period
    order, demand = torch.tensor([4.0]), torch.tensor([5.0])
    nxt, cost, _info = inventory_step(state, order, demand, lead_time=2, p=4.0, h=1.0)
    torch.testing.assert_close(nxt, torch.tensor([[2.0, 4.0]]))  # ((3-5)^+ + 2, q)
    torch.testing.assert_close(cost, torch.tensor([8.0]))  # 2 lost units at p = 4
    nxt, cost, _ = inventory_step(state, order, demand, lead_time=2, p=4.0, h=1.0, backlog=True)
    torch.testing.assert_close(nxt, torch.tensor([[0.0, 4.0]]))  # -2 backordered + 2 arriving
    nxt, cost, _ = inventory_step(
        torch.tensor([[7.0]]), torch.tensor([1.0]), torch.tensor([2.0]), 1, 4.0, 1.0
    )
    torch.testing.assert_close((nxt, cost), (torch.tensor([[6.0]]), torch.tensor([5.0])))
    # lead time 0 (backlog): the order arrives before demand
    nxt, cost, _ = inventory_step(
        torch.tensor([[-1.0]]), torch.tensor([6.0]), torch.tensor([3.0]), 0, 4.0, 1.0, True, 5.0
    )
    torch.testing.assert_close((nxt, cost), (torch.tensor([[2.0]]), torch.tensor([2.0 + 5.0])))


def test_demand_sampling_follows_the_pmf() -> None:
    sim = InventorySim(InventoryConfig(), num_envs=20000, seed=0)
    counts = np.bincount(sim.sample_demand().numpy().astype(int), minlength=25)[:15]
    expected = stats.poisson(5).pmf(np.arange(15)) * 20000
    assert stats.chisquare(counts, expected * counts.sum() / expected.sum()).pvalue > 1e-3


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_check_env_and_render(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array", **SMALL.get(env_id, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite Box bounds are deliberate (stock is unbounded)
        check_env(env.unwrapped, skip_render_check=False)
    assert env.metadata["render_fps"] > 0
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert env.spec.max_episode_steps is not None


@pytest.mark.parametrize("env_id", ["anew/LostSales-v0", "anew/Backlog-v0"])
def test_continuous_actions_pass_check_env(env_id: str) -> None:
    env = gym.make(env_id, action_type="continuous", lead_time=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    assert env.observation_space.shape == (3,)


def test_vector_entry_point_and_single_view_share_one_simulation() -> None:
    vec = gym.make_vec("anew/LostSales-v0", num_envs=1, max_episode_steps=50)
    assert isinstance(vec, InventoryVectorEnv)
    single = InventoryEnv("anew/LostSales-v0")
    obs_v, _ = vec.reset(seed=11)
    obs_s, _ = single.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = int(rng.integers(0, 10))
        obs_v, reward_v, _, _, _ = vec.step(np.array([action]))
        obs_s, reward_s, _, _, _ = single.step(action)
        np.testing.assert_array_equal(obs_v[0], obs_s)
        assert reward_v[0] == reward_s


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_env_truncates_together_and_autoresets(mode: AutoresetMode) -> None:
    vec = gym.make_vec("anew/LostSales-v0", num_envs=64, max_episode_steps=3, autoreset_mode=mode)
    assert vec.metadata["autoreset_mode"] == mode
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (64, 2) and vec.single_action_space == gym.spaces.Discrete(9 + 1)
    for step in range(3):
        obs, reward, terminated, truncated, info = vec.step(np.full(64, 5))
        assert not terminated.any()
        assert truncated.all() == (step == 2)
    if mode == AutoresetMode.SAME_STEP:
        assert np.all(obs == 0) and info["final_obs"][:, 1].tolist() == [5.0] * 64
    else:
        assert obs[:, 1].tolist() == [5.0] * 64
        obs, reward, _, truncated, _ = vec.step(np.full(64, 5))  # the reset step
        assert np.all(obs == 0) and np.all(reward == 0) and not truncated.any()


def test_rollout_gradient_matches_newsvendor_derivative() -> None:
    """Pathwise d cost / d S of base-stock S in the backlog model is h F(S) - p (1 - F(S)), F = cdf of D_{L+1}."""
    config = InventoryConfig(lead_time=1, p=4.0, backlog=True, max_order=100)
    sim = InventorySim(config, num_envs=4000, seed=0)
    for below in (9, 14):
        level = torch.tensor(below + 0.5, requires_grad=True)
        costs, _ = rollout(config, lambda s, level=level: torch.relu(level - s.sum(1)), sim.sample_demand(40))
        costs[:, 10:].mean().backward()
        F = stats.poisson(10).cdf(below)
        assert level.grad.item() == pytest.approx(F - 4.0 * (1 - F), abs=0.05)  # -1.71 and +0.58


def test_history_replay_reduces_to_lost_sales() -> None:
    """i.i.d. Poisson demand, fixed lead time 2, price = p = 4, cost 0, h = 1: Zipkin's model exactly."""
    products, periods, window, p = 1000, 1200, 4, 4.0
    config = InventoryConfig(lead_time=2, p=p, max_order=10**6)
    demands = InventorySim(config, products, seed=5).sample_demand(periods)
    lost_sales_costs, _ = rollout(config, lambda s: torch.relu(16.0 - s.sum(1)), demands)

    record = torch.cat([torch.zeros(products, window), demands], dim=1).numpy()
    history = History(record, price=p, cost=0.0, lead_time=2, holding=1.0)
    sim = DemandHistorySim(
        ReplayConfig(history=history, periods=periods, window=window, max_order=1e6), products
    )
    obs = sim.reset(products=torch.arange(products))
    policy = BaseStockPolicy(16, lead_time=2)
    rewards = []
    for _ in range(periods):
        obs, reward, over, _ = sim.step(torch.as_tensor(policy.act(obs.numpy()), dtype=torch.float32))
        rewards.append(reward)
    assert over.all()
    replay_costs = p * demands - torch.stack(rewards, dim=1)  # reward = p D - Zipkin cost
    torch.testing.assert_close(replay_costs, lost_sales_costs, atol=1e-3, rtol=0)
    per_product = replay_costs[:, 200:].double().mean(dim=1)
    se = per_product.std().item() / np.sqrt(products)
    assert abs(per_product.mean().item() - 4.639) < 4 * se + 5e-4  # best base-stock, L=2, p=4


def _exo(batch: int, shares: list[float], yield_rate: float = 1.0, demand: float = 0.0) -> Exogenous:
    full = lambda value: torch.full((batch,), float(value))
    return Exogenous(
        full(demand), full(10.0), full(2.0), full(0.5), torch.tensor([shares] * batch), full(yield_rate)
    )


def test_vendor_constraints_round_with_straight_through_gradient() -> None:
    order = torch.tensor([3.0, 6.0, 12.0, 23.0], requires_grad=True)
    processed = vendor_constraints(order, min_order=10.0, order_multiple=5.0)
    torch.testing.assert_close(processed, torch.tensor([0.0, 10.0, 10.0, 25.0]))
    processed.sum().backward()
    torch.testing.assert_close(order.grad, torch.ones(4))


@pytest.mark.parametrize("cost_at", ["order", "arrival"])
def test_general_arrivals_spread_orders_with_yield(cost_at: str) -> None:
    zeros = torch.zeros(1, 4)
    state = ReplayState(torch.zeros(1), zeros, zeros.clone(), torch.zeros(1, 2))
    shares = [0.0, 0.5, 0.3, 0.2]
    state, reward, _info = replay_step(state, torch.tensor([10.0]), _exo(1, shares, 0.9), cost_at=cost_at)
    torch.testing.assert_close(state.pipeline, torch.tensor([[4.5, 2.7, 1.8, 0.0]]))
    paid = [20.0, 9.0, 5.4, 3.6] if cost_at == "order" else [0.0, 9.0, 5.4, 3.6]  # cost 2 per unit
    rewards = [reward.item()]
    for _ in range(3):
        state, reward, _ = replay_step(state, torch.zeros(1), _exo(1, shares, 0.9), cost_at=cost_at)
        rewards.append(reward.item())
    on_hand = np.cumsum([0.0, 4.5, 2.7, 1.8])
    expected = [
        -(paid[t] if cost_at == "arrival" else (20.0 if t == 0 else 0.0)) - 0.5 * on_hand[t] for t in range(4)
    ]
    np.testing.assert_allclose(rewards, expected, atol=1e-5)


def test_capacity_hard_scales_and_soft_prices() -> None:
    orders = torch.tensor([[6.0, 4.0], [1.0, 1.0]])
    capacity = torch.tensor([5.0, 5.0])
    placed, penalty, excess = apply_capacity(orders, capacity, "hard", 3.0)
    torch.testing.assert_close(placed, torch.tensor([[3.0, 2.0], [1.0, 1.0]]))
    torch.testing.assert_close((penalty, excess), (torch.zeros(2), torch.tensor([5.0, 0.0])))
    placed, penalty, _ = apply_capacity(orders, capacity, "soft", 3.0)
    torch.testing.assert_close((placed, penalty), (orders, torch.tensor([15.0, 0.0])))


def test_capacitated_env_reports_violations() -> None:
    vec = gym.make_vec(
        "anew/CapacitatedMultiProduct-v0", num_envs=8, mode="soft", **SMALL["anew/CapacitatedMultiProduct-v0"]
    )
    vec.reset(seed=0)
    _, reward, _, _, info = vec.step(np.full((8, 3), 50.0, dtype=np.float32))
    assert info["capacity_violation"].all() and (info["capacity_excess"] > 0).all()
    assert reward.shape == (8,)


def test_history_files_round_trip(tmp_path) -> None:
    history = synthetic_history(num_products=4, periods=12, seed=1, min_yield=0.8)
    path = tmp_path / "history.csv"
    save_history(history, path)
    loaded = load_history(path)
    for field in ("demand", "price", "cost", "lead_time", "holding", "yield_rate"):
        np.testing.assert_allclose(getattr(loaded, field), getattr(history, field), rtol=1e-6)
    env = gym.make("anew/HistoryReplay-v0", history=str(path), periods=8, window=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (history.max_lag + 3 + 2,)


def test_parquet_history_needs_an_engine_or_round_trips(tmp_path) -> None:
    history = synthetic_history(num_products=2, periods=6, seed=2)
    path = tmp_path / "history.parquet"
    try:
        save_history(history, path)
    except ImportError:
        with pytest.raises(AnewError, match="pyarrow"):
            path.write_bytes(b"PAR1")
            load_history(path)
        return
    np.testing.assert_allclose(load_history(path).demand, history.demand)


def test_bad_inputs_are_clear_errors(tmp_path) -> None:
    with pytest.raises(AnewError, match="lead time"):
        InventoryConfig(lead_time=0)
    with pytest.raises(AnewError, match="bad option"):
        gym.make("anew/LostSales-v0", lead_tme=3)
    bad = tmp_path / "bad.csv"
    bad.write_text("product,period,demand\n0,0,1\n")
    with pytest.raises(AnewError, match="lacks columns"):
        load_history(bad)
    with pytest.raises(AnewError, match="window"):
        DemandHistorySim(ReplayConfig(history=synthetic_history(2, 10), periods=10, window=4), 2)
