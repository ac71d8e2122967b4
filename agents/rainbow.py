"""Rainbow (Hessel et al., 2018) as DQN plus six switches, with Dopamine's JAX Rainbow defaults.

Every Rainbow part is a config switch, so DQN + any subset of the parts is one config away:

- ``distributional``: C51 head (``num_atoms`` atoms on [v_min, v_max]) and the categorical
  cross-entropy loss (Bellemare et al., 2017); off, a scalar Q head and the TD loss ``loss``;
- ``n_step``: multi-step returns, computed by the replay buffer (truncated at episode ends);
- ``prioritized``: proportional prioritized replay (Schaul et al., 2016) with priority
  ``(loss + 1e-10) ** priority_exponent`` and importance weights ``(N P(i)) ** -beta``
  normalised by their batch maximum; beta anneals from ``beta_start`` to ``beta_end``;
- ``dueling``: value and advantage streams (Wang et al., 2016), combined per atom;
- ``noisy``: factorised Gaussian noisy layers (Fortunato et al., 2018); the training epsilon is
  then 0, noise is redrawn before every act and every gradient step, and evaluation uses the mean
  weights (deterministic);
- ``double_q``: the online net picks the bootstrap action, the target net values it.

Network layout. The torso is DQN's (``networks.make_torso``); the head is a :class:`QHead`. With
``noisy`` and ``noisy_hidden`` the torso's last dense layer moves into the head as a noisy layer, as in
Dopamine's FullRainbowNetwork (``NoisyNetwork_0``). Without noise, dueling or hidden head layers, a
Nature-CNN Rainbow is Dopamine's JAX ``RainbowNetwork`` one to one: :func:`state_dict_from_qnetwork`
turns the state_dict ``anew.reincarnation.convert_dopamine_checkpoint`` writes into this layout.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from anew.agents.core import AgentSpec
from anew.agents.distributional import (
    categorical_cross_entropy,
    categorical_projection,
    expected_q,
    make_support,
    q_from_logits,
)
from anew.agents.dqn import DQNAgent, DQNConfig
from anew.agents.heads import QHead, RainbowNetwork
from anew.agents.losses import linear_schedule, q_learning_target, td_loss
from anew.agents.networks import default_torso, make_torso
from anew.agents.replay import ReplaySample
from anew.errors import AnewError


@dataclass
class RainbowConfig(DQNConfig):
    """Rainbow hyperparameters; defaults are Dopamine's full Rainbow on Atari (``full_rainbow.gin``)."""

    # Numeric fields that may be negative (a generic "must not be negative" check must skip them).
    signed_fields: ClassVar[tuple[str, ...]] = ("v_min",)

    n_step: int = 3
    """Steps of the multi-step return (Dopamine's update_horizon)."""
    double_q: bool = True
    """Select the bootstrap action with the online net (van Hasselt et al., 2016)."""
    loss: Literal["mse", "huber"] = "huber"
    """TD loss when not distributional (Dopamine's FullRainbow uses Huber)."""
    torso: Literal["auto", "nature", "nature-valid", "minatar", "impala", "mlp"] = "auto"
    """Network torso; auto picks Nature CNN for 84x84 stacks (Dopamine's SAME padding; nature-valid is the Nature
    paper's VALID padding, 3136 conv features), MinAtar conv for 10x10, else MLP."""
    distributional: bool = True
    """C51 distributional head and cross-entropy loss (off: scalar Q-values and the TD loss)."""
    num_atoms: int = 51
    """Atoms of the return distribution."""
    v_max: float = 10.0
    """Largest atom."""
    v_min: float | None = None
    """Smallest atom (None: -v_max)."""
    prioritized: bool = True
    """Prioritized replay: sample in proportion to (loss + 1e-10) ** priority_exponent."""
    priority_exponent: float = 0.5
    """Priority exponent alpha (Dopamine stores sqrt(loss), i.e. 0.5)."""
    beta_start: float = 0.5
    """Importance-sampling exponent beta at learning_starts (Dopamine: fixed 0.5; Rainbow paper: 0.4 -> 1)."""
    beta_end: float = 0.5
    """Importance-sampling exponent after annealing."""
    beta_anneal_steps: int = 0
    """Agent steps of linear beta annealing after learning_starts (0: beta_end throughout)."""
    dueling: bool = True
    """Dueling value and advantage streams."""
    noisy: bool = True
    """Noisy linear layers for exploration; the training epsilon is then 0."""
    noisy_sigma0: float = 0.1
    """Initial noise scale sigma0 / sqrt(fan_in) (Dopamine 0.1; Fortunato et al. 0.5)."""
    noisy_hidden: bool = True
    """With noisy, the torso's last dense layer becomes a noisy head layer (Dopamine's FullRainbow)."""


# Dopamine's Atari settings are its gin files (dopamine/jax/agents/*/configs, labs/atari_100k/configs).
# Its JaxRainbowAgent (rainbow.gin, c51.gin) has no noisy nets, dueling or double Q.
_COMPACT = {"noisy": False, "dueling": False, "double_q": False}
PRESETS: dict[str, RainbowConfig] = {
    # full_rainbow.gin: all six parts, Adam 6.25e-5, n = 3, update every 4, target every 8000.
    "dopamine": RainbowConfig(reward_clip=1.0),
    # rainbow.gin (JaxRainbowAgent): C51 + 3-step + prioritized replay; Dopamine's RainbowNetwork layout.
    "dopamine-rainbow": RainbowConfig(reward_clip=1.0, **_COMPACT),
    # c51.gin: C51 alone.
    "dopamine-c51": RainbowConfig(
        lr=2.5e-4, adam_eps=3.125e-4, n_step=1, prioritized=False, reward_clip=1.0, **_COMPACT
    ),
    # DER.gin (van Hasselt et al., 2019) for Atari 100k: every step an update, 10-step returns.
    "der": RainbowConfig(
        lr=1e-4,
        adam_eps=1.5e-4,
        n_step=10,
        learning_starts=1_600,
        train_every=1,
        target_update_every=2_000,
        epsilon_decay_steps=2_000,
        reward_clip=1.0,
    ),
    # CartPole-sized: returns reach 1 / (1 - gamma) = 100, so the atoms span [0, 100]; the Rainbow paper's
    # beta 0.4 -> 1 and Fortunato et al.'s sigma0 0.5. Solves CartPole-v1 within 50k steps (5 of 5 seeds).
    "classic-control": RainbowConfig(
        lr=1e-3,
        adam_eps=1e-8,
        batch_size=64,
        buffer_size=50_000,
        learning_starts=1_000,
        train_every=4,
        target_update_every=500,
        eval_epsilon=0.0,
        v_min=0.0,
        v_max=100.0,
        noisy_sigma0=0.5,
        beta_start=0.4,
        beta_end=1.0,
        beta_anneal_steps=40_000,
        max_grad_norm=10.0,
    ),
    # MinAtar (Young & Tian, 2019): its replay, batch and target period with the Rainbow settings of
    # Obando-Ceron & Castro (2021) on MinAtar (n = 3, atoms on [-100, 100], update every 4 steps).
    # lr 2.5e-4 (DQN's) left C51 far behind at MinAtar budgets, and Dopamine's noise scale 0.1 left a
    # Breakout seed stuck; the Rainbow paper's 0.5 did not (benchmarks/rainbow.md).
    "minatar": RainbowConfig(
        lr=1e-3,
        noisy_sigma0=0.5,
        adam_eps=3.125e-4,
        buffer_size=100_000,
        learning_starts=1_000,
        target_update_every=1_000,
        epsilon_decay_steps=50_000,
        v_max=100.0,
    ),
}


def default_preset(env_id: str) -> str:
    if env_id.startswith("ALE/"):
        return "dopamine"
    if env_id.startswith("anew/MinAtar-"):
        return "minatar"
    return "classic-control"


def check_rainbow_config(config: RainbowConfig) -> None:
    """Reject settings no run could use, naming the flag."""
    if config.distributional:
        v_min = -config.v_max if config.v_min is None else config.v_min
        if config.num_atoms < 2:
            raise AnewError(
                f"--num-atoms must be at least 2 for a distributional head (got {config.num_atoms})"
            )
        if not v_min < config.v_max:
            raise AnewError(f"--v-min ({v_min}) must be below --v-max ({config.v_max})")
    for name in ("priority_exponent", "beta_start", "beta_end", "noisy_sigma0"):
        if getattr(config, name) < 0:
            raise AnewError(f"--{name.replace('_', '-')} must not be negative (got {getattr(config, name)})")


class RainbowAgent(DQNAgent):
    """DQN's acting and update schedule with Rainbow's network, loss, replay and exploration."""

    config: RainbowConfig

    def __init__(self, config: RainbowConfig, spec: AgentSpec):
        check_rainbow_config(config)
        device, seed = spec.device, spec.seed
        # What build_network needs, set before DQNAgent.__init__ calls it.
        self.obs_shape = tuple(spec.observation_space.shape)
        self.support = (
            make_support(
                -config.v_max if config.v_min is None else config.v_min, config.v_max, config.num_atoms
            )
            if config.distributional
            else None
        )
        # Noise has its own seeded generator: acting and learning draw from it, nothing else does.
        self.noise_rng = torch.Generator(device=device)
        self.noise_rng.manual_seed(int(np.random.SeedSequence([seed, 51]).generate_state(1)[0]))
        super().__init__(config, spec)
        self.support = self.online.support

    # ------------------------------------------------------------------ DQN hooks
    def build_network(self, torso: torch.nn.Module) -> RainbowNetwork:
        c = self.config
        kind = default_torso(self.obs_shape) if c.torso == "auto" else c.torso
        head_hidden: tuple[int, ...] = ()
        if c.noisy and c.noisy_hidden and not (kind == "mlp" and not c.hidden):
            head_hidden = (torso.out_features,)
            torso = make_torso(kind, self.obs_shape, c.hidden, final_dense=False)
        else:
            torso = copy.deepcopy(torso)
        head = QHead(
            torso.out_features,
            self.num_actions,
            c.num_atoms if c.distributional else 1,
            dueling=c.dueling,
            noisy=c.noisy,
            hidden=head_hidden,
            sigma0=c.noisy_sigma0,
        )
        net = RainbowNetwork(torso, head, self.support)
        return net.to(memory_format=torch.channels_last) if self.image_input else net

    def replay_options(self) -> dict[str, Any]:
        return {"prioritized": self.config.prioritized, "priority_exponent": self.config.priority_exponent}

    # ------------------------------------------------------------------ acting
    @property
    def epsilon(self) -> float:
        return 0.0 if self.config.noisy else super().epsilon

    @property
    def explores_by_noise(self) -> bool:
        return self.config.noisy

    @property
    def distributional(self) -> bool:
        return self.support is not None

    @property
    def beta(self) -> float:
        """Importance-sampling exponent now (linear from beta_start to beta_end after learning_starts)."""
        c = self.config
        return linear_schedule(self.steps, c.beta_start, c.beta_end, c.beta_anneal_steps, c.learning_starts)

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        if not self.config.noisy:
            return super().act(obs, explore, rng)
        if explore:
            self.online.reset_noise(self.noise_rng)  # fresh noise for every action (Fortunato et al.)
            return super().act(obs, explore, rng)
        self.online.eval()  # noisy layers use their mean weights: a deterministic policy
        try:
            return super().act(obs, explore, rng)
        finally:
            self.online.train()

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def compute_targets(self, batch: ReplaySample) -> torch.Tensor:
        """Targets for a batch: projected target distributions (B, K), or scalar Q targets (B,).

        ``batch.discount`` is gamma**L, and 0 after a true terminal, for a window of L <= n steps.
        """
        next_obs = self.to_tensor(batch.next_obs)
        reward = torch.as_tensor(batch.reward, device=self.device)
        discount = torch.as_tensor(batch.discount, device=self.device)
        if self.config.noisy:
            self.online.reset_noise(self.noise_rng)
            self.target.reset_noise(self.noise_rng)
        next_online_q = self.online(next_obs) if self.config.double_q else None
        if self.support is None:
            return q_learning_target(reward, discount, self.target(next_obs), next_online_q)
        next_probs = F.softmax(self.target.logits(next_obs), dim=-1)  # (B, A, K)
        select = next_online_q if next_online_q is not None else expected_q(next_probs, self.support)
        best = select.argmax(dim=1)
        return categorical_projection(
            self.support, next_probs[torch.arange(len(best)), best], reward, discount
        )

    def sample_batch(self, batch_size: int = 0) -> ReplaySample:
        return self.replay.sample(
            batch_size or self.config.batch_size, beta=self.beta if self.config.prioritized else 0.0
        )

    def loss(self, sample: ReplaySample) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy against the projected target distribution (or the TD loss without atoms), and the
        online Q-values E[Z] (B, A) with gradient."""
        target = self.compute_targets(sample)
        obs = self.to_tensor(sample.obs)
        action = torch.as_tensor(sample.action, device=self.device).long()
        rows = torch.arange(len(action), device=self.device)
        if self.config.noisy:
            self.online.reset_noise(self.noise_rng)  # independent of the noise that picked the target action
        logits = self.online.logits(obs)  # (B, A, K)
        if self.support is None:
            return td_loss(logits[rows, action].squeeze(1), target, self.config.loss), logits.squeeze(-1)
        return categorical_cross_entropy(logits[rows, action], target), q_from_logits(logits, self.support)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "noise_rng": self.noise_rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.noise_rng.set_state(state["noise_rng"])


def state_dict_from_qnetwork(
    state: dict[str, torch.Tensor], support: torch.Tensor | np.ndarray
) -> dict[str, Any]:
    """A ``QNetwork(torso, A, K)`` state_dict (what ``convert_dopamine_checkpoint`` writes for Dopamine's
    RainbowNetwork) as the state_dict of a Rainbow network without noise, dueling or head hidden layers."""
    renamed = {("head.out." + k[len("head.") :] if k.startswith("head.") else k): v for k, v in state.items()}
    renamed["support"] = torch.as_tensor(np.asarray(support), dtype=torch.float32)
    return renamed
