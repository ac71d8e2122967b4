"""CommNet (Sukhbaatar, Szlam & Fergus, NeurIPS 2016): one controller for a team that learns to communicate.

The config and its presets are in ``commnet_config.py`` (re-exported here for the registry), the network and
its communication in ``commnet_net.py``, the losses in ``commnet_losses.py``, the buffer in ``commnet_buffer.py``.

Training follows ``facebookarchive/CommNet`` ``train.lua``: play a batch of whole episodes in the batched
simulator (``act`` carries the recurrent state, ``observe`` buffers each step), and when every game has
finished an episode replay the buffered steps through the network with gradients, then take one optimiser
step on REINFORCE with the team-averaged undiscounted return-to-go and a learned baseline (weight alpha), or,
for the levers, on the NLL of ``extras["target_lever"]``. The recomputed forward is identical to the acting one
in fixed-length worlds (the weights do not change within a batch); in worlds whose games end at different
times, episodes still running at an update are finished and replayed under the new weights (a small
off-policy mismatch the Lua code never meets).

Evaluation (``explore=False``) keeps its own recurrent state and draws from the evaluation's ``rng``. By default
it *samples* from the policy (``eval_sample``): the paper's tables report the stochastic policy the Lua code
trains and plays with (its ``train_batch`` statistics; it has no greedy test mode). ``eval_sample=False``
takes the most likely action (and symbol) instead.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from anew.agents.commnet_buffer import EpisodeBuffer
from anew.agents.commnet_config import (
    PRESETS,
    RUN_DEFAULTS,
    CommNetConfig,
    check_commnet_config,
    default_preset,
)
from anew.agents.commnet_losses import (
    action_entropy,
    curriculum_value,
    reinforce_loss,
    supervised_loss,
    team_returns_to_go,
)
from anew.agents.commnet_net import CommNetNetwork, NetState, sample_categorical
from anew.agents.core import AgentBase, AgentSpec, TransitionBatch
from anew.errors import AnewError

__all__ = ["PRESETS", "RUN_DEFAULTS", "CommNetAgent", "CommNetConfig", "default_preset"]


class CommNetAgent(AgentBase):
    """One controller for every slot of a team: acts for ``[games, slots]`` and learns from whole episodes."""

    def __init__(self, config: CommNetConfig, spec: AgentSpec):
        if not spec.is_team:
            raise AnewError(
                "CommNet controls a team: give it a multi-agent env (`anew envs --filter pettingzoo`)"
            )
        if not isinstance(spec.action_space, gym.spaces.Discrete):
            raise AnewError(f"CommNet needs a Discrete action space per agent, got {spec.action_space}")
        check_commnet_config(config)
        self.config, self.spec = config, spec
        self.num_envs, self.num_agents = spec.num_envs, spec.num_agents
        self.device = torch.device(spec.device)
        space = spec.observation_space
        self.discrete_obs = isinstance(space, gym.spaces.Discrete)
        obs_dim = int(space.n) if self.discrete_obs else int(np.prod(space.shape))
        self.action_start = int(spec.action_space.start)
        init_generator = torch.Generator().manual_seed(spec.seed)  # weights depend on the seed alone
        self.network = CommNetNetwork(config, obs_dim, self.discrete_obs, int(spec.action_space.n),
                                      self.num_agents, init_generator).to(self.device)  # fmt: skip
        self.optimizer = self.make_optimizer()
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(np.random.SeedSequence([spec.seed, 1_605]).generate_state(1)[0]))
        self.train_state = self.network.initial_state(self.num_envs, self.num_agents, self.device)
        self.eval_state: NetState | None = None
        self.buffer = EpisodeBuffer(self.num_envs)
        self.pending_symbols: torch.Tensor | None = None
        self.running_baseline = torch.zeros((), dtype=torch.float64)
        self.steps = 0  # vector steps observed x games
        self.updates = 0

    def make_optimizer(self) -> torch.optim.Optimizer:
        c, params = self.config, self.network.parameters()
        if c.optimizer == "rmsprop":  # Torch7's optim.rmsprop: the same update as PyTorch's
            return torch.optim.RMSprop(params, lr=c.lr, alpha=c.rmsprop_alpha, eps=c.rmsprop_eps)
        return (
            torch.optim.Adam(params, lr=c.lr, eps=c.adam_eps)
            if c.optimizer == "adam"
            else torch.optim.SGD(params, lr=c.lr)
        )

    # ------------------------------------------------------------------ episodes and curriculum
    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        """Reset the recurrent state of the games where ``mask`` is true (evaluation keeps its own state)."""
        mask_t = torch.as_tensor(np.asarray(mask, dtype=bool), device=self.device)
        if explore:
            self.train_state = self.reset_rows(self.train_state, mask_t)
        elif self.eval_state is None or self.eval_state.hidden.shape[0] != len(mask_t):
            self.eval_state = self.network.initial_state(len(mask_t), self.num_agents, self.device)
        else:
            self.eval_state = self.reset_rows(self.eval_state, mask_t)

    def reset_rows(self, state: NetState, mask: torch.Tensor) -> NetState:
        fresh = self.network.initial_state(state.hidden.shape[0], self.num_agents, self.device)
        return NetState(*(torch.where(mask[:, None, None], new, old) for new, old in zip(fresh, state)))

    def env_options(self) -> dict[str, Any]:
        """The curriculum's ``p_arrive`` (and ``max_active``) for training episodes starting now."""
        c = self.config
        if not c.curriculum_end:
            return {}
        span = (self.updates, c.curriculum_start, c.curriculum_end)
        options: dict[str, Any] = {
            "p_arrive": curriculum_value(*span, c.curriculum_p_start, c.curriculum_p_end, 0.01)
        }
        if c.curriculum_max_active_start:
            high = float(self.num_agents)
            options["max_active"] = int(curriculum_value(*span, c.curriculum_max_active_start, high, 1.0))
        return options

    def diagnostics(self) -> dict[str, float]:
        return {f"charts/{name}": float(value) for name, value in self.env_options().items()}

    # ------------------------------------------------------------------ acting
    def uniforms(self, shape: tuple[int, ...], rng: np.random.Generator | None) -> torch.Tensor:
        if rng is not None:
            return torch.as_tensor(rng.random(shape), dtype=torch.float32, device=self.device)
        return torch.rand(shape, generator=self.generator, device=self.device)

    def tensor(self, array: Any, dtype: Any = None) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=dtype), device=self.device)

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Actions ``[games, slots]`` (inactive slots get one too; the env ignores it)."""
        obs_t, games = self.tensor(obs), len(obs)
        active = (
            self.tensor(info["active"], bool)
            if info and "active" in info
            else torch.ones(games, self.num_agents) > 0
        )
        if explore:
            state = self.train_state
        else:
            if self.eval_state is None or self.eval_state.hidden.shape[0] != games:
                self.eval_state = self.network.initial_state(games, self.num_agents, self.device)
            state = self.eval_state
        sample = explore or self.config.eval_sample
        action_u = self.uniforms((games, self.num_agents), rng) if sample else None
        symbol_u = None
        if sample and self.config.comm == "discrete":
            symbol_u = self.uniforms((self.config.hops, games, self.num_agents), rng)
        out = self.network.step(obs_t, active, state, symbol_uniforms=symbol_u)
        if sample:
            actions = sample_categorical(out.log_probs.exp(), action_u)
        else:
            actions = out.log_probs.argmax(-1)
        if explore:
            self.train_state, self.pending_symbols = out.state, out.symbols
        else:
            self.eval_state = out.state
        return actions.cpu().numpy().astype(np.int64) + self.action_start

    # ------------------------------------------------------------------ learning
    def observe(self, batch: TransitionBatch) -> None:
        """Buffer one vector step (the symbols sent come from the ``act`` that chose these actions)."""
        games = batch.num_envs
        active = batch.active if batch.active is not None else np.ones((games, self.num_agents), dtype=bool)
        row = {
            "obs": self.tensor(batch.obs),
            "action": self.tensor(np.asarray(batch.action) - self.action_start, np.int64),
            "reward": self.tensor(batch.reward, np.float32),
            "active": self.tensor(active, bool),
            "done": self.tensor(np.asarray(batch.terminated) | np.asarray(batch.truncated)),
        }
        if self.config.comm == "discrete":
            if self.pending_symbols is None:
                raise AnewError(
                    "discrete CommNet learns only from steps it acted on: call act() before observe()"
                )
            row["symbols"] = self.pending_symbols
        if self.config.objective == "supervised":
            if self.config.supervised_target not in batch.extras:
                raise AnewError(
                    f"--objective supervised needs the env's per-slot {self.config.supervised_target!r} "
                    "(the levers game has it); use --objective reinforce"
                )
            row["target"] = self.tensor(batch.extras[self.config.supervised_target], np.int64)
        self.pending_symbols = None
        self.buffer.append(row)
        self.steps += games

    def update(self) -> dict[str, float]:
        """One optimiser step over the buffered episodes once every game has finished one (else nothing)."""
        if not self.buffer or not self.buffer.ready():
            return {}
        c = self.config
        batch = self.buffer.batch()
        f = batch.fields
        run = self.network.unroll(f["obs"], f["active"], f["done"], f["action"], f.get("symbols"))
        mask = f["active"] & batch.trainable[:, :, None]
        returns = team_returns_to_go(f["reward"], f["done"], c.cooperative)
        baseline = run.baseline
        if c.baseline == "running-mean":
            mean_return = returns[mask].double().mean()
            self.running_baseline = (
                c.baseline_decay * self.running_baseline + (1 - c.baseline_decay) * mean_return
            )
            baseline = torch.full_like(baseline, float(self.running_baseline))
        losses = reinforce_loss(run.chosen, baseline, returns, mask, c.alpha, batch.episodes)
        if c.objective == "supervised":
            policy_loss = supervised_loss(run.log_probs, f["target"], mask)
        else:
            policy_loss = losses.policy
        loss = policy_loss + (losses.baseline if c.baseline == "learned" else 0.0)
        if c.entropy_cost > 0:
            loss = loss - c.entropy_cost * action_entropy(run.log_probs, mask, batch.episodes)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.network.parameters(), c.max_grad_norm or float("inf"))
        self.optimizer.step()
        self.buffer.drop_trained()
        self.updates += 1
        masked = mask.to(torch.float32)
        entropy = -(run.log_probs.exp() * run.log_probs).sum(-1).detach()
        episode_starts = batch.trainable & torch.cat([torch.ones_like(f["done"][:1]), f["done"][:-1]])
        return {
            "losses/policy_loss": policy_loss.item(),
            "losses/baseline_loss": losses.baseline.item(),
            "losses/loss": loss.item(),
            "charts/entropy": float((entropy * masked).sum() / masked.sum().clamp(min=1)),
            "charts/return_per_slot": float(
                returns[..., 0][episode_starts].mean()
            ),  # what the loss maximises
            "charts/episodes_per_update": float(batch.episodes),
            "charts/grad_norm": float(grad_norm),
            "comm/message_norm": float(run.message_norm),
            "comm/mean_abs_comm": float(run.message_abs),
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "train_state": {name: value.clone() for name, value in self.train_state._asdict().items()},
            "buffer": self.buffer.state_dict(),
            "running_baseline": self.running_baseline.clone(),
            "steps": self.steps,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.running_baseline = state["running_baseline"].clone()
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self.pending_symbols, self.eval_state = None, None
        if state["train_state"]["hidden"].shape[0] != self.num_envs:
            return  # another number of games (e.g. `anew evaluate`): acting is restored, training starts afresh
        self.train_state = NetState(**{k: v.to(self.device).clone() for k, v in state["train_state"].items()})
        self.buffer.load_state_dict(state["buffer"])
