"""What a :class:`~anew.runners.train.Trainer` writes into a checkpoint and reads back from one.

A checkpoint holds the agent's state (with torch's RNG) and the runner's: the step, the phase running and its
progress, the episode statistics, the envs' state and every other RNG state, so ``anew resume`` re-enters the
run exactly where it stopped, inside a phase or inside the env loop. :class:`RunState` is that part of the
Trainer; the Trainer's constructor sets the attributes it declares.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anew import __version__
from anew.agents.core import Phase
from anew.envs.multiagent import TeamVectorEnv
from anew.envs.vector import SeededVectorEnv
from anew.runners.checkpoint import load_checkpoint, save_checkpoint
from anew.runners.logger import RunLogger
from anew.runners.run_args import RunArgs
from anew.runners.run_dir import restore_rng_states, rng_states


class RunState:
    """The Trainer's checkpoints: ``runner_state()`` and ``checkpoint()`` write one, ``_restore`` reads one."""

    agent_name: str
    run: RunArgs
    config: Any
    run_dir: Path
    agent: Any
    envs: Any
    team: bool
    logger: RunLogger
    phases: tuple[Phase, ...]
    step: int
    last_checkpoint: Path | None
    phase_index: int
    phase_progress: int
    resumed_phase: str
    evaluations: list[dict[str, Any]]
    episode_return: np.ndarray
    episode_length: np.ndarray
    losses_due: bool
    obs: Any
    info: dict[str, Any]
    starting: np.ndarray

    def runner_state(self) -> dict[str, Any]:
        resumable = isinstance(self.envs, (SeededVectorEnv, TeamVectorEnv))
        return {
            "agent": self.agent_name,
            "env_id": self.run.env_id,
            "run": dataclasses.asdict(self.run),
            "agent_config": dataclasses.asdict(self.config),
            "anew_version": __version__,
            "phase": self.phase_name,
            "phase_index": self.phase_index,
            "phase_progress": self.phase_progress,
            "episode_return": self.episode_return.tolist(),
            "episode_length": self.episode_length.tolist(),
            "starting": self.starting.tolist(),
            "losses_due": self.losses_due,
            "envs": self.envs.state_dict() if resumable else None,
            **rng_states(),
        }

    @property
    def phase_name(self) -> str:
        return self.phases[self.phase_index].name if self.phase_index < len(self.phases) else "online"

    def _restore(self, path: Path) -> None:
        runner_state, agent_state = load_checkpoint(path, expected_agent=self.agent_name)
        self.last_checkpoint = path
        self.agent.load_state_dict(agent_state["agent"])
        torch.set_rng_state(agent_state["torch_rng"])
        if self.agent.replay is not None and (path / "replay").is_dir():
            self.agent.replay.load(path / "replay")
        self.step = int(runner_state["step"])
        self.resumed_phase = runner_state.get("phase", "online")
        self.phase_index = int(runner_state.get("phase_index", 0))
        self.phase_progress = int(runner_state.get("phase_progress", 0))
        self.episode_return = np.array(runner_state["episode_return"])
        self.episode_length = np.array(runner_state["episode_length"], dtype=np.int64)
        self.starting = np.array(runner_state.get("starting", [False] * self.run.num_envs), dtype=bool)
        self.losses_due = bool(runner_state.get("losses_due", False))
        restore_rng_states(runner_state)
        if runner_state["envs"] is not None:
            self.obs = self.envs.load_state_dict(runner_state["envs"])
            self.info = self.envs.sim.info() if self.team else {}
        else:  # the ale backend cannot restore mid-episode: restart episodes, keep everything else
            self.obs, self.info = self.envs.reset(seed=self.run.seed + self.step)
            self.episode_return[:], self.episode_length[:] = 0, 0
            self.starting[:] = True
        eval_path = self.run_dir / "eval.json"
        if eval_path.exists():
            self.evaluations = [
                e for e in json.loads(eval_path.read_text())["evaluations"] if e["step"] <= self.step
            ]

    def checkpoint(self) -> Path:
        started, replay = time.monotonic(), self.agent.replay
        agent_state = {"agent": self.agent.state_dict(), "torch_rng": torch.get_rng_state()}
        within = (self.phase_index, self.phase_progress) if self.phase_index < len(self.phases) else None
        previous = self.last_checkpoint / "replay" if self.last_checkpoint is not None else None

        def save_replay(directory: Path) -> None:  # filled blocks; unchanged ones shared with ``previous``
            replay.save(
                directory,
                reuse_from=previous,
                progress=lambda done, total: self.logger.progress(
                    self.step, f"writing checkpoint: replay block {done}/{total}"
                ),
            )

        path = save_checkpoint(
            self.run_dir / "checkpoints",
            self.step,
            agent_state,
            self.runner_state(),
            save_replay if replay is not None else None,
            self.run.keep_checkpoints,
            within,
        )
        self.last_checkpoint, seconds = path, time.monotonic() - started
        if seconds > 2:
            self.logger.message(f"[checkpoint] {path.name} written in {seconds:.1f} s")
        return path
