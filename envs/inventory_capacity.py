"""Capacitated multi-product replay (after Eisenach et al. 2024): N products share inbound capacity.

Each instance holds ``num_products`` products drawn from a history catalogue; every product follows
``anew.envs.inventory_replay.replay_step`` (same timing). The shared constraint applies to the total
order quantity placed in a period, against a capacity C_t that the agent observes before ordering.
Capacity paths are sampled per instance at reset (only one historical path exists in practice):
log C_t = log(base) + u_t with u an AR(1) process, base = ``capacity_fraction`` x the sum of the
products' mean demands.

Modes:
- ``hard``: orders are scaled pro rata by min(1, C_t / sum_i a_i) so the total fits (differentiable);
- ``soft``: orders go through unchanged and the instance pays ``capacity_price`` x (sum_i a_i - C_t)^+.
Info reports ``capacity_excess`` (requested total minus capacity, clipped at 0) and
``capacity_violation`` (excess > 0) in both modes, next to the reward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from anew.envs.inventory_replay import (
    DemandHistorySim,
    ReplayConfig,
    ReplayState,
    replay_observation,
    replay_step,
)
from anew.errors import AnewError


@dataclass
class CapacityConfig:
    """Parameters of the capacitated multi-product simulator."""

    num_products: int = 5
    """products per instance, sharing one inbound capacity"""
    mode: str = "hard"
    """'hard' (pro-rata scaling) or 'soft' (excess is priced)"""
    capacity_fraction: float = 0.9
    """mean capacity as a fraction of the products' summed mean demand"""
    capacity_autocorrelation: float = 0.7
    """AR(1) coefficient of the log capacity path"""
    capacity_volatility: float = 0.2
    """innovation standard deviation of the log capacity path"""
    capacity_price: float = 5.0
    """soft mode: cost per unit of total order above capacity"""
    replay: ReplayConfig = field(default_factory=lambda: ReplayConfig(max_order=50.0))
    """per-product replay settings (catalogue, episode length, window)"""

    def __post_init__(self) -> None:
        if self.mode not in ("hard", "soft"):
            raise AnewError(f"capacity mode must be 'hard' or 'soft', got {self.mode!r}")
        if self.num_products < 1:
            raise AnewError(f"num_products must be >= 1, got {self.num_products}")


def apply_capacity(
    orders: torch.Tensor, capacity: torch.Tensor, mode: str, price: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """orders [B, N], capacity [B] -> (orders placed, penalty [B], requested excess [B])."""
    total = orders.sum(dim=1)
    excess = torch.relu(total - capacity)
    if mode == "hard":
        scale = torch.clamp(capacity / total.clamp(min=1e-6), max=1.0)
        return orders * scale[:, None], torch.zeros_like(total), excess
    return orders, price * excess, excess


class CapacitySim:
    """``num_envs`` instances of N products each; replay lanes are laid out [B * N] product-major per instance."""

    def __init__(self, config: CapacityConfig, num_envs: int, seed: int | None = None, device: str = "cpu"):
        self.config, self.num_envs, self.device = config, num_envs, torch.device(device)
        self.lanes = DemandHistorySim(config.replay, num_envs * config.num_products, seed=seed, device=device)
        self.generator = self.lanes.generator
        self.product_mean = self.lanes.demand.float().mean(dim=1)  # per catalogue product
        self.capacity = torch.zeros(num_envs, config.replay.periods, device=self.device)
        self.t = 0

    @property
    def lags(self) -> int:
        """Leading observation entries that are the first product's stock: on-hand and pipeline."""
        return self.lanes.lags

    @property
    def observation_size(self) -> int:
        return self.config.num_products * self.lanes.observation_size + 1

    def sample_capacity(self, products: torch.Tensor) -> torch.Tensor:
        """Capacity paths [B, T] for instances whose products are ``products`` [B * N]."""
        c, periods = self.config, self.config.replay.periods
        batch = len(products) // c.num_products
        base = c.capacity_fraction * self.product_mean[products].view(batch, c.num_products).sum(dim=1)
        noise = (
            torch.randn(batch, periods, generator=self.generator, device=self.device) * c.capacity_volatility
        )
        stationary = c.capacity_volatility / np.sqrt(1.0 - c.capacity_autocorrelation**2)
        u = [noise[:, 0] / c.capacity_volatility * stationary]
        for t in range(1, periods):
            u.append(c.capacity_autocorrelation * u[-1] + noise[:, t])
        log_path = torch.stack(u, dim=1) - 0.5 * stationary**2  # mean-one multiplicative noise
        return base[:, None] * torch.exp(log_path)

    def observe(
        self, state: ReplayState, products: torch.Tensor, capacity: torch.Tensor, t: int
    ) -> torch.Tensor:
        lanes = replay_observation(state, self.lanes.exogenous(products, t))
        return torch.cat([lanes.view(len(capacity), -1), capacity[:, None]], dim=1)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        self.lanes.reset(seed)
        self.capacity, self.t = self.sample_capacity(self.lanes.products), 0
        return self.observe(self.lanes.state, self.lanes.products, self.capacity[:, 0], 0)

    def _step(
        self, state: ReplayState, orders: torch.Tensor, products: torch.Tensor, capacity: torch.Tensor, t: int
    ) -> tuple[ReplayState, torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        placed, penalty, excess = apply_capacity(orders, capacity, c.mode, c.capacity_price)
        exo = self.lanes.exogenous(products, t)
        state, lane_reward, info = replay_step(state, placed.reshape(-1), exo, **self.lanes._step_kwargs())
        reward = lane_reward.view(len(capacity), -1).sum(dim=1) - penalty
        info = {key: value.view(len(capacity), -1).sum(dim=1) for key, value in info.items()}
        info.update(capacity_excess=excess, capacity_violation=(excess > 1e-6).float(), capacity=capacity)
        return state, reward, info

    @torch.no_grad()
    def step(
        self, orders: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """orders [B, N] -> (obs, reward, episode_over [B], info)."""
        periods = self.config.replay.periods
        if self.t >= periods:
            raise RuntimeError("episode is over: call reset() first")
        orders = torch.as_tensor(orders, dtype=torch.float32, device=self.device).reshape(self.num_envs, -1)
        orders = orders.clamp(0.0, self.config.replay.max_order)
        self.lanes.state, reward, info = self._step(
            self.lanes.state, orders, self.lanes.products, self.capacity[:, self.t], self.t
        )
        self.t += 1
        shown = min(self.t, periods - 1)
        obs = self.observe(self.lanes.state, self.lanes.products, self.capacity[:, shown], shown)
        return obs, reward, torch.full((self.num_envs,), self.t >= periods, device=self.device), info

    def rollout(
        self,
        policy: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int | None = None,
        periods: int | None = None,
        initial_state: None = None,
    ) -> tuple[torch.Tensor, None]:
        """Differentiable rewards [B, T] of ``policy`` (obs [B, D] -> orders [B, N]) on fresh instances."""
        batch = batch_size or self.num_envs
        products = self.lanes.sample_products(batch * self.config.num_products)
        capacity = self.sample_capacity(products)
        state = self.lanes.initial_state(products)
        rewards = []
        for t in range(periods or self.config.replay.periods):
            obs = self.observe(state, products, capacity[:, t], t)
            state, reward, _ = self._step(state, policy(obs), products, capacity[:, t], t)
            rewards.append(reward)
        return torch.stack(rewards, dim=1), None
