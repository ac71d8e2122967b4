"""A run killed with SIGKILL and continued with `anew resume` equals the same run left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ARGS = [
    "--env-id",
    "CartPole-v1",
    "--seed",
    "7",
    "--total-steps",
    "4000",
    "--eval-every",
    "1000",
    "--eval-episodes",
    "3",
    "--checkpoint-every",
    "1000",
    "--learning-starts",
    "200",
    "--train-every",
    "8",
    "--gradient-steps",
    "2",
    "--buffer-size",
    "3000",
    "--num-envs",
    "2",
    "--log-every",
    "100",
    "--n-step",
    "3",
]


def anew(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "anew.runners.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if tag != "charts/SPS"
    }


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = anew("train", "dqn", "--run-dir", str(whole), *ARGS)
    victim = anew("train", "dqn", "--run-dir", str(killed), *ARGS)
    first = killed / "checkpoints" / "step_000000002000"
    while not first.exists():
        assert victim.poll() is None, victim.stderr.read().decode()
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed / "checkpoints" / "step_000000004000").exists()  # it really stopped part-way

    resumed = anew("resume", str(killed))
    assert resumed.wait() == 0, resumed.stderr.read().decode()
    assert reference.wait() == 0, reference.stderr.read().decode()

    final = "checkpoints/step_000000004000/agent.pt"
    a = torch.load(whole / final, weights_only=True)["agent"]
    b = torch.load(killed / final, weights_only=True)["agent"]
    for net in ("online", "target"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs"
    assert a["steps"] == b["steps"] and a["updates"] == b["updates"]
    assert (whole / "metrics.jsonl").read_text() == (killed / "metrics.jsonl").read_text()
    evals = [json.loads((d / "eval.json").read_text())["evaluations"] for d in (whole, killed)]
    assert evals[0] == evals[1]
    assert scalars(whole) == scalars(killed)
