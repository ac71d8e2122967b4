"""A run killed with SIGKILL and continued with `anew resume` equals the same run left alone."""

from __future__ import annotations

import json
from pathlib import Path

from helpers_kill import anew, resume_and_finish, sigkill_when
from helpers_runs import same_final_networks, scalars

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


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = anew("train", "dqn", "--run-dir", str(whole), *ARGS)
    victim = anew("train", "dqn", "--run-dir", str(killed), *ARGS)
    sigkill_when(victim, (killed / "checkpoints" / "step_000000002000").exists)
    assert not (killed / "checkpoints" / "step_000000004000").exists()  # it really stopped part-way

    resume_and_finish(killed, reference)

    a, b = same_final_networks(whole, killed, 4000)
    assert a["steps"] == b["steps"] and a["updates"] == b["updates"]
    assert (whole / "metrics.jsonl").read_text() == (killed / "metrics.jsonl").read_text()
    evals = [json.loads((d / "eval.json").read_text())["evaluations"] for d in (whole, killed)]
    assert evals[0] == evals[1]
    assert scalars(whole) == scalars(killed)
