"""Rainbow vs DQN on MinAtar Breakout and SpaceInvaders: 5 seeds each, the same agent-step budget.

    python benchmarks/bench_rainbow_minatar.py --steps 100000 --workers 2 --out-dir runs/rainbow_minatar

Runs ``anew sweep`` (agents x games x seeds, one process per run, one torch thread each), which ends
with ``anew report`` over all runs (scores min-max normalised per game, so the two games pool). Then
reports each game on its own scale: ``anew report`` (IQM of the final evaluation's mean return, 95%
stratified-bootstrap interval) and mean +- standard error from the same eval.json files.

The agents share everything but Rainbow's parts and the learning rate: the small MinAtar conv torso,
Adam (eps 3.125e-4), batch 32, a 100k replay, learning from 1,000 steps, one update every 4 steps, a
target sync every 1,000 steps, evaluation epsilon 0.001. DQN: 1-step Huber TD, uniform replay, epsilon
1 -> 0.01 over 50k steps, lr 2.5e-4 (``dqn``) or 1e-3 (``dqn-lr1e-3``). Rainbow: the ``minatar`` preset
(C51 on [-100, 100], 3-step returns, prioritized replay, dueling, noisy nets instead of epsilon, double
Q) as it is now, lr 1e-3 and noise scale 0.5 (``rainbow-lr1e-3-sigma05``); with Dopamine's noise scale
0.1 (``rainbow-lr1e-3``); at DQN's lr 2.5e-4 and scale 0.1 (``rainbow``, the preset's first settings),
and from there ``rainbow-no-noisy`` (epsilon instead of noisy nets), ``rainbow-vmax10`` (support on
[-10, 10]) and ``rainbow-no-c51`` (a scalar Q head with the Huber TD loss). Rerunning the same command
skips finished runs. ``--first-seed 6 --agents rainbow-lr1e-3-sigma05 dqn-lr1e-3`` reruns a comparison on
fresh seeds (use a new ``--out-dir``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

GAMES = ("Breakout", "SpaceInvaders")
DQN_FLAGS = {
    "lr": 2.5e-4,
    "adam-eps": 3.125e-4,
    "batch-size": 32,
    "buffer-size": 100_000,
    "learning-starts": 1_000,
    "train-every": 4,
    "gradient-steps": 1,
    "target-update-every": 1_000,
    "epsilon-end": 0.01,
    "epsilon-decay-steps": 50_000,
    "eval-epsilon": 0.001,
    "loss": "huber",
    "max-grad-norm": 0.0,
}


def toml_value(value: object) -> str:
    return json.dumps(value)  # numbers and strings: JSON spelling is valid TOML


MINATAR = {"preset": "minatar"}
# label -> (agent, its own flags). Every agent pins what it ran with, so preset changes do not move it.
AGENTS: dict[str, tuple[str, dict[str, object]]] = {
    # Rainbow at DQN's lr and Dopamine's noise scale: the preset's first settings.
    "rainbow": ("rainbow", {**MINATAR, "lr": 2.5e-4, "noisy_sigma0": 0.1}),
    # ... without noisy nets, exploring with DQN's epsilon schedule.
    "rainbow-no-noisy": ("rainbow", {**MINATAR, "lr": 2.5e-4, "noisy": False}),
    # ... with its C51 support on [-10, 10] (Dopamine's Atari default).
    "rainbow-vmax10": ("rainbow", {**MINATAR, "lr": 2.5e-4, "noisy_sigma0": 0.1, "v_max": 10.0}),
    # ... Rainbow's other five parts on a scalar Q head (the part-by-part probe).
    "rainbow-no-c51": ("rainbow", {**MINATAR, "lr": 2.5e-4, "noisy_sigma0": 0.1, "distributional": False}),
    # lr 1e-3, 4x the others, with Dopamine's noise scale.
    "rainbow-lr1e-3": ("rainbow", {**MINATAR, "lr": 1e-3, "noisy_sigma0": 0.1}),
    # The `minatar` preset now: lr 1e-3 and the Rainbow paper's noise scale.
    "rainbow-lr1e-3-sigma05": ("rainbow", {**MINATAR, "lr": 1e-3, "noisy_sigma0": 0.5}),
    "dqn": ("dqn", DQN_FLAGS),
    # DQN with the same larger learning rate, so the lr is not Rainbow's alone.
    "dqn-lr1e-3": ("dqn", {**DQN_FLAGS, "lr": 1e-3}),
}


def toml_table(flags: dict[str, object]) -> str:
    return "{" + ", ".join(f"{key} = {toml_value(value)}" for key, value in flags.items()) + "}"


def write_spec(
    out_dir: Path, steps: int, seeds: list[int], eval_episodes: int, agents: list[str] | None = None
) -> Path:
    unknown = sorted(set(agents or ()) - set(AGENTS))
    if unknown:
        raise SystemExit(f"unknown agents {unknown}: pick from {', '.join(AGENTS)}")
    run_flags = {
        "total-steps": steps,
        "eval-every": max(steps // 5, 1),
        "eval-episodes": eval_episodes,
        "checkpoint-every": steps,
        "threads": 1,
    }
    lines = [
        f"out_dir = {toml_value(str(out_dir.resolve()))}",  # a relative one would be relative to the spec
        f"envs = {json.dumps([f'anew/MinAtar-{game}-v0' for game in GAMES])}",
        f"seeds = {seeds}",
        f"train_args = {toml_table(run_flags)}",
        'report_args = ["--normalize", "minmax"]',
    ]
    for label, (agent, flags) in AGENTS.items():
        if not agents or label in agents:
            lines += ["", f"[agents.{label}]", f'agent = "{agent}"', f"train_args = {toml_table(flags)}"]
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = out_dir / "spec.toml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def final_scores(out_dir: Path) -> dict[tuple[str, str], list[tuple[float, Path]]]:
    """(agent, game) -> [(mean return of the final evaluation, run dir)] over the finished runs."""
    scores: dict[tuple[str, str], list[tuple[float, Path]]] = {}
    runs = json.loads((out_dir / "sweep.json").read_text())["runs"]
    for entry in runs.values():
        path = Path(entry["run_dir"]) / "eval.json"
        if entry["status"] != "ok" or not path.exists():
            continue
        document = json.loads(path.read_text())
        game = document["env_id"].split("MinAtar-")[1].removesuffix("-v0")
        scores.setdefault((entry["label"], game), []).append(
            (float(np.mean(document["evaluations"][-1]["returns"])), path.parent)
        )
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps per run")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--agents", nargs="*", help="run only these agents (labels of the [agents.*] tables)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=Path("runs/rainbow_minatar"))
    args = parser.parse_args()

    from anew.runners import sweep

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    spec = write_spec(args.out_dir, args.steps, seeds, args.eval_episodes, args.agents)
    status = sweep.main([str(spec), "--workers", str(args.workers)])
    if status != 0:
        return status
    scores = final_scores(args.out_dir)
    print(
        f"\nFinal evaluation ({args.eval_episodes} episodes) after {args.steps} agent steps, "
        f"{args.seeds} seeds: mean +- standard error over seeds"
    )
    print("| game | agent | mean +- s.e. | per seed |\n|---|---|---|---|")
    for (agent, game), runs in sorted(scores.items(), key=lambda item: (item[0][1], item[0][0])):
        values = np.array([score for score, _ in runs])
        error = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
        print(
            f"| {game} | {agent} | {values.mean():.2f} +- {error:.2f} | {', '.join(f'{v:.1f}' for v in values)} |"
        )
    try:
        from anew.runners import report
    except ImportError:
        return 0
    for game in GAMES:
        runs = [str(run_dir) for (_, g), items in scores.items() if g == game for _, run_dir in items]
        print(f"\n### MinAtar {game}: anew report (IQM, 95% stratified bootstrap)")
        sys.stdout.flush()
        report.main(
            [
                *runs,
                "--out-dir",
                str(args.out_dir / "report" / game),
                "--json",
                str(args.out_dir / "report" / game / "report.json"),
            ]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
