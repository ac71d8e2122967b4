"""Batched single-product inventory simulators: Zipkin's lost-sales model and its backlog twin.

The dynamics are written once, as ``inventory_step`` over torch tensors with a leading batch axis.
The same function drives three things: ``InventorySim`` (thousands of instances stepped at once
under ``torch.no_grad``), ``rollout`` (a differentiable rollout for pathwise-gradient methods such as
DirectBackprop), and the Gymnasium views in ``anew.envs.inventory_gym`` (a batch of one, or a
vector env over the whole batch).

Timing (Zipkin 2008; DynaPlex ``lost_sales``), with lead time L >= 1:
- state x = (x0, x1, ..., x_{L-1}); x0 is on-hand at the start of the period *after* this period's
  arrival, x_k arrives k periods from now;
- the order q joins the end of the pipeline, then demand d is served from x0;
- cost h (x0 - d)^+ + p (d - x0)^+ (+ K 1[q > 0] + c q); lost sales: next state
  ((x0 - d)^+ + x1, x2, ..., x_{L-1}, q); an order placed at t serves demand from period t + L.
With backorders x0 is net inventory (may be negative), p is charged per backordered unit per period
and the next on-hand is x0 - d + x1. Lead time 0 (only meaningful for backlog / (s, S)) means the
order arrives before this period's demand; the state is then the net inventory before ordering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from anew.errors import AnewError
from anew.inventory_demand import DemandDistribution, quantile


def inventory_step(
    state: torch.Tensor,
    order: torch.Tensor,
    demand: torch.Tensor,
    lead_time: int,
    p: float,
    h: float,
    backlog: bool = False,
    fixed_cost: float = 0.0,
    unit_cost: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """One period for a batch: returns (next_state [B, max(L,1)], cost [B], info of [B] tensors).

    Differentiable in ``state`` and ``order`` almost everywhere (the fixed cost has zero gradient).
    """
    if lead_time == 0:
        level = state[:, 0] + order
        incoming = torch.zeros_like(level)
        tail = state[:, :0]
    else:
        pipeline = torch.cat([state[:, 1:], order[:, None]], dim=1)  # arrives 1..L periods from now
        level, incoming, tail = state[:, 0], pipeline[:, 0], pipeline[:, 1:]
    after_demand = level - demand
    holding = torch.relu(after_demand)
    shortage = torch.relu(-after_demand)  # lost units, or the backorders outstanding at period end
    carried = after_demand if backlog else holding
    cost = h * holding + p * shortage
    if fixed_cost:
        cost = cost + fixed_cost * (order > 0).to(cost.dtype)
    if unit_cost:
        cost = cost + unit_cost * order
    next_state = torch.cat([(carried + incoming)[:, None], tail], dim=1)
    return next_state, cost, {"holding": holding, "shortage": shortage, "on_hand": level}


@dataclass
class InventoryConfig:
    """Parameters of one lost-sales (or backlog) instance."""

    lead_time: int = 2
    """periods between placing an order and using it (L >= 1 for lost sales, >= 0 for backlog)"""
    p: float = 4.0
    """penalty per lost (or backordered, per period) unit"""
    h: float = 1.0
    """holding cost per unit left at the end of a period"""
    demand: DemandDistribution = field(default_factory=DemandDistribution)
    """demand per period (Poisson mean 5 by default)"""
    backlog: bool = False
    """backorders instead of lost sales"""
    max_order: int | None = None
    """largest order; None = F_1^{-1}(p/(p+h)) + 2, the spec's default (policies reach the optimum)"""
    fixed_cost: float = 0.0
    """cost K per period with a positive order"""
    unit_cost: float = 0.0
    """purchase cost per unit ordered"""

    def __post_init__(self) -> None:
        if self.lead_time < (0 if self.backlog else 1):
            raise AnewError(
                f"lead time {self.lead_time} is not allowed: lost sales need lead_time >= 1, backlog >= 0"
            )
        if self.p < 0 or self.h < 0:
            raise AnewError(f"costs must be non-negative (got p={self.p}, h={self.h})")
        if self.max_order is None:
            self.max_order = quantile(self.demand.pmf(), self.p / (self.p + self.h)) + 2
        if self.max_order < 1:
            raise AnewError(f"max_order must be >= 1, got {self.max_order}")

    @property
    def state_size(self) -> int:
        return max(self.lead_time, 1)


class InventorySim:
    """``num_envs`` independent instances stepped together; state is a float32 [B, max(L,1)] tensor.

    Orders are clipped to [0, max_order]. Demands come from a seeded ``torch.Generator``, so two sims
    with the same seed see the same demand paths (common random numbers for comparing policies).
    """

    def __init__(self, config: InventoryConfig, num_envs: int, seed: int | None = None, device: str = "cpu"):
        self.config = config
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(np.random.SeedSequence(seed).generate_state(1)[0].item())
        self._cdf = torch.as_tensor(np.cumsum(config.demand.pmf()), dtype=torch.float64, device=self.device)
        self.state = torch.zeros(num_envs, config.state_size, device=self.device)
        self.periods = 0

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Every instance starts empty (no stock, nothing on order); returns the state."""
        if seed is not None:
            self.generator.manual_seed(seed)
        self.state = torch.zeros(self.num_envs, self.config.state_size, device=self.device)
        self.periods = 0
        return self.state.clone()

    def sample_demand(self, periods: int | None = None) -> torch.Tensor:
        """Demands [B] (or [B, periods]) from this sim's generator."""
        shape = (self.num_envs,) if periods is None else (self.num_envs, periods)
        uniform = torch.rand(shape, generator=self.generator, dtype=torch.float64, device=self.device)
        index = torch.searchsorted(self._cdf, uniform, right=True).clamp_(max=len(self._cdf) - 1)
        return index.to(torch.float32)

    @property
    def observation_size(self) -> int:
        return self.config.state_size

    @property
    def lags(self) -> int:
        """Leading observation entries that are stock: on-hand and pipeline."""
        return self.config.state_size

    @torch.no_grad()
    def step(
        self, order: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance every instance one period; returns (state, reward = -cost, episode_over [B], info).

        The lost-sales and backlog models never end by themselves (``episode_over`` is all False);
        time limits are the wrapper's business.
        """
        config = self.config
        order = torch.as_tensor(order, dtype=torch.float32, device=self.device).reshape(self.num_envs)
        order = order.clamp(0.0, float(config.max_order))
        demand = self.sample_demand()
        self.state, cost, info = inventory_step(
            self.state, order, demand, config.lead_time, config.p, config.h,
            config.backlog, config.fixed_cost, config.unit_cost,
        )  # fmt: skip
        self.periods += 1
        info["demand"] = demand
        info["order"] = order
        info["cost"] = cost
        return self.state.clone(), -cost, torch.zeros(self.num_envs, dtype=torch.bool), info

    def rollout(
        self,
        policy: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int | None = None,
        periods: int = 16,
        initial_state: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable rewards [B, periods] of ``policy`` on fresh demand paths, and the final state."""
        demands = self.sample_demand(periods)
        if batch_size is not None and batch_size != self.num_envs:
            raise AnewError(
                f"this sim draws {self.num_envs} paths per rollout; build it with num_envs={batch_size}"
            )
        costs, final = rollout(self.config, policy, demands, initial_state)
        return -costs, final


def rollout(
    config: InventoryConfig,
    policy: Callable[[torch.Tensor], torch.Tensor],
    demands: torch.Tensor,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable rollout over demand paths [B, T]: returns (costs [B, T], final state).

    ``policy`` maps a state batch to orders [B] (a float tensor that may require grad). Orders are
    not clipped here: bound them in the policy, so gradients are not silently cut.
    """
    batch, periods = demands.shape
    state = (
        torch.zeros(batch, config.state_size, device=demands.device)
        if initial_state is None
        else initial_state
    )
    costs = []
    for t in range(periods):
        state, cost, _ = inventory_step(
            state, policy(state), demands[:, t], config.lead_time, config.p, config.h,
            config.backlog, config.fixed_cost, config.unit_cost,
        )  # fmt: skip
        costs.append(cost)
    return torch.stack(costs, dim=1), state


def simulate_policy(
    config: InventoryConfig,
    act: Callable[[np.ndarray], np.ndarray],
    num_envs: int = 4000,
    periods: int = 2000,
    warmup: int = 200,
    seed: int = 0,
) -> tuple[float, float]:
    """Average cost per period after ``warmup`` of a numpy policy, and its standard error.

    The standard error treats each instance's time average as one independent sample.
    """
    if periods <= warmup:
        raise AnewError(f"periods ({periods}) must exceed warmup ({warmup})")
    sim = InventorySim(config, num_envs, seed=seed)
    state = sim.reset(seed)
    total = torch.zeros(num_envs, dtype=torch.float64)
    for t in range(periods):
        order = torch.as_tensor(np.asarray(act(state.numpy())), dtype=torch.float32)
        state, reward, _, _ = sim.step(order)
        if t >= warmup:
            total -= reward.double()
    per_instance = total / (periods - warmup)
    return float(per_instance.mean()), float(per_instance.std() / np.sqrt(num_envs))
