"""What a new user hits walking the README (issue 16, section 5): one-line errors that name the fix instead of
tracebacks, `anew envs` and `anew report` saying plainly what they found, help texts that say what is true."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from anew.envs import registration
from anew.runners import registry
from anew.runners.cli import main

QUICK = shlex.split(
    "--total-steps 600 --eval-every 300 --eval-episodes 2 --checkpoint-every 300 --learning-starts 100 "
    "--train-every 4 --gradient-steps 1 --buffer-size 2000"
)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("anew: error:"), err
    return err[0]


def test_a_misspelt_atari_id_is_one_line_naming_the_id(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ale_py")
    argv = [
        "train",
        "dqn",
        "--env-id",
        "ALE/Pongg-v5",
        "--total-steps",
        "100",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 2
    assert "unknown Atari id 'ALE/Pongg-v5'; did you mean ALE/Pong-v5" in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_a_listed_id_whose_package_is_missing_names_the_extra(tmp_path: Path, capsys, monkeypatch) -> None:
    real = registration.module_available
    monkeypatch.setattr(registration, "module_available", lambda name: name != "mujoco" and real(name))
    assert main(["train", "ppo", "--env-id", "Walker2d-v5", "--run-dir", str(tmp_path / "r")]) == 2
    line = one_error_line(capsys)
    assert "Walker2d-v5 cannot be made here" in line and "pip install 'gymnasium[mujoco]'" in line
    assert not (tmp_path / "r").exists()


def test_a_misspelt_run_flag_gets_did_you_mean(tmp_path: Path, capsys) -> None:
    assert main(["train", "dqn", "--total-step", "1000", "--run-dir", str(tmp_path / "r")]) == 2
    assert "unknown flag --total-step; did you mean --total-steps?" in one_error_line(capsys)


def test_a_truncated_replay_file_on_resume_is_one_line(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dqn", "--run-dir", str(run), *QUICK]) == 0
    latest = max((run / "checkpoints").iterdir())
    block = next((latest / "replay").glob("obs.00000.*"))
    block.write_bytes(block.read_bytes()[: block.stat().st_size // 2])
    capsys.readouterr()
    assert main(["resume", str(run), "--total-steps", "900"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("anew: error: replay file") and "truncated or corrupt" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_envs_kinds_install_hints_and_a_filter_that_matches_nothing(capsys, monkeypatch) -> None:
    real = registration.module_available
    monkeypatch.setattr(registration, "module_available", lambda name: name != "mujoco" and real(name))
    assert main(["envs", "--filter", "anew/"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["anew/LostSales-v0"] == ["gymnasium"]
    assert rows["anew/Levers-v0"] == ["pettingzoo"]
    assert rows["anew/AntWind-v0"][0] == "gymnasium" and "'anew[mujoco]'" in " ".join(rows["anew/AntWind-v0"])
    if registration.module_available("ale_py"):
        assert main(["envs", "--filter", "ALE/Pong-v5"]) == 0
        assert capsys.readouterr().out.split()[1] == "ale"
    assert main(["envs", "--filter", "no-such-env"]) == 1
    assert "no environment id contains 'no-such-env'" in capsys.readouterr().err


def test_report_on_a_file_that_is_not_a_run_says_so(tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# not a run\n")
    assert main(["report", str(readme)]) == 2
    line = one_error_line(capsys)
    assert "is not a run directory or an eval.json file" in line and "still writing" not in line


def write_run(folder: Path, lr: float, seed: int) -> None:
    folder.mkdir(parents=True)
    agent_config = {"lr": lr, "gamma": 0.99, "batch_size": 64, "hidden": [64], "target_update_every": 10,
                    "train_every": 4}  # fmt: skip
    config = {"agent": "dqn", "run": {"env_id": "CartPole-v1", "seed": seed}, "agent_config": agent_config}
    evaluations = [
        {"step": 100, "returns": [10.0 * seed + 1000 * lr, 12.0], "lengths": [10, 12], "extra": {}}
    ]
    document = {
        "agent": "dqn",
        "env_id": "CartPole-v1",
        "seed": seed,
        "config": config,
        "evaluations": evaluations,
    }
    (folder / "eval.json").write_text(json.dumps(document))


def test_report_label_by_uses_the_real_field_name_and_lists_every_key(tmp_path: Path, capsys) -> None:
    for lr in (1e-3, 3e-4):
        for seed in (0, 1):
            write_run(tmp_path / "runs" / f"{lr}-{seed}", lr, seed)
    runs = str(tmp_path / "runs")
    assert main(["report", runs, "--label-by", "learning_rate", "--no-plots"]) == 2
    line = one_error_line(capsys)
    for key in ("batch_size", "gamma", "hidden", "lr", "target_update_every", "train_every"):
        assert key in line  # every key, not the first few
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "--label-by lr" in " ".join(capsys.readouterr().out.split())
    assert main(["report", runs, "--label-by", "lr", "--no-plots"]) == 0
    table = capsys.readouterr().out
    assert "| dqn[lr=0.001] | 2 |" in table and "| dqn[lr=0.0003] | 2 |" in table


def test_raw_returns_get_no_optimality_gap_unless_gamma_is_given(tmp_path: Path, capsys) -> None:
    for seed in (0, 1):
        write_run(tmp_path / "runs" / str(seed), 1e-3, seed)
    assert main(["report", str(tmp_path / "runs"), "--no-plots", "--json", str(tmp_path / "a.json")]) == 0
    assert "Optimality Gap" not in json.loads((tmp_path / "a.json").read_text())["metrics"]
    assert "No Optimality Gap for raw returns" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "runs"), "--gamma", "500", "--json", str(tmp_path / "b.json"),
                 "--out-dir", str(tmp_path / "figures")]) == 0  # fmt: skip
    gap = json.loads((tmp_path / "b.json").read_text())["metrics"]["Optimality Gap"]["dqn"]["point"]
    assert gap == pytest.approx(500 - (1 + 12 + 11 + 12) / 4)


def test_help_texts_say_what_is_true(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["reincarnate", "qdagger", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    teacher = text[text.index("--teacher STR") : text.index("--teacher-replay")]
    assert "(required)" in teacher and "default" not in teacher
    assert "the defaults shown are the classic-control preset's" in text
    with pytest.raises(SystemExit):
        main(["train", "dqn", "--env-id", "CartPole-v1", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "dqn options (the defaults shown are the classic-control preset's)" in text
    assert "defaults are Dopamine's" not in text


def test_minatar_ids_get_minatar_presets() -> None:
    assert registry.preset_config("dqn", "", "anew/MinAtar-Breakout-v0")[0] == "minatar"
    assert registry.preset_config("rainbow", "", "anew/MinAtar-Breakout-v0")[0] == "minatar"
    assert registry.preset_config("dqn", "", "CartPole-v1")[0] == "classic-control"


def test_convert_names_the_flag_for_a_rainbow_checkpoint(fixtures_dir: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("ale_py")
    source = fixtures_dir / "dopamine" / "jax_rainbow_breakout"
    argv = ["convert", "dopamine", str(source), "--out", str(tmp_path / "out"), "--env-id", "ALE/Breakout-v5"]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert "--kind rainbow" in line and "kind='rainbow'" not in line


def test_an_env_option_the_curriculum_sets_is_refused_with_the_fix(tmp_path: Path, capsys) -> None:
    argv = ["train", "commnet", "--env-id", "anew/TrafficJunction-easy-v0", "--p-arrive", "0.2",
            "--total-steps", "100", "--run-dir", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert (
        "--p-arrive: commnet's curriculum sets this during training" in line and "--curriculum-end 0" in line
    )
    assert not (tmp_path / "r").exists()
    argv[argv.index("--total-steps") : argv.index("--total-steps")] = ["--curriculum-end", "0"]
    assert main(argv) == 0  # no curriculum: training runs at the fixed value
