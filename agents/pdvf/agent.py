"""The PD-VF agent: a pipeline of phases (Raileanu, Goldstein, Szlam, Fergus, ICML 2020) on the run contract.

``anew train pdvf --env-id anew/Spaceship-v0`` runs, as resumable phases: ``policies`` (a: one PPO policy per
training env), ``episodes``, ``dynamics`` (b), ``policy_embedding`` (c), ``value`` and ``dagger`` (d), ``signs``
(e); then the runner evaluates once per test env (``evaluation_envs``). Evaluation acts by the test-time
procedure inside ``act``: per episode a probe policy (drawn from the training policies with the evaluation's
generator) plays ``inf_num_steps`` steps, z_d is inferred from those transitions, and the policy decoder acts
with the top eigenvector of A(s0, z_d), its sign taken from the ``signs`` phase (see ``adapt``).

The baselines (``--method ppoall`` / ``ppoenv``, presets ``ppoall`` / ``ppoenv``) run only the ``policies``
phase and act with their one policy, deterministically.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from anew.agents.core import AgentBase, AgentSpec, EnvFactory, Phase, TransitionBatch
from anew.agents.pdvf.adapt import Adapter, PDVFModels
from anew.agents.pdvf.config import PRESETS, RUN_DEFAULTS, PDVFConfig, check_pdvf_config, default_preset
from anew.agents.pdvf.pipeline import Pipeline
from anew.agents.pdvf.policies import PolicyJob, PolicyTraining
from anew.agents.pdvf.rollouts import PolicyLibrary
from anew.errors import AnewError

__all__ = ["PRESETS", "RUN_DEFAULTS", "PDVFAgent", "PDVFConfig", "default_preset"]


def _check_spaces(spec: AgentSpec) -> None:
    if spec.is_team:
        raise AnewError(
            "PD-VF controls one agent, not a team; use a single-agent env such as anew/Spaceship-v0"
        )
    if not isinstance(spec.action_space, gym.spaces.Box) or not isinstance(
        spec.observation_space, gym.spaces.Box
    ):
        raise AnewError("PD-VF needs Box observations and continuous (Box) actions, e.g. anew/Spaceship-v0")
    if len(spec.observation_space.shape) != 1:
        raise AnewError(f"PD-VF needs flat vector observations, got shape {spec.observation_space.shape}")


class PDVFAgent(AgentBase):
    """PD-VF (``method="pdvf"``) or one of its PPO baselines; all learning happens in ``phases``."""

    def __init__(self, config: PDVFConfig, spec: AgentSpec):
        check_pdvf_config(config)
        _check_spaces(spec)
        self.config, self.spec = config, spec
        state_size = int(spec.observation_space.shape[0])
        action_size = int(np.prod(spec.action_space.shape))
        self.low = np.asarray(spec.action_space.low, np.float32)
        self.high = np.asarray(spec.action_space.high, np.float32)
        generator = torch.Generator().manual_seed(spec.seed)  # the networks depend on the seed alone
        self.models = PDVFModels(
            state_size,
            action_size,
            config.dynamics_size,
            config.policy_size,
            config.d_model,
            config.dropout,
            config.value_hidden,
            config.gaussian_dynamics,
            generator,
        )
        self.models.to(torch.device(spec.device))
        self.training = PolicyTraining(
            config.ppo_config(),
            spec,
            self.policy_jobs(),
            config.ppo_num_envs,
            spec.seed,
            config.learning_signal(),
            config.ppo_tries,
            config.ppo_retry_below,
            config.ppo_score_episodes,
            config.max_episode_steps,
        )
        self.pipeline = Pipeline(config, self.models, self.library, self.low, self.high, spec.seed)
        self._library: PolicyLibrary | None = None
        self._adapter: Adapter | None = None
        self._fallback_rng = np.random.default_rng(spec.seed)  # acting without an evaluation's generator

    def policy_jobs(self) -> list[PolicyJob]:
        """What phase ``policies`` trains: one policy per training env, or the baseline's one policy."""
        c = self.config
        if c.method == "ppoall":  # the same total steps as all of PD-VF's policies
            return [PolicyJob({"env_pool": list(c.train_envs)}, c.ppo_steps * len(c.train_envs))]
        if c.method == "ppoenv":
            return [PolicyJob({"env_index": c.target_env}, c.ppo_steps)]
        return [PolicyJob({"env_index": env}, c.ppo_steps) for env in c.train_envs]

    def library(self) -> PolicyLibrary:
        """The trained policies, acting deterministically (rebuilt when more have finished)."""
        if self._library is None or len(self._library) != len(self.training.finished):
            self._library = PolicyLibrary(self.training.policies(), self.training.probe_indices())
        return self._library

    # ------------------------------------------------------------------ the run contract
    def phases(self, make_envs: EnvFactory) -> tuple[Phase, ...]:
        policies = Phase(
            "policies",
            self.training.units,
            lambda unit: self.training.work(unit, make_envs),
            log_prefix="ppo/",
        )
        if self.config.method != "pdvf":
            return (policies,)
        return (policies, *self.pipeline.phases(make_envs))

    def evaluation_envs(self) -> list[dict[str, Any]]:
        if self.config.method == "ppoenv":
            return [{"env_index": self.config.target_env}]
        return [{"env_index": env} for env in self.config.test_envs]

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        if self.config.method != "pdvf":
            return
        mask = np.asarray(mask, dtype=bool)
        if (
            self._adapter is None or mask.all()
        ):  # a new batch of episodes: act with the models as they are now
            self._adapter = self.pipeline.adapter()
        self._adapter.start(mask)

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Deterministic in both modes (all learning is in the phases); PD-VF adapts per episode (module doc)."""
        if len(self.training.finished) == 0:
            raise AnewError("PD-VF has no trained policy yet; run its phases first (anew train pdvf)")
        obs = np.asarray(obs, np.float32)
        if self.config.method != "pdvf":
            return self.library().act(np.zeros(len(obs), dtype=np.int64), obs)
        if self._adapter is None:
            self.episode_start(np.ones(len(obs), dtype=bool))
        assert self._adapter is not None
        return self._adapter.act(obs, rng if rng is not None else self._fallback_rng)

    def observe(self, batch: TransitionBatch) -> None:
        """Nothing: PD-VF learns in its phases, not from the runner's loop."""

    def update(self) -> dict[str, float]:
        return {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"training": self.training.state_dict(), "pipeline": self.pipeline.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.training.load_state_dict(state["training"])
        self.pipeline.load_state_dict(state["pipeline"])
        self._library, self._adapter = None, None
