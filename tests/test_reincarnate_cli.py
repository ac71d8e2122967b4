"""``anew reincarnate``: every method writes a normal run directory in seconds (smoke), plus clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers_runs import same_final_networks

from anew.reincarnation import METHODS
from anew.runners.cli import main as cli

torch.set_num_threads(1)

# Tiny sizes: the student learns after 100 steps, 2 gradient steps every 50, evaluations of 2 episodes.
STUDENT = [
    "--env-id",
    "CartPole-v1",
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
    "--checkpoint-every",
    "300",
    "--teacher-eval-episodes",
    "2",
    "--hidden",
    "32",
]
SIZES = [
    "--offline-steps",
    "20",
    "--offline-target-update-every",
    "5",
    "--teacher-steps",
    "200",
    "--log-every",
    "10",
]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_writes_a_run_directory(method, teacher_run, tmp_path):
    run_dir = tmp_path / method
    assert (
        cli(
            [
                "reincarnate",
                method,
                "--teacher",
                str(teacher_run),
                *STUDENT,
                *SIZES,
                "--run-dir",
                str(run_dir),
            ]
        )
        == 0
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["agent"] == "dqn" and config["reincarnation"]["method"] == method
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert (
        evaluation["agent"] == f"{method}-dqn" and evaluation["config"]["reincarnation"]["method"] == method
    )
    steps = [e["step"] for e in evaluation["evaluations"]]
    pretrains = METHODS[method].offline is not None
    assert steps == ([0, 150, 300] if pretrains else [150, 300])
    for entry in evaluation["evaluations"]:
        extra = entry["extra"]
        assert {"teacher_return", "random_return", "teacher_normalized_score", "distill_coeff"} <= set(extra)
        score = (sum(entry["returns"]) / len(entry["returns"]) - extra["random_return"]) / (
            extra["teacher_return"] - extra["random_return"]
        )
        assert extra["teacher_normalized_score"] == pytest.approx(score)
    if pretrains:
        assert evaluation["evaluations"][0]["extra"]["phase"] == "offline"
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    names = set().union(*metrics)
    assert "charts/distill_coeff" in names and "eval/teacher_normalized_score" in names
    if method in ("qdagger", "kickstarting"):
        assert "losses/distill_loss" in names
    if pretrains:
        assert f"offline/{METHODS[method].offline.name}_loss" in names
    assert list((run_dir / "checkpoints").iterdir())
    assert cli(["evaluate", str(run_dir), "--episodes", "1"]) == 0  # the student loads as a plain dqn


def test_teacher_replay_from_an_anew_checkpoint(teacher_run, tmp_path):
    checkpoint = max((teacher_run / "checkpoints").iterdir())
    run_dir = tmp_path / "replay"
    assert (
        cli(
            [
                "reincarnate",
                "qdagger",
                "--teacher",
                str(checkpoint),
                "--teacher-replay",
                str(checkpoint),
                *STUDENT,
                *SIZES,
                "--teacher-steps",
                "0",
                "--run-dir",
                str(run_dir),
            ]
        )
        == 0
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["reincarnation"]["teacher_replay"] == str(checkpoint)


@pytest.mark.parametrize("method", ["qdagger", "jsrl", "rehearsal"])
def test_resume_continues_a_reincarnation_run_exactly(method, teacher_run, tmp_path):
    """Stopped at 150 steps and resumed to 300 equals 300 steps in one go: weights, weaning, learning rate,
    JSRL's roll-in (jsrl), the teacher-data RNG (rehearsal), evaluations and logged metrics."""
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    argv = [
        "reincarnate",
        method,
        "--teacher",
        str(teacher_run),
        *STUDENT,
        *SIZES,
        "--checkpoint-every",
        "150",
    ]
    assert cli([*argv, "--run-dir", str(whole)]) == 0
    assert cli([*argv, "--total-steps", "150", "--run-dir", str(halves)]) == 0
    assert cli(["resume", str(halves), "--total-steps", "300"]) == 0
    a, b = same_final_networks(whole, halves, 300)
    assert a["reincarnation"] == b["reincarnation"] and a["updates"] == b["updates"]
    evaluations = [json.loads((d / "eval.json").read_text())["evaluations"] for d in (whole, halves)]
    assert (
        evaluations[0] == evaluations[1]
        and [e["step"] for e in evaluations[0]] == [0, 150, 300][-len(evaluations[0]) :]
    )
    assert read_jsonl(whole / "metrics.jsonl") == read_jsonl(halves / "metrics.jsonl")
    assert json.loads((halves / "config.json").read_text())["reincarnation"]["method"] == method


def test_resume_names_a_missing_teacher(teacher_run, tmp_path, capsys):
    run_dir, teacher = tmp_path / "student", tmp_path / "teacher"
    shutil.copytree(teacher_run, teacher)
    assert (
        cli(
            [
                "reincarnate",
                "kickstarting",
                "--teacher",
                str(teacher),
                *STUDENT,
                "--total-steps",
                "150",
                "--run-dir",
                str(run_dir),
            ]
        )
        == 0
    )
    shutil.rmtree(teacher)
    capsys.readouterr()
    assert cli(["resume", str(run_dir), "--total-steps", "300"]) == 2
    assert "teacher" in capsys.readouterr().err


def test_given_teacher_and_random_returns_are_used(teacher_run, tmp_path):
    run_dir = tmp_path / "given"
    assert (
        cli(
            [
                "reincarnate",
                "kickstarting",
                "--teacher",
                str(teacher_run),
                *STUDENT,
                "--teacher-return",
                "200",
                "--random-return",
                "20",
                "--run-dir",
                str(run_dir),
            ]
        )
        == 0
    )
    extra = json.loads((run_dir / "eval.json").read_text())["evaluations"][-1]["extra"]
    assert extra["teacher_return"] == 200 and extra["random_return"] == 20


def test_errors_are_one_line_with_the_fix(teacher_run, tmp_path, capsys):
    assert cli(["reincarnate", "dagger", "--teacher", str(teacher_run)]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert cli(["reincarnate", "qdagger", "--env-id", "CartPole-v1", "--run-dir", str(tmp_path / "a")]) == 2
    assert "--teacher" in capsys.readouterr().err
    assert (
        cli(["reincarnate", "qdagger", "--teacher", str(tmp_path / "none"), "--run-dir", str(tmp_path / "b")])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    # A CartPole teacher (2 actions) cannot teach Acrobot (3 actions).
    assert (
        cli(
            [
                "reincarnate",
                "kickstarting",
                "--teacher",
                str(teacher_run),
                "--env-id",
                "Acrobot-v1",
                "--run-dir",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "actions" in capsys.readouterr().err
    assert (
        cli(
            [
                "reincarnate",
                "qdagger",
                "--teacher",
                str(teacher_run),
                "--temperature",
                "0",
                "--run-dir",
                str(tmp_path / "d"),
            ]
        )
        == 2
    )
    assert "--temperature" in capsys.readouterr().err


@pytest.mark.atari
def test_dopamine_teacher_and_replay_on_atari(fixtures_dir, tmp_path):
    """A Dopamine checkpoint teaches directly, from Dopamine's own replay files (stack-last layouts)."""
    pytest.importorskip("ale_py")
    dopamine = fixtures_dir / "dopamine"
    run_dir = tmp_path / "pong"
    assert (
        cli(
            [
                "reincarnate",
                "qdagger",
                "--teacher",
                str(dopamine / "jax_dqn_pong"),
                "--teacher-replay",
                str(dopamine / "legacy_replay_pong" / "replay"),
                "--env-id",
                "ALE/Pong-v5",
                "--total-steps",
                "40",
                "--learning-starts",
                "20",
                "--train-every",
                "10",
                "--batch-size",
                "4",
                "--buffer-size",
                "200",
                "--offline-steps",
                "3",
                "--eval-every",
                "40",
                "--eval-episodes",
                "1",
                "--checkpoint-every",
                "40",
                "--teacher-return",
                "-20",
                "--random-return",
                "-21",
                "--threads",
                "1",
                "--run-dir",
                str(run_dir),
            ]
        )
        == 0
    )
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert [e["extra"]["phase"] for e in evaluation["evaluations"]] == ["offline", "online"]
    assert evaluation["config"]["reincarnation"]["teacher"]["source"] == "dopamine"


def test_a_refused_run_leaves_no_folder_and_a_finished_one_is_not_overwritten(teacher_run, tmp_path, capsys):
    run_dir = tmp_path / "refused"
    assert (
        cli(
            [
                "reincarnate",
                "qdagger",
                "--teacher",
                str(teacher_run),
                "--teacher-replay",
                str(tmp_path / "none"),
                *STUDENT,
                "--run-dir",
                str(run_dir),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err and not run_dir.exists()
    done = tmp_path / "done"
    assert (
        cli(["reincarnate", "kickstarting", "--teacher", str(teacher_run), *STUDENT, "--run-dir", str(done)])
        == 0
    )
    before = (done / "eval.json").read_bytes()
    capsys.readouterr()
    assert (
        cli(["reincarnate", "kickstarting", "--teacher", str(teacher_run), *STUDENT, "--run-dir", str(done)])
        == 2
    )
    assert "already holds a run" in capsys.readouterr().err and (done / "eval.json").read_bytes() == before
