"""``anew train AGENT``: the training loop over a vector env, with evaluation, logs and checkpoints.

The loop is the whole story of a run: act -> env.step -> observe -> update, episode statistics,
evaluation every ``--eval-every`` agent steps (``eval.json``), checkpoints every
``--checkpoint-every``. ``anew resume`` re-enters the same loop from a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import tyro

from anew import __version__
from anew.agents.core import TransitionBatch
from anew.envs import final_next_obs, make_vector_env
from anew.envs.atari import is_atari, protocol
from anew.errors import AnewError
from anew.runners import registry
from anew.runners.checkpoint import list_checkpoints, load_checkpoint, resolve_checkpoint, save_checkpoint
from anew.runners.evaluate import evaluate_agent, record_video
from anew.runners.logger import RunLogger


@dataclass
class RunArgs:
    """Settings of a run that every agent shares."""

    env_id: str = "CartPole-v1"
    """Environment id (`anew envs` lists them); ALE/<Game>-v5 for Atari."""
    seed: int = 1
    """Seeds the agent, the replay, torch and every episode of every env."""
    total_steps: int = 50_000
    """Agent steps to train for (summed over envs; Atari frames are 4x this)."""
    num_envs: int = 1
    """Parallel training envs."""
    preset: str = ""
    """Agent preset (empty: the agent's default for this env, e.g. dopamine on Atari)."""
    env_protocol: str = ""
    """Atari protocol: dopamine (Machado et al.) or atari100k (empty: from the preset)."""
    env_backend: Literal["seeded", "ale"] = "seeded"
    """seeded: exactly resumable envs; ale: ale-py's C++ vector env (faster, resumes at episode starts)."""
    run_dir: str = ""
    """Where the run directory goes (default runs/<env>__<agent>__<seed>__<time>)."""
    eval_every: int = 10_000
    """Agent steps between evaluations (a final one always runs)."""
    eval_episodes: int = 20
    """Episodes per evaluation."""
    checkpoint_every: int = 10_000
    """Agent steps between checkpoints (a final one always runs)."""
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep."""
    capture_video: bool = False
    """Save one evaluation episode per evaluation as a GIF under videos/."""
    log_every: int = 1_000
    """Agent steps between loss/SPS log lines."""
    device: str = "auto"
    """torch device; auto picks CUDA when available."""
    threads: int = 0
    """torch CPU threads (0: 1 for vector observations, all cores up to 4 for images)."""
    env_kwargs: tyro.conf.Suppress[dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Options for the env's constructor, given as extra flags (e.g. --lead-time 2 --p 4)."""


def crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every != after // every


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_dir(run: RunArgs, agent_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{run.env_id.replace('/', '-')}__{agent_name}__{run.seed}__{stamp}"


def check_run_args(run: RunArgs) -> None:
    for name in ("total_steps", "num_envs", "eval_episodes"):
        if getattr(run, name) < 1:
            raise AnewError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(run, name)})")
    for name in ("eval_every", "checkpoint_every", "keep_checkpoints", "log_every", "threads"):
        if getattr(run, name) < 0:
            raise AnewError(f"--{name.replace('_', '-')} must not be negative (got {getattr(run, name)})")
    if run.env_protocol:
        protocol(run.env_protocol)


def env_protocol_for(run: RunArgs, preset: str) -> str:
    if run.env_protocol or not is_atari(run.env_id):
        return run.env_protocol
    return "atari100k" if preset in ("der", "atari100k") else "dopamine"


class Trainer:
    """One run: builds envs and agent, then loops; ``resume_from`` re-enters at a checkpoint."""

    def __init__(self, agent_name: str, run: RunArgs, config: Any, run_dir: Path, resume_from: Path | None = None,
                 agent: Any = None):
        self.agent_name, self.run, self.config, self.run_dir = agent_name, run, config, run_dir
        # Hooks for `anew reincarnate` (defaults change nothing): eval.json's agent label, extra config.json
        # sections, and a callback after each evaluation whose dict becomes that evaluation's "extra".
        self.label = agent_name
        self.extra_config: dict[str, Any] = {}
        self.after_evaluation: Callable[[int, list[float]], dict[str, Any]] | None = None
        check_run_args(run)
        registry.check_config(config)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if run.device == "auto" else run.device
        seed_everything(run.seed)
        self.envs = make_vector_env(run.env_id, run.num_envs, run.seed, run.env_protocol, True, run.env_backend,
                                    run.env_kwargs)
        obs_space, act_space = self.envs.single_observation_space, self.envs.single_action_space
        torch.set_num_threads(run.threads or (1 if len(obs_space.shape) < 3 else min(os.cpu_count() or 1, 4)))
        if agent is None:
            agent = registry.build_agent(agent_name, config, obs_space, act_space, run.num_envs, run.seed, self.device)
        self.agent = agent  # hook: `anew reincarnate` passes a ready student wrapping an agent of `agent_name`
        self.step = 0
        self.evaluations: list[dict[str, Any]] = []
        self.episode_return = np.zeros(run.num_envs)
        self.episode_length = np.zeros(run.num_envs, dtype=np.int64)
        # Agents that learn rarely (PPO after each rollout) return losses on few steps: a log boundary
        # crossed without them logs the next losses the agent returns, at the step it returns them.
        self.losses_due = False
        self.obs, _ = self.envs.reset(seed=run.seed)
        if resume_from is not None:
            self._restore(resume_from)
        self.logger = RunLogger(run_dir, run.total_steps, resume_step=self.step if resume_from else None)

    # ------------------------------------------------------------------ state
    def resolved_config(self) -> dict[str, Any]:
        return {
            "anew_version": __version__,
            "agent": self.agent_name,
            "run": dataclasses.asdict(self.run),
            "agent_config": dataclasses.asdict(self.config),
            **self.extra_config,
        }

    def runner_state(self) -> dict[str, Any]:
        envs_state = self.envs.state_dict() if hasattr(self.envs, "state_dict") else None
        return {
            "agent": self.agent_name,
            "env_id": self.run.env_id,
            "run": dataclasses.asdict(self.run),
            "agent_config": dataclasses.asdict(self.config),
            "anew_version": __version__,
            "episode_return": self.episode_return.tolist(),
            "episode_length": self.episode_length.tolist(),
            "losses_due": self.losses_due,
            "envs": envs_state,
            "numpy_rng": _jsonable(np.random.get_state()),
            "python_rng": _jsonable(random.getstate()),
        }

    def _restore(self, path: Path) -> None:
        runner_state, agent_state = load_checkpoint(path, expected_agent=self.agent_name)
        self.agent.load_state_dict(agent_state["agent"])
        torch.set_rng_state(agent_state["torch_rng"])
        if hasattr(self.agent, "replay") and (path / "replay").is_dir():
            self.agent.replay.load(path / "replay")
        self.step = int(runner_state["step"])
        self.episode_return = np.array(runner_state["episode_return"])
        self.episode_length = np.array(runner_state["episode_length"], dtype=np.int64)
        self.losses_due = bool(runner_state.get("losses_due", False))
        np.random.set_state(_numpy_state(runner_state["numpy_rng"]))
        random.setstate(_python_state(runner_state["python_rng"]))
        if runner_state["envs"] is not None and hasattr(self.envs, "load_state_dict"):
            self.obs = self.envs.load_state_dict(runner_state["envs"])
        else:  # the ale backend cannot restore mid-episode: restart episodes, keep everything else
            self.obs, _ = self.envs.reset(seed=self.run.seed + self.step)
            self.episode_return[:], self.episode_length[:] = 0, 0
        eval_path = self.run_dir / "eval.json"
        if eval_path.exists():
            self.evaluations = [e for e in json.loads(eval_path.read_text())["evaluations"] if e["step"] <= self.step]

    def checkpoint(self) -> Path:
        save_replay = self.agent.replay.save if hasattr(self.agent, "replay") else None
        agent_state = {"agent": self.agent.state_dict(), "torch_rng": torch.get_rng_state()}
        return save_checkpoint(
            self.run_dir / "checkpoints", self.step, agent_state, self.runner_state(), save_replay, self.run.keep_checkpoints
        )

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> None:
        eval_seed = int(np.random.SeedSequence([self.run.seed, 7_777, len(self.evaluations)]).generate_state(1)[0])
        returns, lengths = evaluate_agent(
            self.agent, self.run.env_id, self.run.eval_episodes, eval_seed, self.run.env_protocol,
            env_kwargs=self.run.env_kwargs,
        )
        extra = self.after_evaluation(self.step, returns) if self.after_evaluation is not None else {}
        self.evaluations.append({"step": self.step, "returns": returns, "lengths": lengths, "extra": extra})
        document = {
            "agent": self.label,
            "env_id": self.run.env_id,
            "seed": self.run.seed,
            "config": self.resolved_config(),
            "evaluations": self.evaluations,
        }
        _write_json_atomic(self.run_dir / "eval.json", document)
        mean = float(np.mean(returns))
        self.logger.scalars(self.step, {"eval/episodic_return": mean, "eval/episodic_length": float(np.mean(lengths))})
        self.logger.message(f"[eval] step {self.step}: mean return {mean:.2f} over {len(returns)} episodes")
        if self.run.capture_video:
            record_video(self.agent, self.run.env_id, self.run_dir / "videos" / f"eval_step_{self.step}.gif",
                         eval_seed, self.run.env_protocol, env_kwargs=self.run.env_kwargs)

    # ------------------------------------------------------------------ the loop
    def train(self) -> Path:
        run, agent, envs = self.run, self.agent, self.envs
        if self.step == 0:
            self.logger.hyperparameters(self.resolved_config())
            if run.env_protocol:
                self.logger.message(f"Atari protocol: {protocol(run.env_protocol).describe()}")
        start_time, start_step = time.monotonic(), self.step
        while self.step < run.total_steps:
            actions = agent.act(self.obs, explore=True)
            next_obs, reward, terminated, truncated, info = envs.step(actions)
            done = terminated | truncated
            agent.observe(TransitionBatch(self.obs, actions, reward, terminated, truncated,
                                          final_next_obs(next_obs, done, info)))
            metrics = agent.update()
            self.obs = next_obs
            previous, self.step = self.step, self.step + run.num_envs
            self.episode_return += reward
            self.episode_length += 1
            for i in np.flatnonzero(done):
                self.logger.scalars(self.step, {"charts/episodic_return": float(self.episode_return[i]),
                                                "charts/episodic_length": float(self.episode_length[i])})
                self.episode_return[i], self.episode_length[i] = 0.0, 0
            log_now = crossed(previous, self.step, run.log_every)
            self.losses_due = self.losses_due or log_now
            values: dict[str, float] = {}
            if self.losses_due and metrics:
                values, self.losses_due = dict(metrics), False
            if log_now and hasattr(agent, "epsilon"):
                values["charts/epsilon"] = float(agent.epsilon)
            if values:
                self.logger.scalars(self.step, values)
            if log_now:
                sps = (self.step - start_step) / max(time.monotonic() - start_time, 1e-9)
                self.logger.writer.add_scalar("charts/SPS", sps, self.step)  # wall-clock: not in metrics.jsonl
                self.logger.progress(self.step, f"SPS {sps:.0f}")
            final = self.step >= run.total_steps
            if crossed(previous, self.step, run.eval_every) or final:
                self.evaluate()
            if crossed(previous, self.step, run.checkpoint_every) or final:
                self.logger.flush()
                self.checkpoint()
        self.logger.close()
        envs.close()
        return self.run_dir


# ---------------------------------------------------------------------- command line
def parse_train_args(argv: list[str]) -> tuple[str, RunArgs, Any]:
    """``AGENT [flags]`` -> (agent name, run args, agent config); the preset sets the flag defaults."""
    if not argv or argv[0].startswith("-"):
        agents = ", ".join(registry.available_agents())
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: anew train AGENT [FLAGS]   agents: {agents}\n       anew train AGENT --help")
            raise SystemExit(0)
        raise AnewError(f"name the agent to train first: anew train AGENT [flags] (agents: {agents})")
    agent_name, rest = argv[0], argv[1:]
    config_cls = registry.config_class(agent_name)
    # The preset (and env) decide the defaults shown by --help, so read them before tyro does.
    pre = tyro.cli(RunArgs, args=[a for a in _known_run_flags(rest)], default=RunArgs())
    preset_name, preset = registry.preset_config(agent_name, pre.preset, pre.env_id)
    command = dataclasses.make_dataclass(
        f"Train{config_cls.__name__}", [("run", RunArgs), ("agent", config_cls)]
    )
    parsed, unknown = tyro.cli(
        command,
        args=rest,
        default=command(run=dataclasses.replace(pre, preset=preset_name), agent=preset),
        prog=f"anew train {agent_name}",
        config=(tyro.conf.OmitArgPrefixes,),
        description=f"Train {agent_name} (preset {preset_name!r} sets the defaults below). "
        "Other --key value flags are passed to the env's constructor (e.g. --lead-time 2).",
        return_unknown_args=True,
    )
    run = dataclasses.replace(parsed.run, env_kwargs=env_options(unknown))
    return agent_name, run, parsed.agent


def env_options(flags: list[str]) -> dict[str, Any]:
    """``--lead-time 2 --p 4.5`` -> {"lead_time": 2, "p": 4.5}: flags that are neither run nor agent flags."""
    options: dict[str, Any] = {}
    i = 0
    while i < len(flags):
        flag = flags[i]
        if not flag.startswith("--") or len(flag) < 3:
            raise AnewError(f"unexpected argument {flag!r}; see `anew train AGENT --help`")
        if "=" in flag:
            key, text = flag[2:].split("=", 1)
            i += 1
        elif i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            key, text = flag[2:], flags[i + 1]
            i += 2
        else:
            raise AnewError(f"{flag} is not a flag of this agent; env options need a value (e.g. {flag} 2)")
        options[key.replace("-", "_")] = _parse_value(text)
    return options


def _parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _known_run_flags(argv: list[str]) -> list[str]:
    """The --env-id and --preset flags (with values) out of a full argument list."""
    picked = []
    for i, arg in enumerate(argv):
        for flag in ("--env-id", "--preset"):
            if arg == flag and i + 1 < len(argv):
                picked += [arg, argv[i + 1]]
            elif arg.startswith(flag + "="):
                picked.append(arg)
    return picked


def prepare_run_dir(run: RunArgs, agent_name: str) -> Path:
    run_dir = Path(run.run_dir) if run.run_dir else default_run_dir(run, agent_name)
    if (run_dir / "config.json").exists() or list_checkpoints(run_dir / "checkpoints"):
        raise AnewError(f"{run_dir} already holds a run; continue it with `anew resume {run_dir}` or pick another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


@contextlib.contextmanager
def new_run_dir(run: RunArgs, name: str) -> Iterator[Path]:
    """:func:`prepare_run_dir` for a run about to start; a run refused before it writes anything (an env that
    rejects a flag, a missing teacher) leaves no empty folder behind. A folder with anything in it stays."""
    run_dir = Path(run.run_dir) if run.run_dir else default_run_dir(run, name)
    fresh = not run_dir.exists()
    prepare_run_dir(dataclasses.replace(run, run_dir=str(run_dir)), name)
    try:
        yield run_dir
    except BaseException:
        if fresh and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "directbackprop":  # trained through the differentiable simulator, not the env loop
        from anew.runners import inventory_train

        return inventory_train.main(argv[1:])
    agent_name, run, config = parse_train_args(argv)
    run = dataclasses.replace(run, env_protocol=env_protocol_for(run, run.preset))
    check_run_args(run)
    registry.check_config(config)
    with new_run_dir(run, agent_name) as run_dir:
        trainer = Trainer(agent_name, run, config, run_dir)
        _write_json_atomic(run_dir / "config.json", trainer.resolved_config())
        print(f"run directory: {run_dir}", file=sys.stderr)
        trainer.train()
    final = trainer.evaluations[-1]
    print(f"done: {agent_name} on {run.env_id}, final mean eval return {np.mean(final['returns']):.2f}; "
          f"logs, checkpoints and eval.json in {run_dir}")
    return 0


def load_agent_from_checkpoint(path: str | Path) -> tuple[Any, dict[str, Any], Path]:
    """Rebuild the agent saved in a checkpoint (or a run directory's newest one) for acting."""
    checkpoint = resolve_checkpoint(path)
    runner_state, agent_state = load_checkpoint(checkpoint)
    name = runner_state["agent"]
    config = registry.config_from_dict(registry.config_class(name), runner_state["agent_config"])
    if hasattr(config, "buffer_size"):  # acting only: no need for the run's replay memory
        config = dataclasses.replace(config, buffer_size=1_000, replay_on_disk="")
    run = RunArgs(**runner_state["run"])
    from anew.envs import make_env

    env = make_env(run.env_id, run.env_protocol, training=False, **run.env_kwargs)
    agent = registry.build_agent(name, config, env.observation_space, env.action_space, 1, run.seed, "cpu")
    env.close()
    agent.load_state_dict(agent_state["agent"])
    return agent, runner_state, checkpoint


# ---------------------------------------------------------------------- helpers
def _write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1))
    os.replace(temporary, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _numpy_state(state: list[Any]) -> tuple[Any, ...]:
    kind, keys, pos, has_gauss, cached = state
    return kind, np.array(keys["__ndarray__"], dtype=keys["dtype"]), pos, has_gauss, cached


def _python_state(state: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = state
    return version, tuple(internal), gauss


if __name__ == "__main__":
    sys.exit(main())
