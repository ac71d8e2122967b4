"""Which agents ``anew train`` knows, and how a config is built, checked and restored.

Each agent module defines a config dataclass, an agent class taking ``(config, spec: AgentSpec)``,
``PRESETS`` (name -> config) and ``default_preset(env_id)``. This table is the only place that lists them;
``team`` says whether the agent controls a team of a multi-agent env (CommNet, SOM) or one agent.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from anew.agents.core import AgentSpec
from anew.errors import AnewError


@dataclass(frozen=True)
class AgentEntry:
    module: str
    config_class: str
    agent_class: str
    team: bool = False
    env_loop: bool = True
    """False for pipelines whose phases do all the work (PD-VF): no env loop after them."""
    envs: tuple[str, ...] = ()
    """The env ids the agent can train on (empty: any single-agent or, for a team agent, multi-agent env)."""
    runner_phases: str = ""
    """``module:function`` building the run's phases from (agent, run args) where the agent cannot: its
    training needs something only the runner may import (DirectBackprop's differentiable simulator)."""
    run_defaults: tuple[tuple[str, Any], ...] = ()
    """Run flags whose default differs for this agent (DirectBackprop counts --total-steps in gradient updates)."""
    preset_run_defaults: str = ""
    """Name of the module's ``{preset: {run flag: default}}`` table: a preset's budget (``--num-envs``,
    ``--total-steps``, ...) so that ``anew train AGENT --env-id ID --seed S`` alone runs the published setting."""


INVENTORY_ENVS = (
    "anew/LostSales-v0",
    "anew/Backlog-v0",
    "anew/HistoryReplay-v0",
    "anew/VendorConstraints-v0",
    "anew/CapacitatedMultiProduct-v0",
)


AGENTS: dict[str, AgentEntry] = {
    "dqn": AgentEntry("anew.agents.dqn", "DQNConfig", "DQNAgent"),
    "rainbow": AgentEntry("anew.agents.rainbow", "RainbowConfig", "RainbowAgent"),
    "ppo": AgentEntry("anew.agents.ppo", "PPOConfig", "PPOAgent"),
    "pdvf": AgentEntry(
        "anew.agents.pdvf.agent",
        "PDVFConfig",
        "PDVFAgent",
        env_loop=False,
        preset_run_defaults="RUN_DEFAULTS",
    ),
    "commnet": AgentEntry(
        "anew.agents.commnet", "CommNetConfig", "CommNetAgent", team=True, preset_run_defaults="RUN_DEFAULTS"
    ),
    "som": AgentEntry("anew.agents.som", "SOMConfig", "SOMAgent", team=True),
    "directbackprop": AgentEntry(
        "anew.agents.directbackprop",
        "DirectBackpropConfig",
        "DirectBackpropAgent",
        env_loop=False,
        envs=INVENTORY_ENVS,
        runner_phases="anew.runners.inventory_train:directbackprop_phases",
        run_defaults=(
            ("env_id", "anew/LostSales-v0"),
            ("total_steps", 500),
            ("checkpoint_every", 100),
            ("log_every", 50),
        ),
    ),
}


def available_agents() -> list[str]:
    names = []
    for name, entry in AGENTS.items():
        try:
            importlib.import_module(entry.module)
            names.append(name)
        except ModuleNotFoundError:
            pass
    return names


def agent_module(name: str) -> tuple[ModuleType, AgentEntry]:
    if name not in AGENTS:
        raise AnewError(f"unknown agent {name!r}: choose one of {', '.join(available_agents())}")
    entry = AGENTS[name]
    try:
        return importlib.import_module(entry.module), entry
    except ModuleNotFoundError as error:
        raise AnewError(f"agent {name!r} is not available in this build of anew ({error})") from error


def config_class(name: str) -> type:
    module, entry = agent_module(name)
    return getattr(module, entry.config_class)


def preset_config(name: str, preset: str, env_id: str) -> tuple[str, Any]:
    """(preset name, config) for an agent; an empty preset picks the agent's default for the env."""
    module, _ = agent_module(name)
    preset = preset or module.default_preset(env_id)
    if preset not in module.PRESETS:
        raise AnewError(f"agent {name!r} has no preset {preset!r}: choose one of {', '.join(module.PRESETS)}")
    return preset, dataclasses.replace(module.PRESETS[preset])


def preset_run_defaults(name: str, preset: str) -> dict[str, Any]:
    """The run flags' defaults that ``preset`` of agent ``name`` sets (empty when it sets none)."""
    module, entry = agent_module(name)
    if not entry.preset_run_defaults:
        return {}
    return dict(getattr(module, entry.preset_run_defaults).get(preset, {}))


def build_agent(name: str, config: Any, spec: AgentSpec) -> Any:
    module, entry = agent_module(name)
    return getattr(module, entry.agent_class)(config, spec)


def runner_phases(name: str, agent: Any, run: Any) -> tuple[Any, ...] | None:
    """The phases the runner builds for ``name`` (its row's ``runner_phases``), or None: the agent's own."""
    entry = AGENTS[name]
    if not entry.runner_phases:
        return None
    module, function = entry.runner_phases.split(":")
    return getattr(importlib.import_module(module), function)(agent, run)


def check_env_fits(name: str, env_id: str, multiagent: bool) -> None:
    """A team agent needs a multi-agent env and a single agent a single-agent one (one line naming what fits)."""
    if name not in AGENTS:
        agent_module(name)
    if AGENTS[name].envs and env_id not in AGENTS[name].envs:
        raise AnewError(f"{name} trains on {', '.join(AGENTS[name].envs)} only, not {env_id!r}")
    team = AGENTS[name].team
    if team and not multiagent:
        raise AnewError(
            f"{name} controls a team: give it a multi-agent env (`anew envs --filter pettingzoo`), "
            f"not {env_id!r}"
        )
    if multiagent and not team:
        teams = ", ".join(n for n, e in AGENTS.items() if e.team) or "none in this build"
        raise AnewError(
            f"{env_id} is a multi-agent env; {name} controls one agent. Use a team agent ({teams})"
        )


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from JSON (lists back to tuples); unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise AnewError(
            f"config has fields {sorted(unknown)} that {cls.__name__} does not know; was it written by another agent?"
        )
    converted = {}
    for key, value in values.items():
        origin = typing.get_origin(hints[key])
        converted[key] = tuple(value) if origin is tuple and isinstance(value, list) else value
    return cls(**converted)


def check_config(config: Any) -> None:
    """Reject values no run could use, naming the flag (positive sizes, probabilities in [0, 1]).

    A config lists the numeric fields that may legitimately be negative in ``signed_fields``.
    """
    signed = set(getattr(config, "signed_fields", ()))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value < 0 and field.name not in signed:
            raise AnewError(f"{flag} must not be negative (got {value})")
        if (
            field.name in ("lr", "batch_size", "buffer_size", "train_every", "target_update_every", "n_step")
            and value == 0
        ):
            raise AnewError(f"{flag} must be positive (got {value})")
        if field.name in ("epsilon_start", "epsilon_end", "eval_epsilon", "gamma") and value > 1:
            raise AnewError(f"{flag} must lie in [0, 1] (got {value})")
