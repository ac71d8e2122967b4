"""Exact inventory solvers against published / independently computed reference numbers.

Reference values: Zipkin (2008) and DynaPlex tests as collected in the project's inventory reference
note (lost-sales optima, backlog newsvendor table, stockpyl's Zheng-Federgruen doctests).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats

from anew.envs.inventory_exact import (
    backlog_optimum,
    best_constant_order,
    constant_order_cost,
    lost_sales_optimum,
    s_S_cost,
    s_S_optimum,
)
from anew.errors import AnewError
from anew.inventory_demand import DemandDistribution, convolve_pmf, expected_period_cost, quantile

# (L, p) -> optimal long-run average cost (Poisson mean 5, h = 1)
LOST_SALES_OPTIMA = {(1, 4): 4.0407, (2, 4): 4.3953, (2, 9): 6.0936, (4, 4): 4.7285}


@pytest.mark.parametrize(("lead_time", "p"), sorted(LOST_SALES_OPTIMA))
def test_value_iteration_reproduces_reference_optima(lead_time: int, p: float) -> None:
    start = time.perf_counter()
    solution = lost_sales_optimum(lead_time, p)
    elapsed = time.perf_counter() - start
    assert solution.average_cost == pytest.approx(LOST_SALES_OPTIMA[lead_time, p], abs=1e-3)
    if lead_time <= 3:  # the bar: under a second each (typically a few milliseconds)
        assert elapsed < 1.0


def test_value_iteration_matches_published_two_decimal_anchor() -> None:
    # Zipkin's L=4, p=19 optimum as carried by NimaMan/invman: 8.89
    assert round(lost_sales_optimum(4, 19).average_cost, 2) == 8.89


@pytest.mark.parametrize(("lead_time", "p"), [(1, 4), (1, 39), (2, 4), (2, 19), (3, 9)])
def test_newsvendor_bounds_do_not_bind(lead_time: int, p: float) -> None:
    tight = lost_sales_optimum(lead_time, p)
    wide = lost_sales_optimum(
        lead_time, p, order_cap=tight.order_cap + 4, position_cap=tight.position_cap + 5
    )
    assert wide.average_cost == pytest.approx(tight.average_cost, abs=1e-6)
    # The bounds are the newsvendor fractiles of 1 and L+1 periods of demand.
    pmf = stats.poisson(5).pmf(np.arange(200))
    assert tight.order_cap == np.searchsorted(np.cumsum(pmf), p / (p + 1))
    assert tight.position_cap == stats.poisson(5 * (lead_time + 1)).ppf(p / (p + 1))


def test_optimal_policy_is_monotone_in_on_hand() -> None:
    # Known structure (Karlin & Scarf; Zipkin): the optimal order falls as on-hand stock rises.
    policy = lost_sales_optimum(2, 4).policy
    valid = policy >= 0
    for x1 in range(policy.shape[1]):
        orders = policy[valid[:, x1], x1]
        assert np.all(np.diff(orders) <= 0)


# Backlog table of the reference note: (L, p) -> (S*, G(S*))
BACKLOG = {
    (1, 4): (13, 4.6124), (1, 9): (14, 5.8694), (1, 19): (15, 7.0696), (1, 39): (17, 8.1079),
    (2, 4): (18, 5.5880), (2, 9): (20, 7.1230), (2, 19): (22, 8.5245), (2, 39): (23, 9.7391),
    (3, 4): (24, 6.4380), (3, 9): (26, 8.1864), (3, 19): (28, 9.7655), (3, 39): (29, 11.1577),
    (4, 4): (29, 7.1698), (4, 9): (32, 9.1510), (4, 19): (33, 10.8730), (4, 39): (35, 12.4010),
}  # fmt: skip


@pytest.mark.parametrize(("lead_time", "p"), sorted(BACKLOG))
def test_backlog_newsvendor_table(lead_time: int, p: float) -> None:
    solution = backlog_optimum(lead_time, p)
    level, cost = BACKLOG[lead_time, p]
    assert solution.level == level
    assert solution.average_cost == pytest.approx(cost, abs=1e-4)


def _backlog_value_iteration(lead_time: int, p: float) -> float:
    """Independent check: 1-D relative value iteration on the inventory position ('order up to y >= x')."""
    pmf = stats.poisson(5 * (lead_time + 1)).pmf(np.arange(120))
    one = stats.poisson(5).pmf(np.arange(40))
    levels = np.arange(-60, 80)
    G = np.array(
        [
            np.sum(pmf * (np.maximum(y - np.arange(120), 0) + p * np.maximum(np.arange(120) - y, 0)))
            for y in levels
        ]
    )
    V = np.zeros(len(levels))
    for _ in range(2000):
        # after ordering up to y: cost G(y), next position y - D (clipped at the grid's low end)
        nxt = np.clip(np.arange(len(levels))[:, None] - np.arange(40)[None, :], 0, None)
        W = G + (V[nxt] * one).sum(axis=1)
        best_from = np.minimum.accumulate(W[::-1])[::-1]  # min over y >= x
        TV = best_from
        g = TV[60] - V[60]
        V = TV - TV[60]
    return float(g)


@pytest.mark.parametrize(("lead_time", "p"), [(1, 4), (2, 4), (3, 39)])
def test_backlog_newsvendor_equals_dynamic_programming(lead_time: int, p: float) -> None:
    assert backlog_optimum(lead_time, p).average_cost == pytest.approx(
        _backlog_value_iteration(lead_time, p), abs=1e-4
    )


def test_zheng_federgruen_matches_stockpyl_doctests() -> None:
    low = s_S_optimum(5, 4)  # Poisson mean 5
    assert (low.s, low.S) == (3, 9)
    assert low.average_cost == pytest.approx(7.3589, abs=1e-4)
    high = s_S_optimum(5, 4, demand=DemandDistribution.poisson(6))  # Snyder & Shen Ex. 4.7
    assert (high.s, high.S) == (4, 10)
    assert high.average_cost == pytest.approx(8.0341, abs=1e-4)


def test_zheng_federgruen_is_the_brute_force_minimum() -> None:
    pmf = DemandDistribution.poisson(5).pmf()
    for K, lead_time in [(5.0, 0), (20.0, 1), (1.0, 2)]:
        lead_pmf = convolve_pmf(pmf, lead_time + 1)
        offset = -100
        G = expected_period_cost(lead_pmf, np.arange(offset, 120), 4.0, 1.0)
        brute = min((s_S_cost(s, S, G, offset, pmf, K), s, S) for S in range(60) for s in range(-20, S))
        solution = s_S_optimum(K, 4.0, lead_time=lead_time)
        assert solution.average_cost == pytest.approx(brute[0], abs=1e-9)


def test_constant_order_cost_limits() -> None:
    # ordering nothing loses every unit: cost p * mean demand
    assert constant_order_cost(0, 4) == pytest.approx(20.0, abs=1e-9)
    r, cost = best_constant_order(4)
    assert r == 4 and cost == pytest.approx(constant_order_cost(4, 4))
    with pytest.raises(AnewError):
        constant_order_cost(5, 4)  # not below mean demand


def test_quantile_is_the_critical_fractile() -> None:
    pmf = DemandDistribution.poisson(5).pmf()
    for fraction in (0.5, 0.8, 0.95, 0.975):
        assert quantile(pmf, fraction) == stats.poisson(5).ppf(fraction)


def test_bad_lead_time_is_a_clear_error() -> None:
    with pytest.raises(AnewError, match="lead time"):
        lost_sales_optimum(0, 4)
