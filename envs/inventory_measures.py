"""What an inventory episode reports, for evaluations to average over episodes.

The Gymnasium faces put two dicts in the step info (the single env at every step, for the episode so far,
since a time-limit wrapper decides which step is the last; the vector env at the step that ends the
episodes), and ``SeededVectorEnv`` passes those of finished episodes on:

- ``episode_measures``: estimates from the episode, which an evaluation averages and gives a standard
  error. LostSales/Backlog: ``average_cost``, the cost per period after the first ``measure_warmup``
  periods (the start-up from an empty warehouse; a shorter episode is measured whole), and, where the
  exact optimum is known, ``optimality_gap`` = average_cost / optimal_cost - 1. Replay envs:
  ``average_reward`` per period; the capacitated env also ``capacity_violation_rate`` and
  ``capacity_excess_per_period``.
- ``episode_references``: what an evaluation averages without an error. ``optimal_cost``, the exact
  long-run optimum (relative value iteration for lost sales, base-stock for backlog; not given with fixed
  or unit order costs, for backlog when ``max_order`` caps base-stock's orders (demand above it has
  probability over 1e-12), or for lost-sales grids over 200,000 states); ``random_return``, the expected
  return of uniformly random integer orders
  0..max_order over the same number of periods from the same empty start (exact, by carrying the
  on-hand distribution forward; orders that ignore the state leave a one-dimensional chain);
  ``reference_return``, the episode's return with its measured periods priced at the optimal cost,
  R + (average_cost - optimal_cost) x measured periods. ``anew report --normalize reference`` maps
  ``random_return`` to 0 and ``reference_return`` to 1: an optimal policy scores 1 whatever its start-up.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from anew.envs.inventory import InventoryConfig
from anew.envs.inventory_exact import backlog_optimum, lost_sales_optimum
from anew.inventory_demand import DemandDistribution, convolve_pmf, expected_period_cost, quantile

MAX_GRID_STATES = 200_000  # lost-sales optima above this many states take too long to compute on the fly
MAX_RANDOM_ORDER = 100  # random_return's chain is carried only for order ranges up to this (its width grows)
TAIL = 1e-15  # probability mass dropped at each end of a carried distribution
CAP_TOLERANCE = 1e-12  # a cap on orders that binds less often than this leaves the optimum as it is


def optimal_cost(config: InventoryConfig) -> float | None:
    """The exact long-run optimal cost per period of ``config``, or None where it is not known here."""
    if config.fixed_cost or config.unit_cost:
        return None
    return _optimal_cost(
        config.backlog, config.lead_time, config.p, config.h, config.demand, int(config.max_order)
    )


@functools.lru_cache(maxsize=64)
def _optimal_cost(
    backlog: bool, lead_time: int, p: float, h: float, demand: DemandDistribution, max_order: int
) -> float | None:
    pmf = demand.pmf()
    if (
        backlog
    ):  # base-stock orders the last demand each period: exact only if max_order (all but) never caps it
        capped = pmf[max_order + 1 :].sum() > CAP_TOLERANCE
        return None if capped else backlog_optimum(lead_time, p, h, demand).average_cost
    order_cap = min(quantile(pmf, p / (p + h)), max_order)
    position_cap = quantile(convolve_pmf(pmf, lead_time + 1), p / (p + h))
    if (position_cap + 1) * (order_cap + 1) ** (lead_time - 1) > MAX_GRID_STATES:
        return None
    return lost_sales_optimum(lead_time, p, h, demand, order_cap=order_cap).average_cost


class RandomOrderCosts:
    """Expected cost of each period under uniformly random integer orders 0..max_order, from an empty start.

    The on-hand level after arrivals, ``level_t = carried_{t-1} + q_{t-L}`` (no arrival before period L),
    is a one-dimensional chain when orders ignore the state; its distribution is carried forward one period
    at a time, as far as episodes have gone (``total`` extends it on demand).
    """

    def __init__(self, config: InventoryConfig):
        self.pmf = config.demand.pmf()
        self.config = config
        top = int(config.max_order)
        self.order_cost = config.fixed_cost * top / (top + 1) + config.unit_cost * top / 2
        self.uniform_width = top + 1
        self.offset, self.mass = 0, np.ones(1)  # the stock carried into the next period
        self.totals = [0.0]  # totals[n]: expected cost of the first n periods

    def total(self, periods: int) -> float:
        while len(self.totals) <= periods:
            self._advance()
        return self.totals[periods]

    def _advance(self) -> None:
        config, period = self.config, len(self.totals) - 1
        level = self.mass if period < config.lead_time else _box_convolve(self.mass, self.uniform_width)
        levels = self.offset + np.arange(len(level))
        cost = float(level @ expected_period_cost(self.pmf, levels, config.p, config.h)) + self.order_cost
        self.totals.append(self.totals[-1] + cost)
        carried = np.convolve(level, self.pmf[::-1])  # level - demand
        offset = self.offset - (len(self.pmf) - 1)
        if not config.backlog and offset < 0:  # lost sales: nothing below zero is carried
            carried = np.concatenate([[carried[: -offset + 1].sum()], carried[-offset + 1 :]])
            offset = 0
        self.offset, self.mass = _trim(offset, carried)


def _box_convolve(mass: np.ndarray, width: int) -> np.ndarray:
    """``np.convolve(mass, ones(width) / width)`` by cumulative sums (linear in the length)."""
    cumulative = np.concatenate([[0.0], np.cumsum(mass)])
    index = np.arange(len(mass) + width - 1)
    upper = cumulative[np.minimum(index + 1, len(mass))]
    lower = cumulative[np.clip(index - width + 1, 0, len(mass))]
    return (upper - lower) / width


def _trim(offset: int, mass: np.ndarray) -> tuple[int, np.ndarray]:
    cumulative = np.cumsum(mass)
    first = int(np.searchsorted(cumulative, TAIL))
    last = int(np.searchsorted(cumulative, cumulative[-1] - TAIL))
    return offset + first, mass[first : last + 1]


@functools.lru_cache(maxsize=64)
def _random_costs(
    backlog: bool,
    lead_time: int,
    p: float,
    h: float,
    demand: DemandDistribution,
    max_order: int,
    fixed_cost: float,
    unit_cost: float,
) -> RandomOrderCosts:
    config = InventoryConfig(lead_time, p, h, demand, backlog, max_order, fixed_cost, unit_cost)
    return RandomOrderCosts(config)


def random_order_costs(config: InventoryConfig) -> RandomOrderCosts | None:
    """The shared (cached) random-order costs of ``config``; None for order ranges over MAX_RANDOM_ORDER."""
    if config.max_order > MAX_RANDOM_ORDER:
        return None
    return _random_costs(
        config.backlog,
        config.lead_time,
        config.p,
        config.h,
        config.demand,
        int(config.max_order),
        config.fixed_cost,
        config.unit_cost,
    )


class EpisodeMeter:
    """Running sums of a batch of episodes and the measures they give (every array has the batch axis).

    ``kind``: "cost" (LostSales/Backlog, reward = -cost), "reward" (replay envs) or "capacity" (the
    capacitated env).
    """

    def __init__(self, kind: str, batch: int, warmup: int = 0, config: InventoryConfig | None = None):
        self.kind, self.batch, self.warmup = kind, batch, max(int(warmup), 0)
        self.optimum = optimal_cost(config) if config is not None else None
        self.random = random_order_costs(config) if config is not None else None
        self.ones = np.ones(batch)
        self.optimum_array = np.full(batch, self.optimum if self.optimum is not None else np.nan)
        self.reset()

    def reset(self) -> None:
        self.periods = 0
        self.total = np.zeros(self.batch)  # sum of rewards
        self.measured = np.zeros(self.batch)  # sum of rewards after the warmup
        self.violations = np.zeros(self.batch)
        self.excess = np.zeros(self.batch)

    def record(self, reward: np.ndarray, info: dict[str, np.ndarray]) -> None:
        self.periods += 1
        self.total += reward
        if self.periods > self.warmup:
            self.measured += reward
        if self.kind == "capacity":
            self.violations += np.asarray(info["capacity_violation"], dtype=float)
            self.excess += np.asarray(info["capacity_excess"], dtype=float)

    def info(self) -> dict[str, dict[str, np.ndarray]]:
        """``{"episode_measures": {...}, "episode_references": {...}}`` of the episodes so far."""
        periods = max(self.periods, 1)
        if self.kind != "cost":
            measures = {"average_reward": self.total / periods}
            if self.kind == "capacity":
                measures |= {
                    "capacity_violation_rate": self.violations / periods,
                    "capacity_excess_per_period": self.excess / periods,
                }
            return {"episode_measures": measures, "episode_references": {}}
        measured_periods = self.periods - self.warmup if self.periods > self.warmup else periods
        cost = -(self.measured if self.periods > self.warmup else self.total) / measured_periods
        measures: dict[str, Any] = {"average_cost": cost}
        references: dict[str, Any] = {}
        if self.optimum is not None:
            measures["optimality_gap"] = cost / self.optimum - 1.0
            references["optimal_cost"] = self.optimum_array
            references["reference_return"] = self.total + (cost - self.optimum) * measured_periods
        if self.random is not None:
            references["random_return"] = -self.random.total(self.periods) * self.ones
        return {"episode_measures": measures, "episode_references": references}
