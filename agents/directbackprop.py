"""DirectBackprop: a policy network trained through a differentiable simulator (Madeka et al. 2022).

Each ``update`` rolls the current policy through a minibatch of sample paths of the simulator,
computes the (discounted) average reward, and backpropagates through time into the network
(pathwise gradients: min/max in inventory dynamics are piecewise linear, so gradients exist almost
everywhere). This is the same idea as HDPO (Alvo, Russo, Kanoria 2023).

Agents never import envs, so the simulator comes in as a callable: ``rollout(policy, initial_state)``
returns ``(rewards [B, T], carry)``, where ``policy`` maps an observation batch to orders and
``carry`` is a (detached) state the next rollout may start from, or None. Carrying the state lets
short rollouts (truncated backpropagation through time) start from the policy's own stationary
regime instead of an empty warehouse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from anew.agents.core import AgentBase

Rollout = Callable[[Callable[[torch.Tensor], torch.Tensor], Any], tuple[torch.Tensor, Any]]


@dataclass
class DirectBackpropConfig:
    """DirectBackprop hyperparameters (defaults tuned for Zipkin's lost-sales instances on one CPU core)."""

    hidden: tuple[int, ...] = (64, 64)
    """widths of the policy network's hidden layers (ELU activations)"""
    learning_rate: float = 3e-3
    """Adam step size at the start of the cosine schedule"""
    final_learning_rate_fraction: float = 0.02
    """learning rate at the end of ``updates`` as a fraction of the initial one"""
    updates: int = 500
    """gradient steps the schedule is laid out for"""
    max_grad_norm: float = 10.0
    """gradient-norm clipping"""
    gamma: float = 1.0
    """discount inside each rollout (1.0: plain average reward per period)"""
    warmup: int = 0
    """leading periods of each rollout left out of the loss"""
    max_order: float = 15.0
    """orders are max_order * sigmoid(network output)"""
    input_scale: float = 10.0
    """observations are divided by this before the network"""
    carry_state: bool = True
    """start each rollout from where the previous one ended (if the simulator returns a state)"""
    round_orders: bool = True
    """``act`` rounds orders to integers (training uses continuous orders)"""
    action_dim: int = 1
    """orders per observation (products sharing one decision)"""
    seed: int = 0
    """seed of the network initialisation"""


class OrderNetwork(nn.Module):
    """Observation -> bounded non-negative orders."""

    def __init__(self, obs_dim: int, config: DirectBackpropConfig):
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ELU()]
            width = hidden
        layers.append(nn.Linear(width, config.action_dim))
        self.body = nn.Sequential(*layers)
        self.max_order, self.input_scale = config.max_order, config.input_scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        orders = self.max_order * torch.sigmoid(self.body(obs.float() / self.input_scale))
        return orders.squeeze(-1) if orders.shape[-1] == 1 else orders


def discounted_mean(rewards: torch.Tensor, gamma: float, warmup: int = 0) -> torch.Tensor:
    """Mean over paths of the discount-weighted average reward per period after ``warmup``."""
    rewards = rewards[:, warmup:]
    weights = gamma ** torch.arange(rewards.shape[1], dtype=rewards.dtype, device=rewards.device)
    return (rewards * weights).sum(dim=1).mean() / weights.sum()


class DirectBackpropAgent(AgentBase):
    """Agent protocol: ``act`` is the deterministic policy; ``update`` takes one gradient step."""

    def __init__(
        self, obs_dim: int, config: DirectBackpropConfig | None = None, rollout: Rollout | None = None
    ):
        self.config = config or DirectBackpropConfig()
        torch.manual_seed(self.config.seed)
        self.network = OrderNetwork(obs_dim, self.config)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate)
        self.rollout = rollout
        self.carry: Any = None
        self.updates_done = 0

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Differentiable orders for an observation batch (what the rollout calls)."""
        return self.network(obs)

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool = False, rng: np.random.Generator | None = None,
            info: dict[str, Any] | None = None) -> np.ndarray:
        orders = self.network(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).numpy()
        return np.rint(orders).astype(np.int64) if self.config.round_orders else orders

    def observe(self, batch: Any) -> None:
        """Learning comes from the simulator's gradients, not from observed transitions."""

    def learning_rate(self) -> float:
        c = self.config
        progress = min(self.updates_done / max(c.updates, 1), 1.0)
        low = c.final_learning_rate_fraction
        return c.learning_rate * (low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress)))

    def update(self) -> dict[str, float]:
        if self.rollout is None:
            raise RuntimeError("DirectBackpropAgent needs a rollout callable to learn")
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        rewards, carry = self.rollout(self.policy, self.carry if self.config.carry_state else None)
        self.carry = carry.detach() if isinstance(carry, torch.Tensor) else None
        objective = discounted_mean(rewards, self.config.gamma, self.config.warmup)
        self.optimizer.zero_grad()
        (-objective).backward()
        grad_norm = nn.utils.clip_grad_norm_(self.network.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.updates_done += 1
        return {
            "losses/policy_loss": -objective.item(),
            "charts/average_reward": float(rewards.detach().mean()),
            "charts/learning_rate": self.optimizer.param_groups[0]["lr"],
            "losses/grad_norm": float(grad_norm),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates_done": self.updates_done,
            "carry": self.carry,
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates_done = int(state["updates_done"])
        self.carry = state.get("carry")
