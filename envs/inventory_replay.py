"""History replay (Deep Inventory Management's exogenous decision process) with vendor constraints.

Each instance replays one product's exogenous record (``anew.envs.inventory_history.History``); the
agent's orders do not change the record, only the inventory. ``replay_step`` is the one
implementation of the dynamics, used by ``DemandHistorySim`` (batched, no grad), by
``DemandHistorySim.rollout`` (differentiable, for DirectBackprop) and by the capacitated multi-product
simulator. "Replay" here means replaying a demand history, not an experience-replay buffer.

Timing choices (stated here because DIM's appendix is not reproduced in anew's sources):
1. An episode covers record periods ``window .. window + periods - 1``; the first ``window``
   periods only fill the observed-demand history.
2. At the start of period t the arrivals scheduled for t from earlier orders are received.
   The agent then sees on-hand x0 (after those arrivals), the quantities scheduled to arrive
   1..max_lag-1 periods ahead (vendor confirmations: realised lead times of past orders are
   known once placed), this period's price, unit cost and holding cost, and the last ``window``
   observed demands (sales if ``censored``).
3. The order a_t is processed by the vendor constraints: orders below the minimum order quantity
   become 0 or the MOQ, whichever is nearer, then are rounded to a multiple of ``order_multiple``
   (straight-through gradient). The processed order times the yield of period t arrives spread over
   the lags by the arrival shares (a one-hot at the lead time v_t without general arrivals). A
   part with lag 0 arrives before this period's demand.
4. Sales S_t = min(D_t, on-hand); unmet demand is lost. I_{t+1} = on-hand - S_t.
5. Reward r_t = p_t S_t - purchase - h_t I_{t+1}: holding is charged on end-of-period stock;
   purchase is c_t times the processed order when ordered (``cost_at="order"``), or c_t times
   each received part when it arrives (``"arrival"``, so undelivered yield is not paid for).
6. Rewards are per period and undiscounted; the learner applies its discount gamma.
With i.i.d. demand, a fixed lead time L, price p, cost 0 and holding h this is exactly Zipkin's
lost-sales model: reward = p D_t - (h (x0 - D_t)^+ + p (D_t - x0)^+) period by period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from anew.envs.inventory_history import History, synthetic_history
from anew.errors import AnewError


class ReplayState(NamedTuple):
    on_hand: torch.Tensor  # [B] stock carried into the period, before this period's arrivals
    pipeline: torch.Tensor  # [B, lags+1] quantity arriving 0, 1, ..., lags periods from now
    pipeline_value: torch.Tensor  # [B, lags+1] purchase cost of those quantities (cost_at="arrival")
    window: torch.Tensor  # [B, W] observed demand, most recent first


class Exogenous(NamedTuple):
    """One period of the record for each instance (all [B], shares [B, lags+1])."""

    demand: torch.Tensor
    price: torch.Tensor
    cost: torch.Tensor
    holding: torch.Tensor
    shares: torch.Tensor
    yield_rate: torch.Tensor


def vendor_constraints(order: torch.Tensor, min_order: float, order_multiple: float) -> torch.Tensor:
    """MOQ (below it: the nearer of 0 and the MOQ), then rounding to a multiple; straight-through gradient."""
    processed = order
    if min_order > 0:
        snapped = torch.where(
            order >= 0.5 * min_order, torch.full_like(order, min_order), torch.zeros_like(order)
        )
        processed = torch.where(order < min_order, snapped, order)
    if order_multiple > 0:
        processed = torch.round(processed / order_multiple) * order_multiple
    return order + (processed - order).detach()


def replay_observation(state: ReplayState, exo: Exogenous) -> torch.Tensor:
    """[x0, scheduled arrivals 1..lags-1, price, cost, holding, observed demand window]."""
    x0 = state.on_hand + state.pipeline[:, 0]
    columns = [
        x0[:, None],
        state.pipeline[:, 1:-1],
        exo.price[:, None],
        exo.cost[:, None],
        exo.holding[:, None],
    ]
    return torch.cat(columns + [state.window], dim=1)


def replay_step(
    state: ReplayState,
    order: torch.Tensor,
    exo: Exogenous,
    min_order: float = 0.0,
    order_multiple: float = 0.0,
    cost_at: str = "order",
    censored: bool = False,
) -> tuple[ReplayState, torch.Tensor, dict[str, torch.Tensor]]:
    """One period for a batch of products (timing in the module docstring); returns (state, reward, info)."""
    processed = vendor_constraints(order, min_order, order_multiple)
    received = processed * exo.yield_rate
    pipeline = state.pipeline + received[:, None] * exo.shares
    pipeline_value = state.pipeline_value
    if cost_at == "order":
        purchase = exo.cost * processed
    else:
        pipeline_value = pipeline_value + (exo.cost * received)[:, None] * exo.shares
        purchase = pipeline_value[:, 0]
    available = state.on_hand + pipeline[:, 0]
    lost = torch.relu(exo.demand - available)
    sales = exo.demand - lost
    on_hand = available - sales
    reward = exo.price * sales - purchase - exo.holding * on_hand
    observed = sales if censored else exo.demand
    next_state = ReplayState(
        on_hand,
        torch.cat([pipeline[:, 1:], torch.zeros_like(pipeline[:, :1])], dim=1),
        torch.cat([pipeline_value[:, 1:], torch.zeros_like(pipeline_value[:, :1])], dim=1),
        torch.cat([observed[:, None], state.window[:, :-1]], dim=1),
    )
    info = {
        "demand": exo.demand,
        "sales": sales,
        "lost": lost,
        "on_hand": on_hand,
        "purchase": purchase,
        "ordered": processed,
    }
    return next_state, reward, info


@dataclass
class ReplayConfig:
    """Parameters of the history-replay simulator (``min_order``/``order_multiple`` = vendor constraints)."""

    history: History | str | None = None
    """a History, a path to a CSV/Parquet history, or None for a synthetic catalogue"""
    periods: int = 104
    """periods per episode (each instance replays one product's window)"""
    window: int = 8
    """observed-demand periods in the observation (taken from the record before the episode)"""
    synthetic_products: int = 1000
    """products in the synthetic catalogue (when history is None)"""
    synthetic_seed: int = 0
    """seed of the synthetic catalogue: use another one for held-out products"""
    general_arrivals: bool = False
    """synthetic catalogue with arrivals spread over several periods and yields below 1"""
    min_order: float = 0.0
    """minimum order quantity (0 = none)"""
    order_multiple: float = 0.0
    """orders are rounded to a multiple of this batch size (0 = no rounding)"""
    cost_at: str = "order"
    """charge purchases when ordered ('order') or when received ('arrival')"""
    censored: bool = False
    """observe sales instead of demand in the history window"""
    max_order: float = 100.0
    """largest order per period"""

    def load(self) -> History:
        if self.cost_at not in ("order", "arrival"):
            raise AnewError(f"cost_at must be 'order' or 'arrival', got {self.cost_at!r}")
        if isinstance(self.history, History):
            history = self.history
        elif self.history is not None:
            from anew.envs.inventory_history import load_history

            history = load_history(self.history)
        else:
            history = synthetic_history(
                self.synthetic_products, self.periods + self.window, self.synthetic_seed,
                spread_arrivals=self.general_arrivals, min_yield=0.9 if self.general_arrivals else 1.0,
            )  # fmt: skip
        if history.periods < self.periods + self.window:
            raise AnewError(
                f"history has {history.periods} periods but an episode needs window + periods = "
                f"{self.window + self.periods}; lower periods or window"
            )
        return history


class DemandHistorySim:
    """``num_envs`` products whose demand histories are replayed in lockstep; resets draw products at random."""

    def __init__(self, config: ReplayConfig, num_envs: int, seed: int | None = None, device: str = "cpu"):
        self.config, self.num_envs, self.device = config, num_envs, torch.device(device)
        history = config.load()
        self.history = history
        self.lags = max(history.max_lag, 1)
        as_tensor = lambda array: torch.as_tensor(np.asarray(array), device=self.device)
        self.demand, self.price, self.cost = (
            as_tensor(history.demand),
            as_tensor(history.price),
            as_tensor(history.cost),
        )
        self.holding = as_tensor(history.holding)
        self.lead_time = as_tensor(history.lead_time).clamp(max=self.lags)
        self.shares = None if history.arrival_shares is None else as_tensor(history.arrival_shares)
        self.yields = None if history.yield_rate is None else as_tensor(history.yield_rate)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(np.random.SeedSequence(seed).generate_state(1)[0].item())
        self.products = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.state = self.initial_state()
        self.t = 0

    @property
    def observation_size(self) -> int:
        return self.lags + 3 + self.config.window

    def initial_state(self, products: torch.Tensor | None = None) -> ReplayState:
        products = self.products if products is None else products
        zeros = torch.zeros(len(products), self.lags + 1, device=self.device)
        window = self.demand[products, : self.config.window].flip(1)  # most recent first
        return ReplayState(torch.zeros(len(products), device=self.device), zeros, zeros.clone(), window)

    def exogenous(self, products: torch.Tensor, t: int) -> Exogenous:
        """Record period ``window + t`` for each product."""
        k = self.config.window + t
        if self.shares is not None:
            shares = self.shares[products, k]
        else:
            shares = torch.zeros(len(products), self.lags + 1, device=self.device)
            shares.scatter_(1, self.lead_time[products, k, None], 1.0)
        yields = (
            torch.ones(len(products), device=self.device) if self.yields is None else self.yields[products, k]
        )
        return Exogenous(
            self.demand[products, k], self.price[products, k], self.cost[products, k],
            self.holding[products, k], shares, yields,
        )  # fmt: skip

    def sample_products(self, count: int) -> torch.Tensor:
        return torch.randint(
            self.history.num_products, (count,), generator=self.generator, device=self.device
        )

    def reset(self, seed: int | None = None, products: torch.Tensor | None = None) -> torch.Tensor:
        """Start an episode on ``products`` (catalogue rows, one per instance), or on random ones."""
        if seed is not None:
            self.generator.manual_seed(seed)
        if products is not None and len(products) != self.num_envs:
            raise AnewError(f"reset got {len(products)} products for {self.num_envs} instances")
        self.products = self.sample_products(self.num_envs) if products is None else torch.as_tensor(products)
        self.state, self.t = self.initial_state(), 0
        return replay_observation(self.state, self.exogenous(self.products, 0))

    def _step_kwargs(self) -> dict:
        c = self.config
        return {
            "min_order": c.min_order,
            "order_multiple": c.order_multiple,
            "cost_at": c.cost_at,
            "censored": c.censored,
        }

    @torch.no_grad()
    def step(
        self, order: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Returns (obs, reward, episode_over [B], info); after the last period call ``reset``."""
        if self.t >= self.config.periods:
            raise RuntimeError("episode is over: call reset() first")
        order = torch.as_tensor(order, dtype=torch.float32, device=self.device).reshape(self.num_envs)
        order = order.clamp(0.0, self.config.max_order)
        self.state, reward, info = replay_step(
            self.state, order, self.exogenous(self.products, self.t), **self._step_kwargs()
        )
        self.t += 1
        over = self.t >= self.config.periods
        # At the end the observation uses the last period's record: there is no further period to show.
        obs = replay_observation(
            self.state, self.exogenous(self.products, min(self.t, self.config.periods - 1))
        )
        return obs, reward, torch.full((self.num_envs,), over, device=self.device), info

    def rollout(
        self,
        policy: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int | None = None,
        periods: int | None = None,
        initial_state: None = None,
    ) -> tuple[torch.Tensor, None]:
        """Differentiable rewards [B, T] of ``policy`` (obs -> orders) on freshly drawn products.

        Every rollout replays whole episodes from the start, so there is no state to carry (None).
        """
        products = self.sample_products(batch_size or self.num_envs)
        state = self.initial_state(products)
        rewards = []
        for t in range(periods or self.config.periods):
            exo = self.exogenous(products, t)
            state, reward, _ = replay_step(
                state, policy(replay_observation(state, exo)), exo, **self._step_kwargs()
            )
            rewards.append(reward)
        return torch.stack(rewards, dim=1), None
