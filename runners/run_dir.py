"""The one run folder every anew run writes (``anew train``, ``anew reincarnate``, phased pipelines).

``runs/<env>__<name>__<seed>__<time>/`` holds ``config.json``, ``metrics.jsonl`` and TensorBoard events
(:class:`~anew.runners.logger.RunLogger`), ``checkpoints/step_<N>/`` (:mod:`anew.runners.checkpoint`) and
``eval.json``. This module names and prepares the folder and writes its JSON files atomically; it also turns
RNG states into JSON and back for the checkpoints' ``runner.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anew.errors import AnewError
from anew.runners.checkpoint import list_checkpoints


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_dir(env_id: str, name: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{env_id.replace('/', '-')}__{name}__{seed}__{stamp}"


def prepare_run_dir(run_dir: Path) -> Path:
    """Create ``run_dir`` for a new run; a folder that already holds a run is refused, never overwritten."""
    if (run_dir / "config.json").exists() or list_checkpoints(run_dir / "checkpoints"):
        raise AnewError(
            f"{run_dir} already holds a run; continue it with `anew resume {run_dir}` or pick another --run-dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


@contextlib.contextmanager
def new_run_dir(run: Any, name: str) -> Iterator[Path]:
    """The folder of a run about to start (``run.run_dir`` or the default name). A run that fails before its
    first checkpoint (an env that rejects a flag, a missing teacher, a crash) leaves no half-made folder: the
    folder it made is removed, saying so if it held anything. A folder the user had before stays; so does
    one with a checkpoint (``anew resume`` continues it), and one whose run was interrupted (logs kept)."""
    run_dir = Path(run.run_dir) if run.run_dir else default_run_dir(run.env_id, name, run.seed)
    fresh = not run_dir.exists()
    prepare_run_dir(run_dir)
    try:
        yield run_dir
    except BaseException as error:
        if fresh and run_dir.is_dir() and not list_checkpoints(run_dir / "checkpoints"):
            if not any(run_dir.iterdir()):
                run_dir.rmdir()
            elif not isinstance(error, KeyboardInterrupt):
                shutil.rmtree(run_dir, ignore_errors=True)
                print(f"anew: removed {run_dir}: the run failed before its first checkpoint", file=sys.stderr)
        raise


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1))
    os.replace(temporary, path)


def eval_document(
    label: str, env_id: str, seed: int, config: dict[str, Any], evaluations: list[dict[str, Any]]
) -> dict[str, Any]:
    """``eval.json``: the one result format every agent writes and ``anew report`` reads."""
    return {"agent": label, "env_id": env_id, "seed": seed, "config": config, "evaluations": evaluations}


def config_document(version: str, agent: str, run: Any, agent_config: Any, **sections: Any) -> dict[str, Any]:
    """``config.json``: the full resolved config (run flags, agent config, extra sections)."""
    return {
        "anew_version": version,
        "agent": agent,
        "run": dataclasses.asdict(run),
        "agent_config": dataclasses.asdict(agent_config),
        **sections,
    }


# ---------------------------------------------------------------------- RNG states as JSON
def rng_states() -> dict[str, Any]:
    """The global numpy and Python RNG states, JSON-able (torch's goes into agent.pt as a tensor)."""
    return {"numpy_rng": _jsonable(np.random.get_state()), "python_rng": _jsonable(random.getstate())}


def restore_rng_states(state: dict[str, Any]) -> None:
    kind, keys, pos, has_gauss, cached = state["numpy_rng"]
    np.random.set_state((kind, np.array(keys["__ndarray__"], dtype=keys["dtype"]), pos, has_gauss, cached))
    version, internal, gauss = state["python_rng"]
    random.setstate((version, tuple(internal), gauss))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value
