"""What inventory episodes report and how evaluations use it: the random-order baseline (by hand and against
simulation), the exact optima offered, the meter's warm-up, the vector envs passing measures on, evaluation's
averages and standard errors, and `anew report --normalize reference` on PPO and DQN inventory runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anew.envs import make_vector_env
from anew.envs.inventory import InventoryConfig, InventorySim
from anew.envs.inventory_exact import backlog_optimum, lost_sales_optimum
from anew.envs.inventory_gym import InventoryVectorEnv
from anew.envs.inventory_measures import EpisodeMeter, RandomOrderCosts, optimal_cost
from anew.inventory_demand import DemandDistribution
from anew.runners.cli import main as cli
from anew.runners.evaluate import evaluate_agent

torch.set_num_threads(1)


def test_random_order_costs_by_hand() -> None:
    """Demand always 2, orders 0 or 1 with probability 1/2, L = 1, p = 4, h = 1."""
    always_two = DemandDistribution.from_pmf([0.0, 0.0, 1.0])
    lost = RandomOrderCosts(InventoryConfig(lead_time=1, p=4.0, demand=always_two, max_order=1))
    # period 0: nothing on hand, 2 lost (8); then the level is the last order, 0 or 1: 8 or 4 (mean 6)
    assert [lost.total(n) for n in range(4)] == pytest.approx([0.0, 8.0, 14.0, 20.0])
    backlog = RandomOrderCosts(
        InventoryConfig(lead_time=1, p=4.0, demand=always_two, max_order=1, backlog=True)
    )
    # period 1: level -2 + q in {-2, -1}: 4 or 3 units backordered after demand (16 or 12)
    assert backlog.total(2) == pytest.approx(8.0 + 14.0)
    fixed = RandomOrderCosts(
        InventoryConfig(lead_time=1, p=4.0, demand=always_two, max_order=1, fixed_cost=2.0)
    )
    assert fixed.total(3) == pytest.approx(20.0 + 3 * 2.0 * 0.5)  # K whenever the order is positive


@pytest.mark.parametrize("backlog", [False, True])
def test_random_order_costs_match_a_simulation_of_random_orders(backlog: bool) -> None:
    config = InventoryConfig(lead_time=2, p=4.0, backlog=backlog)  # max_order 9: mean order 4.5 < demand 5
    sim, rng, periods = InventorySim(config, 20_000, seed=3), np.random.default_rng(3), 40
    sim.reset(3)
    costs = np.zeros((periods, sim.num_envs))
    for t in range(periods):
        _, reward, _, _ = sim.step(torch.as_tensor(rng.integers(0, config.max_order + 1, sim.num_envs)))
        costs[t] = -reward.numpy()
    per_instance = costs.sum(axis=0)
    se = per_instance.std(ddof=1) / np.sqrt(sim.num_envs)
    assert abs(RandomOrderCosts(config).total(periods) - per_instance.mean()) < 4 * se


def test_optimal_cost_only_where_it_is_exact() -> None:
    assert optimal_cost(InventoryConfig(lead_time=2, p=4.0)) == pytest.approx(
        lost_sales_optimum(2, 4.0).average_cost
    )
    capped = InventoryConfig(lead_time=2, p=4.0, backlog=True)  # max_order 9 caps base-stock's orders
    assert optimal_cost(capped) is None
    assert optimal_cost(InventoryConfig(lead_time=2, p=4.0, backlog=True, max_order=40)) == pytest.approx(
        backlog_optimum(2, 4.0).average_cost
    )
    assert optimal_cost(InventoryConfig(lead_time=2, p=4.0, fixed_cost=1.0)) is None
    assert optimal_cost(InventoryConfig(lead_time=6, p=4.0)) is None  # a grid too large to solve on the fly


def test_meter_leaves_out_the_warmup_and_prices_the_rest_at_the_optimum() -> None:
    config = InventoryConfig(lead_time=1, p=4.0)
    meter = EpisodeMeter("cost", 1, warmup=2, config=config)
    for reward in (-10.0, -10.0, -4.0):
        meter.record(np.array([reward]), {})
        first = meter.info()
    assert first["episode_measures"]["average_cost"][0] == pytest.approx(4.0)
    meter.record(np.array([-6.0]), {})
    info = meter.info()
    optimum = lost_sales_optimum(1, 4.0).average_cost
    assert info["episode_measures"]["average_cost"][0] == pytest.approx(5.0)
    assert info["episode_measures"]["optimality_gap"][0] == pytest.approx(5.0 / optimum - 1)
    assert info["episode_references"]["reference_return"][0] == pytest.approx(-30.0 + (5.0 - optimum) * 2)
    assert info["episode_references"]["random_return"][0] == pytest.approx(-RandomOrderCosts(config).total(4))
    meter.reset()
    meter.record(np.array([-7.0]), {})  # within the warmup an episode is measured whole
    assert meter.info()["episode_measures"]["average_cost"][0] == pytest.approx(7.0)


def test_seeded_vector_env_passes_on_the_measures_of_finished_episodes() -> None:
    envs = make_vector_env(
        "anew/LostSales-v0", 2, seed=0, env_kwargs={"max_episode_steps": 5, "measure_warmup": 2}
    )
    envs.reset(seed=0)
    rewards = []
    for _ in range(5):
        _, reward, _, truncated, info = envs.step(np.array([3, 6]))
        rewards.append(reward)
        assert ("episode_measures" in info) == bool(truncated.all())
    np.testing.assert_allclose(info["episode_measures"]["average_cost"], -np.mean(rewards[2:], axis=0))
    np.testing.assert_allclose(
        info["episode_references"]["optimal_cost"], lost_sales_optimum(2, 4.0).average_cost
    )


def test_vector_face_reports_at_the_truncating_step() -> None:
    envs = InventoryVectorEnv("anew/LostSales-v0", 3, max_episode_steps=4, seed=0, measure_warmup=1)
    envs.reset(seed=0)
    rewards = []
    for t in range(4):
        _, reward, _, _, info = envs.step(np.array([4, 5, 6]))
        rewards.append(reward)
        assert ("episode_measures" in info) == (t == 3)
    np.testing.assert_allclose(info["episode_measures"]["average_cost"], -np.mean(rewards[1:], axis=0))


class RandomOrders:
    """Uniformly random integer orders 0..top, from the evaluation's generator."""

    def __init__(self, top: int):
        self.top = top

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        pass

    def act(self, obs: np.ndarray, explore: bool = False, rng=None, info=None) -> np.ndarray:
        return rng.integers(0, self.top + 1, len(obs))


def test_evaluation_averages_measures_with_errors_and_random_orders_score_the_random_return() -> None:
    options = {"max_episode_steps": 30, "lead_time": 2, "p": 4.0}
    result = evaluate_agent(RandomOrders(9), "anew/LostSales-v0", 300, seed=5, env_kwargs=options)
    extra = result.extra
    assert {"average_cost", "average_cost_se", "optimality_gap", "optimality_gap_se"} <= set(extra)
    assert {"optimal_cost", "reference_return", "random_return"} <= set(extra)
    assert "optimal_cost_se" not in extra  # references are known, not estimated
    se = np.std(result.returns, ddof=1) / np.sqrt(len(result.returns))
    assert abs(np.mean(result.returns) - extra["random_return"]) < 4 * se
    assert extra["optimal_cost"] == pytest.approx(lost_sales_optimum(2, 4.0).average_cost)


@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_report_normalizes_inventory_runs_by_the_reference(agent: str, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / agent
    small = {"ppo": "--num-steps 64 --num-minibatches 2 --update-epochs 1",
             "dqn": "--learning-starts 64 --buffer-size 500 --batch-size 16"}[agent]  # fmt: skip
    flags = "--env-id anew/LostSales-v0 --total-steps 256 --eval-episodes 3 --max-episode-steps 200"
    assert cli(["train", agent, *flags.split(), *small.split(), "--run-dir", str(run_dir)]) == 0
    evaluation = json.loads((run_dir / "eval.json").read_text())["evaluations"][-1]
    extra = evaluation["extra"]
    assert {"average_cost", "optimality_gap", "reference_return", "random_return"} <= set(extra)
    capsys.readouterr()
    report_json = tmp_path / "r.json"
    assert (
        cli(["report", "--normalize", "reference", "--no-plots", "--json", str(report_json), str(run_dir)])
        == 0
    )
    assert "Optimality Gap" in capsys.readouterr().out
    low, high = extra["random_return"], extra["reference_return"]
    score = (np.mean(evaluation["returns"]) - low) / (high - low)
    report = json.loads(report_json.read_text())
    assert report["metrics"]["Optimality Gap"][agent]["point"] == pytest.approx(max(1 - score, 0.0))
