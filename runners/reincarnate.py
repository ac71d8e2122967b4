"""``anew reincarnate METHOD --teacher PATH [--teacher-replay DIR] --agent dqn --env-id ...``.

A reincarnation run is a normal run directory (config.json, metrics.jsonl, TensorBoard, checkpoints,
eval.json) made by the same :class:`~anew.runners.train.Trainer`, in two phases:

1. **offline** (methods that pre-train: qdagger, pretrain, rehearsal, dqfd): gradient steps on teacher data
   with no env interaction, so the run's step counter stays at 0. Scalars go to ``offline/*`` indexed by
   gradient step; the phase ends with an evaluation at step 0 (``extra.phase = "offline"``).
2. **online**: ``Trainer.train()`` with the student as the agent. After every evaluation the student is
   weaned from the teacher (``extra`` of each evaluation holds ``teacher_return``, ``random_return``,
   ``teacher_normalized_score``, ``distill_coeff`` and the learning rate), so ``anew report --normalize
   teacher`` reads the runs directly.

The teacher is an anew run directory or checkpoint (``anew train``, ``anew convert``) or a Dopamine checkpoint
folder (``ckpt.N`` + sentinels). Teacher data comes from ``--teacher-replay`` (anew, Dopamine legacy or 4.x
replay) or is collected by rolling the teacher out for ``--teacher-steps``. Checkpoints hold the student as
its plain agent (``anew evaluate`` loads them) plus its reincarnation state, so ``anew resume`` continues the
run exactly in either phase (the offline phase is a :class:`~anew.agents.core.Phase` of the run: its
checkpoints record how many gradient steps are done).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from anew.agents.core import AgentSpec, Phase
from anew.envs import make_env
from anew.errors import AnewError
from anew.reincarnation import (
    METHODS,
    PRESETS,
    ReincarnatingStudent,
    ReincarnationConfig,
    Teacher,
    build_student,
    teacher_normalized_score,
)
from anew.runners import registry
from anew.runners.checkpoint import load_checkpoint
from anew.runners.evaluate import evaluate_agent
from anew.runners.loading import resolve_device, set_threads
from anew.runners.run_args import RunArgs, check_run_args, env_protocol_for
from anew.runners.run_dir import new_run_dir, seed_everything, write_json_atomic
from anew.runners.teacher_setup import (
    RandomPolicy,
    TeacherArgs,
    check_reincarnation_config,
    check_teacher_fits,
    load_teacher,
    say,
    teacher_data_for,
)
from anew.runners.train import Trainer


def offline_phase(trainer: Trainer, student: ReincarnatingStudent, config: ReincarnationConfig) -> Phase:
    """Phase 1: gradient steps on teacher data. No env steps happen, so scalars are logged as ``offline/*``
    against the gradient step; the phase ends with the switch to online learning and an evaluation at step 0."""
    run = trainer.run

    def work(unit: int) -> dict[str, float]:
        metrics = student.offline_update()
        done = unit + 1
        if (
            config.offline_eval_every
            and done % config.offline_eval_every == 0
            and done < config.offline_steps
        ):
            returns = evaluate_agent(
                student,
                run.env_id,
                run.eval_episodes,
                run.seed + done,
                run.env_protocol,
                env_kwargs=run.env_kwargs,
            ).returns
            trainer.logger.scalars(done, {"offline/eval_return": float(np.mean(returns))}, phase="offline")
            trainer.logger.message(f"[offline] {done} updates: mean return {np.mean(returns):.2f}")
        return metrics

    return Phase(
        "offline",
        config.offline_steps,
        work,
        finish=student.start_online,
        log_prefix="offline/",
        evaluate_at_end=True,
    )


def _student_parts(
    teacher_path: str,
    teacher_kind: str,
    iteration: int | None,
    agent_name: str,
    agent_config: Any,
    run: RunArgs,
) -> tuple[Teacher, dict[str, Any], Any]:
    """Seed, then load the teacher (and what is known of it) and build the student's agent for ``run``'s env."""
    device = resolve_device(run.device)
    seed_everything(run.seed)
    env = make_env(run.env_id, run.env_protocol, training=True, **run.env_kwargs)
    obs_space, action_space = env.observation_space, env.action_space
    probe, _ = env.reset(seed=run.seed)
    env.close()
    set_threads(run, obs_space.shape)
    teacher, teacher_info = load_teacher(teacher_path, teacher_kind, iteration, device, run.seed)
    check_teacher_fits(teacher, action_space, np.asarray(probe), run.env_id)
    spec = AgentSpec(obs_space, action_space, run.num_envs, run.seed, device)
    return teacher, teacher_info, registry.build_agent(agent_name, agent_config, spec)


def trainer_hooks(
    student: Any, method_name: str, agent_name: str, recorded: dict[str, Any]
) -> dict[str, Any]:
    """The Trainer's label, config section and after-evaluation hook: wean the student after each evaluation
    and record the teacher-normalised score (``scratch`` students are plain agents: nothing to wean)."""
    teacher_return, random_return = recorded["teacher_return"], recorded["random_return"]
    weaned = student if isinstance(student, ReincarnatingStudent) else None

    def after_evaluation(step: int, returns: list[float]) -> dict[str, Any]:
        score = teacher_normalized_score(float(np.mean(returns)), teacher_return, random_return)
        phase = weaned.phase if weaned is not None else "online"
        if weaned is not None and phase == "online":
            weaned.record_score(score, step)
        coefficient = weaned.coefficient if weaned is not None else 0.0
        extra = {
            "teacher_return": teacher_return,
            "random_return": random_return,
            "teacher_normalized_score": score,
            "phase": phase,
            "distill_coeff": coefficient,
            "eval/teacher_normalized_score": score,
            "charts/distill_coeff": coefficient,
        }
        if weaned is not None:
            extra.update(offline_steps=weaned.offline_updates, learning_rate=weaned.learning_rate)
        return extra

    return {
        "label": f"{method_name}-{agent_name}",
        "extra_config": {"reincarnation": recorded},
        "after_evaluation": after_evaluation,
    }


def phases_of(trainer: Trainer, student: Any) -> tuple[Phase, ...]:
    """The offline phase for students that pre-train (and are still in it), then the env loop."""
    if (
        isinstance(student, ReincarnatingStudent)
        and student.method.offline is not None
        and student.phase == "offline"
    ):
        return (offline_phase(trainer, student, student.config),)
    return ()


def reincarnate(
    method_name: str,
    args: TeacherArgs,
    run: RunArgs,
    agent_config: Any,
    config: ReincarnationConfig,
    run_dir: Path,
) -> Trainer:
    """Run ``method_name`` end to end into ``run_dir`` and return the finished trainer."""
    if method_name not in METHODS:
        raise AnewError(f"unknown method {method_name!r}: choose one of {', '.join(METHODS)}")
    if not args.teacher:
        raise AnewError(
            "name the teacher: --teacher RUN_DIR_OR_CHECKPOINT (anew) or a Dopamine checkpoints folder"
        )
    iteration = None if args.teacher_iteration < 0 else args.teacher_iteration
    teacher, teacher_info, agent = _student_parts(
        args.teacher, args.teacher_kind, iteration, args.agent, agent_config, run
    )

    if teacher_info.get("env_id") not in (None, run.env_id):
        say(f"note: the teacher was trained on {teacher_info['env_id']}, the student learns {run.env_id}")
    episodes = args.teacher_eval_episodes or run.eval_episodes
    eval_options: dict[str, Any] = {"env_protocol": run.env_protocol, "env_kwargs": run.env_kwargs}
    teacher_return = args.teacher_return
    if teacher_return is None:
        teacher_return = float(
            np.mean(evaluate_agent(teacher, run.env_id, episodes, run.seed + 30_000, **eval_options).returns)
        )
    random_return = args.random_return
    if random_return is None:
        random_policy = RandomPolicy(teacher.num_actions, run.seed)
        random_return = float(
            np.mean(
                evaluate_agent(random_policy, run.env_id, episodes, run.seed + 40_000, **eval_options).returns
            )
        )
    say(
        f"[teacher] {teacher.description}: mean return {teacher_return:.2f} (random policy {random_return:.2f})"
    )
    if teacher_return <= random_return:
        say(
            f"warning: the teacher scores no better than a random policy ({teacher_return:.2f} <= "
            f"{random_return:.2f}), so teacher-normalised scores and weaning mean nothing; check --teacher "
            "and --env-id (or pass --teacher-return and --random-return)"
        )

    method = METHODS[method_name]
    needs_data = method.offline is not None or method.rehearsal
    data = teacher_data_for(args, teacher, agent, run, config, say) if needs_data else None
    student = build_student(method_name, agent, teacher, config, data, run.num_envs)

    recorded = {
        "method": method_name,
        "teacher": teacher_info,
        "teacher_replay": args.teacher_replay,
        "teacher_return": teacher_return,
        "random_return": random_return,
        "recipe": args.recipe,
        "config": dataclasses.asdict(student.config if isinstance(student, ReincarnatingStudent) else config),
    }
    trainer = Trainer(
        args.agent,
        run,
        agent_config,
        run_dir,
        agent=student,
        **trainer_hooks(student, method_name, args.agent, recorded),
    )
    write_json_atomic(run_dir / "config.json", trainer.resolved_config())
    trainer.logger.message(f"run directory: {run_dir}")  # once it holds a run, above the progress bar
    trainer.train(phases_of(trainer, student))
    return trainer


def resume_reincarnation(
    run_dir: Path,
    checkpoint: Path,
    run: RunArgs,
    agent_name: str,
    agent_config: Any,
    recorded: dict[str, Any],
) -> Trainer:
    """Continue a reincarnation run from a checkpoint of either phase (``recorded``: config.json's
    ``reincarnation`` section): the same teacher (and teacher data, reloaded or collected again with the same
    seeds), the student's weaning state and learning rate, JSRL's roll-in and the teacher-data RNG come back
    with the agent, replay, RNGs and envs."""
    method_name, teacher_info = recorded["method"], recorded["teacher"]
    if not Path(teacher_info["path"]).exists():
        raise AnewError(
            f"the teacher {teacher_info['path']} of {run_dir} is gone (or the path is relative to "
            "another folder); run `anew resume` from the folder the run was started in"
        )
    config = registry.config_from_dict(ReincarnationConfig, recorded["config"])
    teacher, _, agent = _student_parts(
        teacher_info["path"],
        teacher_info.get("kind", "dqn"),
        teacher_info.get("iteration"),
        agent_name,
        agent_config,
        run,
    )
    online = load_checkpoint(checkpoint)[0].get("phase", "online") == "online"
    method = METHODS[method_name]
    data = None
    if method.rehearsal or (method.offline is not None and not online):
        teacher_args = TeacherArgs(
            teacher=teacher_info["path"], teacher_replay=recorded["teacher_replay"], agent=agent_name
        )
        data = teacher_data_for(teacher_args, teacher, agent, run, config, say)
    student = build_student(method_name, agent, teacher, config, data, run.num_envs, resuming_online=online)
    trainer = Trainer(
        agent_name,
        run,
        agent_config,
        run_dir,
        resume_from=checkpoint,
        agent=student,
        **trainer_hooks(student, method_name, agent_name, recorded),
    )
    trainer.train(phases_of(trainer, student))
    return trainer


# ---------------------------------------------------------------------- command line
def final_line(label: str, env_id: str, final: dict[str, Any], run_dir: Path) -> str:
    """The closing line: the final return and the teacher-normalised score where it means something."""
    extra = final["extra"]
    if extra["teacher_return"] > extra["random_return"]:
        score = f"teacher-normalised {extra['teacher_normalized_score']:.3f}"
    else:
        score = "no teacher-normalised score: the teacher is no better than random"
    mean = np.mean(final["returns"])
    return f"done: {label} on {env_id}, final mean eval return {mean:.2f} ({score}); run directory {run_dir}"


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def parse_reincarnate_args(argv: list[str]) -> tuple[str, TeacherArgs, RunArgs, Any, ReincarnationConfig]:
    """``METHOD [flags]`` -> (method, teacher args, run args, student config, reincarnation config)."""
    methods = ", ".join(METHODS)
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print(
                f"usage: anew reincarnate METHOD --teacher PATH [FLAGS]   methods: {methods}\n"
                "       anew reincarnate METHOD --help"
            )
            raise SystemExit(0)
        raise AnewError(f"name the method first: anew reincarnate METHOD --teacher PATH (methods: {methods})")
    method_name, rest = argv[0], argv[1:]
    if method_name not in METHODS:
        raise AnewError(f"unknown method {method_name!r}: choose one of {methods}")
    agent_name = _flag_value(rest, "--agent") or "dqn"
    env_id = _flag_value(rest, "--env-id") or RunArgs.env_id
    preset_name, preset = registry.preset_config(agent_name, _flag_value(rest, "--preset") or "", env_id)
    recipe = _flag_value(rest, "--recipe") or (
        "dopamine" if preset_name.startswith("dopamine") else "classic-control"
    )
    if recipe not in PRESETS:
        raise AnewError(f"unknown --recipe {recipe!r}: choose one of {', '.join(PRESETS)}")
    command = dataclasses.make_dataclass(
        "Reincarnate",
        [
            ("teacher", TeacherArgs),
            ("run", RunArgs),
            (
                "agent",
                Annotated[
                    registry.config_class(agent_name),
                    tyro.conf.arg(
                        help=f"the student's {agent_name} options (the defaults shown are the {preset_name} preset's)"
                    ),
                ],
            ),
            ("reincarnation", ReincarnationConfig),
        ],
    )
    default = command(
        teacher=TeacherArgs(agent=agent_name, recipe=recipe),
        run=RunArgs(env_id=env_id, preset=preset_name),
        agent=preset,
        reincarnation=dataclasses.replace(PRESETS[recipe]),
    )
    parsed = tyro.cli(
        command,
        args=rest,
        default=default,
        prog=f"anew reincarnate {method_name}",
        config=(tyro.conf.OmitArgPrefixes,),
        description=f"Reincarnate with {method_name}: student {agent_name} (preset {preset_name!r}), "
        f"recipe {recipe!r} set the defaults below.",
    )
    return method_name, parsed.teacher, parsed.run, parsed.agent, parsed.reincarnation


def main(argv: list[str] | None = None) -> int:
    method_name, args, run, agent_config, config = parse_reincarnate_args(
        list(sys.argv[1:] if argv is None else argv)
    )
    run = dataclasses.replace(run, env_protocol=env_protocol_for(run, run.preset))
    check_run_args(run)
    registry.check_config(agent_config)
    check_reincarnation_config(config)
    if args.teacher_eval_episodes < 0:
        raise AnewError(f"--teacher-eval-episodes must not be negative (got {args.teacher_eval_episodes})")
    label = f"{method_name}-{args.agent}"
    with new_run_dir(run, label) as run_dir:
        trainer = reincarnate(method_name, args, run, agent_config, config, run_dir)
    print(final_line(label, run.env_id, trainer.evaluations[-1], run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
