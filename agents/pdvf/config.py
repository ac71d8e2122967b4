"""PD-VF's configuration: the reference's hyperparameters (reference notes section 3.2) where this machine can
afford them, the reduced budget of section 4 where it cannot, named presets and their checks.

``method`` also selects the paper's baselines, trained and evaluated through the same command:
``ppoall`` (one PPO on episodes whose env is drawn from the training envs, as many steps as all of PD-VF's
policies together) and ``ppoenv`` (PPO trained on the one test env ``target_env`` and evaluated there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from anew.agents.pdvf.policies import LearningSignal
from anew.agents.ppo import PPOConfig
from anew.errors import AnewError


@dataclass
class PDVFConfig:
    """PD-VF and its baselines; every field is a flag of ``anew train pdvf``."""

    signed_fields: ClassVar[tuple[str, ...]] = ("ppo_init_log_std", "return_min")

    method: Literal["pdvf", "ppoall", "ppoenv"] = "pdvf"
    """pdvf: the pipeline; ppoall / ppoenv: the PPO baselines (see the module docstring)."""
    train_envs: tuple[int, ...] = tuple(range(15))
    """Env indices (env option ``env_index``) of the training environments (Spaceship's TRAIN_ENVS)."""
    test_envs: tuple[int, ...] = tuple(range(15, 20))
    """Env indices evaluated after training, one eval.json entry each (Spaceship's TEST_ENVS)."""
    target_env: int = 15
    """ppoenv only: the test env PPO trains on and is evaluated in."""
    max_episode_steps: int = 50
    """Episode cap when recording episodes (Spaceship truncates at 50 itself)."""
    gamma: float = 0.99
    """Return R <- gamma R + r in time order, as the reference (Spaceship: the terminal reward)."""
    return_min: float = 0.0
    """Returns are normalised (R - min) / (max - min) before fitting W >= 0 (Swimmer -60, Ant -400)."""
    return_max: float = 1.0
    """Upper end of the return normalisation (Swimmer 200, Ant 1000)."""

    # (a) one PPO policy per training environment (anew's PPO; reference: 3e6 steps x 5 seeds each)
    ppo_steps: int = 100_000
    """Env steps per PPO policy (the reduced budget of reference section 4: 50-100k, 1 seed)."""
    ppo_num_envs: int = 16
    """Envs a PPO policy trains on at once."""
    ppo_num_steps: int = 32
    """PPO rollout steps per env between updates (16 x 32: about 200 updates per 100k steps)."""
    ppo_lr: float = 1e-3
    """PPO Adam learning rate (annealed linearly to 0 over the policy's budget)."""
    ppo_epochs: int = 10
    """PPO epochs per update (reference 10)."""
    ppo_minibatches: int = 4
    """PPO minibatches per epoch."""
    ppo_ent_coef: float = 0.0
    """PPO entropy coefficient (reference 0)."""
    ppo_init_log_std: float = -0.5
    """Initial log-std of PPO's Gaussian over [-1, 1] (0 would be noise of std 3 on actions in [-3, 3])."""
    ppo_log_reward_scale: float = 15.0
    """s > 0: PPO learns from 1 + log(r) / s on rewarded steps (Spaceship: 1 - d / 5; 0: the env's reward);
    see ``policies.LearningSignal``. Evaluation and logged returns use the env's reward."""
    ppo_timeout_terminal: bool = True
    """PPO treats the env's time limit as terminal (Spaceship's limit is part of the task, time unobserved)."""
    ppo_gamma: float = 1.0
    """PPO's discount (reference 0.99): 1 with the one end-of-episode reward, so no discount favours hovering."""
    ppo_gae_lambda: float = 1.0
    """PPO's GAE lambda (reference 0.95): 1, Monte Carlo advantages of the final reward."""
    ppo_tries: int = 3
    """Seeds a policy may train with: one whose score stays below ``ppo_retry_below`` trains
    again from a new seed and the best is kept (the baselines too). The reference trains 5 seeds per env."""
    ppo_retry_below: float = 0.6
    """Score under which a policy is trained again; policies that never reach it do not probe test envs."""
    ppo_score_episodes: int = 16
    """Deterministic episodes in its own envs that score a policy (0: its training return over the last
    quarter of the iterations, which hid policies that stall when acting deterministically)."""
    ppo_normalize_obs: bool = True
    """PPO normalises observations by running statistics (reference: none). Positions up to 5 saturate the tanh
    layers and many seeds stall without it."""

    # shared by (b), (c) and (d): episodes of every training policy in every training env
    episodes_per_pair: int = 10
    """Deterministic episodes per (policy, training env) pair (reference: 100 for (b), 200 for (c), 1 + 1 for
    (d)); a deterministic policy's episodes in one env differ only by theta, so few suffice."""
    noisy_episodes_per_pair: int = 10
    """More episodes per pair played with action noise and relabelled with the policy's actions, for (c) only."""
    label_noise: float = 1.0
    """Std of the Gaussian action noise of those episodes (actions lie in [-3, 3])."""
    heldout_every: int = 5
    """Every n-th episode of a pair is held out to pick the best model (reference: separate eval episodes)."""
    inf_num_steps: int = 1
    """Transitions the dynamics embedding is inferred from (reference: Spaceship and Swimmer 1, Ant 2)."""
    d_model: int = 64
    """Width of the self-attention encoders (1 head, 1 layer)."""
    dropout: float = 0.1
    """Dropout of the encoders."""

    # (b) dynamics embedding
    dynamics_size: int = 8
    """Size of z_d (reference: Spaceship 8, Swimmer 2, Ant 8)."""
    dynamics_epochs: int = 60
    """Passes over the episodes (reference 200, over 100 samples per pair with batch 8)."""
    dynamics_batch: int = 32
    """Episodes per step (reference 8 on Spaceship)."""
    dynamics_lr: float = 1e-3
    """Adam learning rate of the dynamics encoder and decoder."""
    gaussian_dynamics: bool = True
    """Gaussian transition decoder (Spaceship) instead of a deterministic one (MuJoCo)."""

    # (c) policy embedding
    policy_size: int = 8
    """Size of z_pi."""
    policy_epochs: int = 60
    """Passes over the episodes (reference 200)."""
    policy_batch: int = 64
    """Episodes per step (about 1,300 states; the reference samples 2,048 states)."""
    policy_lr: float = 0.01
    """Adam learning rate of the policy encoder and decoder."""

    # (d) the value W(s0, z_d, z_pi) = z_pi^T A(s0, z_d) z_pi and the DAgger-like stages
    value_hidden: int = 128
    """Hidden width of the network giving A."""
    value_lr: float = 5e-3
    """Adam learning rate of W."""
    value_eps: float = 1e-5
    """Adam epsilon of W."""
    value_batch: int = 128
    """Rows per value step (phase 2: 1/4 phase-1 rows + 3/4 the current stage's rows)."""
    value_epochs: int = 200
    """Phase-1 steps of W (the reference's 'epochs' are one step each)."""
    dagger_stages: int = 20
    """Phase-2 stages; 0 is the ablation without them (the paper's NoDaggerValue)."""
    dagger_epochs: int = 100
    """Value steps per stage."""
    dagger_aggregate: bool = True
    """Phase 2's "new" rows are those of every stage so far (False: this stage's only, as the reference)."""
    dagger_best_sign: bool = True
    """Phase 2 fits both sign rows of a (probe, env) to the better sign's return: W(u) = W(-u), and test time
    plays the better sign, so that is the return W must rank by (False: each row its own return, as the
    reference, which pulls W towards the mean of a good and a failed rollout)."""
    dagger_episodes: int = 1
    """Episodes per (probe policy, training env, sign) and stage, as many again held out (reference 1 + 1)."""

    # (e) test time
    sign_episodes: int = 2
    """Episodes per (test env, probe policy, sign) that fix the sign of the decoded embedding before evaluation
    (0: always the sign whose largest component is positive)."""

    def learning_signal(self) -> LearningSignal:
        return LearningSignal(self.ppo_log_reward_scale, self.ppo_timeout_terminal)

    def ppo_config(self) -> PPOConfig:
        """The PPO hyperparameters of every policy this run trains (anneal length is set per policy)."""
        return PPOConfig(
            lr=self.ppo_lr,
            num_steps=self.ppo_num_steps,
            num_minibatches=self.ppo_minibatches,
            update_epochs=self.ppo_epochs,
            ent_coef=self.ppo_ent_coef,
            gamma=self.ppo_gamma,
            gae_lambda=self.ppo_gae_lambda,
            normalize_obs=self.ppo_normalize_obs,
            init_log_std=self.ppo_init_log_std,
        )


# Seconds, not learning: three training envs, a few PPO iterations and epochs (tests and smoke runs).
_CI: dict[str, Any] = {
    "train_envs": (0, 5, 10),
    "ppo_steps": 1_024,
    "ppo_num_envs": 4,
    "ppo_num_steps": 32,
    "ppo_epochs": 2,
    "ppo_tries": 1,
    "episodes_per_pair": 4,
    "noisy_episodes_per_pair": 2,
    "heldout_every": 2,
    "dynamics_epochs": 3,
    "policy_epochs": 3,
    "value_epochs": 10,
    "dagger_stages": 2,
    "dagger_epochs": 5,
    "sign_episodes": 1,
}
PRESETS: dict[str, PDVFConfig] = {
    "spaceship": PDVFConfig(),
    "spaceship-ci": PDVFConfig(**_CI),
    "nodagger": PDVFConfig(dagger_stages=0),
    "ppoall": PDVFConfig(method="ppoall"),
    "ppoenv": PDVFConfig(method="ppoenv"),
    "ppoall-ci": PDVFConfig(method="ppoall", **_CI),
    "ppoenv-ci": PDVFConfig(method="ppoenv", **_CI),
}


# Test episodes per test environment: three per probe policy when all 15 probe (the evaluation draws probes
# from a shuffled deck), the same count for the baselines.
RUN_DEFAULTS: dict[str, dict[str, int]] = {
    preset: {"eval_episodes": 45} for preset in ("spaceship", "nodagger", "ppoall", "ppoenv")
}


def default_preset(env_id: str) -> str:
    return "spaceship"


def check_pdvf_config(config: PDVFConfig) -> None:
    """Reject settings no run could use, naming the flag."""
    if config.method not in ("pdvf", "ppoall", "ppoenv"):
        raise AnewError(f"--method must be pdvf, ppoall or ppoenv (got {config.method!r})")
    if not config.train_envs or not config.test_envs:
        raise AnewError("--train-envs and --test-envs each need at least one env index")
    if config.method == "ppoenv" and config.target_env not in config.test_envs:
        raise AnewError(
            f"--target-env {config.target_env} is not one of --test-envs {list(config.test_envs)}"
        )
    for name in (
        "ppo_steps",
        "ppo_num_envs",
        "ppo_num_steps",
        "episodes_per_pair",
        "inf_num_steps",
        "dynamics_batch",
        "policy_batch",
        "value_batch",
        "max_episode_steps",
        "dagger_episodes",
    ):
        if getattr(config, name) < 1:
            raise AnewError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(config, name)})")
    if config.inf_num_steps >= config.max_episode_steps:
        raise AnewError("--inf-num-steps must be smaller than --max-episode-steps")
    if config.return_max <= config.return_min:
        raise AnewError(
            f"--return-max must exceed --return-min (got {config.return_min}, {config.return_max})"
        )
    if not 2 <= config.heldout_every <= config.episodes_per_pair:
        raise AnewError(
            f"--heldout-every must lie in 2..--episodes-per-pair (got {config.heldout_every}): every "
            "pair needs a held-out episode and a training one"
        )
