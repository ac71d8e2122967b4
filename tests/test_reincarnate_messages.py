"""What ``anew reincarnate`` says: a teacher no better than random is warned about (not reported as a
teacher-normalised 1.000), teacher collection without a finished episode says so (not "nan"), and a failed
run leaves no half-made folder behind (nor names one it then deletes)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from anew.errors import AnewError
from anew.runners import train
from anew.runners.cli import main

STUDENT = shlex.split(
    "--env-id CartPole-v1 --total-steps 200 --learning-starts 100 --train-every 50 --gradient-steps 2 "
    "--batch-size 16 --buffer-size 1000 --eval-every 200 --eval-episodes 2 --checkpoint-every 200 "
    "--teacher-eval-episodes 2 --hidden 32"
)
TEACHER = shlex.split(
    "--env-id CartPole-v1 --total-steps 200 --learning-starts 100 --eval-every 200 --eval-episodes 2 "
    "--checkpoint-every 200 --hidden 32"
)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("teacher") / "dqn"
    assert main(["train", "dqn", *TEACHER, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_a_teacher_below_random_is_warned_about(teacher_run: Path, tmp_path: Path, capsys) -> None:
    argv = ["reincarnate", "kickstarting", "--teacher", str(teacher_run), *STUDENT, "--teacher-return", "5",
            "--random-return", "20", "--run-dir", str(tmp_path / "run")]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "warning: the teacher scores no better than a random policy (5.00 <= 20.00)" in err
    assert "no teacher-normalised score: the teacher is no better than random" in out
    assert "teacher-normalised 1.000" not in out


def test_teacher_collection_without_a_finished_episode_says_so(
    teacher_run: Path, tmp_path: Path, capsys
) -> None:
    argv = ["reincarnate", "qdagger", "--teacher", str(teacher_run), *STUDENT, "--teacher-steps", "5",
            "--offline-steps", "2", "--run-dir", str(tmp_path / "run")]  # fmt: skip
    capsys.readouterr()
    assert main([*argv, "--n-step", "1"]) == 0
    err = capsys.readouterr().err
    assert "[teacher] collected 5 steps (no episode ended within them)" in err and "nan" not in err
    # 5 steps of a 5-step return: not one complete transition to learn from, said in one line (no traceback)
    assert main([*argv, "--n-step", "5", "--run-dir", str(tmp_path / "run5")]) == 2
    err = capsys.readouterr().err
    assert "hold no complete 5-step transition: raise --teacher-steps" in err and "Traceback" not in err


def test_a_refused_reincarnation_names_no_folder_and_leaves_none(
    teacher_run: Path, tmp_path: Path, capsys
) -> None:
    run_dir = tmp_path / "refused"
    missing = str(tmp_path / "none")
    argv = ["reincarnate", "qdagger", "--teacher", str(teacher_run), "--teacher-replay", missing, *STUDENT,
            "--run-dir", str(run_dir)]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "run directory" not in err and str(run_dir) not in err.replace(str(tmp_path / "none"), "")
    assert not run_dir.exists()


def test_a_run_that_fails_before_its_first_checkpoint_is_removed(teacher_run: Path, tmp_path: Path, capsys,
                                                                 monkeypatch) -> None:  # fmt: skip
    def fail(self) -> None:
        self.logger.scalars(0, {"charts/x": 1.0})  # the run has written logs by now
        raise AnewError("simulated failure")

    monkeypatch.setattr(train.Trainer, "online_loop", fail)
    run_dir = tmp_path / "failed"
    argv = ["reincarnate", "kickstarting", "--teacher", str(teacher_run), *STUDENT, "--run-dir", str(run_dir)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2] == f"anew: removed {run_dir}: the run failed before its first checkpoint"
    assert err[-1] == "anew: error: simulated failure"
    assert not run_dir.exists()
