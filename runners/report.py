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
  each setting as its own agent, e.g. ``dqn[lr=0.001]``, or ``--mixed-configs`` to pool them.
- Every agent needs every task and the same number of runs on each of its tasks (rliable's
  runs x tasks matrix); scores must be finite. Anything else is an error naming the run, task or agent.

Outputs: the Markdown table on stdout; with ``--json PATH`` every number as
``{"metrics": {METRIC: {AGENT: {"point", "low", "high"}}}, "probability_of_improvement": {"A>B": {...}},
"tasks": [...], "runs": {AGENT: runs per task}, ...}`` plus the settings, the evaluated step per task,
the score matrices with their run directories, ``"performance_profiles": {"taus", "agents"}`` and
``"sample_efficiency": {AGENT: {"steps", "IQM"}}`` (each "better > worse" pair is ordered by IQM); PNG
figures in ``--out-dir`` (see ``anew.analysis.plots``). The report itself is built by
``anew.analysis.report`` from runs read by ``anew.analysis.runs``; this module is its command line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from anew.analysis.report import ReportSettings, compute_report, markdown_table, write_plots
from anew.analysis.runs import collect_paths, load_runs


@dataclass(kw_only=True)
class ReportArgs(ReportSettings):
    """Aggregate evaluation results of many runs the way rliable does, with intervals and figures."""

    paths: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIRS_OR_GLOBS")]
    """run directories, eval.json files, folders of runs, or globs of these"""
    json: Path | None = None
    """also write every number to this JSON file"""
    out_dir: Path = Path("report")
    """folder for the PNG figures"""
    plots: bool = True
    """draw the PNG figures"""
    label_by: tuple[str, ...] = ()
    """config keys that tell settings of one agent apart, e.g. --label-by lr (dotted for nested keys)"""
    mixed_configs: bool = False
    """pool runs of one agent even if their configs differ"""


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
