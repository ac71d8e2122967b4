"""A CommNet run on the traffic junction, and a SOM run on the coin game, killed with SIGKILL mid-episode and
resumed end with the same eval.json, metrics and weights as runs left alone (the team view's state, the buffered
partial episodes, CommNet's recurrent state and SOM's goal estimates all come back)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers_kill import anew, resume_and_finish, sigkill_when
from helpers_runs import scalars

ARGS = [
    "--seed",
    "2",
    "--num-envs",
    "16",
    "--total-steps",
    "3200",
    "--checkpoint-every",
    "800",
    "--eval-every",
    "1600",
    "--eval-episodes",
    "32",
    "--log-every",
    "160",
]


GAMES = {  # agent: (env id, a measure of the game in each evaluation's extra)
    "commnet": ("anew/TrafficJunction-easy-v0", "success_rate"),
    "som": ("anew/CoinGame-SOM-v0", "inference_accuracy_q4"),
}


@pytest.mark.parametrize("agent", sorted(GAMES))
def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path, agent: str) -> None:
    env_id, measure = GAMES[agent]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = anew("train", agent, "--env-id", env_id, "--run-dir", str(whole), *ARGS)
    victim = anew("train", agent, "--env-id", env_id, "--run-dir", str(killed), *ARGS)
    first = killed / "checkpoints" / "step_000000000800"  # step 50 of the sim: mid-episode (20-step episodes)
    sigkill_when(victim, first.exists)
    assert not (killed / "checkpoints" / "step_000000003200").exists()

    resume_and_finish(killed, reference)

    final = "checkpoints/step_000000003200/agent.pt"
    a, b = (torch.load(d / final, weights_only=True)["agent"] for d in (whole, killed))
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            for name, tensor in a[key].items():
                if isinstance(tensor, torch.Tensor):
                    assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs"
    evals = [json.loads((d / "eval.json").read_text())["evaluations"] for d in (whole, killed)]
    assert evals[0] == evals[1] and [e["step"] for e in evals[0]] == [1600, 3200]
    assert measure in evals[0][-1]["extra"]
    assert (whole / "metrics.jsonl").read_text() == (killed / "metrics.jsonl").read_text()
    assert scalars(whole) == scalars(killed)
