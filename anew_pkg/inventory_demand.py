"""Inventory demand maths: the one place both the simulators and the classical policies take it from.

``anew.envs`` (simulators, exact solvers) and ``anew.agents`` (base-stock, myopic, ... policies) both need
the demand model, and agents may not import envs, nor envs learning code; so it lives here, at the top of
the package, in plain numpy and scipy.

One object serves both sides: exact methods read the truncated probability mass function, simulators
draw from the same pmf by inverse transform, so a simulated cost and an exact cost refer to the same
model. The tail beyond ``d_max`` (mass below ``tail``, 1e-14 by default) is lumped into ``d_max``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from anew.errors import AnewError

KINDS = ("poisson", "geometric", "custom")


def truncated_pmf(dist: stats.rv_discrete, tail: float = 1e-14) -> np.ndarray:
    """P(D = d) for d = 0..d_max of a frozen scipy distribution, the tail beyond d_max lumped into d_max."""
    d_max = int(dist.isf(tail)) + 1
    pmf = dist.pmf(np.arange(d_max + 1))
    pmf[-1] += 1.0 - pmf.sum()
    return pmf


def poisson_pmf(mean: float, tail: float = 1e-14) -> np.ndarray:
    """Poisson pmf on 0..d_max with the tail beyond d_max lumped into d_max."""
    return truncated_pmf(stats.poisson(mean), tail)


@dataclass(frozen=True)
class DemandDistribution:
    """Integer demand per period: Poisson(mean), geometric with the given mean, or a custom pmf."""

    kind: str = "poisson"
    mean: float = 5.0
    custom_pmf: tuple[float, ...] = field(default=())
    tail: float = 1e-14

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AnewError(f"unknown demand kind {self.kind!r}: choose one of {', '.join(KINDS)}")
        if self.kind == "custom":
            pmf = np.asarray(self.custom_pmf, dtype=float)
            if pmf.ndim != 1 or len(pmf) == 0 or (pmf < 0).any() or abs(pmf.sum() - 1.0) > 1e-9:
                raise AnewError("custom demand pmf must be a non-empty list of probabilities summing to 1")
        elif not self.mean > 0:
            raise AnewError(f"demand mean must be positive, got {self.mean}; pass e.g. --demand-mean 5")

    @classmethod
    def poisson(cls, mean: float = 5.0) -> DemandDistribution:
        return cls("poisson", mean)

    @classmethod
    def from_pmf(cls, pmf: np.ndarray | list[float]) -> DemandDistribution:
        pmf = np.asarray(pmf, dtype=float)
        return cls("custom", float(np.dot(np.arange(len(pmf)), pmf)), tuple(pmf.tolist()))

    def pmf(self) -> np.ndarray:
        """P(D = d) for d = 0..d_max, with the tail mass lumped into d_max (sums to 1)."""
        if self.kind == "custom":
            return np.asarray(self.custom_pmf, dtype=float)
        if self.kind == "poisson":
            return poisson_pmf(self.mean, self.tail)
        # geometric on {0, 1, ...} with P(D = k) = (1 - theta) theta^k, mean theta / (1 - theta)
        return truncated_pmf(stats.geom(1.0 / (1.0 + self.mean), loc=-1), self.tail)


def convolve_pmf(pmf: np.ndarray, periods: int) -> np.ndarray:
    """The pmf of the demand summed over ``periods`` i.i.d. periods (periods=0 is a point mass at 0)."""
    total = np.ones(1)
    for _ in range(periods):
        total = np.convolve(total, pmf)
    return total


def quantile(pmf: np.ndarray, fraction: float) -> int:
    """Smallest d with P(D <= d) >= fraction (the newsvendor critical-fractile solution)."""
    cdf = np.cumsum(pmf)
    return int(np.searchsorted(cdf, fraction - 1e-12))


def demand_quantile(pmf: np.ndarray, periods: int, fraction: float) -> int:
    """Smallest S with P(D_1 + ... + D_periods <= S) >= fraction."""
    return quantile(convolve_pmf(pmf, periods), fraction)


def expected_period_cost(pmf: np.ndarray, levels: np.ndarray, p: float, h: float) -> np.ndarray:
    """C(y) = E[h (y - D)^+ + p (D - y)^+] for each stock level y (any shape; y < 0 is a backlog)."""
    gap = np.asarray(levels, dtype=float)[..., None] - np.arange(len(pmf))
    return (h * np.maximum(gap, 0) + p * np.maximum(-gap, 0)) @ pmf
