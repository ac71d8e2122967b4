"""Rainbow's learning bar: the classic-control preset solves CartPole-v1 within 50,000 agent steps."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

SEEDS = (1, 2, 3, 4, 5)
STEPS = 50_000


def final_eval_return(run_dir: Path, seed: int) -> float:
    import torch

    from anew.runners.cli import main

    torch.set_num_threads(1)
    run = run_dir / f"rainbow-{seed}"
    argv = ["train", "rainbow", "--env-id", "CartPole-v1", "--preset", "classic-control", "--seed", str(seed),
            "--total-steps", str(STEPS), "--eval-every", str(STEPS), "--eval-episodes", "20",
            "--checkpoint-every", str(STEPS), "--threads", "1", "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    document = json.loads((run / "eval.json").read_text())
    return float(np.mean(document["evaluations"][-1]["returns"]))


@pytest.mark.learning
def test_rainbow_solves_cartpole_in_50k_steps(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        returns = list(pool.map(final_eval_return, [tmp_path] * len(SEEDS), SEEDS))
    print("Rainbow CartPole final mean eval returns (20 episodes):", returns)
    assert sum(r >= 475 for r in returns) >= 4, returns
