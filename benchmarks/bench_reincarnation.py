"""Reincarnating RL at CPU scale on MinAtar: a DQN teacher, students of another architecture, six methods.

The paper's claim (Agarwal et al., 2022, Fig. 1 and 6), scaled down: a DQN teacher trained on a MinAtar game
for ``--teacher-steps``; students with a different network (``--student-torso``, default the Impala-CNN the paper
reincarnates into, instead of the teacher's small MinAtar conv net; or ``--student-agent rainbow``) get
``--student-steps`` online steps. QDagger should
reach a teacher-normalised IQM >= 1.0 with its 95% interval above tabula rasa's; kickstarting, JSRL, offline
pre-training (CQL) and DQfD run in the same table. As in the paper the teacher data is the teacher's own last
replay buffer (the replay in its checkpoint), and every student is normalised with the same teacher and random
returns (measured once, over ``--norm-episodes`` episodes).

Everything goes through the CLI (``anew train``, ``anew reincarnate``, ``anew report``), so each run is a normal
run directory under ``--out``; rerunning skips finished runs.

    python benchmarks/bench_reincarnation.py --games Breakout --seeds 5 --workers 2

The defaults are the run recorded in BENCHMARKS.md (about an hour of wall time on two cores).

Prints the ``anew report --normalize teacher`` table (IQM, median, mean, optimality gap with 95% stratified
bootstrap intervals), writes its JSON and figures to ``--out/report``, then checks the claim.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

METHODS = ("scratch", "qdagger", "kickstarting", "jsrl", "pretrain", "dqfd")


@dataclass
class Args:
    games: tuple[str, ...] = ("Breakout",)
    """MinAtar games (anew/MinAtar-<Game>-v0)."""
    seeds: int = 5
    """Student seeds per method and game."""
    teacher_steps: int = 100_000
    """Agent steps of the DQN teacher (classic-control preset, MinAtar conv torso)."""
    student_steps: int = 15_000
    """Online agent steps of every student."""
    student_agent: str = "dqn"
    """The students' agent (dqn or rainbow)."""
    student_torso: str = "impala"
    """The students' torso (the teacher uses the MinAtar conv net)."""
    offline_steps: int = 5_000
    """Offline gradient steps of qdagger, pretrain and dqfd."""
    eval_episodes: int = 20
    """Episodes per student evaluation."""
    norm_episodes: int = 100
    """Episodes to measure the teacher's and the random policy's returns."""
    methods: tuple[str, ...] = METHODS
    """Methods to run (scratch is tabula rasa)."""
    workers: int = 2
    """Runs in parallel (one torch thread each)."""
    out: Path = Path("runs/bench_reincarnation")
    """Where run directories and the report go."""


def run_cli(argv: list[str], log: Path) -> float:
    """Run one anew command in a fresh process (one torch thread); returns its wall time."""
    start = time.monotonic()
    with open(log, "w") as handle:
        code = subprocess.call(
            [sys.executable, "-m", "anew.runners.cli", *argv], stdout=handle, stderr=handle
        )
    if code != 0:
        raise RuntimeError(f"anew {' '.join(argv)} failed (exit {code}); see {log}")
    return time.monotonic() - start


def env_id(game: str) -> str:
    return f"anew/MinAtar-{game}-v0"


def train_teacher(args: Args, game: str) -> Path:
    run_dir = args.out / game / "teacher"
    if not (run_dir / "eval.json").exists():
        every = args.teacher_steps // 10
        run_cli(
            [
                "train",
                "dqn",
                "--env-id",
                env_id(game),
                "--seed",
                "0",
                "--total-steps",
                str(args.teacher_steps),
                "--eval-every",
                str(every),
                "--eval-episodes",
                "20",
                "--checkpoint-every",
                str(every),
                "--keep-checkpoints",
                "11",
                "--threads",
                "1",
                "--run-dir",
                str(run_dir),
            ],
            args.out / f"{game}-teacher.log",
        )
    evaluations = json.loads((run_dir / "eval.json").read_text())["evaluations"]
    best = max(evaluations, key=lambda e: (np.mean(e["returns"]), e["step"]))
    return run_dir / "checkpoints" / f"step_{best['step']:012d}"


def normalisation(args: Args, game: str, teacher: Path) -> tuple[float, float]:
    """Teacher and random returns over ``norm_episodes`` episodes (the random one via a scratch run at step 0
    would cost a training run, so it is measured by evaluating a uniformly random policy directly)."""
    path = args.out / game / "normalisation.json"
    if not path.exists():
        out = args.out / game / "teacher_eval.json"
        run_cli(
            [
                "evaluate",
                str(teacher),
                "--episodes",
                str(args.norm_episodes),
                "--seed",
                "777",
                "--json-out",
                str(out),
            ],
            args.out / f"{game}-teacher-eval.log",
        )
        import gymnasium as gym

        from anew.envs import register_envs
        from anew.runners.evaluate import evaluate_agent
        from anew.runners.teacher_setup import RandomPolicy

        register_envs()
        actions = gym.make(env_id(game)).action_space.n
        random_returns, _ = evaluate_agent(
            RandomPolicy(int(actions), 0), env_id(game), args.norm_episodes, 778
        )
        path.write_text(
            json.dumps(
                {
                    "teacher_return": float(np.mean(json.loads(out.read_text())["returns"])),
                    "random_return": float(np.mean(random_returns)),
                }
            )
        )
    values = json.loads(path.read_text())
    return values["teacher_return"], values["random_return"]


def student_argv(
    args: Args, game: str, method: str, seed: int, teacher: Path, norm: tuple[float, float]
) -> list[str]:
    steps = args.student_steps
    argv = [
        "reincarnate",
        method,
        "--teacher",
        str(teacher),
        "--agent",
        args.student_agent,
        "--env-id",
        env_id(game),
        "--seed",
        str(seed),
        "--total-steps",
        str(steps),
        "--eval-every",
        str(steps // 10),
        "--eval-episodes",
        str(args.eval_episodes),
        "--checkpoint-every",
        str(steps),
        "--threads",
        "1",
        "--torso",
        args.student_torso,
        "--teacher-return",
        str(norm[0]),
        "--random-return",
        str(norm[1]),
        "--offline-steps",
        str(args.offline_steps),
        "--run-dir",
        str(args.out / game / f"{method}-{seed}"),
    ]
    if method in ("qdagger", "pretrain", "dqfd", "rehearsal"):
        argv += ["--teacher-replay", str(teacher)]  # the teacher's last replay buffer, as in the paper
    return argv


def main() -> int:
    args = tyro.cli(Args)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        teachers = dict(zip(args.games, pool.map(train_teacher, [args] * len(args.games), args.games)))
        norms = {game: normalisation(args, game, teachers[game]) for game in args.games}
        for game in args.games:
            print(
                f"{game}: teacher {teachers[game].name}, return {norms[game][0]:.2f}, random {norms[game][1]:.2f}"
            )
        jobs = []
        for game in args.games:
            for method in args.methods:
                for seed in range(1, args.seeds + 1):
                    if (args.out / game / f"{method}-{seed}" / "checkpoints").exists():
                        continue
                    argv = student_argv(args, game, method, seed, teachers[game], norms[game])
                    jobs.append(pool.submit(run_cli, argv, args.out / f"{game}-{method}-{seed}.log"))
        for job in jobs:
            job.result()
    print(f"all runs done in {time.monotonic() - started:.0f} s wall")

    from anew.runners.cli import main as cli

    report = args.out / "report"
    student_dirs = [
        str(args.out / game / f"{m}-{s}")
        for game in args.games
        for m in args.methods
        for s in range(1, args.seeds + 1)
    ]
    code = cli(
        [
            "report",
            *student_dirs,
            "--normalize",
            "teacher",
            "--json",
            str(report / "report.json"),
            "--out-dir",
            str(report),
        ]
    )
    if code != 0:
        return code
    results = json.loads((report / "report.json").read_text())["metrics"]["IQM"]
    qdagger = results[f"qdagger-{args.student_agent}"]
    scratch = results[f"scratch-{args.student_agent}"]
    print(
        f"QDagger IQM {qdagger['point']:.3f} [{qdagger['low']:.3f}, {qdagger['high']:.3f}], tabula rasa "
        f"{scratch['point']:.3f} [{scratch['low']:.3f}, {scratch['high']:.3f}]"
    )
    print(
        f"QDagger IQM >= 1.0: {'yes' if qdagger['point'] >= 1.0 else 'NO'}; "
        f"its 95% interval above tabula rasa's: {'yes' if qdagger['low'] > scratch['high'] else 'NO'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
