"""PPO (Schulman et al., 2017) in the manner of CleanRL's ``ppo.py`` and ``ppo_continuous_action.py``.

The config and its presets live in ``anew.agents.ppo_config``, the pure maths (GAE, the clipped losses,
the policy heads' log-probs and entropies) in ``anew.agents.policy_losses`` and the actor-critic network
in ``anew.agents.networks``; this module keeps the running statistics and the agent. The runner owns the
env loop: ``act`` samples actions and caches their log-probs and values, ``observe`` appends one vector
step to the rollout (``num_steps`` per env), and ``update`` runs the PPO epochs once the rollout is full.

Time limits bootstrap: a truncated step's target uses V(final observation), which the runner passes
as ``TransitionBatch.next_obs``; only ``terminated`` zeroes the bootstrap.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from anew.agents.core import AgentBase, AgentSpec, TransitionBatch
from anew.agents.networks import ActorCritic, default_torso
from anew.agents.policy_losses import (
    categorical_log_prob_and_entropy,
    clipped_surrogate_loss,
    gae_advantages,
    gaussian_entropy,
    gaussian_log_prob,
    value_loss,
)
from anew.agents.ppo_config import PRESETS, PPOConfig, check_ppo_config, default_preset
from anew.errors import AnewError

__all__ = ["PRESETS", "PPOAgent", "PPOConfig", "RunningMeanStd", "check_ppo_config", "default_preset"]


# ---------------------------------------------------------------------- running statistics
class RunningMeanStd:
    """Running mean and variance over batches (Chan et al.'s parallel update), in float64."""

    def __init__(self, shape: tuple[int, ...] = (), device: torch.device | str = "cpu"):
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = torch.tensor(1e-4, dtype=torch.float64, device=device)

    def update(self, batch: torch.Tensor) -> None:
        batch = batch.to(torch.float64)
        batch_mean, batch_var, batch_count = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta, total = batch_mean - self.mean, self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.var, self.count = m2 / total, total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.mean, self.var, self.count = (state[k].to(self.mean.device) for k in ("mean", "var", "count"))


# ---------------------------------------------------------------------- the agent
class Sampled(NamedTuple):
    """What ``act(explore=True)`` chose, kept for the ``observe`` that follows."""

    raw_obs: np.ndarray
    obs: torch.Tensor  # as the network saw it
    actions: torch.Tensor  # in policy space: the unclipped Gaussian sample, or the action index
    log_prob: torch.Tensor
    value: torch.Tensor


class PPOAgent(AgentBase):
    """On-policy actor-critic: collect num_steps x num_envs transitions, then PPO epochs over them."""

    # Rows of the rollout, each [num_steps, num_envs, ...]; bootstrap_values holds V(next obs) where
    # has_bootstrap is set (truncated steps and the last row), the rest of GAE uses the next row's value.
    ROLLOUT_FIELDS = (
        "obs actions log_probs values rewards terminated episode_over bootstrap_values has_bootstrap"
    )

    def __init__(self, config: PPOConfig, spec: AgentSpec):
        if spec.is_team:
            raise AnewError("PPO controls one agent, not a team; use commnet or som on multi-agent envs")
        observation_space, action_space = spec.observation_space, spec.action_space
        num_envs, seed, device = spec.num_envs, spec.seed, spec.device
        check_ppo_config(config, num_envs)
        if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise AnewError(f"PPO needs a Discrete or Box action space, got {action_space}; pick another env")
        self.config, self.num_envs, self.device = config, num_envs, torch.device(device)
        self.action_space = action_space
        self.continuous = isinstance(action_space, gym.spaces.Box)
        self.obs_shape = tuple(observation_space.shape)
        torso = default_torso(self.obs_shape) if config.torso == "auto" else config.torso
        self.image_input = torso != "mlp"
        if self.image_input and config.normalize_obs:
            raise AnewError("--normalize-obs is for vector observations; drop it for image observations")
        low, high = (action_space.low, action_space.high) if self.continuous else (0, 0)
        self.action_low, self.action_high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        self.rescale = self.continuous and config.rescale_actions and bool(np.isfinite([low, high]).all())
        outputs = int(np.prod(action_space.shape)) if self.continuous else int(action_space.n)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(np.random.SeedSequence([seed, 1_771]).generate_state(1)[0]))
        init_generator = torch.Generator().manual_seed(seed)  # weights depend on the seed alone
        self.network = ActorCritic(
            self.obs_shape,
            outputs,
            self.continuous,
            init_generator,
            torso=config.torso,
            hidden=config.hidden,
            activation=config.activation,
            init_log_std=config.init_log_std,
        ).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.network.parameters(),
            lr=config.lr,
            eps=config.adam_eps,
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.obs_rms = RunningMeanStd(self.obs_shape, self.device)
        self.return_rms = RunningMeanStd((), self.device)
        self.discounted_return = torch.zeros(num_envs, dtype=torch.float64, device=self.device)
        self.rollout = self.empty_rollout(outputs)
        self.position = 0  # next rollout row to fill
        self.steps = 0  # agent steps observed (all envs)
        self.updates = 0  # PPO updates done
        self.pending: Sampled | None = None

    def empty_rollout(self, outputs: int) -> dict[str, torch.Tensor]:
        steps_envs = (self.config.num_steps, self.num_envs)
        obs_dtype = torch.uint8 if self.image_input and not self.config.normalize_obs else torch.float32

        def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(*steps_envs, *shape, dtype=dtype, device=self.device)

        rollout = {name: zeros() for name in self.ROLLOUT_FIELDS.split()}
        rollout["obs"] = zeros(*self.obs_shape, dtype=obs_dtype)
        rollout["actions"] = zeros(outputs) if self.continuous else zeros(dtype=torch.long)
        return rollout

    # ------------------------------------------------------------------ acting
    def prepare(self, obs: np.ndarray) -> torch.Tensor:
        """Observations as the network sees them (normalised with the current statistics if enabled)."""
        tensor = torch.as_tensor(np.asarray(obs), device=self.device)
        if self.config.normalize_obs:
            normalised = (tensor.double() - self.obs_rms.mean) / torch.sqrt(self.obs_rms.var + 1e-8)
            return normalised.clamp(-self.config.obs_clip, self.config.obs_clip).float()
        return tensor if self.image_input else tensor.float()

    def distribution_terms(
        self, head: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-prob of ``actions``, entropy) under the policy whose head output is ``head``."""
        if self.continuous:
            log_std = self.network.log_std.expand_as(head)
            return gaussian_log_prob(actions, head, log_std), gaussian_entropy(log_std)
        return categorical_log_prob_and_entropy(head, actions)

    def to_env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """Policy-space actions -> what the env steps with (rescaled and clipped to the Box bounds)."""
        if not self.continuous:
            return actions.cpu().numpy() + int(self.action_space.start)
        raw = actions.cpu().numpy().astype(np.float64).reshape(-1, *self.action_space.shape)
        if self.rescale:
            raw = self.action_low + (np.clip(raw, -1.0, 1.0) + 1.0) * 0.5 * (
                self.action_high - self.action_low
            )
        return np.clip(raw, self.action_low, self.action_high).astype(self.action_space.dtype)

    def from_env_actions(self, actions: np.ndarray) -> torch.Tensor:
        """The inverse of ``to_env_actions`` (for transitions this agent did not choose itself)."""
        if not self.continuous:
            index = np.asarray(actions) - int(self.action_space.start)
            return torch.as_tensor(index, dtype=torch.long, device=self.device)
        raw = np.asarray(actions, np.float64).reshape(len(actions), -1)
        if self.rescale:
            span = (self.action_high - self.action_low).reshape(-1)
            raw = 2.0 * (raw - self.action_low.reshape(-1)) / span - 1.0
        return torch.as_tensor(raw, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Sampled actions when exploring (their log-probs and values are kept for ``observe``), else the mode
        (deterministic: evaluation draws nothing)."""
        if explore and self.config.normalize_obs:
            self.obs_rms.update(torch.as_tensor(np.asarray(obs), device=self.device))
        tensor = self.prepare(obs)
        if not explore:
            head = self.network.policy(tensor)
            return self.to_env_actions(head if self.continuous else head.argmax(-1))
        head, value = self.network(tensor)
        if self.continuous:
            noise = torch.randn(head.shape, generator=self.generator, device=self.device)
            actions = head + self.network.log_std.exp() * noise
        else:
            probs = torch.softmax(head, dim=-1)
            actions = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
        log_prob, _ = self.distribution_terms(head, actions)
        self.pending = Sampled(np.array(obs), tensor, actions, log_prob, value)
        return self.to_env_actions(actions)

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def observe(self, batch: TransitionBatch) -> None:
        """Append one vector step to the rollout; truncated steps (and the last row) keep V(next obs)."""
        c, t, row = self.config, self.position, self.rollout
        if t >= c.num_steps:
            raise AnewError("PPO's rollout is full: call update() after every observe() (the runner does)")
        sampled, self.pending = self.pending, None
        if sampled is None or not np.array_equal(sampled.raw_obs, batch.obs):
            # A transition this agent did not sample (e.g. a teacher's): score it under the current policy.
            tensor, actions = self.prepare(batch.obs), self.from_env_actions(batch.action)
            head, value = self.network(tensor)
            sampled = Sampled(batch.obs, tensor, actions, self.distribution_terms(head, actions)[0], value)
        row["obs"][t] = sampled.obs.to(row["obs"].dtype)
        row["actions"][t] = sampled.actions
        row["log_probs"][t] = sampled.log_prob
        row["values"][t] = sampled.value
        terminated = torch.as_tensor(np.asarray(batch.terminated), dtype=torch.bool, device=self.device)
        over = terminated | torch.as_tensor(np.asarray(batch.truncated), dtype=torch.bool, device=self.device)
        reward = torch.as_tensor(np.asarray(batch.reward), dtype=torch.float64, device=self.device)
        if c.normalize_reward:
            self.discounted_return = self.discounted_return * c.gamma + reward
            self.return_rms.update(self.discounted_return)
            reward = reward / torch.sqrt(self.return_rms.var + 1e-8)
            self.discounted_return[over] = 0.0
        if c.reward_clip > 0:
            reward = reward.clamp(-c.reward_clip, c.reward_clip)
        row["rewards"][t] = reward.float()
        row["terminated"][t] = terminated.float()
        row["episode_over"][t] = over.float()
        needs_value = (over & ~terminated) if t < c.num_steps - 1 else torch.ones_like(over)
        row["has_bootstrap"][t] = needs_value.float()
        if needs_value.any():
            index = torch.nonzero(needs_value).squeeze(1)
            row["bootstrap_values"][t, index] = self.network.value(
                self.prepare(batch.next_obs[index.cpu().numpy()])
            )
        self.position += 1
        self.steps += batch.num_envs

    def update(self) -> dict[str, float]:
        """PPO epochs over the rollout once it is full; returns CleanRL's metrics (empty otherwise)."""
        c, row = self.config, self.rollout
        if self.position < c.num_steps:
            return {}
        self.position = 0
        lr = c.lr
        if c.anneal_steps > 0:
            lr *= max(1.0 - (self.steps - c.num_steps * self.num_envs) / c.anneal_steps, 0.0)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.no_grad():
            following = torch.cat([row["values"][1:], torch.zeros_like(row["values"][:1])])
            next_values = torch.where(row["has_bootstrap"].bool(), row["bootstrap_values"], following)
            advantages = gae_advantages(row["rewards"], row["values"], next_values, row["terminated"],
                                        row["episode_over"], c.gamma, c.gae_lambda)  # fmt: skip
        batch = {name: row[name].flatten(0, 1) for name in ("obs", "actions", "log_probs", "values")}
        batch["advantages"] = advantages.flatten()
        batch["returns"] = batch["advantages"] + batch["values"]
        clip_fractions: list[float] = []
        for _ in range(c.update_epochs):
            order = torch.randperm(len(batch["returns"]), generator=self.generator, device=self.device)
            for index in torch.tensor_split(order, c.num_minibatches):
                losses = self.gradient_step({name: value[index] for name, value in batch.items()})
                clip_fractions.append(losses["losses/clipfrac"])
            if c.target_kl > 0 and losses["losses/approx_kl"] > c.target_kl:
                break
        self.updates += 1
        variance = batch["returns"].var().item()
        unexplained = (
            (batch["returns"] - batch["values"]).var().item() / variance if variance > 0 else math.nan
        )
        return losses | {
            "losses/clipfrac": float(np.mean(clip_fractions)),
            "losses/explained_variance": 1.0 - unexplained,
            "charts/learning_rate": lr,
        }

    def gradient_step(self, minibatch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One clipped-PPO step on a minibatch (its observations are stored as the network saw them)."""
        c = self.config
        head, new_values = self.network(minibatch["obs"])
        new_log_prob, entropy = self.distribution_terms(head, minibatch["actions"])
        advantages = minibatch["advantages"]
        if c.norm_adv and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss, approx_kl, clip_fraction = clipped_surrogate_loss(
            new_log_prob, minibatch["log_probs"], advantages, c.clip_coef
        )
        v_loss = value_loss(new_values, minibatch["values"], minibatch["returns"], c.clip_coef, c.clip_vloss)
        loss = policy_loss - c.ent_coef * entropy.mean() + c.vf_coef * v_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.network.parameters(), c.max_grad_norm)
        self.optimizer.step()
        return {
            "losses/value_loss": v_loss.item(),
            "losses/policy_loss": policy_loss.item(),
            "losses/entropy": entropy.mean().item(),
            "losses/approx_kl": approx_kl.item(),
            "losses/clipfrac": clip_fraction.item(),
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rollout": {name: value.clone() for name, value in self.rollout.items()},
            "position": self.position,
            "steps": self.steps,
            "updates": self.updates,
            "generator": self.generator.get_state(),
            "obs_rms": self.obs_rms.state_dict(),
            "return_rms": self.return_rms.state_dict(),
            "discounted_return": self.discounted_return.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self.generator.set_state(state["generator"])
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.return_rms.load_state_dict(state["return_rms"])
        self.pending = None
        if state["rollout"]["rewards"].shape != self.rollout["rewards"].shape:
            return  # another num_envs or num_steps (e.g. `anew evaluate`): acting is restored, the rollout starts anew
        for name, value in state["rollout"].items():
            self.rollout[name].copy_(value)
        self.position = int(state["position"])
        self.discounted_return = state["discounted_return"].to(self.device).clone()
