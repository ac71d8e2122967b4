"""Reincarnation works (CI-sized): on CartPole, a QDagger student taught by a trained DQN teacher reaches the
teacher's return in far fewer online steps than the same DQN student from scratch, on 3 seeds.

"Reaches the teacher's return" means a mean evaluation return (10 episodes) with teacher-normalised score
``(G - G_random) / (G_teacher - G_random) >= 0.95``. Both students are ``dqn`` on the classic-control preset;
the QDagger student gets 3,000 online steps after its offline phase (5,000 teacher steps collected by rolling
the teacher out, 3,000 gradient steps), the scratch student 20,000 steps. About 4 minutes on two quiet cores.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

SEEDS = (1, 2, 3)
TEACHER_STEPS = 40_000
QDAGGER_ONLINE, SCRATCH_ONLINE, EVAL_EVERY = 3_000, 20_000, 500
THRESHOLD = 0.95


def _cli(argv: list[str]) -> None:
    import torch

    from anew.runners.cli import main

    torch.set_num_threads(1)
    assert main(argv) == 0, argv


def train_teacher(run_dir: Path) -> None:
    _cli(
        [
            "train",
            "dqn",
            "--env-id",
            "CartPole-v1",
            "--seed",
            "1",
            "--total-steps",
            str(TEACHER_STEPS),
            "--eval-every",
            "5000",
            "--eval-episodes",
            "10",
            "--checkpoint-every",
            "5000",
            "--keep-checkpoints",
            "8",
            "--run-dir",
            str(run_dir),
        ]
    )


def train_scratch(run_dir: Path, seed: int) -> None:
    _cli(
        [
            "train",
            "dqn",
            "--env-id",
            "CartPole-v1",
            "--seed",
            str(seed),
            "--total-steps",
            str(SCRATCH_ONLINE),
            "--eval-every",
            str(EVAL_EVERY),
            "--eval-episodes",
            "10",
            "--checkpoint-every",
            str(SCRATCH_ONLINE),
            "--run-dir",
            str(run_dir),
        ]
    )


def train_qdagger(run_dir: Path, seed: int, teacher: Path, teacher_return: float) -> None:
    _cli(
        [
            "reincarnate",
            "qdagger",
            "--teacher",
            str(teacher),
            "--env-id",
            "CartPole-v1",
            "--seed",
            str(seed),
            "--total-steps",
            str(QDAGGER_ONLINE),
            "--eval-every",
            str(EVAL_EVERY),
            "--eval-episodes",
            "10",
            "--checkpoint-every",
            str(QDAGGER_ONLINE),
            "--teacher-steps",
            "5000",
            "--offline-steps",
            "3000",
            "--teacher-return",
            str(teacher_return),
            "--teacher-eval-episodes",
            "20",
            "--run-dir",
            str(run_dir),
        ]
    )


def best_checkpoint(run_dir: Path) -> tuple[Path, float]:
    """The teacher: the checkpoint of its best evaluation (a DQN on CartPole can dip at the very end)."""
    evaluations = json.loads((run_dir / "eval.json").read_text())["evaluations"]
    best = max(evaluations, key=lambda e: (np.mean(e["returns"]), e["step"]))
    return run_dir / "checkpoints" / f"step_{best['step']:012d}", float(np.mean(best["returns"]))


def steps_to_teacher(run_dir: Path, teacher_return: float, random_return: float) -> int | None:
    for evaluation in json.loads((run_dir / "eval.json").read_text())["evaluations"]:
        score = (np.mean(evaluation["returns"]) - random_return) / (teacher_return - random_return)
        if score >= THRESHOLD:
            return int(evaluation["step"])
    return None


@pytest.mark.learning
def test_qdagger_reaches_the_teacher_far_sooner_than_scratch(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        teacher_job = pool.submit(train_teacher, tmp_path / "teacher")
        scratch_jobs = [pool.submit(train_scratch, tmp_path / f"scratch-{s}", s) for s in SEEDS]
        teacher_job.result()
        teacher, teacher_return = best_checkpoint(tmp_path / "teacher")
        qdagger_jobs = [
            pool.submit(train_qdagger, tmp_path / f"qdagger-{s}", s, teacher, teacher_return) for s in SEEDS
        ]
        for job in scratch_jobs + qdagger_jobs:
            job.result()
    extra = json.loads((tmp_path / "qdagger-1" / "eval.json").read_text())["evaluations"][0]["extra"]
    random_return = extra["random_return"]
    qdagger = [steps_to_teacher(tmp_path / f"qdagger-{s}", teacher_return, random_return) for s in SEEDS]
    scratch = [steps_to_teacher(tmp_path / f"scratch-{s}", teacher_return, random_return) for s in SEEDS]
    final = {
        name: [
            float(
                np.mean(
                    json.loads((tmp_path / f"{name}-{s}" / "eval.json").read_text())["evaluations"][-1][
                        "returns"
                    ]
                )
            )
            for s in SEEDS
        ]
        for name in ("qdagger", "scratch")
    }
    print(
        f"\nteacher: {teacher.name} mean return {teacher_return:.1f} (random policy {random_return:.1f}); "
        f"threshold: teacher-normalised >= {THRESHOLD}"
    )
    print(
        f"online steps to reach the teacher, seeds {SEEDS}: QDagger {qdagger} (budget {QDAGGER_ONLINE}, after "
        f"3000 offline gradient steps on 5000 teacher steps), scratch {scratch} (budget {SCRATCH_ONLINE}; "
        "None = not reached)"
    )
    print(f"final mean eval returns: QDagger {final['qdagger']}, scratch {final['scratch']}")
    assert teacher_return - random_return > 0.5 * (500 - random_return), "the teacher did not learn CartPole"
    assert all(steps is not None for steps in qdagger), qdagger
    censored = [SCRATCH_ONLINE + EVAL_EVERY if steps is None else steps for steps in scratch]
    # Far fewer: on every seed at most a quarter of the scratch student's online steps.
    assert all(q <= s / 4 for q, s in zip(qdagger, censored)), (qdagger, scratch)
