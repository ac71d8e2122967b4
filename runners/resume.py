"""``anew resume RUN_DIR``: continue a run exactly where its newest checkpoint left it;
``anew resume RUN_DIR/checkpoints/step_N``: continue it from that checkpoint instead.

Resuming from an earlier checkpoint discards what the run did after it, but deletes nothing: the later
checkpoints move to ``RUN_DIR/discarded/after_step_N_<time>/`` with copies of ``eval.json`` and
``metrics.jsonl`` as they were (``eval_before_resume.json``, ``metrics_before_resume.jsonl``: names that
``anew report`` does not pick up); the run's own logs are cut back to step N, as on any resume.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from anew.errors import AnewError
from anew.runners import registry
from anew.runners.checkpoint import list_checkpoints, load_checkpoint
from anew.runners.reincarnate import resume_reincarnation
from anew.runners.run_args import RunArgs
from anew.runners.train import Trainer


@dataclass
class ResumeArgs:
    """Continue a run from its newest complete checkpoint, or from the checkpoint named (weights, optimizer,
    replay, RNGs, envs, logs). Later checkpoints are moved to RUN_DIR/discarded/, never deleted."""

    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR_OR_CHECKPOINT")]
    """The run directory to continue, or one of its checkpoints/step_* folders to continue from."""
    total_steps: int = 0
    """Train to this many agent steps instead of the original budget (0: keep it)."""


def locate(path: Path) -> tuple[Path, Path | None]:
    """(run directory, the checkpoint named or None) for a run directory or one of its checkpoints."""
    if (path / "runner.json").is_file() and path.parent.name == "checkpoints":
        return path.parent.parent, path
    return path, None


def set_aside(run_dir: Path, later: list[Path], chosen: Path) -> Path:
    """Move the checkpoints after ``chosen`` out of the run, with copies of its logs as they were."""
    folder = run_dir / "discarded" / f"after_{chosen.name}_{time.strftime('%Y%m%d-%H%M%S')}"
    (folder / "checkpoints").mkdir(parents=True)
    copies = (("eval.json", "eval_before_resume.json"), ("metrics.jsonl", "metrics_before_resume.jsonl"))
    for name, copy in copies:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, folder / copy)
    for checkpoint in later:
        checkpoint.rename(folder / "checkpoints" / checkpoint.name)
    return folder


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(ResumeArgs, args=argv, prog="anew resume")
    run_dir, chosen = locate(Path(args.run_dir))
    if not (run_dir / "config.json").is_file():
        raise AnewError(
            f"{run_dir} is not an anew run directory (no config.json); pass the folder `anew train` made"
        )
    config_path = run_dir / "config.json"
    document = json.loads(config_path.read_text())
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    if not checkpoints:
        command = "anew reincarnate" if "reincarnation" in document else "anew train"
        raise AnewError(f"{run_dir} has no complete checkpoint yet; start it again with `{command}`")
    resolved = [c.resolve() for c in checkpoints]
    if chosen is not None and chosen.resolve() not in resolved:
        raise AnewError(
            f"{chosen} is not a complete checkpoint of {run_dir}; pick one of "
            f"{', '.join(c.name for c in checkpoints)}"
        )
    index = resolved.index(chosen.resolve()) if chosen is not None else len(checkpoints) - 1
    latest, later = checkpoints[index], checkpoints[index + 1 :]
    runner_state, _ = load_checkpoint(latest)
    name = runner_state["agent"]
    config = registry.config_from_dict(registry.config_class(name), runner_state["agent_config"])
    run = RunArgs(**runner_state["run"])
    if args.total_steps:
        run = dataclasses.replace(run, total_steps=args.total_steps)
        document["run"]["total_steps"] = args.total_steps
        config_path.write_text(json.dumps(document, indent=1))
    if not registry.AGENTS[name].env_loop and runner_state.get("phase") == "online":
        print(f"{run_dir} already finished (its phases are done and {name} has no env loop)")
        return 0
    if runner_state["step"] >= run.total_steps:
        print(
            f"{run_dir} already finished ({runner_state['step']} of {run.total_steps} steps); "
            "pass --total-steps to train longer"
        )
        return 0
    step = runner_state["step"]
    print(f"resuming {name} on {run.env_id} from {latest.name} (step {step})", file=sys.stderr)
    if later:
        folder = set_aside(run_dir, later, latest)
        names = ", ".join(c.name for c in later)
        print(
            f"the {len(later)} later checkpoints ({names}) moved to {folder}, with copies of eval.json and "
            f"metrics.jsonl; the run's own logs after step {step} are dropped as it continues",
            file=sys.stderr,
        )
    if "reincarnation" in document:
        trainer = resume_reincarnation(run_dir, latest, run, name, config, document["reincarnation"])
    else:
        trainer = Trainer(name, run, config, run_dir, resume_from=latest)
        trainer.train(
            phases=registry.runner_phases(name, trainer.agent, run), env_loop=registry.AGENTS[name].env_loop
        )
    final = trainer.evaluations[-1] if trainer.evaluations else None
    result = f"final mean eval return {np.mean(final['returns']):.2f}" if final else "no evaluation yet"
    print(f"done: {name} on {run.env_id} at step {trainer.step}, {result}; run directory {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
