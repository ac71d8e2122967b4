"""``anew resume RUN_DIR``: continue a run exactly where its newest checkpoint left it."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from anew.errors import AnewError
from anew.runners import registry
from anew.runners.checkpoint import list_checkpoints, load_checkpoint
from anew.runners.reincarnate import resume_reincarnation
from anew.runners.run_args import RunArgs
from anew.runners.train import Trainer


@dataclass
class ResumeArgs:
    """Continue a run from its newest complete checkpoint (weights, optimizer, replay, RNGs, envs, logs)."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """The run directory to continue."""
    total_steps: int = 0
    """Train to this many agent steps instead of the original budget (0: keep it)."""


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(ResumeArgs, args=argv, prog="anew resume")
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise AnewError(f"{run_dir} is not an anew run directory (no config.json); pass the folder `anew train` made")
    config_path = run_dir / "config.json"
    document = json.loads(config_path.read_text())
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    if not checkpoints:
        command = "anew reincarnate" if "reincarnation" in document else "anew train"
        raise AnewError(f"{run_dir} has no complete checkpoint yet; start it again with `{command}`")
    latest = checkpoints[-1]
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
        print(f"{run_dir} already finished ({runner_state['step']} of {run.total_steps} steps); "
              "pass --total-steps to train longer")
        return 0
    print(f"resuming {name} on {run.env_id} from {latest.name}", file=sys.stderr)
    if "reincarnation" in document:
        resume_reincarnation(run_dir, latest, run, name, config, document["reincarnation"])
    else:
        trainer = Trainer(name, run, config, run_dir, resume_from=latest)
        trainer.train(phases=registry.runner_phases(name, trainer.agent, run), env_loop=registry.AGENTS[name].env_loop)
    print(f"done: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
