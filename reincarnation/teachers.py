"""Teachers: frozen Q-functions with their own preprocessing, and the transitions they come with.

A :class:`Teacher` answers ``q_values(obs)`` (a float tensor (B, A), no gradient) and ``act(obs, explore)``
on observations in the *student's* layout, i.e. what anew's envs return (Atari: uint8 (B, 4, 84, 84),
channels first). Whatever the teacher needs on top of that is its own preprocessing: a Dopamine network
wants the stack axis last (B, 84, 84, 4) and divides by 255 inside; an anew network takes the observation
as it is. Distributional teachers answer with expected Q-values (E[Z]).

Sources:

* :meth:`Teacher.from_agent` - an anew agent in memory (its online network, copied and frozen);
* :meth:`Teacher.from_dopamine` - a Dopamine JAX DQN / Rainbow ``ckpt.N`` (via :func:`load_dopamine_network`);
* an anew checkpoint (a run directory or its ``checkpoints/step_*``): ``anew.runners.teacher_setup.load_teacher``
  rebuilds the agent with the runner's registry and wraps it with :meth:`Teacher.from_agent` (this package
  does not import the runners).

Teacher data is anything with ``sample(batch_size) -> ReplaySample``: anew's ``ReplayBuffer`` itself, or
the adapters here over Dopamine's legacy and 4.x JAX replay (sampled exactly as Dopamine samples them).
:func:`collect_teacher_replay` fills a ``ReplayBuffer`` by rolling the teacher out when no replay is given.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from anew.agents.dqn import DQNAgent
from anew.agents.losses import epsilon_greedy
from anew.agents.replay import ReplayBuffer, ReplaySample
from anew.agents.replay_files import saved_layout
from anew.errors import AnewError
from anew.reincarnation.formats.dopamine_checkpoint import (
    SENTINEL_PREFIX,
    DopamineNetworkOutput,
    load_dopamine_network,
)
from anew.reincarnation.formats.dopamine_jax_replay import DopamineJaxReplay
from anew.reincarnation.formats.dopamine_replay import DopamineReplay
from anew.reincarnation.formats.dopamine_replay_files import complete_suffixes


def to_dopamine_layout(obs: torch.Tensor) -> torch.Tensor:
    """anew's channels-first frame stacks (B, k, H, W) as Dopamine's stack-last states (B, H, W, k)."""
    if obs.ndim != 4:
        raise AnewError(f"a Dopamine teacher needs image stacks (B, k, 84, 84), got shape {tuple(obs.shape)}")
    return obs.permute(0, 2, 3, 1)


class Teacher:
    """A frozen Q-function that acts and scores observations in the student's layout.

    Args:
        network: maps preprocessed observations to Q-values (B, A), or to an object with ``q_values``
            (Dopamine's output types).
        num_actions: size of the discrete action space.
        preprocess: the teacher's own input transform (e.g. :func:`to_dopamine_layout`); None for none.
        eval_epsilon: exploration when acting with ``explore=False`` (Dopamine's evaluation 0.001).
        explore_epsilon: exploration when acting with ``explore=True`` (used to collect teacher data).
        description: where the teacher came from (logged in the run's config).
    """

    def __init__(
        self,
        network: nn.Module,
        num_actions: int,
        *,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        eval_epsilon: float = 0.001,
        explore_epsilon: float = 0.01,
        device: str | torch.device = "cpu",
        seed: int = 0,
        description: str = "",
    ):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval().requires_grad_(False)
        self.num_actions = int(num_actions)
        self.preprocess = preprocess
        self.eval_epsilon = float(eval_epsilon)
        self.explore_epsilon = float(explore_epsilon)
        self.description = description
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"Teacher({self.description or type(self.network).__name__}, actions={self.num_actions})"

    @torch.no_grad()
    def q_values(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Q-values (B, A) as float32 on the teacher's device; never carries a gradient."""
        tensor = torch.as_tensor(obs, device=self.device)
        if self.preprocess is not None:
            tensor = self.preprocess(tensor)
        output = self.network(tensor)
        q = output.q_values if isinstance(output, DopamineNetworkOutput) else output
        if q.ndim != 2 or q.shape[1] != self.num_actions:
            raise AnewError(
                f"the teacher answered with shape {tuple(q.shape)}, expected (batch, {self.num_actions})"
            )
        return q.float()

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        """A teacher keeps no per-episode state (so evaluation can play it like an agent)."""

    def act(
        self,
        obs: np.ndarray,
        explore: bool = False,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Greedy actions with epsilon-random ones mixed in (``explore_epsilon`` or ``eval_epsilon``)."""
        epsilon = self.explore_epsilon if explore else self.eval_epsilon
        return epsilon_greedy(
            self.q_values(obs).argmax(dim=1).cpu().numpy(), epsilon, self.num_actions, rng or self.rng
        )

    # ------------------------------------------------------------------ sources
    @classmethod
    def from_agent(cls, agent: Any, *, seed: int = 0, description: str = "", **options: Any) -> Teacher:
        """A snapshot of an anew value-based agent (DQN, Rainbow): its online network, copied and frozen."""
        if not isinstance(agent, DQNAgent):
            raise AnewError(
                f"{type(agent).__name__} has no Q-network; a teacher must be a value-based agent such as "
                "dqn or rainbow"
            )
        options.setdefault("eval_epsilon", agent.config.eval_epsilon)
        options.setdefault("explore_epsilon", agent.config.epsilon_end)
        options.setdefault("device", agent.device)
        return cls(
            copy.deepcopy(agent.online),
            agent.num_actions,
            seed=seed,
            description=description or f"anew {type(agent).__name__}",
            **options,
        )

    @classmethod
    def from_dopamine(
        cls,
        checkpoint_dir: str | os.PathLike,
        kind: str = "dqn",
        iteration: int | None = None,
        *,
        seed: int = 0,
        **options: Any,
    ) -> Teacher:
        """A Dopamine JAX DQN or Rainbow checkpoint, fed anew observations turned stack-last."""
        network = load_dopamine_network(checkpoint_dir, iteration, kind)  # type: ignore[arg-type]
        num_actions = network.network.num_actions
        return cls(
            network,
            num_actions,
            preprocess=to_dopamine_layout,
            seed=seed,
            description=f"Dopamine {kind} checkpoint {checkpoint_dir}",
            **options,
        )


def is_dopamine_checkpoint(path: str | os.PathLike) -> bool:
    """True for a folder with Dopamine ``ckpt.N`` sentinels (itself or its ``checkpoints/``)."""
    path = Path(path)
    return path.is_dir() and any(
        any(folder.glob(SENTINEL_PREFIX + "*")) for folder in (path, path / "checkpoints") if folder.is_dir()
    )


# ---------------------------------------------------------------------- teacher data
class TransitionSource(Protocol):
    """Anything the offline phase can draw training batches from, with the generator it samples with."""

    rng: np.random.Generator

    def sample(self, batch_size: int) -> ReplaySample: ...


def _sample(
    obs: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    discount: np.ndarray,
    next_obs: np.ndarray,
    indices: np.ndarray,
) -> ReplaySample:
    return ReplaySample(
        obs=obs,
        action=action.astype(np.int64),
        reward=reward.astype(np.float32),
        discount=discount.astype(np.float32),
        next_obs=next_obs,
        indices=indices.astype(np.int64),
        weights=np.ones(len(action), dtype=np.float32),
    )


class DopamineReplaySource:
    """Dopamine's legacy replay as training batches: Dopamine's exact sampler, states channels first.

    The bootstrap discount is ``gamma ** n`` and 0 after a terminal, as Dopamine's agents use it.
    """

    def __init__(self, replay: DopamineReplay):
        self.replay = replay
        self.rng = replay.rng
        self.bootstrap = replay.gamma**replay.update_horizon

    def sample(self, batch_size: int) -> ReplaySample:
        batch = self.replay.sample_transition_batch(batch_size, channels_first=True)
        discount = self.bootstrap * (1.0 - batch["terminal"].astype(np.float64))
        return _sample(
            batch["state"], batch["action"], batch["reward"], discount, batch["next_state"], batch["indices"]
        )


class DopamineJaxReplaySource:
    """Dopamine 4.x JAX replay as training batches. Its rewards are already n-step returns; the files do not
    record n, so pass the agent's ``update_horizon`` (1 for JAX DQN, 3 for Rainbow)."""

    def __init__(self, replay: DopamineJaxReplay, update_horizon: int, gamma: float = 0.99):
        self.replay = replay
        self.rng = replay.rng
        self.bootstrap = gamma**update_horizon

    def sample(self, batch_size: int) -> ReplaySample:
        batch = self.replay.sample(batch_size)
        discount = self.bootstrap * (1.0 - batch["is_terminal"].astype(np.float64))
        return _sample(
            np.ascontiguousarray(batch["state"].transpose(0, 3, 1, 2)),
            batch["action"],
            batch["reward"],
            discount,
            np.ascontiguousarray(batch["next_state"].transpose(0, 3, 1, 2)),
            batch["keys"],
        )


def load_anew_replay(directory: str | os.PathLike, n_step: int, gamma: float, seed: int = 0) -> ReplayBuffer:
    """A replay saved by anew (``manifest.json`` + ``.npy``), e.g. a checkpoint's ``replay/``, re-read with the
    student's n-step settings (n-step returns are computed when sampling, so any n works)."""
    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    layout = saved_layout(directory)
    (obs_dtype, _), (action_dtype, action_shape) = layout["obs"], layout["action"]
    buffer = ReplayBuffer(
        capacity=manifest["num_envs"] * manifest["rows_per_env"],
        num_envs=manifest["num_envs"],
        obs_shape=tuple(manifest["obs_shape"]),
        obs_dtype=obs_dtype,
        action_shape=action_shape[2:],
        action_dtype=action_dtype,
        frame_stack=manifest["frame_stack"],
        n_step=n_step,
        gamma=gamma,
        seed=seed,
    )
    buffer.load(directory)
    return buffer


def _is_anew_replay(directory: Path) -> bool:
    try:
        return json.loads((directory / "manifest.json").read_text()).get("format") == "anew-replay"
    except (OSError, ValueError, AttributeError):
        return False


def load_teacher_data(
    path: str | os.PathLike,
    *,
    n_step: int,
    gamma: float,
    seed: int = 0,
    dopamine_update_horizon: int | None = None,
) -> TransitionSource:
    """Teacher transitions from a folder: anew replay (``manifest.json``, or a checkpoint holding ``replay/``),
    Dopamine legacy replay (``$store$_*_ckpt.N.gz``) or Dopamine 4.x JAX replay (``checkpoint.msgpack``).

    Legacy Dopamine data is sampled with the student's n-step and gamma. 4.x JAX data stores finished n-step
    returns, so its n comes from ``dopamine_update_horizon`` (default: the student's n).
    """
    path = Path(path)
    if not path.exists():
        raise AnewError(
            f"teacher replay {path} does not exist; pass a replay folder or drop --teacher-replay to "
            "collect teacher data by rolling the teacher out"
        )
    for candidate in (path, path / "replay"):
        if _is_anew_replay(candidate):
            return load_anew_replay(candidate, n_step, gamma, seed)
    for candidate in (path, path / "checkpoints", path / "replay_logs", path / "replay"):
        if candidate.is_dir() and complete_suffixes(candidate):
            return DopamineReplaySource(
                DopamineReplay(candidate, update_horizon=n_step, gamma=gamma, seed=seed)
            )
    if path.name == "checkpoint.msgpack" or any(path.rglob("checkpoint.msgpack")):
        replay = DopamineJaxReplay(path)
        return DopamineJaxReplaySource(replay, dopamine_update_horizon or n_step, gamma)
    raise AnewError(
        f"{path} holds no replay anew can read: expected an anew replay (manifest.json), Dopamine "
        "legacy files ($store$_*_ckpt.N.gz) or a Dopamine 4.x replay (checkpoint.msgpack)"
    )


def replay_like(
    replay: ReplayBuffer,
    capacity: int,
    num_envs: int,
    seed: int = 0,
    storage_dir: str | os.PathLike | None = None,
) -> ReplayBuffer:
    """An empty uniform buffer storing what ``replay`` stores (shapes, frame stack, n-step, gamma);
    ``storage_dir`` memory-maps its observations (a 1M-step Atari teacher buffer is 7 GB)."""
    return ReplayBuffer(
        capacity=max(capacity, num_envs * (replay.frame_stack + replay.n_step + 2)),
        num_envs=num_envs,
        obs_shape=replay.obs_shape,
        obs_dtype=replay.obs.dtype,
        action_shape=replay.action.shape[2:],
        action_dtype=replay.action.dtype,
        frame_stack=replay.frame_stack,
        n_step=replay.n_step,
        gamma=replay.gamma,
        seed=seed,
        storage_dir=storage_dir,
    )


def collect_teacher_replay(
    teacher: Teacher,
    envs: gym.vector.VectorEnv,
    steps: int,
    replay: ReplayBuffer,
    seed: int = 0,
    reward_clip: float = 0.0,
) -> dict[str, float]:
    """Roll the teacher out (``act(explore=True)``) for ``steps`` agent steps into ``replay``.

    ``envs`` must auto-reset in Gymnasium's SAME_STEP mode (anew's vector envs do): a finished env's last
    observation comes in ``info["final_obs"]``. Rewards are clipped to ``[-reward_clip, reward_clip]`` for
    storage when ``reward_clip > 0`` (the student's setting). Returns episode statistics of the rollout.
    Its epsilon-random actions come from a generator seeded with ``seed``: the data depend on the seed
    alone, not on what the teacher did before (so a resumed run collects the same data again).
    """
    teacher_rng, teacher.rng = teacher.rng, np.random.default_rng([seed, 1])
    try:
        return _roll_out(teacher, envs, steps, replay, seed, reward_clip)
    finally:
        teacher.rng = teacher_rng


def _roll_out(
    teacher: Teacher,
    envs: gym.vector.VectorEnv,
    steps: int,
    replay: ReplayBuffer,
    seed: int,
    reward_clip: float,
) -> dict[str, float]:
    mode = envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if mode != gym.vector.AutoresetMode.SAME_STEP:
        raise AnewError(f"collecting teacher data needs a vector env with SAME_STEP autoreset, got {mode}")
    obs, _ = envs.reset(seed=seed)
    running = np.zeros(envs.num_envs)
    returns: list[float] = []
    for _ in range(math.ceil(steps / envs.num_envs)):
        actions = teacher.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = envs.step(actions)
        done = terminated | truncated
        final = next_obs
        if done.any():
            final = next_obs.copy()
            for i in np.flatnonzero(done):
                final[i] = info["final_obs"][i]
        stored = np.clip(reward, -reward_clip, reward_clip) if reward_clip > 0 else reward
        replay.add(obs, actions, stored, terminated, truncated, final)
        running += reward
        for i in np.flatnonzero(done):
            returns.append(float(running[i]))
            running[i] = 0.0
        obs = next_obs
    return {
        "episodes": float(len(returns)),
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
    }
