"""Building what a run acts in and with: its envs (single-agent vector envs or a team view), the agent spec,
and an agent rebuilt from a checkpoint for acting (``anew evaluate``, teachers)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from anew.agents.core import AgentSpec
from anew.envs import is_multiagent, make_team_env, make_vector_env
from anew.envs.multiagent import TeamVectorEnv
from anew.runners import registry
from anew.runners.checkpoint import load_checkpoint, resolve_checkpoint
from anew.runners.run_args import RunArgs


def make_run_envs(
    run: RunArgs,
    training: bool = True,
    num_envs: int | None = None,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``num_envs`` (default ``run.num_envs``) envs of ``run.env_id``: a Gymnasium vector env, or the team view
    of a multi-agent world (one game per env)."""
    count = run.num_envs if num_envs is None else num_envs
    seed = run.seed if seed is None else seed
    options = run.env_kwargs if env_kwargs is None else env_kwargs
    if is_multiagent(run.env_id):
        return make_team_env(run.env_id, count, seed, **options)
    backend = run.env_backend if training else "seeded"
    return make_vector_env(run.env_id, count, seed, run.env_protocol, training, backend, options)


def agent_spec(envs: Any, num_envs: int, seed: int, device: str) -> AgentSpec:
    if isinstance(envs, TeamVectorEnv):
        return AgentSpec(
            envs.single_observation_space,
            envs.single_action_space,
            num_envs,
            seed,
            device,
            envs.agents,
            envs.agent_facts,
            lambda path: load_agent_from_checkpoint(path)[0],
        )
    return AgentSpec(envs.single_observation_space, envs.single_action_space, num_envs, seed, device)


def resolve_device(device: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def set_threads(run: RunArgs, observation_shape: tuple[int, ...]) -> None:
    """One thread for small vector inputs (faster than several here), up to 4 for images."""
    torch.set_num_threads(run.threads or (1 if len(observation_shape) < 3 else min(os.cpu_count() or 1, 4)))


def load_agent_from_checkpoint(path: str | Path, threads: bool = False) -> tuple[Any, dict[str, Any], Path]:
    """Rebuild the agent saved in a checkpoint (or a run directory's newest one) for acting; ``threads``: also
    set torch's thread count by the run's rule (``set_threads``), as ``anew evaluate`` does."""
    checkpoint = resolve_checkpoint(path)
    runner_state, agent_state = load_checkpoint(checkpoint)
    name = runner_state["agent"]
    config = registry.config_from_dict(registry.config_class(name), runner_state["agent_config"])
    if "buffer_size" in runner_state["agent_config"]:  # acting only: no need for the run's replay memory
        config = dataclasses.replace(config, buffer_size=1_000, replay_on_disk="")
    run = RunArgs(**runner_state["run"])
    envs = make_run_envs(run, training=False, num_envs=1)
    if threads:
        set_threads(run, envs.single_observation_space.shape)
    agent = registry.build_agent(name, config, agent_spec(envs, 1, run.seed, "cpu"))
    envs.close()
    agent.load_state_dict(agent_state["agent"])
    return agent, runner_state, checkpoint
