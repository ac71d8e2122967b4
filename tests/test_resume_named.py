"""``anew resume RUN_DIR/checkpoints/step_N``: a run continues from the checkpoint named, the later
checkpoints move aside (never deleted) with copies of the logs, and the continued run repeats the original
exactly."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from anew.runners.cli import main

QUICK = shlex.split(
    "--total-steps 600 --eval-every 300 --eval-episodes 2 --checkpoint-every 300 --learning-starts 100 "
    "--train-every 4 --gradient-steps 1 --buffer-size 2000"
)
FIRST, SECOND = "step_000000000300", "step_000000000600"


def test_resume_from_a_named_checkpoint_sets_later_ones_aside_and_repeats_the_run(
    tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    assert main(["train", "dqn", "--run-dir", str(run), *QUICK]) == 0
    original_eval = json.loads((run / "eval.json").read_text())
    original_metrics = (run / "metrics.jsonl").read_text()
    capsys.readouterr()

    assert main(["resume", str(run / "checkpoints" / FIRST)]) == 0
    out, err = capsys.readouterr()
    assert f"from {FIRST} (step 300)" in err and f"({SECOND}) moved to" in err
    [aside] = list((run / "discarded").iterdir())
    assert (aside / "checkpoints" / SECOND / "runner.json").is_file()  # moved, not deleted
    assert json.loads((aside / "eval_before_resume.json").read_text()) == original_eval
    assert (aside / "metrics_before_resume.jsonl").read_text() == original_metrics
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [FIRST, SECOND]
    assert json.loads((run / "eval.json").read_text())["evaluations"] == original_eval["evaluations"]
    assert (run / "metrics.jsonl").read_text() == original_metrics
    final = sum(original_eval["evaluations"][-1]["returns"]) / 2
    assert f"done: dqn on CartPole-v1 at step 600, final mean eval return {final:.2f}" in out


def test_a_checkpoint_that_is_not_complete_is_refused(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dqn", "--run-dir", str(run), *QUICK, "--total-steps", "300"]) == 0
    partial = run / "checkpoints" / ".step_000000000600.tmp"
    (partial).mkdir()
    (partial / "runner.json").write_text("{}")
    capsys.readouterr()
    assert main(["resume", str(partial)]) == 2
    assert "is not a complete checkpoint" in capsys.readouterr().err
