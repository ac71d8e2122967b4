"""Demand distributions for the inventory simulators and their exact solvers.

One object serves both sides: exact methods read the truncated probability mass function, simulators
draw from the same pmf by inverse transform, so a simulated cost and an exact cost refer to the same
model. The tail beyond ``d_max`` (mass below ``tail``, 1e-14 by default) is lumped into ``d_max``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats

from anew.errors import AnewError

KINDS = ("poisson", "geometric", "custom")


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
            dist = stats.poisson(self.mean)
        else:  # geometric on {0, 1, ...} with P(D = k) = (1 - theta) theta^k, mean theta / (1 - theta)
            dist = stats.geom(1.0 / (1.0 + self.mean), loc=-1)
        d_max = int(dist.isf(self.tail)) + 1
        pmf = dist.pmf(np.arange(d_max + 1))
        pmf[-1] += 1.0 - pmf.sum()
        return pmf

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Float32 demands of the given shape, by inverse transform on the truncated pmf."""
        cdf = torch.as_tensor(np.cumsum(self.pmf()), dtype=torch.float64)
        uniform = torch.rand(shape, generator=generator, dtype=torch.float64)
        return torch.searchsorted(cdf, uniform, right=True).clamp_(max=len(cdf) - 1).to(torch.float32)


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
