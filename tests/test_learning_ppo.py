"""PPO's learning bar (issue 6): CartPole-v1 solved (>= 475 over 20 evaluation episodes) within
100,000 agent steps in at least 4 of 5 seeds, with the classic-control preset and its 8 envs."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

SEEDS = (1, 2, 3, 4, 5)
STEPS = 100_000


def final_eval_return(run_dir: Path, seed: int) -> float:
    import torch

    from anew.runners.cli import main

    torch.set_num_threads(1)
    argv = ["train", "ppo", "--env-id", "CartPole-v1", "--preset", "classic-control", "--num-envs", "8",
            "--seed", str(seed), "--total-steps", str(STEPS), "--eval-every", str(STEPS), "--eval-episodes", "20",
            "--checkpoint-every", str(STEPS), "--run-dir", str(run_dir)]  # fmt: skip
    assert main(argv) == 0
    document = json.loads((run_dir / "eval.json").read_text())
    return float(np.mean(document["evaluations"][-1]["returns"]))


@pytest.mark.learning
def test_ppo_solves_cartpole_in_100k_steps(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(final_eval_return, tmp_path / f"ppo-{seed}", seed) for seed in SEEDS]
        returns = [future.result() for future in futures]
    print("PPO CartPole final mean eval returns (20 episodes):", returns)
    assert sum(r >= 475 for r in returns) >= 4, returns
