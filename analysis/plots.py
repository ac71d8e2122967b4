"""Paper-style figures for ``anew report``, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Four figures, each one PNG:
- interval estimates: one panel per aggregate metric, a bar per agent spanning its 95% interval with the
  point estimate marked (the rliable figure);
- performance profiles: fraction of runs with score > tau, with pointwise bands;
- sample-efficiency curves: an aggregate against training steps, with pointwise bands;
- probability of improvement: P(X > Y) with intervals for each pair of agents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from anew.analysis.metrics import Estimate

# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in grayscale print.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
DPI = 150


def agent_colors(agents: Sequence[str]) -> dict[str, str]:
    """A fixed colour per agent, the same in every figure of a report."""
    return {agent: PALETTE[index % len(PALETTE)] for index, agent in enumerate(agents)}


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _tidy(axis) -> None:
    axis.spines["top"].set_visible(False)
    axis.spines["right"].set_visible(False)
    axis.grid(True, alpha=0.25, linewidth=0.6)
    axis.set_axisbelow(True)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def plot_interval_estimates(
    estimates: Mapping[str, Mapping[str, Estimate]],
    path: Path,
    colors: Mapping[str, str],
    xlabel: str,
    confidence: float = 0.95,
) -> Path:
    """One panel per metric; each agent a bar over its interval with a tick at the point estimate."""
    metric_names = list(estimates)
    agents = list(colors)
    figure = _new_figure(2.6 * len(metric_names) + 1.2, 0.45 * len(agents) + 1.3)
    axes = figure.subplots(1, len(metric_names), sharey=True, squeeze=False)[0]
    for axis, metric in zip(axes, metric_names):
        for row, agent in enumerate(agents):
            estimate = estimates[metric][agent]
            axis.barh(
                row,
                estimate.high - estimate.low,
                left=estimate.low,
                height=0.6,
                color=colors[agent],
                alpha=0.75,
            )
            axis.vlines(estimate.point, row - 0.3, row + 0.3, color="black", linewidth=1.6)
        axis.set_title(metric, fontsize=11)
        axis.set_yticks(range(len(agents)), agents)
        axis.set_ylim(-0.6, len(agents) - 0.4)
        axis.invert_yaxis()
        axis.xaxis.set_major_locator(MaxNLocator(4))
        _tidy(axis)
        axis.grid(False, axis="y")
    figure.supxlabel(f"{xlabel} ({confidence:.0%} stratified-bootstrap intervals)", fontsize=10)
    return _save(figure, path)


def plot_performance_profiles(
    taus: np.ndarray,
    profiles: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    colors: Mapping[str, str],
    xlabel: str,
) -> Path:
    """Fraction of runs x tasks with score above tau, one line with a band per agent."""
    figure = _new_figure(5.2, 3.6)
    axis = figure.subplots()
    for agent, (point, low, high) in profiles.items():
        # Profiles are step functions of tau: draw them as steps, not as slopes between grid points.
        axis.plot(taus, point, color=colors[agent], linewidth=2, label=agent, drawstyle="steps-post")
        axis.fill_between(taus, low, high, color=colors[agent], alpha=0.2, linewidth=0, step="post")
    axis.set_xlabel(f"{xlabel} (\u03c4)")
    axis.set_ylabel("Fraction of runs with score > \u03c4")
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlim(taus[0], taus[-1])
    axis.legend(frameon=False)
    _tidy(axis)
    return _save(figure, path)


def plot_sample_efficiency(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    colors: Mapping[str, str],
    ylabel: str,
) -> Path:
    """An aggregate (e.g. IQM) against agent steps, ``curves[agent] = (steps, point, low, high)``."""
    figure = _new_figure(5.2, 3.6)
    axis = figure.subplots()
    for agent, (steps, point, low, high) in curves.items():
        axis.plot(steps, point, color=colors[agent], linewidth=2, marker="o", markersize=3, label=agent)
        axis.fill_between(steps, low, high, color=colors[agent], alpha=0.2, linewidth=0)
    axis.set_xlabel("Agent steps")
    axis.set_ylabel(ylabel)
    axis.xaxis.set_major_formatter(EngFormatter(sep=""))  # 20k, 1.5M: readable step counts
    axis.legend(frameon=False, loc="best")
    _tidy(axis)
    return _save(figure, path)


def plot_probability_of_improvement(
    pairs: Mapping[str, Estimate], path: Path, colors: Mapping[str, str], confidence: float = 0.95
) -> Path:
    """P(X > Y) per pair ``"X>Y"``: a bar over the interval, a tick at the estimate, a line at 0.5."""
    names = list(pairs)
    figure = _new_figure(5.2, 0.45 * len(names) + 1.3)
    axis = figure.subplots()
    for row, name in enumerate(names):
        estimate = pairs[name]
        color = colors.get(name.split(">", 1)[0], PALETTE[0])
        axis.barh(row, estimate.high - estimate.low, left=estimate.low, height=0.6, color=color, alpha=0.75)
        axis.vlines(estimate.point, row - 0.3, row + 0.3, color="black", linewidth=1.6)
    axis.axvline(0.5, color="gray", linestyle="--", linewidth=1)
    axis.set_yticks(range(len(names)), [name.replace(">", " > ") for name in names])
    axis.set_ylim(-0.6, len(names) - 0.4)
    axis.invert_yaxis()
    axis.set_xlim(0.0, 1.0)
    axis.set_xlabel("P(X > Y)")
    axis.set_title(f"Probability of improvement, {confidence:.0%} intervals", fontsize=10)
    _tidy(axis)
    axis.grid(False, axis="y")
    return _save(figure, path)
