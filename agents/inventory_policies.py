"""Classical inventory policies as agents (batched ``act``; ``observe``/``update`` do nothing).

Observations follow anew's inventory simulators: the first L entries are (x0, x1, ..., x_{L-1}),
on-hand after this period's arrival and the pipeline (x_k arrives in k periods); the inventory
position is their sum. Agents never import envs, so each policy takes the problem's parameters
(lead time, demand pmf, p, h) itself. The demand maths (``poisson_pmf``, quantiles, the expected
period cost) comes from ``anew.inventory_demand``, the same module the simulators use.

Definitions (Zipkin 2008; Xin 2021; Morton 1971):
- base-stock: q = (S - IP)^+; the newsvendor level S = F_{L+1}^{-1}(p/(p+h)); capped: min(., r).
- constant order: q = r every period.
- myopic-1: q minimising E C(z + q), the expected cost of period t+L, the first one the order
  affects (z = on-hand left at the end of period t+L-1, C the one-period expected cost).
- myopic-2: the same plus the expected minimal myopic-1 cost at next period's state.
- standard vector base-stock (Morton): q = min_l (S_l - sum_{k>=l} x_k)^+, S_l = F_{L-l+1}^{-1}(p/(p+h)).
- (s, S): order S - IP when IP <= s.
- newsvendor for history replay (anew's definition): order up to the critical fractile
  (price - cost)/(price - cost + h) of Poisson demand over the mean lead time plus one period,
  its rate forecast by the mean of the observed demand window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from scipy import stats

from anew.agents.core import AgentBase
from anew.inventory_demand import demand_quantile, expected_period_cost


class _StatelessPolicy(AgentBase):
    """Agent protocol plumbing for policies that do not learn."""

    def observe(self, batch: Any) -> None:
        pass

    def update(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def act(
        self,
        obs: np.ndarray,
        explore: bool = False,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        orders = np.maximum(self._orders(np.asarray(obs, dtype=float)), 0)
        if self.max_order is not None:
            orders = np.minimum(orders, self.max_order)
        return np.rint(orders).astype(np.int64) if self.integer else orders


class BaseStockPolicy(_StatelessPolicy):
    """Order up to ``level`` on the inventory position, at most ``cap`` per period (capped base-stock)."""

    def __init__(self, level: float, lead_time: int, cap: float | None = None, max_order: int | None = None):
        self.level, self.lead_time, self.cap = level, lead_time, cap
        self.max_order, self.integer = max_order, True

    @classmethod
    def newsvendor(
        cls, lead_time: int, demand_pmf: np.ndarray, p: float, h: float, **kwargs
    ) -> BaseStockPolicy:
        return cls(demand_quantile(demand_pmf, lead_time + 1, p / (p + h)), lead_time, **kwargs)

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        orders = self.level - obs[:, : max(self.lead_time, 1)].sum(axis=1)
        return orders if self.cap is None else np.minimum(orders, self.cap)


class ConstantOrderPolicy(_StatelessPolicy):
    def __init__(self, order: float, max_order: int | None = None):
        self.order, self.max_order, self.integer = order, max_order, float(order).is_integer()

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        return np.full(len(obs), self.order)


class SSPolicy(_StatelessPolicy):
    """(s, S): when the inventory position is at or below s, order up to S."""

    def __init__(self, s: float, S: float, lead_time: int, max_order: int | None = None):
        self.s, self.S, self.lead_time, self.max_order, self.integer = s, S, lead_time, max_order, True

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        position = obs[:, : max(self.lead_time, 1)].sum(axis=1)
        return np.where(position <= self.s, self.S - position, 0.0)


class VectorBaseStockPolicy(_StatelessPolicy):
    """Morton's standard vector base-stock: q = min over l of (S_l - sum_{k>=l} x_k)^+."""

    def __init__(
        self, lead_time: int, demand_pmf: np.ndarray, p: float, h: float, max_order: int | None = None
    ):
        fraction = p / (p + h)
        self.levels = np.array(
            [demand_quantile(demand_pmf, lead_time - l + 1, fraction) for l in range(lead_time + 1)]
        )
        self.lead_time, self.max_order, self.integer = lead_time, max_order, True

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        x = obs[:, : self.lead_time]
        tail_sums = np.concatenate([np.cumsum(x[:, ::-1], axis=1)[:, ::-1], np.zeros((len(x), 1))], axis=1)
        return (self.levels - tail_sums).min(axis=1)


class TablePolicy(_StatelessPolicy):
    """Orders read from a table indexed by the integer state (e.g. the exact solver's optimal policy).

    States outside the table are clipped to its edge, which for the exact solver's grid means the
    largest stock it considered (where the optimal order is already 0).
    """

    def __init__(self, table: np.ndarray, max_order: int | None = None):
        self.table, self.max_order, self.integer = np.asarray(table), max_order, True

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        state = np.clip(
            np.rint(obs[:, : self.table.ndim]).astype(np.int64), 0, np.array(self.table.shape) - 1
        )
        return np.maximum(self.table[tuple(state.T)], 0).astype(float)


class _LazyTable:
    """Values of an expensive vectorised function of integer states, filled on first use."""

    def __init__(self, shape: tuple[int, ...], width: int, compute: Callable[[np.ndarray], np.ndarray]):
        self.shape, self.compute = shape, compute
        self.values = np.full((int(np.prod(shape)), width), np.nan)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states, dtype=np.int64)
        out = np.empty((len(states), self.values.shape[1]))
        inside = np.all((states >= 0) & (states < np.array(self.shape)), axis=1)
        flat = np.ravel_multi_index(states[inside].T, self.shape)
        missing = np.unique(flat[np.isnan(self.values[flat, 0])])
        if len(missing):
            self.values[missing] = self.compute(np.stack(np.unravel_index(missing, self.shape), axis=1))
        out[inside] = self.values[flat]
        if not inside.all():
            out[~inside] = self.compute(states[~inside])
        return out


class MyopicPolicy(_StatelessPolicy):
    """Myopic-1 (``lookahead=1``) or myopic-2 (``lookahead=2``) for the lost-sales model."""

    def __init__(
        self,
        lead_time: int,
        demand_pmf: np.ndarray,
        p: float,
        h: float,
        lookahead: int = 1,
        max_order: int | None = None,
    ):
        if lookahead not in (1, 2):
            raise ValueError(f"lookahead must be 1 or 2, got {lookahead}")
        self.lead_time, self.pmf, self.p, self.h = lead_time, np.asarray(demand_pmf, float), p, h
        self.lookahead, self.max_order, self.integer = lookahead, max_order, True
        # Orders above the one-period newsvendor level never lower E C(z + q) (z >= 0).
        self.order_range = np.arange(demand_quantile(self.pmf, 1, p / (p + h)) + 3)
        grid = (4 * len(self.pmf),) + (len(self.order_range),) * (lead_time - 1)
        self.myopic1 = _LazyTable(grid, 2, self._myopic1)  # columns: order, minimal cost
        self.myopic2 = _LazyTable(grid, 1, self._myopic2)

    def _leftover_distribution(self, states: np.ndarray) -> np.ndarray:
        """P(z = m) for each state, z = on-hand left at the end of period t+L-1; shape [N, M+1]."""
        n_demand = len(self.pmf)
        size = int(states.sum(axis=1).max()) + 1
        # A[y, m] = P((y - D)^+ = m)
        leftover = np.maximum(np.arange(size)[:, None] - np.arange(n_demand)[None, :], 0)
        A = np.zeros((size, size))
        np.add.at(A, (np.repeat(np.arange(size), n_demand), leftover.ravel()), np.tile(self.pmf, size))
        dist = np.zeros((len(states), size))
        dist[np.arange(len(states)), states[:, 0]] = 1.0
        for k in range(1, self.lead_time):
            dist = dist @ A
            shifted = np.arange(size)[None, :] - states[:, k : k + 1]  # on-hand y came from y - x_k
            dist = np.where(shifted >= 0, np.take_along_axis(dist, np.clip(shifted, 0, None), axis=1), 0.0)
        return dist @ A

    def _myopic1(self, states: np.ndarray) -> np.ndarray:
        dist = self._leftover_distribution(states)
        levels = np.arange(dist.shape[1])[:, None] + self.order_range[None, :]
        expected = dist @ expected_period_cost(self.pmf, levels, self.p, self.h)  # [N, orders]
        best = expected.argmin(axis=1)
        return np.stack([self.order_range[best], expected[np.arange(len(states)), best]], axis=1)

    def _myopic2(self, states: np.ndarray) -> np.ndarray:
        dist = self._leftover_distribution(states)
        levels = np.arange(dist.shape[1])[:, None] + self.order_range[None, :]
        expected = dist @ expected_period_cost(self.pmf, levels, self.p, self.h)  # [N, orders]
        # Next state for each (state, demand d, order q): ((x0 - d)^+ + x1, x2, ..., x_{L-1}, q).
        n, n_demand, n_orders = len(states), len(self.pmf), len(self.order_range)
        first = np.maximum(states[:, :1] - np.arange(n_demand)[None, :], 0)  # [N, D]
        if self.lead_time > 1:
            first = first + states[:, 1:2]
        parts = [np.broadcast_to(first[:, :, None], (n, n_demand, n_orders))]
        parts += [
            np.broadcast_to(states[:, k, None, None], (n, n_demand, n_orders))
            for k in range(2, self.lead_time)
        ]
        parts.append(np.broadcast_to(self.order_range[None, None, :], (n, n_demand, n_orders)))
        if self.lead_time == 1:  # the order joins the on-hand directly
            parts = [parts[0] + parts[-1]]
        next_states = np.stack(parts, axis=-1).reshape(-1, self.lead_time)
        future = self.myopic1(next_states)[:, 1].reshape(n, n_demand, n_orders)
        total = expected + np.einsum("d,ndq->nq", self.pmf, future)
        return self.order_range[total.argmin(axis=1)][:, None].astype(float)

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        states = np.rint(obs[:, : self.lead_time]).astype(np.int64)
        table = self.myopic1 if self.lookahead == 1 else self.myopic2
        return table(states)[:, 0]


class NewsvendorReplayPolicy(_StatelessPolicy):
    """Per-period critical-fractile order-up-to policy for the history-replay env (continuous orders).

    Reads the replay observation layout: [x0, pipeline (pipeline_length - 1), price, unit cost,
    holding cost, observed demand window (most recent first)].
    """

    def __init__(self, pipeline_length: int, mean_lead_time: float, max_order: float | None = None):
        self.pipeline_length, self.mean_lead_time = pipeline_length, mean_lead_time
        self.max_order, self.integer = max_order, False

    def _orders(self, obs: np.ndarray) -> np.ndarray:
        k = self.pipeline_length
        position = obs[:, :k].sum(axis=1)
        price, cost, holding = obs[:, k], obs[:, k + 1], obs[:, k + 2]
        margin = np.maximum(price - cost, 0.0)
        fraction = np.clip(margin / np.maximum(margin + holding, 1e-9), 1e-6, 1 - 1e-6)
        forecast = np.maximum(obs[:, k + 3 :].mean(axis=1), 1e-6) * (self.mean_lead_time + 1)
        return stats.poisson.ppf(fraction, forecast) - position


def best_base_stock(
    evaluate: Callable[[BaseStockPolicy], float], lead_time: int, levels: Iterable[int], **kwargs
) -> tuple[BaseStockPolicy, float]:
    """The base-stock level with the lowest ``evaluate`` cost (e.g. a simulator with common random numbers)."""
    scored = [(evaluate(BaseStockPolicy(level, lead_time, **kwargs)), level) for level in levels]
    cost, level = min(scored)
    return BaseStockPolicy(level, lead_time, **kwargs), cost


def best_capped_base_stock(
    evaluate: Callable[[BaseStockPolicy], float],
    lead_time: int,
    levels: Iterable[int],
    caps: Iterable[int],
    **kwargs,
) -> tuple[BaseStockPolicy, float]:
    """Grid search over (S, r) of the capped base-stock policy min((S - IP)^+, r)."""
    caps = list(caps)
    scored = [
        (evaluate(BaseStockPolicy(level, lead_time, cap=cap, **kwargs)), level, cap)
        for level in levels
        for cap in caps
    ]
    cost, level, cap = min(scored)
    return BaseStockPolicy(level, lead_time, cap=cap, **kwargs), cost
