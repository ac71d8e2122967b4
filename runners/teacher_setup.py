"""What a reincarnation run starts from: the teacher (an anew run or a Dopamine checkpoint), checked against the
student's env, a random policy for teacher-normalised scores, and the teacher's data (a replay, or rolled out)."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

from anew.envs import make_vector_env
from anew.errors import AnewError
from anew.reincarnation import (
    ReincarnationConfig,
    Teacher,
    collect_teacher_replay,
    is_dopamine_checkpoint,
    load_teacher_data,
)
from anew.reincarnation.teachers import replay_like
from anew.runners.loading import load_agent_from_checkpoint
from anew.runners.run_args import RunArgs


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class TeacherArgs:
    """Who teaches whom."""

    teacher: Annotated[str, tyro.conf.arg(help_behavior_hint="(required)")] = ""
    """The teacher: an anew run directory or checkpoints/step_* folder, or a Dopamine checkpoint folder."""
    teacher_replay: str = ""
    """Teacher transitions (anew replay, Dopamine legacy or 4.x replay); empty: roll the teacher out."""
    teacher_kind: Literal["dqn", "rainbow"] = "dqn"
    """Network of a Dopamine teacher checkpoint."""
    teacher_iteration: int = -1
    """Dopamine ckpt.N to read (-1: the latest complete one)."""
    agent: str = "dqn"
    """The student's agent (its flags below come from its preset)."""
    recipe: str = ""
    """Reincarnation sizes: dopamine (Atari, the paper's) or classic-control (CPU); empty: from the preset."""
    teacher_return: float | None = None
    """The teacher's mean evaluation return (default: measured over --teacher-eval-episodes)."""
    random_return: float | None = None
    """A uniformly random policy's mean return (default: measured over --teacher-eval-episodes)."""
    teacher_eval_episodes: int = 0
    """Episodes to measure the teacher's and the random return (0: --eval-episodes)."""


class RandomPolicy:
    """Uniform random actions (the low end of teacher-normalised scores)."""

    def __init__(self, num_actions: int, seed: int):
        self.num_actions, self.rng = num_actions, np.random.default_rng(seed)

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        pass

    def act(
        self,
        obs: np.ndarray,
        explore: bool = False,
        rng: np.random.Generator | None = None,
        info: dict[str, Any] | None = None,
    ) -> np.ndarray:
        return (rng or self.rng).integers(0, self.num_actions, size=len(obs))


def load_teacher(
    path: str | os.PathLike,
    kind: str = "dqn",
    iteration: int | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> tuple[Teacher, dict[str, Any]]:
    """A :class:`Teacher` from an anew run directory / checkpoint or a Dopamine checkpoint folder, and what is
    known about it (``source``, ``env_id`` for anew teachers)."""
    path = Path(path)
    if not path.exists():
        raise AnewError(
            f"teacher {path} does not exist; pass an anew run directory or checkpoint, or a Dopamine "
            "checkpoints folder"
        )
    if is_dopamine_checkpoint(path):
        try:
            teacher = Teacher.from_dopamine(path, kind, iteration, device=device, seed=seed)
        except AnewError as error:  # the library names its keyword (kind='rainbow'); here it is a flag
            raise AnewError(re.sub(r"kind='(\w+)'", r"--teacher-kind \1", str(error))) from None
        return teacher, {"source": "dopamine", "path": str(path), "kind": kind, "iteration": iteration}
    try:
        agent, runner_state, checkpoint = load_agent_from_checkpoint(path)
    except AnewError as error:
        raise AnewError(
            f"{error}. A teacher is an anew run directory, an anew checkpoints/step_* folder or a "
            "Dopamine checkpoints folder (ckpt.N with sentinel_checkpoint_complete.N)"
        ) from None
    teacher = Teacher.from_agent(
        agent, seed=seed, device=device, description=f"anew {runner_state['agent']} checkpoint {checkpoint}"
    )
    return teacher, {
        "source": "anew",
        "path": str(checkpoint),
        "agent": runner_state["agent"],
        "env_id": runner_state["env_id"],
    }


def check_teacher_fits(teacher: Teacher, action_space: Any, obs: np.ndarray, env_id: str) -> None:
    if teacher.num_actions != int(action_space.n):
        raise AnewError(
            f"the teacher has {teacher.num_actions} actions but {env_id} has {action_space.n}; "
            "pass the env the teacher was trained on"
        )
    try:
        teacher.q_values(obs[None])
    except (RuntimeError, ValueError) as error:
        raise AnewError(
            f"the teacher cannot read {env_id}'s observations of shape {obs.shape} "
            f"({str(error).splitlines()[0]}); pass the env the teacher was trained on"
        ) from None


def check_reincarnation_config(config: ReincarnationConfig) -> None:
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise AnewError(f"--{field.name.replace('_', '-')} must not be negative (got {value})")
    if config.temperature <= 0:
        raise AnewError(f"--temperature must be positive (got {config.temperature})")
    if not 0 <= config.rehearsal_ratio <= 1 or not 0 <= config.teacher_epsilon <= 1:
        raise AnewError("--rehearsal-ratio and --teacher-epsilon must lie in [0, 1]")


def teacher_data_for(
    args: TeacherArgs, teacher: Teacher, agent: Any, run: RunArgs, config: ReincarnationConfig, message: Any
) -> Any:
    """Teacher transitions from --teacher-replay, else by rolling the teacher out (``teacher_steps``)."""
    replay = agent.replay
    if args.teacher_replay:
        return load_teacher_data(args.teacher_replay, n_step=replay.n_step, gamma=replay.gamma, seed=run.seed)
    if config.teacher_steps < 1:
        raise AnewError(
            "this method trains on teacher data: pass --teacher-replay or a positive --teacher-steps"
        )
    on_disk = agent.config.replay_on_disk  # the student's choice holds for the teacher data too
    data = replay_like(
        replay,
        config.teacher_steps + config.teacher_steps // 8,
        run.num_envs,
        seed=run.seed + 1,
        storage_dir=Path(on_disk) / "teacher_replay" if on_disk else None,
    )
    explore_epsilon, teacher.explore_epsilon = teacher.explore_epsilon, config.teacher_epsilon
    envs = make_vector_env(
        run.env_id, run.num_envs, run.seed + 20_000, run.env_protocol, True, env_kwargs=run.env_kwargs
    )
    stats = collect_teacher_replay(
        teacher,
        envs,
        config.teacher_steps,
        data,
        seed=run.seed + 20_000,
        reward_clip=float(agent.config.reward_clip),
    )
    envs.close()
    teacher.explore_epsilon = explore_epsilon
    episodes = int(stats["episodes"])
    outcome = (
        f"{episodes} episodes, mean return {stats['mean_return']:.2f}"
        if episodes
        else "no episode ended within them"
    )
    message(
        f"[teacher] collected {config.teacher_steps} steps ({outcome}) at epsilon {config.teacher_epsilon}"
    )
    if not data.can_sample(1):  # an n-step transition needs n steps after it (or an episode end)
        raise AnewError(
            f"the {config.teacher_steps} teacher steps hold no complete {replay.n_step}-step transition: "
            f"raise --teacher-steps (or lower --n-step)"
        )
    return data
