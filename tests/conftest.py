"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# Small networks on a 2-core machine are several times slower with torch's default thread count.
torch.set_num_threads(1)


def find_fixtures() -> Path | None:
    """The shared fixtures folder: $ANEW_FIXTURES, else ../shared/fixtures beside the repo, else None."""
    configured = os.environ.get("ANEW_FIXTURES")
    candidates = [Path(configured)] if configured else [REPO_ROOT.parent / "shared" / "fixtures"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    path = find_fixtures()
    if path is None:
        pytest.skip("fixtures not found: set ANEW_FIXTURES to the shared fixtures folder (CI always has it)")
    return path


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> Path:
    """A DQN teacher for `anew reincarnate` tests: 300 CartPole steps, one checkpoint (trained once a module)."""
    from anew.runners.cli import main as cli  # here, not at the top: most test modules never use the CLI

    run_dir = tmp_path_factory.mktemp("teacher") / "dqn"
    argv = ["train", "dqn", "--env-id", "CartPole-v1", "--total-steps", "300", "--learning-starts", "100"]
    argv += ["--eval-every", "300", "--eval-episodes", "2", "--checkpoint-every", "300", "--hidden", "32"]
    assert cli([*argv, "--run-dir", str(run_dir)]) == 0
    return run_dir
