"""Learning bars, checked by running the learning (CartPole: minutes on two cores)."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

SEEDS = (1, 2, 3, 4, 5)


def eval_curve(agent: str, run_dir: Path, seed: int, steps: int, eval_every: int, *extra: str) -> list[float]:
    """Mean return of every evaluation (20 episodes each) of one seed's run."""
    import torch

    from anew.runners.cli import main

    torch.set_num_threads(1)
    argv = [
        "train",
        agent,
        "--env-id",
        "CartPole-v1",
        "--seed",
        str(seed),
        "--total-steps",
        str(steps),
        "--eval-every",
        str(eval_every),
        "--eval-episodes",
        "20",
        "--checkpoint-every",
        str(steps),
        "--run-dir",
        str(run_dir / f"{agent}-{seed}"),
        *extra,
    ]
    assert main(argv) == 0
    document = json.loads((run_dir / f"{agent}-{seed}" / "eval.json").read_text())
    return [float(np.mean(e["returns"])) for e in document["evaluations"]]


def curves(agent: str, tmp_path: Path, steps: int, eval_every: int, *extra: str) -> list[list[float]]:
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(eval_curve, agent, tmp_path, s, steps, eval_every, *extra) for s in SEEDS]
        return [f.result() for f in futures]


@pytest.mark.learning
def test_dqn_ends_cartpole_solved_after_50k_steps(tmp_path: Path) -> None:
    """The bar: the FINAL evaluation (20 episodes, at 50k steps) has a mean return >= 475 in >= 4 of 5 seeds;
    a peak that is lost again by the end does not count."""
    runs = curves("dqn", tmp_path, 50_000, 5_000)
    for seed, curve in zip(SEEDS, runs):
        print(f"DQN CartPole seed {seed}: eval every 5k steps -> {[round(r) for r in curve]}")
    assert sum(curve[-1] >= 475 for curve in runs) >= 4, runs
