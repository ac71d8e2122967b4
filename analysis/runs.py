"""From run folders to rliable's score matrices, refusing anything that would silently skew them.

``collect_paths`` finds the ``eval.json`` files named by run directories, files, folders and globs.
``load_runs`` reads and validates run files and gives each run its label: the agent, the label
``anew sweep`` recorded in the ``sweep.json`` next to the run directory, or with ``--label-by`` the agent
plus those config values. ``build_matrices`` picks each run's evaluation, normalises it, and lays the
scores out as ``{label: (runs, tasks)}`` plus ``{label: (steps, (runs, tasks, points))}`` for curves.
"""

from __future__ import annotations

import difflib
import functools
import glob
import json
import math
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anew.analysis.normalization import (
    SCHEMES,
    Bounds,
    atari_human_bounds,
    data_bounds,
    reference_bounds,
    teacher_bounds,
)
from anew.errors import AnewError

# Config keys (last dotted part) that differ between runs of one setting by design, or do not change
# results; they never split or block a group. Keys ending in _dir or _path are skipped too. Budgets
# (total_steps, eval_every) are left to the step check, which names the runs and suggests --step.
PER_RUN_KEYS = frozenset(
    [
        "seed",
        "env_id",
        "device",
        "exp_name",
        "track",
        "capture_video",
        "cuda",
        "torch_deterministic",
        "threads",
        "wandb_project_name",
        "wandb_entity",
        "anew_version",
        "version",
        "time",
        "start_time",
        "hostname",
        "resume",
        "progress",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "total_steps",
        "eval_every",
    ]
)


@dataclass
class Run:
    path: Path  # the eval.json file
    agent: str
    label: str
    env_id: str
    seed: int
    config: dict[str, Any]  # flattened, dotted keys
    evaluations: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)  # eval.json top-level "extra", if any

    @property
    def name(self) -> str:
        return str(self.path.parent)

    def steps(self) -> list[int]:
        return [int(evaluation["step"]) for evaluation in self.evaluations]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_run(path: Path) -> Run:
    """One eval.json (docs/design.md section 6), checked field by field."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        if path.name != "eval.json":
            raise AnewError(
                f"{path} is not a run directory or an eval.json file; pass run directories (each holds an "
                "eval.json), eval.json files, or folders of runs"
            ) from None
        raise AnewError(f"cannot read {path}: {error}; is the run still writing it?") from None
    if not isinstance(data, dict):
        raise AnewError(f"{path} is not an eval.json object")
    missing = [key for key in ("agent", "env_id", "seed", "evaluations") if key not in data]
    if missing:
        raise AnewError(
            f"{path} lacks {', '.join(missing)}; eval.json needs agent, env_id, seed, evaluations"
        )
    evaluations = data["evaluations"]
    if not isinstance(evaluations, list) or not evaluations:
        raise AnewError(f"{path} has no evaluations; let the run finish its first evaluation")
    for index, evaluation in enumerate(evaluations):
        returns = evaluation.get("returns") if isinstance(evaluation, dict) else None
        if "step" not in evaluation or not isinstance(returns, list) or not returns:
            raise AnewError(f"{path}: evaluation {index} needs a step and a non-empty returns list")
        if not all(isinstance(r, (int, float)) and math.isfinite(r) for r in returns):
            raise AnewError(
                f"run {path.parent} has a NaN or infinite return at step {evaluation['step']}; "
                "fix or remove that run before reporting"
            )
    config = data.get("config") or {}
    config_file = path.parent / "config.json"
    if not config and config_file.is_file():
        config = json.loads(config_file.read_text())
    agent = str(data["agent"])
    return Run(
        path,
        agent,
        agent,
        str(data["env_id"]),
        int(data["seed"]),
        flatten(config),
        evaluations,
        dict(data.get("extra") or {}),
    )


def _is_per_run(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last in PER_RUN_KEYS or last.endswith(("_dir", "_path"))


def resolve_key(run: Run, key: str) -> str:
    """``KEY`` as a full dotted config key: exact, or the one key whose last parts are ``KEY``."""
    if key in run.config:
        return key
    matches = [full for full in run.config if full.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        names = sorted({full.rsplit(".", 1)[-1] for full in run.config if not _is_per_run(full)})
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise AnewError(
            f"run {run.name} has no config key {key!r} for --label-by; {hint}its keys are {', '.join(names)}"
        )
    raise AnewError(
        f"--label-by {key} is ambiguous in run {run.name} ({', '.join(matches)}); give the dotted key"
    )


def _differing_keys(runs: list[Run]) -> list[str]:
    keys = {key for key in set().union(*(run.config for run in runs)) if not _is_per_run(key)}
    return sorted(
        key for key in keys if len({json.dumps(run.config.get(key), sort_keys=True) for run in runs}) > 1
    )


@functools.cache
def _sweep_labels(folder: Path) -> dict[str, str]:
    """Labels ``anew sweep`` recorded in ``folder/sweep.json`` for its run directories (run name -> label)."""
    manifest = folder / "sweep.json"
    if not manifest.is_file():
        return {}
    try:
        entries = json.loads(manifest.read_text())["runs"]
        return {name: str(entry["label"]) for name, entry in entries.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise AnewError(f"cannot read run labels from {manifest}; delete it or use --label-by KEY")


def load_runs(paths: list[Path], label_by: tuple[str, ...] = (), mixed_configs: bool = False) -> list[Run]:
    """Read runs, label them, and refuse duplicates or unlabelled config differences within a group."""
    runs = [read_run(path) for path in paths]
    for run in runs:
        sweep_label = _sweep_labels(run.path.parent.parent).get(run.path.parent.name)
        if sweep_label and not label_by:
            run.label = sweep_label
        if label_by:
            values = [f"{key}={run.config[resolve_key(run, key)]}" for key in label_by]
            run.label = f"{run.agent}[{','.join(values)}]"
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.label, run.env_id].append(run)
    for (label, env_id), group in groups.items():
        differing = [] if mixed_configs else _differing_keys(group)
        if differing:
            examples = "; ".join(
                f"{key}: " + ", ".join(sorted({repr(run.config.get(key)) for run in group}))
                for key in differing[:3]
            )
            raise AnewError(
                f"runs of {label} on {env_id} differ in config ({examples}); pass --label-by "
                f"{differing[0]} to report each setting separately, or --mixed-configs to pool them"
            )
        seen: dict[tuple[int, str], Run] = {}
        for run in group:  # the same seed and setting twice is almost always one run copied or rerun
            setting = json.dumps(
                {k: v for k, v in run.config.items() if not _is_per_run(k)}, sort_keys=True, default=str
            )
            if (run.seed, setting) in seen:
                raise AnewError(
                    f"runs {seen[run.seed, setting].name} and {run.name} are both {label} on {env_id} with seed "
                    f"{run.seed} and the same config; remove one of them from the report"
                )
            seen[run.seed, setting] = run
    return runs


def _find_evaluation(run: Run, step: int | None) -> int:
    if step is None:
        return len(run.evaluations) - 1
    for index, evaluation in enumerate(run.evaluations):
        if int(evaluation["step"]) == step:
            return index
    raise AnewError(f"run {run.name} has no evaluation at step {step}; its steps are {run.steps()}")


def _extra_at(run: Run, index: int) -> dict[str, Any]:
    """Extras of evaluation ``index``, filled in from earlier evaluations, then eval.json's top level."""
    merged = dict(run.extra)
    for evaluation in run.evaluations[: index + 1]:
        merged.update(evaluation.get("extra") or {})
    return merged


def run_bounds(run: Run, index: int, scheme: str, task_bounds: Mapping[str, Bounds]) -> Bounds | None:
    """The normalisation of one run's evaluation ``index`` (None = raw returns)."""
    where = f"run {run.name} (step {run.evaluations[index]['step']})"
    if scheme == "none":
        return None
    if scheme == "teacher":
        return teacher_bounds(_extra_at(run, index), run.env_id, where)
    if scheme == "reference":
        return reference_bounds(_extra_at(run, index), where)
    return task_bounds[run.env_id]  # atari-human and minmax: one scale per task


@dataclass
class Matrices:
    scores: dict[str, np.ndarray]  # label -> (runs, tasks)
    curves: dict[str, tuple[list[int], np.ndarray]]  # label -> (steps, (runs, tasks, points))
    tasks: list[str]
    steps: dict[str, int]  # task -> evaluated step
    run_dirs: dict[str, dict[str, list[str]]]  # label -> task -> run dirs in matrix row order
    description: str
    step_description: str


def _raw_score(run: Run, index: int) -> float:
    return float(np.mean(run.evaluations[index]["returns"]))


def _task_bounds(
    runs: list[Run], chosen: dict[int, int], scheme: str, bounds_file: Mapping[str, Bounds] | None
) -> dict[str, Bounds]:
    tasks = sorted({run.env_id for run in runs})
    if scheme == "atari-human":
        return {task: atari_human_bounds(task) for task in tasks}
    if scheme != "minmax":
        return {}
    if bounds_file is not None:
        absent = [task for task in tasks if task not in bounds_file]
        if absent:
            raise AnewError(
                f'the bounds file has no entry for task {absent[0]!r}; add "{absent[0]}": [low, high]'
            )
        return {task: bounds_file[task] for task in tasks}
    return {
        task: data_bounds((_raw_score(run, chosen[id(run)]) for run in runs if run.env_id == task), task)
        for task in tasks
    }


def build_matrices(
    runs: list[Run], step: int | None, scheme: str, bounds_file: Mapping[str, Bounds] | None = None
) -> Matrices:
    """Validated, normalised ``(runs, tasks)`` matrices per label, and curves over common steps."""
    if scheme not in SCHEMES:
        raise AnewError(f"unknown --normalize {scheme!r}; choose one of {', '.join(SCHEMES)}")
    chosen = {id(run): _find_evaluation(run, step) for run in runs}
    tasks = sorted({run.env_id for run in runs})
    steps: dict[str, int] = {}
    for task in tasks:
        at = {run.name: int(run.evaluations[chosen[id(run)]]["step"]) for run in runs if run.env_id == task}
        if len(set(at.values())) > 1:
            listing = ", ".join(
                f"{name} at {value}" for name, value in sorted(at.items(), key=lambda kv: kv[1])
            )
            raise AnewError(
                f"runs on {task} end at different steps ({listing}); compare them at a common step with --step N"
            )
        steps[task] = next(iter(at.values()))
    task_bounds = _task_bounds(runs, chosen, scheme, bounds_file)

    def score(run: Run, index: int) -> float:
        value = _raw_score(run, index)
        bounds = run_bounds(run, index, scheme, task_bounds)
        return value if bounds is None else bounds.apply(value)

    labels = sorted({run.label for run in runs})
    scores, curves, run_dirs = {}, {}, {}
    for label in labels:
        mine = {
            task: sorted((r for r in runs if r.label == label and r.env_id == task), key=lambda r: r.seed)
            for task in tasks
        }
        missing = [task for task, group in mine.items() if not group]
        if missing:
            present = [task for task in tasks if task not in missing]
            raise AnewError(
                f"agent {label} has no run on task {missing[0]!r} (it has {', '.join(present)}); every agent "
                "needs every task: run the missing ones or leave that task's runs out of the report"
            )
        counts = {task: len(group) for task, group in mine.items()}
        if len(set(counts.values())) > 1:
            raise AnewError(
                f"agent {label} has different numbers of runs per task ({counts}); rliable needs a full "
                "runs x tasks matrix: run the missing seeds or leave the extra runs out"
            )
        matrix = np.array([[score(run, chosen[id(run)]) for run in mine[task]] for task in tasks]).T
        scores[label] = matrix
        run_dirs[label] = {task: [run.name for run in group] for task, group in mine.items()}
        common = sorted(set.intersection(*(set(run.steps()) for group in mine.values() for run in group)))
        if len(common) >= 2:
            curve = np.array(
                [[[score(run, run.steps().index(s)) for s in common] for run in mine[task]] for task in tasks]
            ).transpose(1, 0, 2)
            curves[label] = (common, curve)
    description = {
        "none": "raw mean evaluation returns",
        "atari-human": "human-normalised, (score - random) / (human - random)",
        "teacher": "teacher-normalised, (score - random) / (teacher - random)",
        "reference": "reference-normalised, (score - random) / (reference - random)",
        "minmax": "min-max normalised per task "
        + ("(bounds file)" if bounds_file is not None else "(min and max over all runs, data-driven)"),
    }[scheme]
    step_description = f"step {step}" if step is not None else "each run's final evaluation"
    return Matrices(scores, curves, tasks, steps, run_dirs, description, step_description)


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
