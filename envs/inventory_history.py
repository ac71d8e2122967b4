"""Exogenous histories for history replay: the record format, a synthetic generator, a CSV/Parquet loader.

A history holds, per product and period, the exogenous quantities of Deep Inventory Management's
exogenous decision process (Madeka et al. 2022): demand, selling price, unit purchase cost, holding
cost, and the vendor lead time of an order placed in that period. Andaz et al.'s general arrivals add
optional ``arrival_shares`` (the fraction of an order placed at t that arrives j periods later) and
``yield_rate`` (the fraction of the processed order that is delivered at all).

File format (long, one row per product and period; CSV or Parquet):
``product, period, demand, price, cost, lead_time`` and optionally ``holding`` and ``yield``.
Every product must have every period. Demand must be true (uncensored) demand: impute it for
out-of-stock periods before replaying, since the simulator decides what would have been sold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anew.errors import AnewError

REQUIRED_COLUMNS = ("product", "period", "demand", "price", "cost", "lead_time")


@dataclass
class History:
    """Exogenous records, each an array [products, periods] (``arrival_shares``: [products, periods, lags])."""

    demand: np.ndarray
    price: np.ndarray
    cost: np.ndarray
    lead_time: np.ndarray
    holding: np.ndarray
    arrival_shares: np.ndarray | None = None
    yield_rate: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.demand = np.asarray(self.demand, dtype=np.float32)
        shape = self.demand.shape
        if self.demand.ndim != 2 or min(shape) < 1:
            raise AnewError(f"history demand must be a [products, periods] array, got shape {shape}")
        self.price = np.broadcast_to(np.asarray(self.price, dtype=np.float32), shape).copy()
        self.cost = np.broadcast_to(np.asarray(self.cost, dtype=np.float32), shape).copy()
        self.holding = np.broadcast_to(np.asarray(self.holding, dtype=np.float32), shape).copy()
        self.lead_time = np.broadcast_to(np.asarray(self.lead_time), shape).astype(np.int64)
        if (self.demand < 0).any() or (self.lead_time < 0).any():
            raise AnewError("history demand and lead_time must be non-negative; fix the data file")
        if self.yield_rate is not None:
            self.yield_rate = np.broadcast_to(np.asarray(self.yield_rate, dtype=np.float32), shape).copy()
        if self.arrival_shares is not None:
            shares = np.asarray(self.arrival_shares, dtype=np.float32)
            if shares.shape[:2] != shape or (shares < 0).any():
                raise AnewError(f"arrival_shares must be non-negative with shape {shape} + (lags,)")
            if not np.allclose(shares.sum(axis=-1), 1.0, atol=1e-4):
                raise AnewError("arrival_shares must sum to 1 over lags for every product and period")
            self.arrival_shares = shares

    @property
    def num_products(self) -> int:
        return self.demand.shape[0]

    @property
    def periods(self) -> int:
        return self.demand.shape[1]

    @property
    def max_lag(self) -> int:
        """Largest number of periods between an order and (part of) its arrival."""
        if self.arrival_shares is not None:
            return self.arrival_shares.shape[-1] - 1
        return int(self.lead_time.max())

    def mean_lead_time(self) -> float:
        if self.arrival_shares is not None:
            return float((self.arrival_shares * np.arange(self.max_lag + 1)).sum(-1).mean())
        return float(self.lead_time.mean())


def synthetic_history(
    num_products: int = 1000,
    periods: int = 112,
    seed: int = 0,
    demand_mean: float = 5.0,
    demand_spread: float = 0.5,
    autocorrelation: float = 0.8,
    volatility: float = 0.3,
    price: float = 10.0,
    price_volatility: float = 0.03,
    cost_fraction: float = 0.6,
    holding_fraction: float = 0.02,
    lead_time_pmf: tuple[float, ...] = (0.0, 0.0, 0.3, 0.4, 0.2, 0.1),
    spread_arrivals: bool = False,
    min_yield: float = 1.0,
) -> History:
    """A synthetic product catalogue in the spirit of DIM's data.

    - demand: Poisson around exp(mu_i + z_t), z an AR(1) process (autocorrelated log-demand), with
      product levels mu_i ~ N(log demand_mean, demand_spread^2) (mean-corrected);
    - price: a geometric random walk (price matching follows competitors), cost a fixed fraction of
      the product's initial price, holding a fraction of it per period;
    - lead time: i.i.d. draws from ``lead_time_pmf`` over 0, 1, 2, ... periods;
    - ``spread_arrivals``: each order arrives over its lead time and the two periods after
      (Dirichlet shares, most mass first); ``min_yield`` < 1 draws yields uniformly in [min_yield, 1].
    """
    rng = np.random.default_rng(seed)
    stationary_sd = volatility / np.sqrt(1.0 - autocorrelation**2)
    level = rng.normal(
        np.log(demand_mean) - 0.5 * (demand_spread**2 + stationary_sd**2), demand_spread, num_products
    )
    z = np.empty((num_products, periods))
    z[:, 0] = rng.normal(0.0, stationary_sd, num_products)
    for t in range(1, periods):
        z[:, t] = autocorrelation * z[:, t - 1] + rng.normal(0.0, volatility, num_products)
    demand = rng.poisson(np.exp(level[:, None] + z)).astype(np.float32)
    start_price = price * np.exp(rng.normal(0.0, 0.3, num_products))
    steps = rng.normal(0.0, price_volatility, (num_products, periods))
    steps[:, 0] = 0.0
    prices = start_price[:, None] * np.exp(np.cumsum(steps, axis=1))
    cost = np.broadcast_to(cost_fraction * start_price[:, None], (num_products, periods))
    holding = np.broadcast_to(holding_fraction * start_price[:, None], (num_products, periods))
    pmf = np.asarray(lead_time_pmf, dtype=float) / np.sum(lead_time_pmf)
    lead_time = rng.choice(len(pmf), size=(num_products, periods), p=pmf)
    shares = None
    if spread_arrivals:
        lags = len(pmf) + 2
        split = rng.dirichlet([6.0, 2.0, 1.0], size=(num_products, periods))
        shares = np.zeros((num_products, periods, lags))
        for offset in range(3):
            np.put_along_axis(
                shares, (lead_time + offset)[..., None], split[..., offset : offset + 1], axis=-1
            )
    yields = rng.uniform(min_yield, 1.0, (num_products, periods)) if min_yield < 1.0 else None
    return History(demand, prices, cost, lead_time, holding, shares, yields)


def load_history(path: str | Path) -> History:
    """Read a long-format CSV or Parquet history (columns in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise AnewError(f"history file {path} does not exist; pass the path of a CSV or Parquet file")
    try:
        import pandas as pd
    except ImportError as error:
        raise AnewError("reading a history file needs pandas: pip install pandas") from error
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except ImportError as error:
            raise AnewError(f"reading {path.name} needs a Parquet engine: pip install pyarrow") from error
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    else:
        raise AnewError(f"history file {path.name} must end in .csv or .parquet")
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise AnewError(
            f"history file {path.name} lacks columns {missing}; it needs {list(REQUIRED_COLUMNS)}"
        )
    frame = frame.sort_values(["product", "period"])
    products, periods = frame["product"].nunique(), frame["period"].nunique()
    if len(frame) != products * periods or frame.duplicated(["product", "period"]).any():
        raise AnewError(
            f"history file {path.name} must have exactly one row per product and period "
            f"({products} products x {periods} periods, found {len(frame)} rows)"
        )

    def grid(column: str) -> np.ndarray:
        return frame.pivot(index="product", columns="period", values=column).to_numpy()

    holding = grid("holding") if "holding" in frame.columns else 0.0
    yields = grid("yield") if "yield" in frame.columns else None
    return History(grid("demand"), grid("price"), grid("cost"), grid("lead_time"), holding, yield_rate=yields)


def save_history(history: History, path: str | Path) -> None:
    """Write a history in the long format ``load_history`` reads (arrival shares are not saved)."""
    import pandas as pd

    products, periods = np.meshgrid(
        np.arange(history.num_products), np.arange(history.periods), indexing="ij"
    )
    columns = {
        "product": products.ravel(),
        "period": periods.ravel(),
        "demand": history.demand.ravel(),
        "price": history.price.ravel(),
        "cost": history.cost.ravel(),
        "lead_time": history.lead_time.ravel(),
        "holding": history.holding.ravel(),
    }
    if history.yield_rate is not None:
        columns["yield"] = history.yield_rate.ravel()
    frame = pd.DataFrame(columns)
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
