"""DirectBackprop: a policy network trained through a differentiable simulator (Madeka et al. 2022).

Each gradient step rolls the current policy through a batch of sample paths of the simulator, computes
the (discounted) average reward, and backpropagates through time into the network (pathwise gradients:
min/max in inventory dynamics are piecewise linear, so gradients exist almost everywhere). This is the
same idea as HDPO (Alvo, Russo, Kanoria 2023).

Agents never import envs, so the simulator comes from the runner: ``training_phase(make_simulator,
updates)`` asks it for a :class:`Simulator` of ``batch_size`` paths and returns the run's one phase,
``updates`` gradient steps (``anew train directbackprop --total-steps``). A rollout returns the rewards
``[B, T]`` and a carry, the (detached) state the next rollout starts from: short rollouts (truncated
backpropagation through time) then start from the policy's own stationary regime instead of an empty
warehouse. The carry, the optimizer and the simulator's random state are all in ``state_dict``, so a
resumed run takes the same gradient steps as one never stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from anew.agents.core import AgentBase, AgentSpec, EnvFactory, Phase
from anew.errors import AnewError

Policy = Callable[[torch.Tensor], torch.Tensor]


class Simulator(Protocol):
    """A batch of differentiable sample paths (built by the runner, which may import envs)."""

    def rollout(self, policy: Policy, carry: Any) -> tuple[torch.Tensor, Any]:
        """Rewards ``[B, T]`` of ``policy`` from ``carry`` (None: the start state), and the final state."""

    def state_dict(self) -> dict[str, Any]:
        """The random state, so that a resumed run draws the same paths."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


SimulatorFactory = Callable[[int, int], Simulator]
"""``make_simulator(paths, periods)``: ``paths`` sample paths per rollout, ``periods`` long (the runner's)."""


@dataclass
class DirectBackpropConfig:
    """DirectBackprop hyperparameters (defaults tuned for Zipkin's lost-sales instances on one CPU core)."""

    hidden: tuple[int, ...] = (64, 64)
    """Widths of the policy network's hidden layers (ELU activations)."""
    lr: float = 3e-3
    """Adam step size at the start of the cosine schedule (laid out over --total-steps updates)."""
    lr_end_fraction: float = 0.02
    """Learning rate at the last update as a fraction of --lr."""
    batch_size: int = 512
    """Sample paths per gradient step."""
    horizon: int = 16
    """Periods per training rollout (LostSales/Backlog; the replay envs roll whole episodes)."""
    max_grad_norm: float = 10.0
    """Gradient-norm clipping."""
    gamma: float = 1.0
    """Discount inside each rollout (1.0: plain average reward per period)."""
    warmup: int = 0
    """Leading periods of each rollout left out of the loss."""
    order_scale: float = 15.0
    """Orders are order_scale * sigmoid(network output) (not --max-order, the env's own cap)."""
    input_scale: float = 10.0
    """Observations are divided by this before the network."""
    carry_state: bool = True
    """Start each rollout from where the previous one ended."""


PRESETS: dict[str, DirectBackpropConfig] = {"inventory": DirectBackpropConfig()}


def default_preset(env_id: str) -> str:
    return "inventory"


class OrderNetwork(nn.Module):
    """Observation -> bounded non-negative orders (one per product)."""

    def __init__(self, obs_dim: int, action_dim: int, config: DirectBackpropConfig):
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ELU()]
            width = hidden
        layers.append(nn.Linear(width, action_dim))
        self.body = nn.Sequential(*layers)
        self.order_scale, self.input_scale = config.order_scale, config.input_scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        orders = self.order_scale * torch.sigmoid(self.body(obs.float() / self.input_scale))
        return orders.squeeze(-1) if orders.shape[-1] == 1 else orders


def discounted_mean(rewards: torch.Tensor, gamma: float, warmup: int = 0) -> torch.Tensor:
    """Mean over paths of the discount-weighted average reward per period after ``warmup``."""
    rewards = rewards[:, warmup:]
    weights = gamma ** torch.arange(rewards.shape[1], dtype=rewards.dtype, device=rewards.device)
    return (rewards * weights).sum(dim=1).mean() / weights.sum()


def cosine_lr(lr: float, end_fraction: float, done: int, total: int) -> float:
    """Cosine decay from ``lr`` to ``end_fraction * lr`` over ``total`` updates."""
    progress = min(done / max(total, 1), 1.0)
    return lr * (end_fraction + (1 - end_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


class DirectBackpropAgent(AgentBase):
    """``act`` is the deterministic policy (integer orders for a discrete action space); learning happens in
    the phase ``training_phase`` returns, never in ``update`` (it learns from no transitions)."""

    def __init__(self, config: DirectBackpropConfig, spec: AgentSpec):
        self.config = config
        self.action_space = spec.action_space
        self.discrete = isinstance(spec.action_space, gym.spaces.Discrete)
        action_dim = 1 if self.discrete else int(np.prod(spec.action_space.shape))
        with torch.random.fork_rng(devices=[]):  # the weights depend on the seed alone
            torch.manual_seed(spec.seed)
            self.network = OrderNetwork(int(np.prod(spec.observation_space.shape)), action_dim, config)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr)
        self.simulator: Simulator | None = None
        self.loaded_simulator_state: dict[str, Any] | None = (
            None  # from a checkpoint, until a simulator exists
        )
        self.carry: Any = None
        self.updates = 0
        self.total_updates = 1

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Differentiable orders for an observation batch (what a rollout calls)."""
        return self.network(obs)

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        orders = self.network(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).numpy()
        if self.discrete:
            return np.clip(np.rint(orders), 0, self.action_space.n - 1).astype(np.int64)
        return orders.reshape((len(orders), *self.action_space.shape)).astype(np.float32)

    def observe(self, batch: Any) -> None:
        """Learning comes from the simulator's gradients, not from observed transitions."""

    def update(self) -> dict[str, float]:
        return {}

    def phases(self, make_envs: EnvFactory) -> tuple[Phase, ...]:
        raise AnewError(
            "DirectBackprop trains through a differentiable simulator that the runner builds; "
            "train it with `anew train directbackprop --env-id anew/LostSales-v0`"
        )

    def training_phase(self, make_simulator: SimulatorFactory, updates: int) -> Phase:
        """The run's one phase: ``updates`` gradient steps on a simulator from ``make_simulator``."""
        self.simulator = make_simulator(self.config.batch_size, self.config.horizon)
        if self.loaded_simulator_state is not None:
            self.simulator.load_state_dict(self.loaded_simulator_state)
            self.loaded_simulator_state = None
        self.total_updates = updates
        return Phase("gradient", updates, lambda unit: self.gradient_step(), log_prefix="train/")

    def learning_rate(self) -> float:
        return cosine_lr(self.config.lr, self.config.lr_end_fraction, self.updates, self.total_updates)

    def gradient_step(self) -> dict[str, float]:
        """One rollout of ``batch_size`` paths and one Adam step on minus its average reward."""
        if self.simulator is None:
            raise AnewError("DirectBackprop has no simulator yet: build its phase with training_phase()")
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        rewards, carry = self.simulator.rollout(self.policy, self.carry if self.config.carry_state else None)
        self.carry = carry.detach() if isinstance(carry, torch.Tensor) else None
        objective = discounted_mean(rewards, self.config.gamma, self.config.warmup)
        self.optimizer.zero_grad()
        (-objective).backward()
        grad_norm = nn.utils.clip_grad_norm_(self.network.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        return {
            "policy_loss": -objective.item(),
            "average_reward": float(rewards.detach().mean()),
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            "grad_norm": float(grad_norm),
        }

    def state_dict(self) -> dict[str, Any]:
        simulator = self.simulator.state_dict() if self.simulator is not None else self.loaded_simulator_state
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "carry": self.carry,
            "simulator": simulator,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.carry = state.get("carry")
        if state.get("simulator") is not None:
            if self.simulator is not None:
                self.simulator.load_state_dict(state["simulator"])
            else:
                self.loaded_simulator_state = state["simulator"]
