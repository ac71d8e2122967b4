"""Every single-agent ``anew/…`` id, registered with Gymnasium when ``anew`` is imported, and what each id
(anew's or Gymnasium's) needs installed.

Gymnasium 1.x no longer loads ``gymnasium.envs`` entry points, so ``import anew`` registers the ids itself,
as ``ale_py`` and ``minatar`` do: ``import gymnasium as gym; import anew; gym.register_envs(anew)``. The
table below holds entry points as strings, so registering imports no env module (the inventory simulators
import torch; MuJoCo and MinAtar are optional): an env's module is imported only when the env is made.
Each family module keeps its own ``register_*_envs`` for direct use; a test checks they agree with this
table.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvEntry:
    """One registered id: where its class lives, its time limit and constructor options."""

    env_id: str
    entry_point: str
    max_episode_steps: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    vector_entry_point: str | None = None


_MINATAR = ("Breakout", "Asterix", "Freeway", "Seaquest", "SpaceInvaders")
_INVENTORY = {
    "LostSales": 1000,
    "Backlog": 1000,
    "HistoryReplay": 104,
    "VendorConstraints": 104,
    "CapacitatedMultiProduct": 104,
}

ANEW_ENVS: tuple[EnvEntry, ...] = (
    *(
        EnvEntry(f"anew/MinAtar-{game}-v0", "anew.envs.minatar:MinAtarEnv", 10_000, {"game": game})
        for game in _MINATAR
    ),
    *(
        EnvEntry(
            f"anew/{name}-v0",
            "anew.envs.inventory_gym:InventoryEnv",
            steps,
            {"env_id": f"anew/{name}-v0"},
            "anew.envs.inventory_gym:InventoryVectorEnv",
        )
        for name, steps in _INVENTORY.items()
    ),
    EnvEntry(
        "anew/Spaceship-v0",
        "anew.envs.spaceship:SpaceshipEnv",
        None,
        {},
        "anew.envs.spaceship:SpaceshipVectorEnv",
    ),  # no Gymnasium time limit: it truncates itself
    EnvEntry("anew/SwimmerWind-v0", "anew.envs.mujoco_wind:SwimmerWindEnv", 1000),
    EnvEntry("anew/AntWind-v0", "anew.envs.mujoco_wind:AntWindEnv", 256),
)


def register_envs() -> None:
    """Register every single-agent anew id with Gymnasium (idempotent; imports no env module)."""
    for entry in ANEW_ENVS:
        if entry.env_id not in gym.registry:
            gym.register(
                id=entry.env_id,
                entry_point=entry.entry_point,
                max_episode_steps=entry.max_episode_steps,
                kwargs=dict(entry.kwargs),
                vector_entry_point=entry.vector_entry_point,
            )


# Entry-point module prefix -> (the module the env needs, how to install it).
REQUIREMENTS: tuple[tuple[str, str, str], ...] = (
    ("anew.envs.minatar", "minatar", "pip install 'anew[minatar]'"),
    ("anew.envs.mujoco_wind", "mujoco", "pip install 'anew[mujoco]'"),
    ("gymnasium.envs.mujoco", "mujoco", "pip install 'gymnasium[mujoco]' (or 'anew[mujoco]')"),
    ("gymnasium.envs.box2d", "Box2D", "pip install 'gymnasium[box2d]'"),
    ("gymnasium.envs.phys2d", "jax", "pip install 'gymnasium[jax]'"),
    ("gymnasium.envs.tabular", "jax", "pip install 'gymnasium[jax]'"),
)
# Ids Gymnasium registers with a function that only raises (no install makes them work as they are).
_RAISING_ENTRY_POINTS = {
    "_raise_mujoco_py_error": "the old mujoco-py, which Gymnasium no longer supports: use the id's -v5",
    "_raise_shimmy_error": "shimmy: pip install shimmy",
}


@functools.cache
def module_available(name: str) -> bool:
    """Whether ``name`` can be imported here (found, not imported)."""
    return importlib.util.find_spec(name) is not None


def missing_requirement(env_id: str) -> str:
    """What to install so ``env_id`` can be made here (a ``pip install`` line); "" if nothing is missing."""
    spec = gym.registry.get(env_id)
    if spec is None:
        return ""
    entry_point = spec.entry_point
    if not isinstance(entry_point, str):
        return _RAISING_ENTRY_POINTS.get(getattr(entry_point, "__name__", ""), "")
    for prefix, module, install in REQUIREMENTS:
        if entry_point.startswith(prefix) and not module_available(module):
            return install
    return ""
