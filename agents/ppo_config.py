"""PPO's configuration: hyperparameters with CleanRL's defaults, the named presets and their checks.

``anew.agents.ppo`` re-exports everything here (the registry reads ``PRESETS`` and ``default_preset`` from
the agent's module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from anew.errors import AnewError


@dataclass
class PPOConfig:
    """PPO hyperparameters; defaults are CleanRL's ``ppo.py`` (discrete actions, classic control)."""

    signed_fields: ClassVar[tuple[str, ...]] = (
        "init_log_std",
    )  # may be negative (the runner's config check)

    lr: float = 2.5e-4
    """Adam learning rate (at the start of annealing)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    anneal_steps: int = 500_000
    """Agent steps over which the lr decays linearly to 0 (CleanRL's anneal_lr over --total-steps; 0: constant)."""
    num_steps: int = 128
    """Rollout steps per env between updates (a batch holds num_steps x num_envs transitions)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """Lambda of generalized advantage estimation."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    update_epochs: int = 4
    """Passes over the batch per update."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    clip_coef: float = 0.2
    """Surrogate clipping coefficient (also clips the value change when clip_vloss)."""
    clip_vloss: bool = True
    """Clip the value loss as in PPO2."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this value (0 disables)."""
    target_kl: float = 0.0
    """Stop the epochs of an update once the approximate KL exceeds this (0 disables)."""
    normalize_obs: bool = False
    """Normalise observations by running mean/std (CleanRL's NormalizeObservation), clipped to +-obs_clip."""
    obs_clip: float = 10.0
    """Clip normalised observations to [-c, c]."""
    normalize_reward: bool = False
    """Scale learning rewards by the running std of the discounted return (CleanRL's NormalizeReward)."""
    reward_clip: float = 0.0
    """Clip learning rewards (after scaling) to [-c, c] (0 disables). Logged returns stay unclipped."""
    torso: Literal["auto", "mlp", "nature", "nature-valid", "minatar", "impala"] = "auto"
    """auto: separate tanh MLPs for vector observations, a shared CNN torso (make_torso) for images."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the actor and critic MLPs."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Hidden activation of the MLPs (tanh as CleanRL; relu is several times cheaper on CPU)."""
    init_log_std: float = 0.0
    """Initial state-independent log-std of the Gaussian policy (continuous actions)."""
    rescale_actions: bool = True
    """Gaussian over [-1, 1] mapped onto finite Box bounds (False: raw units, as CleanRL)."""


PRESETS: dict[str, PPOConfig] = {
    # RL Zoo's tuned CartPole setting (8 envs x 32 steps, full-batch epochs) with 10 epochs instead of 20:
    # seeds 1-10 all solve CartPole-v1 in 100k steps at half the cost (5 epochs: 0 of 10). Run with --num-envs 8.
    "classic-control": PPOConfig(
        lr=1e-3,
        anneal_steps=100_000,
        num_steps=32,
        gamma=0.98,
        gae_lambda=0.8,
        num_minibatches=1,
        update_epochs=10,
        ent_coef=0.0,
    ),
    # CleanRL's ppo_continuous_action.py (1 env x 2048 steps, obs/reward normalisation), --num-envs 1.
    "mujoco": PPOConfig(
        lr=3e-4,
        anneal_steps=1_000_000,
        num_steps=2048,
        num_minibatches=32,
        update_epochs=10,
        ent_coef=0.0,
        normalize_obs=True,
        normalize_reward=True,
        reward_clip=10.0,
        rescale_actions=False,
    ),
    # CleanRL's ppo_atari.py (8 envs x 128 steps, a shared Nature CNN; MinAtar gets its own conv). --num-envs 8.
    "atari": PPOConfig(anneal_steps=10_000_000, clip_coef=0.1, reward_clip=1.0),
    # anew's inventory envs (long truncated episodes, costs of similar size every period). Run with --num-envs 8
    # (2048 transitions per update): lost sales L=2, p=4 lands within 0.7% of the optimum after 1M steps
    # (benchmarks/bench_ppo_inventory.py).
    "inventory": PPOConfig(
        lr=3e-4,
        anneal_steps=1_000_000,
        num_steps=256,
        num_minibatches=8,
        update_epochs=10,
        clip_vloss=False,  # returns are large and alike: a clipped value would crawl towards them
        ent_coef=0.0,
        normalize_obs=True,
        normalize_reward=True,
        hidden=(128, 128),
        activation="relu",
    ),
}
PRESETS["continuous"] = PRESETS["mujoco"]

INVENTORY_PREFIXES = ("anew/LostSales", "anew/Backlog", "anew/HistoryReplay", "anew/VendorConstraints",
                      "anew/CapacitatedMultiProduct")  # fmt: skip
CONTINUOUS_IDS = ("Pendulum", "MountainCarContinuous", "LunarLanderContinuous", "BipedalWalker", "HalfCheetah",
                  "Hopper", "Walker2d", "Ant", "Humanoid", "Swimmer", "Reacher", "Pusher", "InvertedPendulum",
                  "InvertedDoublePendulum")  # fmt: skip


def default_preset(env_id: str) -> str:
    """inventory for anew's inventory envs, atari for ALE and MinAtar, mujoco for known continuous-control
    ids, classic-control otherwise (a Box action space works with any preset)."""
    if env_id.startswith(INVENTORY_PREFIXES):
        return "inventory"
    if env_id.startswith(("ALE/", "anew/MinAtar")):
        return "atari"
    return "mujoco" if env_id.split("/")[-1].split("-")[0] in CONTINUOUS_IDS else "classic-control"


def check_ppo_config(config: PPOConfig, num_envs: int) -> None:
    """Reject settings no run could use, naming the flag."""
    for name in ("num_steps", "num_minibatches", "update_epochs"):
        if getattr(config, name) < 1:
            raise AnewError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(config, name)})")
    if config.num_minibatches > config.num_steps * num_envs:
        raise AnewError(
            f"--num-minibatches {config.num_minibatches} exceeds the batch of num_steps x num_envs = "
            f"{config.num_steps * num_envs} transitions; lower it or raise --num-steps"
        )
    if not 0.0 <= config.gae_lambda <= 1.0 or not 0.0 <= config.gamma <= 1.0:
        raise AnewError(
            f"--gamma and --gae-lambda must lie in [0, 1] (got {config.gamma}, {config.gae_lambda})"
        )
    if config.clip_coef <= 0:
        raise AnewError(f"--clip-coef must be positive (got {config.clip_coef})")
