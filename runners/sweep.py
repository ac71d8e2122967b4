"""``anew sweep SPEC.toml``: agents x envs x seeds (x overrides), run locally or on Ray, then reported.

A spec is a TOML file (``anew.runners.sweep_help.EXAMPLE_SPEC``, which ``anew sweep --help`` shows and a test
runs); every key can also come from flags, which win.

Each run is one process, ``anew train AGENT --env-id ENV --seed S --run-dir OUT/<env>__<label>__<seed>
[flags]`` (``command`` in the spec replaces ``anew train``), with its output in ``OUT/logs/``. Locally a
pool of ``--workers`` runs at once; with ``--backend ray`` each run is a Ray task (``ray.init()`` on this
machine, or ``--address`` of a cluster whose nodes share the file system holding ``out_dir``). Either way
the run directories are the same, so the report does not care where runs ran.

``OUT/sweep.json`` records every run's label, flags and status. Running the same sweep again skips finished
runs (and refuses to, naming the run, if the spec now gives one of them other flags) and reruns failed or
missing ones (a failed run's directory moves to ``OUT/failed/`` first), so retrying
is rerunning; ``--retries N`` also retries failures automatically. When every run has finished the sweep
ends with ``anew report`` over its runs (labels from ``sweep.json``), writing ``OUT/report/``.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib
import tyro

from anew.errors import AnewError
from anew.runners.sweep_help import HELP, joined_flag_values

SPEC_KEYS = {"out_dir", "envs", "seeds", "agents", "train_args", "report_args", "grid", "command"}
AGENT_KEYS = {"agent", "train_args"}
MANIFEST = "sweep.json"


@dataclass
class SweepArgs:
    """Run a grid of agents x envs x seeds locally or on Ray, then report it."""

    spec: Annotated[Path | None, tyro.conf.Positional, tyro.conf.arg(metavar="SPEC.toml")] = None
    """TOML sweep spec (optional: flags alone describe a sweep too)"""
    agents: tuple[str, ...] = ()
    """agents to train (each its own label)"""
    envs: tuple[str, ...] = ()
    """environment ids"""
    seeds: tuple[int, ...] = ()
    """seeds"""
    train_args: str = ""
    """flags for every run, as one string, e.g. "--total-steps 20000" """
    report_args: str = ""
    """flags for the final anew report, e.g. "--normalize atari-human --reps 20000" """
    out_dir: Path | None = None
    """folder for run directories, logs, sweep.json and the report"""
    backend: Literal["local", "ray"] = "local"
    """local: a pool of processes on this machine; ray: one Ray task per run"""
    address: str | None = None
    """Ray cluster address (None: start Ray on this machine)"""
    workers: int = 0
    """local runs at once (0: one per CPU core)"""
    cpus_per_run: float = 1.0
    """CPUs Ray reserves per run"""
    gpus_per_run: float = 0.0
    """GPUs Ray reserves per run"""
    retries: int = 0
    """rerun failed runs this many times before giving up"""
    dry_run: bool = False
    """print the runs and their commands without starting them"""
    report: bool = True
    """end a complete sweep with anew report"""


@dataclass(frozen=True)
class PlannedRun:
    label: str
    agent: str
    env_id: str
    seed: int
    run_dir: Path
    flags: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.run_dir.name

    def command(self, launcher: list[str]) -> list[str]:
        base = [self.agent, "--env-id", self.env_id, "--seed", str(self.seed), "--run-dir", str(self.run_dir)]
        return [*launcher, *base, *self.flags]


@dataclass
class Sweep:
    out_dir: Path
    runs: list[PlannedRun]
    launcher: list[str]
    report_args: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- planning (pure)
def as_flags(value: Any, where: str) -> list[str]:
    """A TOML table ``{lr = 1e-3, double-q = true}`` or a list of strings -> command-line flags."""
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if not isinstance(value, Mapping):
        raise AnewError(f"{where} must be a table of flags or a list of strings, got {value!r}")
    flags: list[str] = []
    for key, item in value.items():
        flag = "--" + str(key).replace("_", "-")
        if isinstance(item, bool):
            flags.append(flag if item else "--no-" + flag[2:])
        elif isinstance(item, list):
            flags += [flag, *map(str, item)]
        else:
            flags += [flag, str(item)]
    return flags


def _agent_table(agents: Any) -> dict[str, dict[str, Any]]:
    if isinstance(agents, list):
        return {str(name): {} for name in agents}
    if isinstance(agents, Mapping):
        for label, table in agents.items():
            unknown = set(table) - AGENT_KEYS
            if unknown:
                raise AnewError(
                    f"agents.{label} has unknown keys {sorted(unknown)}; allowed: {sorted(AGENT_KEYS)}"
                )
        return {str(label): dict(table) for label, table in agents.items()}
    raise AnewError(f"agents must be a list of names or a table of labels, got {agents!r}")


def plan_sweep(spec: Mapping[str, Any]) -> Sweep:
    """Every run of a spec (the dict form of the TOML file with flags merged in), in a stable order."""
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise AnewError(
            f"unknown sweep keys {sorted(unknown)}; a spec may hold {', '.join(sorted(SPEC_KEYS))}"
        )
    for key in ("out_dir", "envs", "seeds", "agents"):
        if not spec.get(key) and spec.get(key) != 0:
            raise AnewError(
                f"the sweep has no {key}; set {key} in the spec or pass --{key.replace('_', '-')}"
            )
    seeds = spec["seeds"]
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(seed) for seed in seeds]
    out_dir = Path(spec["out_dir"]).resolve()
    common = as_flags(spec.get("train_args", []), "train_args")
    grid = dict(spec.get("grid") or {})
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    runs = []
    for label, table in _agent_table(spec["agents"]).items():
        agent = str(table.get("agent", label))
        own = as_flags(table.get("train_args", []), f"agents.{label}.train_args")
        for combo in combos:
            full_label = label + ("[" + ",".join(f"{k}={v}" for k, v in combo.items()) + "]" if combo else "")
            for env_id in spec["envs"]:
                for seed in seeds:
                    name = f"{env_id.replace('/', '-')}__{full_label}__{seed}"
                    flags = (*common, *own, *as_flags(combo, "grid"))
                    runs.append(PlannedRun(full_label, agent, env_id, seed, out_dir / name, flags))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise AnewError("two runs of the sweep would share a run directory; give the agents distinct labels")
    launcher = spec.get("command") or [sys.executable, "-m", "anew.runners.cli", "train"]
    if isinstance(launcher, str):
        launcher = shlex.split(launcher)
    return Sweep(out_dir, runs, list(launcher), as_flags(spec.get("report_args", []), "report_args"))


def load_spec(args: SweepArgs) -> dict[str, Any]:
    """The TOML spec with command-line flags on top."""
    spec: dict[str, Any] = {}
    if args.spec is not None:
        try:
            spec = tomllib.loads(Path(args.spec).read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise AnewError(f"cannot read sweep spec {args.spec}: {error}")
        if "out_dir" in spec:  # relative to the spec file, so a spec means the same from any folder
            spec["out_dir"] = str(Path(args.spec).parent / spec["out_dir"])
    overrides = {
        "agents": list(args.agents), "envs": list(args.envs), "seeds": list(args.seeds),
        "train_args": args.train_args, "report_args": args.report_args,
        "out_dir": str(args.out_dir) if args.out_dir else None,
    }  # fmt: skip
    spec.update({key: value for key, value in overrides.items() if value})
    return spec


# ----------------------------------------------------------------------------- running
def launch(command: list[str], log_path: str, cwd: str | None = None) -> dict[str, Any]:
    """Run one training process with its output in ``log_path``; also a Ray task, so top-level and pure."""
    start = time.time()
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        try:
            workdir = cwd if cwd and os.path.isdir(cwd) else None
            code = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, check=False
            ).returncode
        except OSError as error:
            log.write(f"cannot start the run: {error}\n")
            code = 127
    tail = Path(log_path).read_text(errors="replace").splitlines()[-15:]
    return {
        "returncode": code,
        "seconds": round(time.time() - start, 2),
        "host": socket.gethostname(),
        "tail": tail,
    }


def _local_results(
    jobs: list[tuple[PlannedRun, list[str], str]], workers: int
) -> Iterable[tuple[PlannedRun, dict]]:
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        futures = {pool.submit(launch, command, log, os.getcwd()): run for run, command, log in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _ray_results(
    jobs: list[tuple[PlannedRun, list[str], str]], args: SweepArgs
) -> Iterable[tuple[PlannedRun, dict]]:
    try:
        import ray
    except ImportError:
        raise AnewError("--backend ray needs Ray: pip install 'anew[ray]' (or pip install ray)")
    started_here = not ray.is_initialized()
    if started_here:
        local = {} if args.address else {"include_dashboard": False}  # a cluster keeps its own settings
        ray.init(address=args.address, log_to_driver=False, **local)
    try:
        remote = ray.remote(num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run, max_retries=0)(launch)
        pending = {remote.remote(command, log, os.getcwd()): run for run, command, log in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            yield pending.pop(done[0]), ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()


def read_manifest(out_dir: Path) -> dict[str, dict[str, Any]]:
    path = out_dir / MANIFEST
    return json.loads(path.read_text())["runs"] if path.is_file() else {}


def _write_manifest(out_dir: Path, entries: dict[str, dict[str, Any]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary = out_dir / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps({"runs": entries}, indent=1))
    os.replace(temporary, out_dir / MANIFEST)


def _finished(run: PlannedRun, entry: dict[str, Any] | None) -> bool:
    return bool(entry) and entry.get("status") == "ok" and (run.run_dir / "eval.json").is_file()


def _flags_changed(run: PlannedRun, entry: dict[str, Any]) -> bool:
    recorded = entry.get("flags")  # absent in manifests written before flags were recorded
    return recorded is not None and list(recorded) != list(run.flags)


def _set_aside(run: PlannedRun, out_dir: Path) -> None:
    """Move a failed or partial run directory out of the way so the trainer can start afresh."""
    if not run.run_dir.exists():
        return
    failed = out_dir / "failed"
    failed.mkdir(parents=True, exist_ok=True)
    attempt = 1 + sum(1 for path in failed.glob(run.name + ".*"))
    shutil.move(str(run.run_dir), failed / f"{run.name}.{attempt}")


def execute(sweep: Sweep, args: SweepArgs, results: Callable[..., Iterable[tuple[PlannedRun, dict]]] | None = None) -> list[PlannedRun]:  # fmt: skip
    """Run every unfinished run (retrying failures ``args.retries`` times); returns the runs still failing."""
    entries = read_manifest(sweep.out_dir)
    changed = [run.name for run in sweep.runs if _finished(run, entries.get(run.name)) and _flags_changed(run, entries[run.name])]  # fmt: skip
    if changed:
        raise AnewError(
            f"{len(changed)} finished runs in {sweep.out_dir} were trained with other flags than the spec "
            f"gives now (first: {changed[0]}); skipping them would report stale results: give the changed "
            "agent a new label, or use a new out_dir"
        )
    todo = [run for run in sweep.runs if not _finished(run, entries.get(run.name))]
    skipped = len(sweep.runs) - len(todo)
    if skipped:
        print(
            f"anew sweep: {skipped} of {len(sweep.runs)} runs already finished, skipping them",
            file=sys.stderr,
        )
    for attempt in range(args.retries + 1):
        if not todo:
            break
        jobs = []
        for run in todo:
            _set_aside(run, sweep.out_dir)
            log = str(sweep.out_dir / "logs" / f"{run.name}.log")
            jobs.append((run, run.command(sweep.launcher), log))
            entries[run.name] = {"label": run.label, "agent": run.agent, "env_id": run.env_id, "seed": run.seed,
                                 "run_dir": str(run.run_dir), "flags": list(run.flags), "log": log, "status": "running"}  # fmt: skip
        _write_manifest(sweep.out_dir, entries)
        stream = results(jobs) if results else (_ray_results(jobs, args) if args.backend == "ray" else _local_results(jobs, args.workers))  # fmt: skip
        failed = []
        for count, (run, outcome) in enumerate(stream, start=1):
            ok = outcome["returncode"] == 0 and (run.run_dir / "eval.json").is_file()
            entry = entries[run.name]
            entry.update(status="ok" if ok else "failed", returncode=outcome["returncode"],
                         seconds=outcome["seconds"], host=outcome["host"])  # fmt: skip
            _write_manifest(sweep.out_dir, entries)
            state = "ok" if ok else f"FAILED (exit {outcome['returncode']})"
            print(f"[{count}/{len(jobs)}] {state} {run.name} in {outcome['seconds']:.1f} s", file=sys.stderr)
            if not ok:
                failed.append(run)
                print("    " + "\n    ".join(outcome["tail"][-5:]), file=sys.stderr)
        todo = failed
        if todo and attempt < args.retries:
            print(f"anew sweep: retrying {len(todo)} failed runs", file=sys.stderr)
    return todo


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = tyro.cli(SweepArgs, args=joined_flag_values(argv), prog="anew sweep", description=HELP)
    sweep = plan_sweep(load_spec(args))
    if args.dry_run:
        for run in sweep.runs:
            print(shlex.join(run.command(sweep.launcher)))
        return 0
    where = f"Ray ({args.address or 'this machine'})" if args.backend == "ray" else "local processes"
    print(f"anew sweep: {len(sweep.runs)} runs into {sweep.out_dir} on {where}", file=sys.stderr)
    failed = execute(sweep, args)
    if failed:
        print(f"\n{len(failed)} runs failed (logs in {sweep.out_dir / 'logs'}):", file=sys.stderr)
        for run in failed:
            print(f"  {run.name}: {sweep.out_dir / 'logs' / (run.name + '.log')}", file=sys.stderr)
        again = shlex.join(["anew", "sweep", *argv])
        print(f"fix the cause and rerun the same command to retry only these: {again}", file=sys.stderr)
        return 1
    if not args.report:
        return 0
    from anew.runners import report

    report_dir = sweep.out_dir / "report"
    run_dirs = [str(run.run_dir) for run in sweep.runs]
    return report.main(
        [
            *run_dirs,
            "--json",
            str(report_dir / "report.json"),
            "--out-dir",
            str(report_dir),
            *sweep.report_args,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
