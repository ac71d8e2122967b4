"""Multi-agent worlds: one batched simulation, two faces.

Every multi-agent game of anew is a :class:`TeamSim`: ``B`` games whose state is arrays with a leading
batch axis, stepped all at once (no Python loop over games, cars or players inside ``step``). Agent slots
are fixed per game (``car_0 … car_{N-1}``); the ``active`` mask says which slots are on the board, and
turn-based games add a ``to_move`` mask (only the mover's action is applied).

Over a sim sit two faces:

- :class:`TeamVectorEnv` — what anew's runner trains on: observations ``[envs, agents, …]``, per-agent
  rewards ``[envs, agents]``, ``terminated``/``truncated`` per game, Gymnasium's SAME_STEP autoreset
  (``info["final_obs"]``; the finished games' own metrics in ``info["final_metrics"]``), exact
  ``state_dict``/``load_state_dict`` for resume.
- ``anew.envs.parallel_view.ParallelView`` — a PettingZoo ``ParallelEnv`` over a sim of one game, for
  everyone else (``make_parallel``). PettingZoo is only imported there.

``PARALLEL_ENVS`` is the registry PettingZoo does not have: id -> where the sim lives and its defaults.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from anew.errors import AnewError


class TeamSim:
    """A batch of ``num_envs`` games of one multi-agent world (subclass and fill in the five methods).

    Subclasses set ``agents`` (slot names), ``observation_space`` and ``action_space`` (one slot's) and
    ``max_steps`` in ``__init__``, keep all state in arrays with a leading batch axis, and draw every random
    number from ``self.rng`` so that ``state_dict`` (arrays + generator state) restores a game exactly.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    agents: tuple[str, ...]
    observation_space: gym.Space
    action_space: gym.Space
    max_steps: int
    shared_reward: bool = False
    """True when every slot receives the same team reward (levers, coin game): the team return is then that
    reward, not the sum over slots."""

    def __init__(self, num_envs: int, seed: int | None = None):
        if num_envs < 1:
            raise AnewError(f"a team sim needs at least one game (got num_envs={num_envs})")
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)

    # ---- to implement
    def reset(self, mask: np.ndarray | None = None, options: dict[str, Any] | None = None) -> None:
        """Start new episodes in the games where ``mask`` is true (all games when None)."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply ``actions[B, A]`` (ignored for slots that are inactive or not to move);
        return ``(rewards[B, A], terminated[B], truncated[B])``."""
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        """Observations ``[B, A, *observation_space.shape]`` (zeros for inactive slots)."""
        raise NotImplementedError

    def active(self) -> np.ndarray:
        """``[B, A]`` bool: which slots are on the board now."""
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array of the game state, keyed by the attribute that holds it (``load_state_dict`` sets the
        attributes back); the generator state is saved by :meth:`state_dict`."""
        raise NotImplementedError

    # ---- optional, with defaults
    def to_move(self) -> np.ndarray:
        """``[B, A]`` bool: whose action is applied at the next step (all active slots unless turn-based)."""
        return self.active()

    def slot_info(self) -> dict[str, np.ndarray]:
        """Per-slot arrays ``[B, A, …]`` exposed in ``info`` (e.g. true goals), besides active/to_move."""
        return {}

    def episode_metrics(self) -> dict[str, np.ndarray]:
        """Per-game measures ``[B]`` of the episode so far (e.g. ``success``); read at episode end."""
        return {}

    def agent_facts(self) -> dict[str, Any]:
        """Facts about the observations that agents may need and cannot import (see ``AgentSpec.env_facts``)."""
        return {}

    def team_reward(self, rewards: np.ndarray) -> np.ndarray:
        """``[B]`` team reward of one step: the shared reward, or the sum over slots."""
        return (
            rewards[:, 0].astype(np.float64) if self.shared_reward else rewards.sum(axis=1, dtype=np.float64)
        )

    def render(self, index: int = 0) -> np.ndarray:
        """An RGB image ``[H, W, 3]`` uint8 of game ``index``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            "arrays": {k: np.array(v, copy=True) for k, v in self.state_arrays().items()},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state["arrays"].items():
            current = getattr(self, name)
            setattr(self, name, np.asarray(value, dtype=current.dtype).reshape(current.shape))
        self.rng.bit_generator.state = state["rng"]

    def info(self) -> dict[str, np.ndarray]:
        return {"active": self.active(), "to_move": self.to_move(), **self.slot_info()}


class TeamVectorEnv:
    """The runner's face of a :class:`TeamSim`: a vector env over games with an agent axis.

    ``step`` follows Gymnasium's SAME_STEP autoreset: finished games are reset inside the step, their last
    observations are in ``info["final_obs"]`` (rows where ``info["_final_obs"]``), and their episode metrics
    in ``info["final_metrics"]`` (arrays ``[B]``, meaningful on those rows).
    """

    def __init__(self, sim: TeamSim, seed: int | None = None):
        self.sim = sim
        self.num_envs = sim.num_envs
        self.agents = sim.agents
        self.single_observation_space = sim.observation_space
        self.single_action_space = sim.action_space
        self.metadata = sim.metadata
        self.seed = seed
        self.agent_facts = sim.agent_facts()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.sim.rng = np.random.default_rng(seed)
        self.sim.reset(None, options)
        return self.sim.observe(), self.sim.info()

    def set_options(self, options: dict[str, Any]) -> None:
        """Options applied at every later episode start (e.g. a curriculum's ``p_arrive``)."""
        setter = getattr(self.sim, "set_options", None)
        if setter is None:
            raise AnewError(f"{type(self.sim).__name__} takes no options between episodes")
        setter(**options)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        rewards, terminated, truncated = self.sim.step(np.asarray(actions))
        obs = self.sim.observe()
        done = terminated | truncated
        info: dict[str, Any] = {"team_reward": self.sim.team_reward(rewards)}
        if done.any():
            info["final_obs"], info["_final_obs"] = obs.copy(), done
            info["final_metrics"] = {k: np.array(v, copy=True) for k, v in self.sim.episode_metrics().items()}
            self.sim.reset(done)
            obs = self.sim.observe()
        info.update(self.sim.info())
        return obs, rewards, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        state = self.sim.state_dict()
        return {"arrays": {k: v.tolist() for k, v in state["arrays"].items()}, "rng": state["rng"]}

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        self.sim.load_state_dict(state)
        return self.sim.observe()

    def render(self) -> np.ndarray:
        return self.sim.render(0)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ParallelEnvSpec:
    """Where a multi-agent world lives and the options its id fixes."""

    module: str
    sim_class: str
    kwargs: dict[str, Any] = field(default_factory=dict)


PARALLEL_ENVS: dict[str, ParallelEnvSpec] = {
    "anew/TrafficJunction-easy-v0": ParallelEnvSpec(
        "anew.envs.traffic_junction", "TrafficJunctionSim", {"difficulty": "easy"}
    ),
    "anew/TrafficJunction-medium-v0": ParallelEnvSpec(
        "anew.envs.traffic_junction", "TrafficJunctionSim", {"difficulty": "medium"}
    ),
    "anew/TrafficJunction-hard-v0": ParallelEnvSpec(
        "anew.envs.traffic_junction", "TrafficJunctionSim", {"difficulty": "hard"}
    ),
    "anew/Levers-v0": ParallelEnvSpec("anew.envs.levers", "LeversSim"),
    "anew/Combat-v0": ParallelEnvSpec("anew.envs.combat", "CombatSim"),
    "anew/CoinGame-SOM-v0": ParallelEnvSpec("anew.envs.coin_game", "CoinGameSim"),
    "anew/RecipeGame-SOM-v0": ParallelEnvSpec("anew.envs.recipe_game", "RecipeGameSim"),
    "anew/DoorGame-SOM-v0": ParallelEnvSpec("anew.envs.door_game", "DoorGameSim"),
}


def parallel_env_ids() -> list[str]:
    """The multi-agent ids whose module is part of this build."""
    return [
        env_id for env_id, spec in PARALLEL_ENVS.items() if importlib.util.find_spec(spec.module) is not None
    ]


def is_multiagent(env_id: str) -> bool:
    return env_id in PARALLEL_ENVS


def _sim_class(env_id: str) -> tuple[type[TeamSim], dict[str, Any]]:
    if env_id not in PARALLEL_ENVS or env_id not in parallel_env_ids():
        close = difflib.get_close_matches(env_id, parallel_env_ids(), n=3)
        hint = (
            f" Did you mean {' or '.join(close)}?"
            if close
            else " Run `anew envs --filter anew/` to list them."
        )
        raise AnewError(f"unknown multi-agent env id {env_id!r}.{hint}")
    spec = PARALLEL_ENVS[env_id]
    return getattr(importlib.import_module(spec.module), spec.sim_class), dict(spec.kwargs)


def make_team_sim(env_id: str, num_envs: int, seed: int | None = None, **kwargs: Any) -> TeamSim:
    """The batched simulator of ``env_id`` with ``num_envs`` games; ``kwargs`` override the id's options."""
    cls, options = _sim_class(env_id)
    options.update(kwargs)
    try:
        return cls(num_envs=num_envs, seed=seed, **options)
    except TypeError as error:
        if not kwargs or "argument" not in str(error):
            raise
        flags = ", ".join("--" + key.replace("_", "-") for key in kwargs)
        raise AnewError(f"{env_id} does not accept {flags} ({error}); check the flag names") from error


def make_team_env(env_id: str, num_envs: int, seed: int | None = None, **kwargs: Any) -> TeamVectorEnv:
    """The runner's team view: ``num_envs`` games stepped at once."""
    return TeamVectorEnv(make_team_sim(env_id, num_envs, seed, **kwargs), seed)


def make_parallel(env_id: str, render_mode: str | None = None, **kwargs: Any):
    """A PettingZoo ``ParallelEnv`` of one game of ``env_id`` (needs the ``multiagent`` extra)."""
    try:
        from anew.envs.parallel_view import ParallelView
    except ModuleNotFoundError as error:
        raise AnewError(
            f"{env_id} as a PettingZoo env needs pettingzoo: pip install 'anew[multiagent]'"
        ) from error
    return ParallelView(make_team_sim(env_id, 1, None, **kwargs), render_mode=render_mode)
