"""The settings every run shares (``RunArgs``) and how ``anew train AGENT [flags]`` is parsed.

Flags that are neither run nor agent flags go to the env's constructor (``--lead-time 2``); one that is
close to a known flag (``--total-step``) is refused with a "did you mean" instead.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import tyro

from anew.envs.atari import is_atari, protocol
from anew.errors import AnewError
from anew.runners import registry


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
    """Parallel training envs (games, for multi-agent envs)."""
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
    """Agent steps (or units of an offline phase) between checkpoints (a final one always runs)."""
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
    defaults = dataclasses.replace(RunArgs(), **dict(registry.AGENTS[agent_name].run_defaults))
    pre = tyro.cli(RunArgs, args=list(_known_run_flags(rest)), default=defaults)
    preset_name, preset = registry.preset_config(agent_name, pre.preset, pre.env_id)
    pre = dataclasses.replace(pre, **registry.preset_run_defaults(agent_name, preset_name))
    # The group's header names the preset in force (the config class's docstring describes its class defaults).
    agent_help = tyro.conf.arg(
        help=f"{agent_name} options (the defaults shown are the {preset_name} preset's)."
    )
    command = dataclasses.make_dataclass(
        f"Train{config_cls.__name__}", [("run", RunArgs), ("agent", Annotated[config_cls, agent_help])]
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
    known = [f.name for f in dataclasses.fields(RunArgs)] + [f.name for f in dataclasses.fields(config_cls)]
    run = dataclasses.replace(parsed.run, env_kwargs=env_options(unknown, known))
    return agent_name, run, parsed.agent


def env_options(flags: list[str], known: list[str] = ()) -> dict[str, Any]:
    """``--lead-time 2 --p 4.5`` -> {"lead_time": 2, "p": 4.5}: flags that are neither run nor agent flags.

    A flag within a typo of one in ``known`` (``--total-step`` for ``--total-steps``) is refused."""
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
        name = key.replace("-", "_")
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
        if close:
            raise AnewError(f"unknown flag --{key}; did you mean --{close[0].replace('_', '-')}?")
        options[name] = _parse_value(text)
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
