"""Long work is not silent and prints cleanly: evaluation and checkpoint writing report progress, "run
directory:" gets its own line above the progress bar, `anew evaluate` follows train's thread rule, and
--capture-video prints no SDL error."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from anew.agents import replay_files
from anew.agents.replay import ReplayBuffer
from anew.runners.cli import main
from anew.runners.evaluate import evaluate_agent

QUICK = ["--total-steps", "300", "--eval-every", "300", "--eval-episodes", "2", "--checkpoint-every", "300",
         "--learning-starts", "100", "--buffer-size", "2000"]  # fmt: skip


class FirstAction:
    """Always action 0 (CartPole falls over within a few dozen steps)."""

    def episode_start(self, mask: np.ndarray, explore: bool = True) -> None:
        pass

    def act(self, obs: np.ndarray, explore: bool = False, rng=None, info=None) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.int64)


def test_evaluation_reports_its_progress() -> None:
    calls: list[tuple[int, int, int]] = []
    result = evaluate_agent(FirstAction(), "CartPole-v1", 5, seed=0, progress=lambda *c: calls.append(c))
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][:2] == (5, 5)
    assert calls[-1][2] == max(result.lengths)  # the envs step together until the slowest quota ends


def test_replay_writing_reports_each_block(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(replay_files, "BLOCK_BYTES", 50 * (4 + 4 + 4 + 1))  # 50 rows per block
    buffer = ReplayBuffer(400, 1, (1,))
    for step in range(120):
        obs = np.full((1, 1), step, np.float32)
        buffer.add(obs, np.zeros(1, np.int32), np.ones(1), np.zeros(1, bool), np.zeros(1, bool), obs)
    calls: list[tuple[int, int]] = []
    buffer.save(tmp_path / "replay", progress=lambda *c: calls.append(c))
    assert calls == [(1, 3), (2, 3), (3, 3)]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_directory_is_printed_on_its_own_line_above_the_bar(tmp_path: Path, monkeypatch, capsys) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run = tmp_path / "run"
    assert main(["train", "dqn", "--run-dir", str(run), *QUICK, "--log-every", "100"]) == 0
    pieces = [piece.strip() for line in terminal.getvalue().splitlines() for piece in line.split("\r")]
    assert f"run directory: {run}" in pieces  # a whole piece: no bar text before or after it on that line
    assert any("evaluating: 2/2 episodes" in piece for piece in pieces)


def test_evaluate_follows_the_thread_rule_of_train(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dqn", "--run-dir", str(run), *QUICK]) == 0
    torch.set_num_threads(2)
    try:
        assert main(["evaluate", str(run), "--episodes", "1"]) == 0
        assert torch.get_num_threads() == 1  # vector observations: one thread, as in training
    finally:
        torch.set_num_threads(1)


def test_capture_video_prints_no_sdl_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_RUNTIME_DIR", "SDL_"))}
    command = [sys.executable, "-m", "anew.runners.cli", "train", "dqn"]
    argv = [*command, "--run-dir", str(tmp_path / "run"), *QUICK, "--eval-episodes", "1", "--capture-video"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "XDG_RUNTIME_DIR" not in done.stderr and "error" not in done.stderr.lower()
    assert (tmp_path / "run" / "videos" / "eval_step_300.gif").is_file()
