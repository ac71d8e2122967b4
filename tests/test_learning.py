"""Learning bars, checked by running the learning (CartPole: minutes on two cores)."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

SEEDS = (1, 2, 3, 4, 5)


def final_eval_return(agent: str, run_dir: Path, seed: int, steps: int, *extra: str) -> float:
    import torch

    from anew.runners.cli import main

    torch.set_num_threads(1)
    argv = ["train", agent, "--env-id", "CartPole-v1", "--seed", str(seed), "--total-steps", str(steps),
            "--eval-every", str(steps), "--eval-episodes", "20", "--checkpoint-every", str(steps),
            "--run-dir", str(run_dir / f"{agent}-{seed}"), *extra]
    assert main(argv) == 0
    document = json.loads((run_dir / f"{agent}-{seed}" / "eval.json").read_text())
    return float(np.mean(document["evaluations"][-1]["returns"]))


def seeds_solving(agent: str, tmp_path: Path, steps: int, *extra: str) -> list[float]:
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(final_eval_return, agent, tmp_path, s, steps, *extra) for s in SEEDS]
        return [f.result() for f in futures]


@pytest.mark.learning
def test_dqn_solves_cartpole_in_50k_steps(tmp_path: Path) -> None:
    returns = seeds_solving("dqn", tmp_path, 50_000)
    print("DQN CartPole final mean eval returns (20 episodes):", returns)
    assert sum(r >= 475 for r in returns) >= 4, returns
