"""The `anew` command end to end: train, evaluate, resume, envs, and clear errors on bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from anew.runners.cli import main

QUICK = [
    "--total-steps",
    "600",
    "--eval-every",
    "300",
    "--eval-episodes",
    "2",
    "--checkpoint-every",
    "300",
    "--learning-starts",
    "100",
    "--train-every",
    "4",
    "--gradient-steps",
    "1",
    "--buffer-size",
    "2000",
]


def train(run_dir: Path, *extra: str) -> int:
    return main(["train", "dqn", "--env-id", "CartPole-v1", "--run-dir", str(run_dir), *QUICK, *extra])


def test_train_writes_logs_checkpoints_and_eval_json(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(run, "--keep-checkpoints", "1") == 0
    document = json.loads((run / "eval.json").read_text())
    assert {"agent", "env_id", "seed", "config", "evaluations"} <= set(document)
    assert [e["step"] for e in document["evaluations"]] == [300, 600]
    assert len(document["evaluations"][-1]["returns"]) == 2
    assert list(run.glob("events.out.tfevents.*"))
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_000000000600"]  # keep 1
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("charts/episodic_return" in line for line in lines)
    assert json.loads((run / "config.json").read_text())["agent_config"]["learning_starts"] == 100


def test_evaluate_and_resume_a_finished_run(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert train(run) == 0
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--episodes", "3", "--json-out", str(out)]) == 0
    assert len(json.loads(out.read_text())["returns"]) == 3
    assert main(["resume", str(run), "--total-steps", "900"]) == 0
    steps = [e["step"] for e in json.loads((run / "eval.json").read_text())["evaluations"]]
    assert steps == [300, 600, 900]


def test_envs_lists_gymnasium_ids(capsys) -> None:
    assert main(["envs", "--filter", "cartpole"]) == 0
    assert "CartPole-v1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "dqn", "--env-id", "CartPol-v1"], "unknown env id 'CartPol-v1'"),
        (["train", "dqnn"], "unknown agent 'dqnn'"),
        (["train", "dqn", "--gamma", "1.5"], "--gamma must lie in [0, 1]"),
        (["train", "dqn", "--total-steps", "0"], "--total-steps must be at least 1"),
        (["train", "rainbow", "--v-min", "-10", "--lr", "-1"], "--lr must not be negative"),
        (["train", "dqn", "--env-id", "Pendulum-v1", "--total-steps", "10"], "discrete action space"),
        (["resume", "/nonexistent/run"], "not an anew run directory"),
        (["evaluate", "/nonexistent/ckpt"], "does not exist"),
        (["nonsense"], None),
    ],
)
def test_bad_input_gets_one_clear_line(argv, message, capsys, tmp_path: Path) -> None:
    if argv[0] == "train":
        argv = [*argv, "--run-dir", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("anew: error:")
    if message:
        assert message in err[0]


def test_existing_run_is_never_overwritten(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert train(run) == 0
    before = (run / "eval.json").read_bytes()
    assert train(run) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "eval.json").read_bytes() == before


def test_a_run_refused_before_it_writes_anything_leaves_no_folder(tmp_path: Path, capsys) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    for run_dir in (tmp_path / "new" / "run", kept):  # the env rejects the flag once the run folder exists
        argv = [
            "train",
            "dqn",
            "--env-id",
            "CartPole-v1",
            "--no-such-env-option",
            "1",
            "--run-dir",
            str(run_dir),
        ]
        assert main(argv) == 2
        assert "check the flag names" in capsys.readouterr().err
    assert not (tmp_path / "new" / "run").exists()
    assert (kept / "notes.txt").read_text() == "mine"  # a folder the user already had stays as it was


def test_truncated_or_foreign_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert train(run) == 0
    checkpoint = max((run / "checkpoints").iterdir())
    agent_file = checkpoint / "agent.pt"
    agent_file.write_bytes(agent_file.read_bytes()[:1000])
    assert main(["evaluate", str(checkpoint)]) == 2
    assert "truncated or not an anew checkpoint" in capsys.readouterr().err
    import pickle

    agent_file.write_bytes(pickle.dumps({"payload": object()}))
    assert main(["evaluate", str(checkpoint)]) == 2
    assert "cannot be loaded safely" in capsys.readouterr().err


def test_full_disk_while_checkpointing_keeps_earlier_checkpoints(tmp_path: Path, monkeypatch, capsys) -> None:
    import errno

    import torch

    from anew.runners import checkpoint

    run = tmp_path / "run"
    calls = {"n": 0}
    real_save = torch.save

    def failing_save(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 2:  # the first checkpoint succeeds, the second finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)
    assert train(run) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "earlier checkpoints are intact" in err
    kept = [p.name for p in (run / "checkpoints").iterdir()]
    assert kept == ["step_000000000300"]  # no half-written folder left behind
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert main(["evaluate", str(run), "--episodes", "1"]) == 0


def test_capture_video_writes_gifs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(run, "--capture-video") == 0
    gifs = sorted(p.name for p in (run / "videos").glob("*.gif"))
    assert gifs == ["eval_step_300.gif", "eval_step_600.gif"]


def test_fields_a_config_declares_signed_may_be_negative() -> None:
    from anew.agents.ppo import PRESETS as PPO_PRESETS
    from anew.agents.rainbow import PRESETS as RAINBOW_PRESETS
    from anew.runners.registry import check_config

    check_config(dataclasses.replace(RAINBOW_PRESETS["classic-control"], v_min=-50.0))
    check_config(dataclasses.replace(next(iter(PPO_PRESETS.values())), init_log_std=-1.0))
