"""DQN (Mnih et al., 2015) with Dopamine's JAX defaults, double DQN and n-step returns as options.

Read top to bottom: the config and its presets, then the agent. The runner owns the env loop and
calls ``act`` -> env.step -> ``observe`` -> ``update``; the agent decides when a gradient step and a
target sync are due from its own count of agent steps (one step per env per ``observe``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from anew.agents.core import AgentBase, AgentSpec, TransitionBatch
from anew.agents.losses import epsilon_greedy, linear_schedule, q_learning_target, td_loss
from anew.agents.networks import QNetwork, default_torso, make_torso
from anew.agents.replay import ReplayBuffer, ReplaySample
from anew.errors import AnewError


@dataclass
class DQNConfig:
    """DQN hyperparameters; defaults are Dopamine's JAX DQN on Atari (``dqn.gin``)."""

    lr: float = 6.25e-5
    """Adam learning rate."""
    lr_end: float = 0.0
    """With lr_decay_steps: the learning rate reached at the end of the linear decay."""
    lr_decay_steps: int = 0
    """Agent steps of linear learning-rate decay from lr to lr_end after learning_starts (0: constant lr;
    reincarnation students follow their recipe's learning rate instead)."""
    adam_eps: float = 1.5e-4
    """Adam epsilon."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 1
    """Steps of the multi-step return (Dopamine's update_horizon)."""
    batch_size: int = 32
    """Transitions per gradient step."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions."""
    learning_starts: int = 20_000
    """Agent steps before the first gradient step (Dopamine's min_replay_history)."""
    train_every: int = 4
    """Agent steps between bursts of gradient steps (Dopamine's update_period)."""
    gradient_steps: int = 1
    """Gradient steps per burst."""
    target_update_every: int = 8_000
    """Agent steps between hard copies of the online net into the target net."""
    epsilon_start: float = 1.0
    """Exploration rate before and at the start of decay."""
    epsilon_end: float = 0.01
    """Exploration rate after decay."""
    epsilon_decay_steps: int = 250_000
    """Agent steps of linear decay, counted after ``learning_starts`` (as Dopamine does)."""
    eval_epsilon: float = 0.001
    """Exploration rate during evaluation."""
    double_q: bool = False
    """Select the bootstrap action with the online net (van Hasselt et al., 2016)."""
    loss: Literal["mse", "huber"] = "mse"
    """TD loss: Dopamine's JAX DQN uses MSE, the Nature paper Huber."""
    max_grad_norm: float = 0.0
    """Clip the gradient norm to this value (0 disables)."""
    reward_clip: float = 0.0
    """Clip learning rewards to [-c, c] (1.0 on Atari; 0 disables). Logged returns stay unclipped."""
    torso: Literal["auto", "nature", "nature-valid", "minatar", "impala", "mlp"] = "auto"
    """Network torso; auto picks Nature CNN for 84x84 stacks (Dopamine's SAME padding; nature-valid is the Nature
    paper's VALID padding, 3136 conv features), MinAtar conv for 10x10, else MLP."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the MLP torso."""
    replay_on_disk: str = ""
    """Directory for a memory-mapped replay buffer (empty: keep it in RAM)."""


PRESETS: dict[str, DQNConfig] = {
    "dopamine": DQNConfig(reward_clip=1.0),
    # CartPole: RL Zoo's DQN settings (big, rare bursts of updates) plus three changes that make the run END
    # solved rather than peak and collapse: 5-step returns, a target copied every 512 steps instead of before
    # every burst, and the learning rate decayed linearly to 0 by step 50k. Tuned on seeds 101-120 only.
    "classic-control": DQNConfig(
        lr=2.3e-3,
        lr_end=0.0,
        lr_decay_steps=49_000,
        adam_eps=1e-8,
        n_step=5,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1_000,
        train_every=256,
        gradient_steps=128,
        target_update_every=512,
        epsilon_end=0.04,
        epsilon_decay_steps=8_000,
        eval_epsilon=0.0,
        loss="huber",
        max_grad_norm=10.0,
    ),
}


PRESETS["minatar"] = DQNConfig(  # MinAtar's own DQN (Young & Tian, 2019), with Adam for its RMSProp (same lr)
    lr=2.5e-4,
    adam_eps=3.125e-4,
    buffer_size=100_000,
    learning_starts=5_000,
    train_every=1,
    target_update_every=1_000,
    epsilon_end=0.1,
    epsilon_decay_steps=100_000,
    loss="huber",
)


def default_preset(env_id: str) -> str:
    if env_id.startswith("anew/MinAtar-"):
        return "minatar"
    return "dopamine" if env_id.startswith("ALE/") else "classic-control"


# A term added to the TD loss (reincarnation's teacher terms): (sample, online Q-values (B, A) with gradient)
# -> (scalar loss already weighted, scalars to log).
ExtraLoss = Callable[[ReplaySample, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


class DQNAgent(AgentBase):
    """Epsilon-greedy acting on an online Q-network; learning from replay against a target network.

    ``loss`` (per-sample TD loss and Q-values of a sampled batch) is the hook Rainbow overrides and
    reincarnation students add their teacher term to (``learn_on(sample, extra_loss)``).
    """

    def __init__(self, config: DQNConfig, spec: AgentSpec):
        observation_space, action_space = spec.observation_space, spec.action_space
        if spec.is_team:
            raise AnewError("DQN controls one agent, not a team; use commnet or som on multi-agent envs")
        if not isinstance(action_space, gym.spaces.Discrete):
            raise AnewError(f"DQN needs a discrete action space, got {action_space}; pick a discrete env")
        num_envs, seed = spec.num_envs, spec.seed
        self.config = config
        self.device = torch.device(spec.device)
        self.num_actions = int(action_space.n)
        obs_shape = tuple(observation_space.shape)
        torso = make_torso(
            default_torso(obs_shape) if config.torso == "auto" else config.torso, obs_shape, config.hidden
        )
        self.image_input = torso.__class__.__name__ != "MLP"
        # channels_last pays on 84x84 frames; on MinAtar's 10x10 grids it is slower (same bits).
        self.channels_last = self.image_input and tuple(obs_shape[1:]) == (84, 84)
        self.online = self.build_network(torso).to(self.device)
        self.target = self.build_network(torso).to(self.device)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            self.online.parameters(),
            lr=config.lr,
            eps=config.adam_eps,
            fused=self.device.type in ("cpu", "cuda"),
        )
        # Atari stacks (k, 84, 84) of uint8 are stored as single frames and re-stacked when sampled.
        stacked_frames = (
            observation_space.dtype == np.uint8 and len(obs_shape) == 3 and obs_shape[1:] == (84, 84)
        )
        self.replay = ReplayBuffer(
            capacity=config.buffer_size,
            num_envs=num_envs,
            obs_shape=obs_shape,
            obs_dtype=observation_space.dtype,
            frame_stack=obs_shape[0] if stacked_frames else 1,
            n_step=config.n_step,
            gamma=config.gamma,
            seed=seed,
            storage_dir=config.replay_on_disk or None,
            **self.replay_options(),
        )
        self.rng = np.random.default_rng(seed)
        self.steps = 0  # agent steps observed (all envs)
        self.updates = 0  # gradient steps taken
        self.last_sync_period = 0  # steps // target_update_every at the last target sync

    # Subclasses (Rainbow) change the network head and the replay options; DQN keeps the defaults.
    def build_network(self, torso: torch.nn.Module) -> QNetwork:
        net = QNetwork(copy.deepcopy(torso), self.num_actions)
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def replay_options(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ acting
    @property
    def epsilon(self) -> float:
        c = self.config
        return linear_schedule(
            self.steps, c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, c.learning_starts
        )

    @property
    def explores_by_noise(self) -> bool:
        """True when the network's own noise explores (noisy nets) and epsilon stays 0."""
        return False

    @property
    def distributional(self) -> bool:
        """True when the network predicts return distributions (C51) rather than Q-values."""
        return False

    def diagnostics(self) -> dict[str, float]:
        return {"charts/epsilon": float(self.epsilon)}

    def to_tensor(self, obs: np.ndarray) -> torch.Tensor:
        tensor = torch.as_tensor(obs, device=self.device)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    @torch.no_grad()
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        return self.online(self.to_tensor(obs)).argmax(dim=1).cpu().numpy()

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        epsilon = self.epsilon if explore else self.config.eval_epsilon
        return epsilon_greedy(self.greedy_actions(obs), epsilon, self.num_actions, rng or self.rng)

    # ------------------------------------------------------------------ learning
    def observe(self, batch: TransitionBatch) -> None:
        reward = batch.reward
        if self.config.reward_clip > 0:
            reward = np.clip(reward, -self.config.reward_clip, self.config.reward_clip)
        self.replay.add(batch.obs, batch.action, reward, batch.terminated, batch.truncated, batch.next_obs)
        self.steps += batch.num_envs

    def update(
        self,
        sample_batch: Callable[[], ReplaySample] | None = None,
        extra_loss: ExtraLoss | None = None,
        follow_lr_schedule: bool = True,
    ) -> dict[str, float]:
        """Take the gradient steps that are due after the last ``observe``; sync the target net.

        Students pass where their batches come from (``sample_batch``), their teacher term (``extra_loss``) and
        ``follow_lr_schedule=False`` (they set the learning rate themselves); the schedule is the agent's own.
        """
        c = self.config
        if self.steps < c.learning_starts or not self.replay.can_sample(c.batch_size):
            return {}
        if (
            c.lr_decay_steps > 0 and follow_lr_schedule
        ):  # a function of the step count alone, so resumed runs follow it exactly
            self.set_learning_rate(
                linear_schedule(self.steps, c.lr, c.lr_end, c.lr_decay_steps, c.learning_starts)
            )
        metrics: dict[str, float] = {}
        while self.updates < self.scheduled_updates():
            metrics = self.learn_on(sample_batch() if sample_batch else self.sample_batch(), extra_loss)
            self.updates += 1
        if self.steps // c.target_update_every != self.last_sync_period:
            self.sync_target()
            self.last_sync_period = self.steps // c.target_update_every
        return metrics

    def scheduled_updates(self) -> int:
        """Gradient steps due by now: one burst at every multiple of train_every from learning_starts."""
        c = self.config
        first_burst = -(-c.learning_starts // c.train_every)  # ceil
        bursts = self.steps // c.train_every - first_burst + 1
        return max(bursts, 0) * c.gradient_steps

    def sample_batch(self, batch_size: int = 0) -> ReplaySample:
        return self.replay.sample(batch_size or self.config.batch_size)

    def loss(self, sample: ReplaySample) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample TD loss (B,) and the online Q-values (B, A) of the sampled states, with gradient."""
        obs, next_obs = self.to_tensor(sample.obs), self.to_tensor(sample.next_obs)
        action = torch.as_tensor(sample.action, device=self.device).long()
        reward = torch.as_tensor(sample.reward, device=self.device)
        discount = torch.as_tensor(sample.discount, device=self.device)
        q_values = self.online(obs)
        q_taken = q_values.gather(1, action.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            next_online = self.online(next_obs) if self.config.double_q else None
            target = q_learning_target(reward, discount, self.target(next_obs), next_online)
        return td_loss(q_taken, target, self.config.loss), q_values

    def learn_on(
        self, sample: ReplaySample, extra_loss: ExtraLoss | None = None, own_replay: bool = True
    ) -> dict[str, float]:
        """One gradient step on ``sample``: the importance-weighted TD loss plus ``extra_loss``; refreshes the
        priorities of the sampled rows (indices ≥ 0) when ``sample`` came from the agent's prioritized replay."""
        action = torch.as_tensor(sample.action, device=self.device).long()
        per_sample, q_values = self.loss(sample)
        loss = (torch.as_tensor(sample.weights, device=self.device) * per_sample).mean()
        metrics = {
            "losses/td_loss": loss.item(),
            "losses/q_values": q_values.detach().gather(1, action.unsqueeze(1)).mean().item(),
        }
        if extra_loss is not None:
            extra, extra_metrics = extra_loss(sample, q_values)
            loss = loss + extra
            metrics.update(extra_metrics)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.online.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        if own_replay and self.replay.prioritized:
            # As Rainbow does: the buffer raises (loss + 1e-10) to its priority exponent (0.5: Dopamine's sqrt).
            own = sample.indices >= 0
            self.replay.update_priorities(sample.indices[own], per_sample.detach().cpu().numpy()[own] + 1e-10)
        return metrics

    def sync_target(self) -> None:
        self.target.load_state_dict(self.online.state_dict())

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def reset_optimizer(self) -> None:
        """A fresh optimizer with the same settings (pre-training baselines drop Adam's state at the switch)."""
        self.optimizer = type(self.optimizer)(self.online.parameters(), **self.optimizer.defaults)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
            "updates": self.updates,
            "last_sync_period": self.last_sync_period,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self.last_sync_period = int(state["last_sync_period"])
        self.rng.bit_generator.state = state["rng"]


def config_dict(config: DQNConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
