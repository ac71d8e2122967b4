"""The small shared vocabulary of anew: the agent spec, transition batches and the agent protocol.

Everything else (buffers, losses, runners) speaks in these terms, the way Acme's ``core.py`` does.
An agent is built as ``AgentClass(config, spec)``; the runner then loops
``episode_start`` (where episodes began) -> ``act`` -> env.step -> ``observe`` -> ``update``.
Evaluation calls ``episode_start`` and ``act(explore=False, rng=its own generator)`` and nothing else, so
it never changes what training does next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class AgentSpec:
    """What an agent is built for: one slot's spaces, the batch of envs, seed, device and, for teams,
    the agent slots it controls (observations then carry an agent axis after the env axis)."""

    observation_space: gym.Space
    action_space: gym.Space
    num_envs: int = 1
    seed: int = 0
    device: str = "cpu"
    agent_ids: tuple[str, ...] = ()
    """Team slots (``car_0 …``) of a multi-agent env; empty for a single-agent env."""
    env_facts: dict[str, Any] = field(default_factory=dict)
    """What a world declares about its observations for agents that need it, since agents never import envs
    (the SOM games: ``swap_index``, the channel order that swaps "self" and "other", and ``num_goals``, the
    goal one-hot planes at the end of the channels)."""
    load_agent: Callable[[str], Any] | None = None
    """How to load a saved agent (a run folder or a checkpoint) ready to act, for agents that play against one
    (SOM's ``--opponent PATH``); the runner provides it, since agents never import the runner."""

    @property
    def is_team(self) -> bool:
        return bool(self.agent_ids)

    @property
    def num_agents(self) -> int:
        return len(self.agent_ids) or 1


@dataclass
class TransitionBatch:
    """One step of N parallel envs; every array has a leading env axis of length N.

    ``terminated`` ends bootstrapping (a true terminal state); ``truncated`` (a time limit) does not.
    ``next_obs`` is the observation that follows ``obs`` in the same episode, also when the
    episode just ended (the vector env's final observation, never the reset one).

    Team envs add an agent axis after the env axis to ``obs``, ``action``, ``reward`` and ``next_obs``
    (``terminated``/``truncated`` stay per env), ``active`` ``[envs, agents]`` says which slots were on the
    board at ``obs``, and ``extras`` holds what else the env reported (``to_move``, true goals, …).
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: np.ndarray
    active: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_envs(self) -> int:
        return int(self.reward.shape[0])


@dataclass
class Phase:
    """A stage of a run that takes no env steps (offline pre-training, a pipeline's stage): ``units`` calls of
    ``work(unit) -> scalars``, logged under ``log_prefix`` against the unit count. After the last unit,
    ``evaluate_at_end`` adds an evaluation, then ``finish`` runs (e.g. the switch to online learning). Every
    checkpoint records the phase and the units done, so a killed run resumes inside it: what ``work`` changes
    must live in the agent's ``state_dict``."""

    name: str
    units: int
    work: Callable[[int], dict[str, float]]
    finish: Callable[[], None] | None = None
    log_prefix: str = ""
    evaluate_at_end: bool = False


EnvFactory = Callable[..., Any]
"""``make_envs(num_envs, seed, **env_options) -> vector env`` of the run's env id: how a phased agent (PD-VF)
steps envs without importing them (the runner builds them)."""


@runtime_checkable
class Agent(Protocol):
    """Acts and learns; never owns the environment loop (the runner does)."""

    replay: Any
    """The replay buffer the runner checkpoints beside the weights (None for on-policy agents)."""

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        """Episodes (re)started in the envs where ``mask`` is true: reset per-episode state there. Training
        (``explore=True``) and evaluation (``explore=False``) keep their per-episode state apart, so an
        evaluation never changes what training does next."""

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Actions for a batch of observations (leading env axis). ``rng``, when given, is the only source
        of randomness (evaluation passes its own); ``info`` is the env's info for ``obs`` (team masks)."""

    def observe(self, batch: TransitionBatch) -> None:
        """Record one step of every env (the agent counts its own steps)."""

    def update(self) -> dict[str, float]:
        """Take the gradient steps that are due now; return scalars to log (empty if none)."""

    def diagnostics(self) -> dict[str, float]:
        """Scalars worth logging at any time (``charts/epsilon``); empty if none."""

    def env_options(self) -> dict[str, Any]:
        """Env options for training episodes that start now (a curriculum); empty if none."""

    def phases(self, make_envs: EnvFactory) -> tuple[Phase, ...]:
        """Stages to run before the env loop (a pipeline's stages); empty for most agents."""

    def evaluation_envs(self) -> list[dict[str, Any]]:
        """Env options of each evaluation entry (PD-VF: one per test environment); ``[{}]`` for one entry."""

    def evaluation_measures(self) -> dict[str, float]:
        """What the agent measured of itself over the evaluation that just ended (SOM: goal-inference accuracy
        per quarter of the episode), merged into that evaluation's ``extra``; empty if none. The evaluation
        calls it once, after its last step."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, target net, counters, RNG states."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class AgentBase:
    """Defaults for the optional parts of :class:`Agent`: no replay, no per-episode state, no diagnostics."""

    replay: Any = None

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        pass

    def env_options(self) -> dict[str, Any]:
        """Env options for training episodes that start now (a curriculum, e.g. ``p_arrive``); empty if none."""
        return {}

    def phases(self, make_envs: EnvFactory) -> tuple[Phase, ...]:
        return ()

    def evaluation_envs(self) -> list[dict[str, Any]]:
        return [{}]

    def diagnostics(self) -> dict[str, float]:
        return {}

    def evaluation_measures(self) -> dict[str, float]:
        return {}
