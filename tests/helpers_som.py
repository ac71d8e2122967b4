"""SOM test helpers: a small SOM agent on a batch of games, the runner's loop, and an agent's saved bytes."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from anew.agents.core import AgentSpec, TransitionBatch
from anew.agents.som import SOMAgent, SOMConfig
from anew.envs.multiagent import TeamVectorEnv, make_team_env

GAMES = ["anew/CoinGame-SOM-v0", "anew/RecipeGame-SOM-v0", "anew/DoorGame-SOM-v0"]
SMALL = SOMConfig(torso="mlp", hidden=(16,), view_radius=2)


def build(
    env_id: str = GAMES[0],
    games: int = 4,
    seed: int = 0,
    load_agent: Callable[[str], Any] | None = None,
    **changes: Any,
) -> tuple[SOMAgent, TeamVectorEnv]:
    """A small SOM agent (``SMALL`` with ``changes``) and its games; ``load_agent`` loads saved opponents."""
    envs = make_team_env(env_id, games, seed=seed)
    spec = AgentSpec(envs.single_observation_space, envs.single_action_space, games, seed, "cpu", envs.agents,
                     envs.agent_facts, load_agent)  # fmt: skip
    return SOMAgent(dataclasses.replace(SMALL, **changes), spec), envs


def drive(agent: SOMAgent, envs: TeamVectorEnv, steps: int, seed: int = 0) -> list[np.ndarray]:
    """The runner's loop: episode starts, act, step, observe, update."""
    obs, info = envs.reset(seed=seed)
    starting, seen = np.ones(envs.num_envs, dtype=bool), []
    for _ in range(steps):
        agent.episode_start(starting, explore=True)
        actions = agent.act(obs, explore=True, info=info)
        seen.append(actions.copy())
        next_obs, reward, terminated, truncated, next_info = envs.step(actions)
        extras = {k: v for k, v in info.items() if k != "active"} | {"team_reward": next_info["team_reward"]}
        agent.observe(
            TransitionBatch(obs, actions, reward, terminated, truncated, next_obs, info["active"], extras)
        )
        agent.update()
        obs, info, starting = next_obs, next_info, terminated | truncated
    return seen


def state_bytes(agent: SOMAgent) -> bytes:
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    return buffer.getvalue()
