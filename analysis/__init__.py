"""Analysis of finished runs: aggregate metrics, score normalisation, run discovery, plots and reports.

Imports nothing of ``anew.runners`` (so notebooks and other tools can use it without the training
stack); the ``anew report`` command in ``anew.runners.report`` is a thin CLI over ``report``.

From Python: :func:`aggregate_estimates` turns ``{agent: (runs, tasks) scores}`` (rliable's ``score_dict``) into
IQM, median, mean and optimality gap with stratified-bootstrap intervals; :func:`score_matrices` builds that dict
from run folders (``eval.json``), normalised as ``anew report`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from anew.analysis.metrics import (
    Estimate,
    aggregate_estimates,
    iqm,
    performance_profile,
    probability_of_improvement_estimate,
)
from anew.analysis.runs import build_matrices, collect_paths, load_runs


def score_matrices(
    paths: Sequence[str | Path],
    normalize: str = "none",
    step: int | None = None,
    label_by: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """``{label: (runs, tasks)}`` final scores of the runs under ``paths`` (run folders, eval.json files or
    globs), normalised by ``normalize`` (none, minmax, reference, teacher, atari-human) at ``step`` (default: the
    final evaluation); labels are the agents (or ``label_by`` config keys), as in ``anew report``."""
    runs = load_runs(collect_paths([str(p) for p in paths]), label_by)
    return build_matrices(runs, step, normalize).scores


__all__ = [
    "Estimate",
    "aggregate_estimates",
    "build_matrices",
    "iqm",
    "load_runs",
    "performance_profile",
    "probability_of_improvement_estimate",
    "score_matrices",
]
