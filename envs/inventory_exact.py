"""Exact optimal costs for the inventory problems (long-run average cost per period).

- ``lost_sales_optimum``: relative value iteration for Zipkin's lost-sales model (state = on-hand after
  this period's arrival plus the pipeline; an order arrives ``L`` periods later). Orders are bounded
  by Q = F_1^{-1}(p/(p+h)) and the inventory position after ordering by S = F_{L+1}^{-1}(p/(p+h)),
  the DynaPlex/Zipkin bounds; ``order_cap`` / ``position_cap`` widen them to check they do not bind.
- ``backlog_optimum``: with backorders base-stock is optimal; the newsvendor level on the demand over
  L+1 periods and its cost G(S*).
- ``s_S_optimum``: Zheng and Federgruen's (1991) algorithm for the best (s, S) policy with a fixed
  order cost K (backorders); lead time L enters through the L+1-period demand.
- ``constant_order_cost``: the constant-order policy's exact cost from the one-dimensional on-hand
  chain x' = (x - D)^+ + r, which does not depend on the lead time.

Everything is vectorised numpy: the lost-sales Bellman backup is one einsum over a dense grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anew.errors import AnewError
from anew.inventory_demand import DemandDistribution, convolve_pmf, expected_period_cost, quantile

_INVALID = 1e12  # value of grid cells that are not states (their inventory position exceeds S)


@dataclass
class LostSalesSolution:
    """The optimum of one lost-sales instance and the policy that attains it."""

    average_cost: float
    iterations: int
    order_cap: int  # Q: largest order considered
    position_cap: int  # S: largest inventory position after ordering
    policy: np.ndarray  # optimal order per grid state, shape (S+1, Q+1, ..., Q+1); -1 off the state space

    def order(self, state: np.ndarray) -> np.ndarray:
        """Optimal orders for a batch of integer states (x0, x1, ..., x_{L-1}) inside the grid."""
        state = np.asarray(state, dtype=np.int64)
        return self.policy[tuple(state.T)]


def lost_sales_optimum(
    lead_time: int,
    p: float,
    h: float = 1.0,
    demand: DemandDistribution | None = None,
    order_cap: int | None = None,
    position_cap: int | None = None,
    tolerance: float = 1e-7,
    max_iterations: int = 10_000,
) -> LostSalesSolution:
    """Relative value iteration for the lost-sales problem with lead time ``lead_time`` >= 1."""
    if lead_time < 1:
        raise AnewError(f"lead time must be >= 1 for the lost-sales solver, got {lead_time}")
    demand = demand or DemandDistribution.poisson(5.0)
    pmf = demand.pmf()
    fractile = p / (p + h)
    Q = quantile(pmf, fractile) if order_cap is None else order_cap
    S = quantile(convolve_pmf(pmf, lead_time + 1), fractile) if position_cap is None else position_cap
    Q = min(Q, S)

    # A[x, m] = P((x - D)^+ = m): the on-hand left over after serving one period's demand.
    stock = np.arange(S + 1)
    leftover = np.maximum(stock[:, None] - np.arange(len(pmf))[None, :], 0)
    A = np.zeros((S + 1, S + 1))
    np.add.at(A, (np.repeat(stock, len(pmf)), leftover.ravel()), np.tile(pmf, S + 1))
    cost = expected_period_cost(pmf, stock, p, h)

    # Post-decision axes: (x0, x1, x2..x_{L-1}, q); for L = 1 the order itself plays x1's part.
    # B[x0, x1, y] = A[x0, y - x1] sends (x0, x1) to next on-hand y = (x0 - D)^+ + x1.
    x1 = np.arange(Q + 1)
    shift = stock[None, :] - x1[:, None]  # y - x1
    B = np.where(shift[None] >= 0, A[:, np.clip(shift, 0, S)], 0.0)  # (S+1, Q+1, S+1)

    shape = (S + 1,) + (Q + 1,) * (lead_time - 1)
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    position = sum(grids)  # inventory position before ordering
    valid = position <= S
    # feasible[..., q]: q <= S - position (and q <= Q by the axis length)
    feasible = np.arange(Q + 1) <= (S - position)[..., None]

    V = np.zeros(shape)
    V[~valid] = _INVALID
    for iteration in range(1, max_iterations + 1):
        if lead_time == 1:
            W = np.einsum("aqy,y->aq", B, V)  # W[x0, q]
        else:
            W = np.einsum("aby,y...->ab...", B, V)  # W[x0, x1, x2.., q]
        W = np.where(feasible, W, np.inf)
        TV = cost.reshape((-1,) + (1,) * (lead_time - 1)) + W.min(axis=-1)
        diff = (TV - V)[valid]
        low, high = diff.min(), diff.max()
        V = np.where(valid, TV - TV.flat[0], _INVALID)
        if high - low < tolerance:
            break
    else:
        raise RuntimeError(f"relative value iteration did not converge in {max_iterations} iterations")
    policy = np.where(valid, W.argmin(axis=-1), -1)
    return LostSalesSolution(float((low + high) / 2), iteration, Q, S, policy)


@dataclass
class BacklogSolution:
    level: int  # optimal base-stock level S* (inventory position after ordering)
    average_cost: float  # G(S*)


def backlog_optimum(
    lead_time: int, p: float, h: float = 1.0, demand: DemandDistribution | None = None
) -> BacklogSolution:
    """Newsvendor on the lead-time-plus-one-period demand: S* = F_{L+1}^{-1}(p/(p+h)), cost G(S*)."""
    if lead_time < 0:
        raise AnewError(f"lead time must be >= 0, got {lead_time}")
    pmf = convolve_pmf((demand or DemandDistribution.poisson(5.0)).pmf(), lead_time + 1)
    level = quantile(pmf, p / (p + h))
    return BacklogSolution(level, float(expected_period_cost(pmf, np.array([level]), p, h)[0]))


@dataclass
class SSSolution:
    s: int  # reorder point: order when the inventory position is <= s
    S: int  # order-up-to level
    average_cost: float


def s_S_cost(s: int, S: int, G: np.ndarray, offset: int, pmf: np.ndarray, K: float) -> float:
    """Average cost of (s, S): (K + sum_{j<S-s} m(j) G(S-j)) / M(S-s); G indexed by level - offset."""
    m = _renewal_mass(pmf, S - s)
    return float((K + m @ G[S - np.arange(S - s) - offset]) / m.sum())


def _renewal_mass(pmf: np.ndarray, n: int) -> np.ndarray:
    """m(0..n-1): expected visits of the inventory position to S - j in one order cycle."""
    p = np.zeros(max(n, len(pmf)))
    p[: len(pmf)] = pmf
    m = np.zeros(n)
    m[0] = 1.0 / (1.0 - p[0])
    for j in range(1, n):
        m[j] = (p[1 : j + 1] @ m[j - 1 :: -1]) / (1.0 - p[0])
    return m


def s_S_optimum(
    K: float, p: float, h: float = 1.0, lead_time: int = 0, demand: DemandDistribution | None = None
) -> SSSolution:
    """Zheng-Federgruen: the optimal (s, S) with fixed order cost K, backorders, average cost per period."""
    if K < 0:
        raise AnewError(f"fixed order cost K must be >= 0, got {K}")
    pmf = (demand or DemandDistribution.poisson(5.0)).pmf()
    lead_pmf = convolve_pmf(pmf, lead_time + 1)
    # G over a range of levels wide enough for s (below 0) and S (above the mean).
    offset = -len(lead_pmf) - 50
    levels = np.arange(offset, len(lead_pmf) + int(np.sqrt(K + 1) * 20) + 50)
    G = expected_period_cost(lead_pmf, levels, p, h)

    def cost(s_: int, S_: int) -> float:
        return s_S_cost(s_, S_, G, offset, pmf, K)

    y_star = int(levels[np.argmin(G)])
    s = y_star - 1
    while cost(s, y_star) > G[s - offset]:
        s -= 1
    S0, c0 = y_star, cost(s, y_star)
    S = S0 + 1
    while G[S - offset] <= c0:
        if cost(s, S) < c0:
            S0 = S
            while cost(s, S0) <= G[s + 1 - offset]:
                s += 1
            c0 = cost(s, S0)
        S += 1
    return SSSolution(s, S0, c0)


def constant_order_cost(
    order: float, p: float, h: float = 1.0, demand: DemandDistribution | None = None
) -> float:
    """Exact average cost of ordering ``order`` (integer) every period, for any lead time."""
    pmf = (demand or DemandDistribution.poisson(5.0)).pmf()
    r = int(order)
    if r != order or r < 0:
        raise AnewError(f"constant order must be a non-negative integer, got {order}")
    if r >= np.dot(np.arange(len(pmf)), pmf) - 1e-9:
        raise AnewError(f"constant order {r} is not below mean demand: the on-hand grows without bound")
    # The on-hand after arrival lives in {r, ..., r + M}; M large enough that the mass above is negligible.
    size = r + len(pmf) * 20
    x = np.arange(size)
    nxt = np.minimum(np.maximum(x[:, None] - np.arange(len(pmf))[None, :], 0) + r, size - 1)
    P = np.zeros((size, size))
    np.add.at(P, (np.repeat(x, len(pmf)), nxt.ravel()), np.tile(pmf, size))
    # Stationary distribution: solve pi (P - I) = 0 with sum(pi) = 1 (replace one equation by the sum).
    system = P.T - np.eye(size)
    system[-1] = 1.0
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    stationary = np.linalg.solve(system, rhs)
    return float(stationary @ expected_period_cost(pmf, x, p, h))


def best_constant_order(
    p: float, h: float = 1.0, demand: DemandDistribution | None = None
) -> tuple[int, float]:
    """The integer constant order with the lowest exact cost, and that cost."""
    demand = demand or DemandDistribution.poisson(5.0)
    mean = float(np.dot(np.arange(len(demand.pmf())), demand.pmf()))
    candidates = [r for r in range(int(np.ceil(mean)) + 1) if r < mean - 1e-9]
    costs = [constant_order_cost(r, p, h, demand) for r in candidates]
    best = int(np.argmin(costs))
    return candidates[best], costs[best]
