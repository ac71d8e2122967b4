"""``anew sweep``: planning, the local process pool, Ray, failures and retries, and the final report.

Most tests launch a tiny stand-in trainer (written below into the test's folder) that takes the same
flags as ``anew train`` and writes a real ``eval.json``, so a sweep costs a fraction of a second per run;
one test launches the real ``anew train dqn`` for a short CartPole run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from anew.analysis.runs import collect_paths
from anew.errors import AnewError
from anew.runners import sweep

FAKE_TRAINER = """
import argparse, json, pathlib, sys
parser = argparse.ArgumentParser()
parser.add_argument("agent")
parser.add_argument("--env-id")
parser.add_argument("--seed", type=int)
parser.add_argument("--run-dir")
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--total-steps", type=int, default=300)
args = parser.parse_args()
folder = pathlib.Path(__file__).parent
with open(folder / "launches.txt", "a") as launches:
    launches.write(f"{args.agent} {args.lr} {args.seed}\\n")
marker = folder / f"fail-{args.lr}-{args.seed}"
run_dir = pathlib.Path(args.run_dir)
run_dir.mkdir(parents=True)
if marker.exists():  # fail once, leaving a partial run directory behind
    marker.unlink()
    print("simulated crash", file=sys.stderr)
    sys.exit(3)
steps = range(100, args.total_steps + 1, 100)
evaluations = [{"step": s, "returns": [args.lr * 1e5 * s / args.total_steps + args.seed] * 2,
                "lengths": [10, 10], "extra": {}} for s in steps]
config = {"agent": args.agent, "run": {"env_id": args.env_id, "seed": args.seed, "run_dir": args.run_dir,
          "total_steps": args.total_steps}, "agent_config": {"lr": args.lr}}
document = {"agent": args.agent, "env_id": args.env_id, "seed": args.seed, "config": config,
            "evaluations": evaluations}
(run_dir / "config.json").write_text(json.dumps(config))
(run_dir / "eval.json").write_text(json.dumps(document))
"""


def write_spec(folder: Path, out_dir: str = "runs", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    trainer = folder / "fake_train.py"
    trainer.write_text(FAKE_TRAINER)
    spec = folder / "sweep.toml"
    spec.write_text(
        f"""
out_dir = "{out_dir}"
envs = ["CartPole-v1"]
seeds = 2
command = {json.dumps([sys.executable, str(trainer)])}
train_args = {{total-steps = 300}}
report_args = ["--reps", "2000"]
{extra}
[agents.fast]
agent = "dqn"
train_args = {{lr = 1e-3}}
[agents.slow]
agent = "dqn"
train_args = {{lr = 3e-4}}
"""
    )
    return spec


def launches(folder: Path) -> list[str]:
    path = folder / "launches.txt"
    return path.read_text().splitlines() if path.exists() else []


# ----------------------------------------------------------------------------- planning
def test_a_toml_spec_and_flags_plan_the_same_runs(tmp_path):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text('out_dir = "out"\nenvs = ["CartPole-v1", "Acrobot-v1"]\nseeds = [3, 4]\nagents = ["dqn", "c51"]\n'
                         'train_args = {total-steps = 1000, double_q = true}\n')  # fmt: skip
    from_toml = sweep.plan_sweep(sweep.load_spec(sweep.SweepArgs(spec=spec_path)))
    from_flags = sweep.plan_sweep(sweep.load_spec(sweep.SweepArgs(
        agents=("dqn", "c51"), envs=("CartPole-v1", "Acrobot-v1"), seeds=(3, 4), out_dir=tmp_path / "out",
        train_args="--total-steps 1000 --double-q",
    )))  # fmt: skip
    assert len(from_toml.runs) == 2 * 2 * 2
    assert [r.command(["anew", "train"]) for r in from_toml.runs] == [
        r.command(["anew", "train"]) for r in from_flags.runs
    ]
    first = from_toml.runs[0].command(["anew", "train"])
    assert first == ["anew", "train", "dqn", "--env-id", "CartPole-v1", "--seed", "3", "--run-dir",
                     str(tmp_path / "out" / "CartPole-v1__dqn__3"), "--total-steps", "1000", "--double-q"]  # fmt: skip


def test_grid_overrides_multiply_agents_and_bad_specs_are_named(tmp_path):
    spec = {"out_dir": str(tmp_path), "envs": ["ALE/Pong-v5"], "seeds": 1, "agents": {"dqn": {}},
            "grid": {"lr": [1e-3, 1e-4], "n-step": [1, 3]}}  # fmt: skip
    planned = sweep.plan_sweep(spec)
    assert [run.label for run in planned.runs] == [
        "dqn[lr=0.001,n-step=1]", "dqn[lr=0.001,n-step=3]", "dqn[lr=0.0001,n-step=1]", "dqn[lr=0.0001,n-step=3]"
    ]  # fmt: skip
    assert planned.runs[0].name == "ALE-Pong-v5__dqn[lr=0.001,n-step=1]__0"
    assert planned.runs[-1].flags == ("--lr", "0.0001", "--n-step", "3")
    with pytest.raises(AnewError, match="unknown sweep keys \\['env'\\]"):
        sweep.plan_sweep({**spec, "env": "x"})
    with pytest.raises(AnewError, match="no seeds"):
        sweep.plan_sweep({**spec, "seeds": []})


# ----------------------------------------------------------------------------- running
def test_local_sweep_reports_failures_retries_only_them_and_ends_with_a_report(tmp_path, capsys):
    spec = write_spec(tmp_path)
    (tmp_path / "fail-0.001-1").touch()  # run fast/seed 1 crashes on its first attempt
    assert sweep.main([str(spec), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert (
        "FAILED (exit 3) CartPole-v1__fast__1" in err
        and "simulated crash" in err
        and "rerun the same command" in err
    )
    out_dir = tmp_path / "runs"
    manifest = json.loads((out_dir / "sweep.json").read_text())["runs"]
    assert {name: entry["status"] for name, entry in manifest.items()} == {
        "CartPole-v1__fast__0": "ok", "CartPole-v1__fast__1": "failed",
        "CartPole-v1__slow__0": "ok", "CartPole-v1__slow__1": "ok",
    }  # fmt: skip
    assert not (out_dir / "report").exists()

    assert sweep.main([str(spec), "--workers", "2"]) == 0  # the retry: only the failed run runs again
    assert sorted(launches(tmp_path)) == [
        "dqn 0.0003 0",
        "dqn 0.0003 1",
        "dqn 0.001 0",
        "dqn 0.001 1",
        "dqn 0.001 1",
    ]
    assert (out_dir / "failed" / "CartPole-v1__fast__1.1").is_dir()  # the crashed attempt, set aside
    (out_dir / "failed" / "CartPole-v1__fast__1.1" / "eval.json").write_text("{}")  # a half-written attempt
    assert len(collect_paths([str(out_dir)])) == 4  # reporting the folder ignores set-aside attempts
    result = json.loads((out_dir / "report" / "report.json").read_text())
    assert result["runs"] == {"fast": 2, "slow": 2}
    assert result["probability_of_improvement"]["fast>slow"]["point"] == 1.0
    assert (out_dir / "report" / "aggregates.png").stat().st_size > 10_000
    table = capsys.readouterr().out
    assert "| fast | 2 |" in table and "| slow | 2 |" in table


def test_retries_flag_and_rerunning_a_finished_sweep_launches_nothing(tmp_path):
    spec = write_spec(tmp_path, extra="")
    (tmp_path / "fail-0.0003-0").touch()
    assert sweep.main([str(spec), "--retries", "1", "--no-report"]) == 0
    assert len(launches(tmp_path)) == 5
    assert sweep.main([str(spec), "--no-report"]) == 0
    assert len(launches(tmp_path)) == 5


def test_a_finished_run_whose_flags_changed_in_the_spec_is_refused_not_silently_reused(tmp_path):
    spec = write_spec(tmp_path)
    assert sweep.main([str(spec), "--no-report"]) == 0
    spec.write_text(spec.read_text().replace("lr = 3e-4", "lr = 5e-4"))
    with pytest.raises(AnewError, match=r"2 finished runs .* other flags .*CartPole-v1__slow__0.*new label"):
        sweep.main([str(spec), "--no-report"])
    assert len(launches(tmp_path)) == 4  # nothing relaunched, nothing set aside
    assert not (tmp_path / "runs" / "failed").exists()
    spec.write_text(spec.read_text().replace("[agents.slow]", "[agents.slower]"))
    assert sweep.main([str(spec), "--no-report"]) == 0  # a new label runs alongside the old runs
    assert sorted(launches(tmp_path)[4:]) == ["dqn 0.0005 0", "dqn 0.0005 1"]


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray not installed (pip install 'anew[ray]')"
)
def test_ray_backend_writes_the_same_run_directories_and_report(tmp_path):
    import ray

    local = write_spec(tmp_path / "local")
    on_ray = write_spec(tmp_path / "ray")
    assert sweep.main([str(local), "--no-report"]) == 0
    try:
        assert sweep.main([str(on_ray), "--backend", "ray"]) == 0  # starts Ray on this machine, ray.init()
        assert not ray.is_initialized()  # and stops what it started
    finally:
        ray.shutdown()
    names = lambda folder: sorted(p.name for p in (folder / "runs").iterdir() if (p / "eval.json").is_file())
    assert names(tmp_path / "ray") == names(tmp_path / "local") == [
        "CartPole-v1__fast__0", "CartPole-v1__fast__1", "CartPole-v1__slow__0", "CartPole-v1__slow__1"
    ]  # fmt: skip
    for name in names(tmp_path / "local"):  # same runs, same results, wherever they ran
        local_eval = json.loads((tmp_path / "local" / "runs" / name / "eval.json").read_text())
        ray_eval = json.loads((tmp_path / "ray" / "runs" / name / "eval.json").read_text())
        assert local_eval["evaluations"] == ray_eval["evaluations"]
    result = json.loads((tmp_path / "ray" / "runs" / "report" / "report.json").read_text())
    assert result["runs"] == {"fast": 2, "slow": 2}


@pytest.mark.skipif(importlib.util.find_spec("anew.runners.train") is None, reason="anew train not available")
def test_a_real_short_cartpole_run_through_the_sweep(tmp_path):
    spec = tmp_path / "real.toml"
    spec.write_text(
        'out_dir = "runs"\nenvs = ["CartPole-v1"]\nseeds = [0]\nagents = ["dqn"]\n'
        "train_args = {total-steps = 600, eval-every = 300, eval-episodes = 2, learning-starts = 100}\n"
        'report_args = ["--reps", "1000", "--no-plots"]\n'
    )
    assert sweep.main([str(spec)]) == 0
    document = json.loads((tmp_path / "runs" / "CartPole-v1__dqn__0" / "eval.json").read_text())
    assert document["agent"] == "dqn" and [e["step"] for e in document["evaluations"]] == [300, 600]
    assert json.loads((tmp_path / "runs" / "report" / "report.json").read_text())["runs"] == {"dqn": 1}
