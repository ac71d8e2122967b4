"""``anew sweep --help`` documents the spec format with an example that runs, and its own
``--train-args "--total-steps 20000"`` example is accepted (not only the ``=`` form)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from anew.runners.cli import main
from anew.runners.run_args import parse_train_args
from anew.runners.sweep_help import EXAMPLE_SPEC, joined_flag_values

TINY = ("--total-steps 200 --eval-every 200 --eval-episodes 1 --checkpoint-every 200 --learning-starts 100 "
        "--buffer-size 1000 --hidden 16")  # fmt: skip


def test_help_shows_the_spec_format_and_names_only_real_agents(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    for line in EXAMPLE_SPEC.splitlines():
        assert line.strip() in out
    assert "c51" not in out and '--train-args "--total-steps 20000"' in out


def test_flag_values_that_start_with_dashes_are_joined() -> None:
    argv = ["spec.toml", "--train-args", "--total-steps 20000", "--report-args", "--reps 10", "--dry-run"]
    assert joined_flag_values(argv) == ["spec.toml", "--train-args=--total-steps 20000",
                                        "--report-args=--reps 10", "--dry-run"]  # fmt: skip


def test_the_example_spec_plans_runs_anew_train_accepts(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(EXAMPLE_SPEC)
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    commands = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    assert len(commands) == 2 * 2 * 3  # two labels x two discounts x 3 seeds
    for command in commands:
        agent_name, run, config = parse_train_args(command[command.index("train") + 1 :])
        assert agent_name == "dqn" and run.env_kwargs == {}  # every flag is a real run or agent flag
        assert run.total_steps == 20_000 and config.lr in (1e-3, 3e-4) and config.gamma in (0.99, 0.995)


def test_the_example_runs_with_train_args_as_one_spaced_string(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(EXAMPLE_SPEC.split("[grid]")[0])  # the grid doubles the runs: leave it out here
    argv = [
        "sweep",
        str(spec),
        "--seeds",
        "0",
        "--train-args",
        TINY,
        "--report-args",
        "--reps 200",
        "--workers",
        "2",
    ]
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "runs" / "cartpole-lr" / "sweep.json").read_text())["runs"]
    assert sorted(entry["label"] for entry in manifest.values()) == ["dqn-fast", "dqn-slow"]
    assert all(
        entry["status"] == "ok" and entry["flags"][:2] == ["--total-steps", "200"]
        for entry in manifest.values()
    )
    assert (tmp_path / "runs" / "cartpole-lr" / "report" / "report.json").is_file()
