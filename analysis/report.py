"""A report of many runs: rliable-style aggregates with intervals, a Markdown table and PNG figures.

Scoring runs (``compute_report``):
- A run's score on its task is the mean of the returns of one evaluation: the last one, or the one at
  ``step``. All runs on a task must be compared at the same step.
- Runs are grouped by their label (see ``anew.analysis.runs.load_runs``) and by ``env_id`` (the task).
- Every agent needs every task and the same number of runs on each of its tasks (rliable's
  runs x tasks matrix); scores must be finite. Anything else is an error naming the run, task or agent.

The result is one JSON-ready dict: ``{"metrics": {METRIC: {AGENT: {"point", "low", "high"}}},
"probability_of_improvement": {"A>B": {...}}, "tasks": [...], "runs": {AGENT: runs per task}, ...}`` plus
the settings, the evaluated step per task, the score matrices with their run directories,
``"performance_profiles": {"taus", "agents"}`` and ``"sample_efficiency": {AGENT: {"steps", "IQM"}}``
(each "better > worse" pair is ordered by IQM). ``markdown_table`` and ``write_plots`` (see
``anew.analysis.plots``) render it. The ``anew report`` command (``anew.runners.report``) is a thin CLI
over this module.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from anew.analysis import metrics, normalization, plots
from anew.analysis.runs import Run, build_matrices

Scheme = Literal["none", "atari-human", "teacher", "reference", "minmax"]


@dataclass
class ReportSettings:
    """How runs are scored and how their intervals are estimated."""

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
    gamma: float | None = None
    """optimality-gap threshold in score units (default 1.0 for normalised scores); with raw returns the
    Optimality Gap is left out unless --gamma gives a return to measure it against"""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _interval(estimate: metrics.Estimate) -> str:
    """Point [low, high] with one precision: 3 decimals for normalised scores, 1 for large returns."""
    largest = max(abs(estimate.point), abs(estimate.low), abs(estimate.high))
    digits = 3 if largest < 100 else 1
    return f"{estimate.point:.{digits}f} [{estimate.low:.{digits}f}, {estimate.high:.{digits}f}]"


def markdown_table(result: dict) -> str:
    """The report as Markdown: a heading, the interval table and the probability-of-improvement table."""
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
        gap = (
            f"Optimality Gap is measured below gamma = {settings['gamma']} in raw return units."
            if "Optimality Gap" in result["metrics"]
            else "No Optimality Gap for raw returns: pass --gamma (e.g. the maximum return) or normalise."
        )
        lines += ["", gap]
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


def compute_report(runs: list[Run], settings: ReportSettings) -> dict:
    """Every number of the report as a JSON-ready dict."""
    scheme_bounds = normalization.load_bounds_file(settings.bounds) if settings.bounds else None
    data = build_matrices(runs, settings.step, settings.normalize, scheme_bounds)
    agents, tasks = list(data.scores), data.tasks
    statistics = dict(metrics.METRICS)
    gamma = settings.gamma if settings.gamma is not None else (None if settings.normalize == "none" else 1.0)
    if gamma is None:  # a gap below 1.0 in raw return units means nothing (an empty panel at 0)
        del statistics["Optimality Gap"]
    else:
        statistics["Optimality Gap"] = lambda scores: metrics.optimality_gap(scores, gamma)
    estimates = metrics.aggregate_estimates(
        data.scores, statistics, settings.reps, settings.seed, settings.task_bootstrap, settings.confidence
    )
    # Each pair reads "better > worse" by IQM, so the plot shows how sure the lead is.
    improvement = {}
    for first, second in itertools.combinations(agents, 2):
        x, y = sorted((first, second), key=lambda agent: -estimates["IQM"][agent].point)
        improvement[f"{x}>{y}"] = metrics.probability_of_improvement_estimate(
            data.scores[x], data.scores[y], settings.reps, settings.seed, settings.confidence
        )
    all_scores = np.concatenate([scores.ravel() for scores in data.scores.values()])
    low, high = float(all_scores.min()), float(all_scores.max())
    margin = 0.05 * (high - low) if high > low else 0.5
    taus = np.linspace(low - margin, high + margin, 101)
    profiles = {
        agent: metrics.performance_profile(
            scores,
            taus,
            reps=settings.reps,
            seed=settings.seed,
            task_bootstrap=settings.task_bootstrap,
            confidence=settings.confidence,
        )
        for agent, scores in data.scores.items()
    }
    curves = {
        agent: (
            steps,
            *metrics.sample_efficiency_curve(
                curve, metrics.iqm, settings.reps, settings.seed, settings.task_bootstrap, settings.confidence
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
            "normalize": settings.normalize,
            "step": settings.step,
            "step_description": data.step_description,
            "reps": settings.reps,
            "seed": settings.seed,
            "confidence": settings.confidence,
            "task_bootstrap": settings.task_bootstrap,
            "gamma": gamma,
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
