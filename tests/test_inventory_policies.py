"""Classical inventory policies simulated on the batched simulator against published costs.

Reference costs (Poisson mean 5, h = 1): Zipkin (2008) Table 3(a), DynaPlex's lost-sales tests, and
exact policy evaluation, as collected in the project's inventory reference note. Each check allows
4 standard errors of the simulation plus the reference's own rounding (3 decimals).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from anew.agents.core import Agent
from anew.agents.inventory_policies import (
    BaseStockPolicy,
    ConstantOrderPolicy,
    MyopicPolicy,
    NewsvendorReplayPolicy,
    SSPolicy,
    TablePolicy,
    VectorBaseStockPolicy,
    best_base_stock,
)
from anew.envs.inventory import InventoryConfig, simulate_policy
from anew.envs.inventory_exact import backlog_optimum, constant_order_cost, lost_sales_optimum, s_S_optimum
from anew.inventory_demand import poisson_pmf

PMF = poisson_pmf(5.0)


def assert_cost(policy: Agent, expected: float, rounding: float = 5e-4, envs: int = 2000, **config) -> float:
    cfg = InventoryConfig(max_order=10**6, **config)
    cost, se = simulate_policy(cfg, policy.act, num_envs=envs, periods=1500, warmup=200, seed=7)
    assert abs(cost - expected) < 4 * se + rounding, f"simulated {cost:.4f} ± {se:.4f}, expected {expected}"
    return cost


def test_policies_follow_the_agent_protocol() -> None:
    policy = BaseStockPolicy(16, lead_time=2)
    assert isinstance(policy, Agent)
    assert policy.update() == {} and policy.state_dict() == {}
    orders = policy.act(np.array([[3.0, 4.0], [20.0, 0.0]]), explore=True)
    np.testing.assert_array_equal(orders, [9, 0])
    assert orders.dtype == np.int64
    capped = BaseStockPolicy(16, lead_time=2, cap=5, max_order=4)
    np.testing.assert_array_equal(capped.act(np.array([[0.0, 0.0]])), [4])


def test_newsvendor_levels() -> None:
    assert BaseStockPolicy.newsvendor(1, PMF, 4, 1).level == 13
    assert BaseStockPolicy.newsvendor(2, PMF, 4, 1).level == 18
    np.testing.assert_array_equal(VectorBaseStockPolicy(4, PMF, 4, 1).levels, [29, 24, 18, 13, 7])


@pytest.mark.parametrize(
    ("lead_time", "level", "expected"),
    [(1, 13, 4.390), (2, 18, 4.943), (2, 16, 4.639), (4, 25, 5.198)],
)
def test_base_stock_costs(lead_time: int, level: int, expected: float) -> None:
    assert_cost(BaseStockPolicy(level, lead_time), expected, lead_time=lead_time, p=4)


def test_capped_base_stock_matches_zipkin_better_vector_base_stock() -> None:
    assert_cost(BaseStockPolicy(26, 4, cap=5), 4.798, lead_time=4, p=4)


def test_myopic_and_vector_base_stock_match_zipkin_table() -> None:
    assert_cost(MyopicPolicy(4, PMF, 4, 1, lookahead=1), 5.063, lead_time=4, p=4)
    assert_cost(MyopicPolicy(4, PMF, 4, 1, lookahead=2), 4.817, lead_time=4, p=4)
    assert_cost(VectorBaseStockPolicy(4, PMF, 4, 1), 5.834, lead_time=4, p=4)


def test_myopic_tables_agree_with_direct_computation() -> None:
    policy = MyopicPolicy(2, PMF, 9, 1, lookahead=2)
    states = np.array([[0, 0], [5, 3], [12, 1], [40, 2], [200, 0]])  # the last two are off the table
    cached = policy.act(states.astype(float))
    direct = policy._myopic2(states)[:, 0]
    np.testing.assert_array_equal(cached, direct)
    assert cached[-1] == 0  # a huge stock orders nothing


def test_exact_optimal_policy_simulates_to_the_optimum() -> None:
    """The solver's policy run on the simulator: the two implementations must agree."""
    solution = lost_sales_optimum(2, 4)
    assert_cost(TablePolicy(solution.policy), solution.average_cost, rounding=0.0, lead_time=2, p=4)


def test_constant_order_cost_does_not_depend_on_lead_time() -> None:
    exact = constant_order_cost(4, 4)
    for lead_time in (1, 4):
        assert_cost(ConstantOrderPolicy(4), exact, rounding=0.0, lead_time=lead_time, p=4)


def test_backlog_newsvendor_level_hits_g_of_s_star() -> None:
    solution = backlog_optimum(2, 4)
    assert_cost(
        BaseStockPolicy(solution.level, 2),
        solution.average_cost,
        rounding=0.0,
        lead_time=2,
        p=4,
        backlog=True,
    )


def test_s_S_policy_simulates_to_zheng_federgruen_cost() -> None:
    solution = s_S_optimum(5, 4)  # (3, 9), 7.3589 with zero lead time
    policy = SSPolicy(solution.s, solution.S, lead_time=0)
    assert_cost(policy, solution.average_cost, rounding=0.0, lead_time=0, p=4, backlog=True, fixed_cost=5)
    lagged = s_S_optimum(5, 4, lead_time=1)
    policy = SSPolicy(lagged.s, lagged.S, lead_time=1)
    assert_cost(policy, lagged.average_cost, rounding=0.0, lead_time=1, p=4, backlog=True, fixed_cost=5)


def test_best_base_stock_search_finds_level_16() -> None:
    config = InventoryConfig(lead_time=2, p=4, max_order=10**6)

    def evaluate(policy: BaseStockPolicy) -> float:
        return simulate_policy(config, policy.act, num_envs=1000, periods=800, warmup=100, seed=3)[0]

    best, cost = best_base_stock(evaluate, 2, range(13, 20))
    assert best.level == 16
    assert cost == pytest.approx(4.639, abs=0.02)


def test_newsvendor_replay_policy_orders_up_to_the_fractile() -> None:
    # layout: x0, one pipeline entry, price, cost, holding, two observed demands
    obs = np.array([[2.0, 1.0, 10.0, 6.0, 0.5, 4.0, 6.0]])
    policy = NewsvendorReplayPolicy(pipeline_length=2, mean_lead_time=2.0)
    level = stats.poisson.ppf(4.0 / 4.5, 5.0 * 3)
    np.testing.assert_allclose(policy.act(obs), [level - 3.0])
