"""``anew report``: run directories -> table, JSON and figures; normalisation; every bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anew.analysis import normalization
from anew.analysis.report import compute_report
from anew.analysis.runs import collect_paths, load_runs
from anew.errors import AnewError
from anew.runners import report
from anew.runners.cli import main as cli_main

STEPS = (1000, 2000, 3000)


def write_run(
    root: Path,
    name: str,
    agent: str = "dqn",
    env_id: str = "CartPole-v1",
    seed: int = 0,
    returns: dict[int, list[float]] | None = None,
    agent_config: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """A run directory as `anew train` writes it: eval.json (docs/design.md section 6) and config.json."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    returns = returns or {step: [10.0 + step / 100 + seed] * 3 for step in STEPS}
    config = {
        "anew_version": "0.1.0",
        "agent": agent,
        "run": {"env_id": env_id, "seed": seed, "run_dir": str(run_dir), "total_steps": max(returns)},
        "agent_config": agent_config or {"lr": 0.001},
    }
    evaluations = [
        {"step": step, "returns": values, "lengths": [100] * len(values), "extra": dict(extra or {})}
        for step, values in returns.items()
    ]
    document = {"agent": agent, "env_id": env_id, "seed": seed, "config": config, "evaluations": evaluations}
    (run_dir / "eval.json").write_text(json.dumps(document))
    (run_dir / "config.json").write_text(json.dumps(config))
    return run_dir


def two_settings(root: Path) -> dict[tuple[float, int], float]:
    """DQN with two learning rates x 3 seeds on CartPole; returns the final mean score of each run."""
    finals = {}
    rng = np.random.default_rng(0)
    for lr, level in ((0.001, 150.0), (0.0003, 90.0)):
        for seed in range(3):
            returns = {step: list(level * step / 3000 + rng.normal(0, 20, size=5)) for step in STEPS}
            write_run(
                root, f"CartPole-v1__dqn__lr{lr}__{seed}", seed=seed, returns=returns, agent_config={"lr": lr}
            )
            finals[lr, seed] = float(np.mean(returns[3000]))
    return finals


def run_report(pattern: Path, **settings) -> dict:
    """compute_report on the runs a glob names, without figures, at 2,000 resamples."""
    args = report.ReportArgs(paths=(str(pattern),), plots=False, reps=2000, **settings)
    runs = load_runs(collect_paths(args.paths), args.label_by, args.mixed_configs)
    return compute_report(runs, args)


def test_report_on_two_settings_writes_table_json_and_figures(tmp_path, capsys):
    finals = two_settings(tmp_path / "runs")
    out_dir, json_path = tmp_path / "figures", tmp_path / "report.json"
    code = report.main(
        [
            str(tmp_path / "runs" / "*"),
            "--label-by",
            "lr",
            "--json",
            str(json_path),
            "--out-dir",
            str(out_dir),
            "--reps",
            "2000",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "| dqn[lr=0.001] | 3 |" in table and "| dqn[lr=0.0003] | 3 |" in table
    assert "Probability of improvement" in table

    result = json.loads(json_path.read_text())
    assert set(result["metrics"]) == {"IQM", "Median", "Mean"}  # no Optimality Gap below 1.0 for raw returns
    assert result["tasks"] == ["CartPole-v1"] and result["runs"] == {"dqn[lr=0.0003]": 3, "dqn[lr=0.001]": 3}
    # With one task, every aggregate is a plain statistic of the three final mean returns.
    fast = sorted(finals[0.001, seed] for seed in range(3))
    iqm = result["metrics"]["IQM"]["dqn[lr=0.001]"]
    # 3 values: int(0.75) = 0 trimmed from each end, so the IQM is their mean
    assert iqm["point"] == pytest.approx(np.mean(fast)) and iqm["low"] <= iqm["point"] <= iqm["high"]
    assert result["metrics"]["Median"]["dqn[lr=0.001]"]["point"] == pytest.approx(np.mean(fast))
    pair = result["probability_of_improvement"]["dqn[lr=0.001]>dqn[lr=0.0003]"]
    slow = [finals[0.0003, seed] for seed in range(3)]
    wins = np.mean([[f > s for s in slow] for f in fast])
    assert pair["point"] == pytest.approx(wins)
    assert result["sample_efficiency"]["dqn[lr=0.001]"]["steps"] == list(STEPS)
    for name in ("aggregates", "performance_profiles", "sample_efficiency", "probability_of_improvement"):
        assert (out_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_json_and_step_selects_an_evaluation(tmp_path):
    two_settings(tmp_path)
    args = report.ReportArgs(paths=(str(tmp_path / "*"),), plots=False, reps=2000, label_by=("lr",))
    runs = load_runs(collect_paths(args.paths), args.label_by)
    first, again = compute_report(runs, args), compute_report(runs, args)
    assert first == again
    at_2000 = compute_report(runs, report.ReportArgs(**{**vars(args), "step": 2000}))
    assert at_2000["steps"] == {"CartPole-v1": 2000}
    assert at_2000["metrics"]["Mean"] != first["metrics"]["Mean"]


# ----------------------------------------------------------------------------- normalisation
def test_atari_keys_and_tables():
    for env_id in ("ALE/MsPacman-v5", "MsPacmanNoFrameskip-v4", "ms_pacman", "mspacman", "MsPacman"):
        assert normalization.atari_game_key(env_id) == "mspacman"
    assert set(normalization.ATARI_100K_GAMES) <= set(normalization.ATARI_RANDOM_HUMAN)
    assert len(normalization.ATARI_100K_GAMES) == 26 and len(normalization.ATARI_RANDOM_HUMAN) == 57
    # Spot checks against the reference note's table (Dopamine's values, read independently).
    reference = {"Asterix": (210.0, 8503.3), "BeamRider": (363.9, 16926.5), "Seaquest": (68.4, 42054.7),
                 "Enduro": (0.0, 860.5), "Pong": (-20.7, 14.6), "Alien": (227.8, 7127.7)}  # fmt: skip
    for game, (random_score, human) in reference.items():
        bounds = normalization.atari_human_bounds(f"ALE/{game}-v5")
        assert (bounds.low, bounds.high) == (random_score, human)
        assert bounds.apply(human) == pytest.approx(1.0) and bounds.apply(random_score) == 0.0


def test_atari_human_normalisation_in_a_report(tmp_path):
    write_run(tmp_path, "pong0", env_id="ALE/Pong-v5", returns={100: [14.6, 14.6]})
    write_run(tmp_path, "pong1", env_id="ALE/Pong-v5", seed=1, returns={100: [-20.7, -20.7]})
    result = run_report(tmp_path / "*", normalize="atari-human")
    assert sorted(np.ravel(result["scores"]["dqn"])) == pytest.approx([0.0, 1.0])


def test_teacher_reference_and_minmax_normalisation(tmp_path):
    extra = {"teacher_return": 110.0, "random_return": 10.0, "reference_return": 210.0}
    write_run(tmp_path, "a", returns={50: [60.0]}, extra=extra)
    write_run(tmp_path, "b", seed=1, returns={50: [35.0]}, extra=extra)

    def scores(**settings) -> list[float]:
        return sorted(np.ravel(run_report(tmp_path / "*", **settings)["scores"]["dqn"]))

    assert scores(normalize="teacher") == pytest.approx([0.25, 0.5])
    assert scores(normalize="reference") == pytest.approx([0.125, 0.25])
    assert scores(normalize="minmax") == pytest.approx([0.0, 1.0])
    bounds_file = tmp_path / "bounds.json"
    bounds_file.write_text(json.dumps({"CartPole-v1": [0, 100]}))
    assert scores(normalize="minmax", bounds=bounds_file) == pytest.approx([0.35, 0.6])
    bounds_file.write_text(json.dumps({"Acrobot-v1": [0, 100]}))
    with pytest.raises(AnewError, match="no entry for task 'CartPole-v1'"):
        scores(normalize="minmax", bounds=bounds_file)


# ----------------------------------------------------------------------------- bad input
def test_empty_glob_is_an_error(tmp_path):
    with pytest.raises(AnewError, match="matches no file"):
        collect_paths([str(tmp_path / "nothing*")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnewError, match="no eval.json"):
        collect_paths([str(tmp_path / "empty")])


def test_different_step_budgets_in_one_task_name_the_runs(tmp_path):
    write_run(tmp_path, "short", returns={1000: [1.0], 2000: [2.0]})
    write_run(tmp_path, "long", seed=1, returns={1000: [1.0], 4000: [2.0]})
    with pytest.raises(AnewError, match=r"different steps .*short at 2000.*long at 4000.*--step"):
        run_report(tmp_path / "*")
    assert run_report(tmp_path / "*", step=1000)["steps"] == {"CartPole-v1": 1000}  # a common step works
    with pytest.raises(AnewError, match="no evaluation at step 3000"):
        run_report(tmp_path / "*", step=3000)


def test_task_missing_for_one_agent_names_agent_and_task(tmp_path):
    for seed in range(2):
        write_run(tmp_path, f"dqn-cp{seed}", seed=seed)
        write_run(tmp_path, f"dqn-ac{seed}", env_id="Acrobot-v1", seed=seed)
        write_run(tmp_path, f"c51-cp{seed}", agent="c51", seed=seed)
    with pytest.raises(AnewError, match="agent c51 has no run on task 'Acrobot-v1'"):
        run_report(tmp_path / "*")


def test_nan_scores_name_the_run(tmp_path):
    write_run(tmp_path, "fine")
    run_dir = write_run(tmp_path, "broken", seed=1)
    document = json.loads((run_dir / "eval.json").read_text())
    document["evaluations"][-1]["returns"][0] = float("nan")
    (run_dir / "eval.json").write_text(json.dumps(document))  # json writes NaN, as Python's json reads it
    with pytest.raises(AnewError, match=f"run {run_dir.resolve()} has a NaN"):
        run_report(tmp_path / "*")


def test_unknown_atari_game_is_named(tmp_path):
    write_run(tmp_path, "cartpole")
    with pytest.raises(AnewError, match="game 'cartpole'"):
        run_report(tmp_path / "*", normalize="atari-human")


def test_config_differences_need_a_label_and_duplicates_are_refused(tmp_path):
    two_settings(tmp_path / "a")
    with pytest.raises(AnewError, match="differ in config .*--label-by agent_config.lr"):
        run_report(tmp_path / "a" / "*")
    pooled = load_runs(collect_paths([str(tmp_path / "a" / "*")]), mixed_configs=True)
    assert {run.label for run in pooled} == {"dqn"}
    write_run(tmp_path / "b", "one", seed=4)
    write_run(tmp_path / "b", "two", seed=4)
    with pytest.raises(AnewError, match="both dqn on CartPole-v1 with seed 4"):
        run_report(tmp_path / "b" / "*")


def test_cli_prints_one_line_errors(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path / "missing*")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("anew: error:") and "missing*" in error and "\n" not in error
