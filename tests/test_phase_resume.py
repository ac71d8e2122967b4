"""A reincarnation run killed with SIGKILL inside its offline phase, continued with `anew resume`, equals the
same run left alone: the offline phase is a phase of the run, and its checkpoints record the updates done."""

from __future__ import annotations

import json
from pathlib import Path

from helpers_kill import anew, resume_and_finish, sigkill_when
from helpers_runs import same_final_networks, scalars

STUDENT = [
    "--env-id",
    "CartPole-v1",
    "--seed",
    "5",
    "--total-steps",
    "300",
    "--learning-starts",
    "100",
    "--train-every",
    "50",
    "--gradient-steps",
    "2",
    "--batch-size",
    "16",
    "--buffer-size",
    "1000",
    "--eval-every",
    "150",
    "--eval-episodes",
    "2",
    "--teacher-eval-episodes",
    "2",
    "--hidden",
    "32",
    "--offline-steps",
    "3000",
    "--offline-target-update-every",
    "50",
    "--offline-eval-every",
    "1000",
    "--teacher-steps",
    "300",
    "--log-every",
    "100",
    "--checkpoint-every",
    "500",
]


def test_killed_in_the_offline_phase_resumes_exactly(teacher_run: Path, tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    argv = ["reincarnate", "qdagger", "--teacher", str(teacher_run), *STUDENT]
    reference = anew(*argv, "--run-dir", str(whole))
    victim = anew(*argv, "--run-dir", str(killed))
    inside = killed / "checkpoints" / "step_000000000000.00.000000001000"  # offline phase, 1000 updates done
    sigkill_when(victim, inside.exists)
    names = [p.name for p in (killed / "checkpoints").iterdir() if not p.name.startswith(".")]
    assert all(name.startswith("step_000000000000.00.") for name in names), names  # still offline
    assert json.loads((inside / "runner.json").read_text())["phase"] == "offline"

    resume_and_finish(killed, reference)

    a, b = same_final_networks(whole, killed, 300)
    assert a["reincarnation"] == b["reincarnation"] and a["reincarnation"]["offline_updates"] == 3000
    evals = [json.loads((d / "eval.json").read_text())["evaluations"] for d in (whole, killed)]
    assert evals[0] == evals[1] and [e["step"] for e in evals[0]] == [0, 150, 300]
    assert (whole / "metrics.jsonl").read_text() == (killed / "metrics.jsonl").read_text()
    assert scalars(whole) == scalars(killed)
    assert scalars(whole / "phases" / "offline") == scalars(killed / "phases" / "offline")
    assert "offline/distill_loss" in scalars(whole / "phases" / "offline")
