"""Atomic checkpoints: ``checkpoints/step_<N>/`` written under a temporary name, then renamed.

A checkpoint holds ``agent.pt`` (tensors and plain containers only, so it loads with
``torch.load(weights_only=True)``), ``runner.json`` (step counters, env and logger state, the
resolved config) and ``replay/`` (``.npy`` per field). A crash or a full disk mid-write leaves
only a ``.tmp`` folder behind; complete checkpoints are never touched except by ``keep``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from anew.errors import AnewError

FORMAT = "anew-checkpoint"
VERSION = 1
PREFIX = "step_"


def checkpoint_name(step: int, within: tuple[int, int] | None = None) -> str:
    """``step_<N>``; a checkpoint inside a phase that takes no env steps adds ``.<phase>.<units done>``, so
    names sort in the order the run wrote them."""
    name = f"{PREFIX}{step:012d}"
    return name if within is None else f"{name}.{within[0]:02d}.{within[1]:012d}"


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())


def save_checkpoint(
    checkpoints_dir: Path,
    step: int,
    agent_state: dict[str, Any],
    runner_state: dict[str, Any],
    save_replay: Any = None,
    keep: int = 3,
    within: tuple[int, int] | None = None,
) -> Path:
    """Write a complete checkpoint for ``step`` (``within``: phase index and units done, for a phase that
    takes no env steps) atomically and keep the newest ``keep`` of them."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / checkpoint_name(step, within)
    temporary = checkpoints_dir / f".{final.name}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir()
        torch.save(agent_state, temporary / "agent.pt")
        if save_replay is not None:
            save_replay(temporary / "replay")
        state = {"format": FORMAT, "version": VERSION, "step": step, **runner_state}
        (temporary / "runner.json").write_text(json.dumps(state, indent=1))
        _fsync_tree(temporary)
        if final.exists():  # the same step saved again (e.g. a resumed run): replace it whole
            shutil.rmtree(final)
        os.replace(temporary, final)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise AnewError(
            f"could not write checkpoint {final}: {error.strerror or error}. Free disk space or lower "
            "--keep-checkpoints; earlier checkpoints are intact."
        ) from error
    for old in list_checkpoints(checkpoints_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [p for p in checkpoints_dir.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    # step_N (every phase done) was written after step_N.<phase>.<units> (inside a phase at that step)
    return sorted(found, key=lambda p: (p.name.split(".")[0], "." not in p.name, p.name))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from either itself or a run directory (its newest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise AnewError(
            f"{path} does not exist; pass a run directory or one of its checkpoints/step_* folders"
        )
    if (path / "runner.json").is_file():
        return path
    found = list_checkpoints(path / "checkpoints")
    if not found:
        raise AnewError(f"{path} is neither an anew checkpoint nor a run directory with checkpoints")
    return found[-1]


def load_checkpoint(path: Path, expected_agent: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read (runner_state, agent_state) and check they belong together and to the expected agent."""
    try:
        runner_state = json.loads((path / "runner.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AnewError(
            f"{path / 'runner.json'} is unreadable or truncated ({error}); use an earlier checkpoint"
        ) from error
    if runner_state.get("format") != FORMAT:
        raise AnewError(f"{path} is not an anew checkpoint (format {runner_state.get('format')!r})")
    if runner_state.get("version", 0) > VERSION:
        raise AnewError(
            f"{path} was written by a newer anew (format v{runner_state['version']}); upgrade anew"
        )
    agent_name = runner_state.get("agent")
    if expected_agent is not None and agent_name != expected_agent:
        raise AnewError(
            f"{path} holds a {agent_name!r} agent, not {expected_agent!r}; pass a matching checkpoint"
        )
    try:
        agent_state = torch.load(path / "agent.pt", map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, foreign pickle, missing file: all the same to a user
        raise AnewError(
            f"{path / 'agent.pt'} cannot be loaded safely ({type(error).__name__}: {str(error).splitlines()[0]}); "
            "the file is truncated or not an anew checkpoint; use an earlier checkpoint"
        ) from error
    return runner_state, agent_state
