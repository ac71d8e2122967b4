"""``anew report RUN_DIRS_OR_GLOBS...``: rliable-style aggregates, a Markdown table, JSON and PNG figures.

Reading runs:
- Each argument is a run directory (holding ``eval.json``), an eval.json file, a folder searched
  recursively for ``eval.json`` files, or a glob of any of these. A pattern that matches nothing is an
  error; a folder with no ``eval.json`` below it, or a file a glob matched that is not named eval.json,
  is skipped with a note on stderr.
- A run's score on its task is the mean of the returns of one evaluation: the last one, or the one at
  ``--step N``. All runs on a task must be compared at the same step.
- Runs are grouped by the ``agent`` field (or the label ``anew sweep`` gave the run in ``sweep.json``)
  and by ``env_id`` (the task). If runs of one agent
  on one task differ in their config (ignoring per-run keys such as seed and run_dir), the report stops
  and names the differing keys: pass ``--label-by KEY`` (repeatable, dotted for nested keys) to report
  each setting as its own agent, e.g. ``dqn[learning_rate=0.001]``, or ``--mixed-configs`` to pool them.
- Every agent needs every task and the same number of runs on each of its tasks (rliable's
  runs x tasks matrix); scores must be finite. Anything else is an error naming the run, task or agent.

Outputs: the Markdown table on stdout; with ``--json PATH`` every number as
``{"metrics": {METRIC: {AGENT: {"point", "low", "high"}}}, "probability_of_improvement": {"A>B": {...}},
"tasks": [...], "runs": {AGENT: runs per task}, ...}`` plus the settings, the evaluated step per task,
the score matrices with their run directories, ``"performance_profiles": {"taus", "agents"}`` and
``"sample_efficiency": {AGENT: {"steps", "IQM"}}`` (each "better > worse" pair is ordered by IQM); PNG
figures in ``--out-dir`` (see ``anew.runners.plots``).
"""

from __future__ import annotations

import glob
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

from anew.errors import AnewError
from anew.runners import metrics, normalization, plots
from anew.runners.report_data import Run, build_matrices, load_runs

Scheme = Literal["none", "atari-human", "teacher", "reference", "minmax"]


@dataclass
class ReportArgs:
    """Aggregate evaluation results of many runs the way rliable does, with intervals and figures."""

    paths: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIRS_OR_GLOBS")]
    """run directories, eval.json files, folders of runs, or globs of these"""
    json: Path | None = None
    """also write every number to this JSON file"""
    out_dir: Path = Path("report")
    """folder for the PNG figures"""
    plots: bool = True
    """draw the PNG figures"""
    normalize: Scheme = "none"
    """score scale: atari-human, teacher (extra teacher_return/random_return), reference (extra
    reference_return/random_return), minmax (--bounds file, else data min/max per task) or none"""
    bounds: Path | None = None
    """JSON/TOML {env_id: [low, high]} for --normalize minmax (e.g. random and optimal returns)"""
    step: int | None = None
    """which evaluation to score: the one at this agent step (None: each run's last)"""
    reps: int = metrics.DEFAULT_REPS
    """bootstrap resamples"""
    seed: int = 0
    """bootstrap seed: the same seed gives bit-identical intervals"""
    confidence: float = 0.95
    """interval coverage"""
    task_bootstrap: bool = False
    """resample tasks as well as runs (uncertainty over the choice of tasks)"""
    gamma: float = 1.0
    """optimality-gap threshold, in normalised score units"""
    label_by: tuple[str, ...] = ()
    """config keys that tell settings of one agent apart, e.g. --label-by learning_rate"""
    mixed_configs: bool = False
    """pool runs of one agent even if their configs differ"""


def _set_aside_by_sweep(path: Path) -> bool:
    """Attempts ``anew sweep`` moved to ``OUT/failed/`` are history, not results."""
    return any(
        parent.name == "failed" and (parent.parent / "sweep.json").is_file() for parent in path.parents
    )


def collect_paths(patterns: tuple[str, ...] | list[str]) -> list[Path]:
    """The eval.json files named by run dirs, files, folders and globs; skipped folders go to stderr."""
    if not patterns:
        raise AnewError("no run directories given; pass run dirs or globs, e.g. anew report runs/*")
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        matches = [Path(match) for match in matches if Path(match).exists()]
        if not matches:
            raise AnewError(f"{pattern!r} matches no file or directory; check the path or the glob")
        for match in matches:
            if match.is_file() and (match.name == "eval.json" or not glob.has_magic(pattern)):
                found.append(match)
            elif match.is_file():
                print(f"anew report: skipping {match}: not an eval.json", file=sys.stderr)
            elif (match / "eval.json").is_file():
                found.append(match / "eval.json")
            else:
                below = [path for path in sorted(match.rglob("eval.json")) if not _set_aside_by_sweep(path)]
                if not below:
                    print(f"anew report: skipping {match}: no eval.json in it", file=sys.stderr)
                found.extend(below)
    unique = list(dict.fromkeys(path.resolve() for path in found))
    if not unique:
        raise AnewError(
            f"no eval.json found under {' '.join(patterns)}; point anew report at run directories"
        )
    return unique


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _interval(estimate: metrics.Estimate) -> str:
    """Point [low, high] with one precision: 3 decimals for normalised scores, 1 for large returns."""
    largest = max(abs(estimate.point), abs(estimate.low), abs(estimate.high))
    digits = 3 if largest < 100 else 1
    return f"{estimate.point:.{digits}f} [{estimate.low:.{digits}f}, {estimate.high:.{digits}f}]"


def markdown_table(result: dict) -> str:
    settings = result["settings"]
    tasks = result["tasks"]
    task_text = ", ".join(tasks) if len(tasks) <= 6 else f"{', '.join(tasks[:6])}, ..."
    lines = [
        f"## {_plural(len(result['runs']), 'agent')} on {_plural(len(tasks), 'task')} ({task_text})",
        "",
        (
            f"Scores: {result['score_description']}; evaluation: {settings['step_description']}. "
            f"{settings['confidence']:.0%} stratified-bootstrap percentile intervals, {settings['reps']:,} "
            f"resamples{' (tasks resampled too)' * settings['task_bootstrap']}, seed {settings['seed']}."
        ),
        "",
    ]
    names = list(result["metrics"])
    lines.append("| Agent | Runs per task | " + " | ".join(names) + " |")
    lines.append("|---|---:|" + "---:|" * len(names))
    for agent, runs in result["runs"].items():
        cells = [_interval(metrics.Estimate(**result["metrics"][name][agent])) for name in names]
        lines.append(f"| {agent} | {runs} | " + " | ".join(cells) + " |")
    if settings["normalize"] == "none":
        lines += [
            "",
            (
                f"Optimality Gap is measured below gamma = {settings['gamma']} in raw return units "
                "(pass --gamma, e.g. the maximum return, or normalise the scores)."
            ),
        ]
    if result["probability_of_improvement"]:
        lines += ["", "| Probability of improvement | P(X > Y) |", "|---|---:|"]
        for pair, numbers in result["probability_of_improvement"].items():
            lines.append(f"| {pair.replace('>', ' > ')} | {_interval(metrics.Estimate(**numbers))} |")
    return "\n".join(lines)


def _score_axis_label(scheme: str) -> str:
    return {
        "none": "Return",
        "atari-human": "Human-normalised score",
        "teacher": "Teacher-normalised score",
        "reference": "Reference-normalised score",
        "minmax": "Min-max normalised score",
    }[scheme]


def compute_report(runs: list[Run], args: ReportArgs) -> dict:
    """Every number of the report as a JSON-ready dict."""
    scheme_bounds = normalization.load_bounds_file(args.bounds) if args.bounds else None
    data = build_matrices(runs, args.step, args.normalize, scheme_bounds)
    agents, tasks = list(data.scores), data.tasks
    statistics = dict(metrics.METRICS)
    statistics["Optimality Gap"] = lambda scores: metrics.optimality_gap(scores, args.gamma)
    estimates = metrics.aggregate_estimates(
        data.scores, statistics, args.reps, args.seed, args.task_bootstrap, args.confidence
    )
    # Each pair reads "better > worse" by IQM, so the plot shows how sure the lead is.
    improvement = {}
    for first, second in itertools.combinations(agents, 2):
        x, y = sorted((first, second), key=lambda agent: -estimates["IQM"][agent].point)
        improvement[f"{x}>{y}"] = metrics.probability_of_improvement_estimate(
            data.scores[x], data.scores[y], args.reps, args.seed, args.confidence
        )
    all_scores = np.concatenate([scores.ravel() for scores in data.scores.values()])
    low, high = float(all_scores.min()), float(all_scores.max())
    margin = 0.05 * (high - low) if high > low else 0.5
    taus = np.linspace(low - margin, high + margin, 101)
    profiles = {
        agent: metrics.performance_profile(
            scores,
            taus,
            reps=args.reps,
            seed=args.seed,
            task_bootstrap=args.task_bootstrap,
            confidence=args.confidence,
        )
        for agent, scores in data.scores.items()
    }
    curves = {
        agent: (
            steps,
            *metrics.sample_efficiency_curve(
                curve, metrics.iqm, args.reps, args.seed, args.task_bootstrap, args.confidence
            ),
        )
        for agent, (steps, curve) in data.curves.items()
    }
    as_list = lambda array: [float(value) for value in array]
    return {
        "metrics": {
            name: {a: e.as_dict() for a, e in by_agent.items()} for name, by_agent in estimates.items()
        },
        "probability_of_improvement": {pair: e.as_dict() for pair, e in improvement.items()},
        "tasks": tasks,
        "runs": {agent: int(scores.shape[0]) for agent, scores in data.scores.items()},
        "score_description": data.description,
        "settings": {
            "normalize": args.normalize,
            "step": args.step,
            "step_description": data.step_description,
            "reps": args.reps,
            "seed": args.seed,
            "confidence": args.confidence,
            "task_bootstrap": args.task_bootstrap,
            "gamma": args.gamma,
        },
        "steps": data.steps,
        "scores": {agent: scores.tolist() for agent, scores in data.scores.items()},
        "run_dirs": data.run_dirs,
        "performance_profiles": {
            "taus": as_list(taus),
            "agents": {
                a: {"point": as_list(p), "low": as_list(lo), "high": as_list(hi)}
                for a, (p, lo, hi) in profiles.items()
            },
        },
        "sample_efficiency": {
            agent: {
                "steps": [int(s) for s in steps],
                "IQM": {"point": as_list(p), "low": as_list(lo), "high": as_list(hi)},
            }
            for agent, (steps, p, lo, hi) in curves.items()
        },
    }


def write_plots(result: dict, out_dir: Path) -> list[Path]:
    """The four figures of a report, from its JSON-ready dict."""
    agents = list(result["runs"])
    colors = plots.agent_colors(agents)
    confidence = result["settings"]["confidence"]
    axis_label = _score_axis_label(result["settings"]["normalize"])
    estimates = {
        name: {agent: metrics.Estimate(**numbers) for agent, numbers in by_agent.items()}
        for name, by_agent in result["metrics"].items()
    }
    written = [
        plots.plot_interval_estimates(estimates, out_dir / "aggregates.png", colors, axis_label, confidence)
    ]
    profiles = result["performance_profiles"]
    taus = np.array(profiles["taus"])
    written.append(
        plots.plot_performance_profiles(
            taus,
            {
                a: (np.array(p["point"]), np.array(p["low"]), np.array(p["high"]))
                for a, p in profiles["agents"].items()
            },
            out_dir / "performance_profiles.png",
            colors,
            axis_label,
        )
    )
    curves = {
        agent: (
            np.array(c["steps"]),
            np.array(c["IQM"]["point"]),
            np.array(c["IQM"]["low"]),
            np.array(c["IQM"]["high"]),
        )
        for agent, c in result["sample_efficiency"].items()
    }
    if curves:
        written.append(
            plots.plot_sample_efficiency(
                curves, out_dir / "sample_efficiency.png", colors, f"IQM {axis_label.lower()}"
            )
        )
    if result["probability_of_improvement"]:
        pairs = {pair: metrics.Estimate(**n) for pair, n in result["probability_of_improvement"].items()}
        written.append(
            plots.plot_probability_of_improvement(
                pairs, out_dir / "probability_of_improvement.png", colors, confidence
            )
        )
    return written


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(ReportArgs, args=argv, prog="anew report")
    runs = load_runs(collect_paths(args.paths), args.label_by, args.mixed_configs)
    result = compute_report(runs, args)
    print(markdown_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nnumbers written to {args.json}")
    if args.plots:
        written = write_plots(result, args.out_dir)
        print(f"figures written to {', '.join(str(path) for path in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
