"""Swimmer and Ant in a wind (PD-VF, Raileanu et al. 2020): 20 dynamics that differ by the wind's direction.

Environment k blows a wind at angle phi_k = 2 pi k / 20 through MuJoCo's fluid model (reference notes
section 3.3, ``myswimmer.py`` / ``myant.py`` of rraileanu/policy-dynamics-value-functions). Each env is
Gymnasium's Swimmer-v5 / Ant-v5 built with ``xml_file`` set to a copy of the stock model whose
``<option>`` line is rewritten as the reference rewrites it:

- Swimmer: ``density="4000" integrator="RK4" timestep="0.01" viscosity="0.1" wind="0.1 cos 0.1 sin 0"``
  (segments keep their density 1000); episodes capped at 1000 steps.
- Ant: ``integrator="RK4" timestep="0.01" viscosity="0.05" wind="4 cos 4 sin 0"`` (legs keep 0.2);
  episodes capped at 256 steps.

Rewards and observations are Gymnasium's v5 ones (the reference used gym's v3; Ant-v5 keeps the contact
forces in the observation and the contact cost in the reward, as v3 did). The edited XML is written to a
temporary file only while MuJoCo loads it. MuJoCo is imported when an env is made, never by
``register_wind_envs``, so the ids are listed even where the ``mujoco`` extra is not installed.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from anew.errors import AnewError

NUM_DYNAMICS = 20
TRAIN_ENVS = range(15)
TEST_ENVS = range(15, 20)


@dataclass(frozen=True)
class WindSpec:
    """How one robot's stock model is edited: its file, the option line's fluid settings, the cap."""

    env_id: str
    gym_module: str  # Gymnasium module holding the base env class
    gym_class: str
    stock_xml: str  # file name in gymnasium/envs/mujoco/assets
    wind_speed: float
    viscosity: float
    density: float | None  # None: keep MuJoCo's default medium density (0), as the reference's Ant does
    max_episode_steps: int


SWIMMER = WindSpec("anew/SwimmerWind-v0", "swimmer_v5", "SwimmerEnv", "swimmer.xml", 0.1, 0.1, 4000.0, 1000)
ANT = WindSpec("anew/AntWind-v0", "ant_v5", "AntEnv", "ant.xml", 4.0, 0.05, None, 256)


def wind_vector(spec: WindSpec, env_index: int) -> tuple[float, float, float]:
    """The wind of environment ``env_index``: speed * (cos phi_k, sin phi_k, 0), phi_k = 2 pi k / 20."""
    if isinstance(env_index, bool) or not isinstance(env_index, int) or not 0 <= env_index < NUM_DYNAMICS:
        raise AnewError(
            f"{spec.env_id} env_index must be an integer in 0..{NUM_DYNAMICS - 1}, got {env_index!r}"
        )
    angle = 2 * math.pi * env_index / NUM_DYNAMICS
    return spec.wind_speed * math.cos(angle), spec.wind_speed * math.sin(angle), 0.0


def option_line(spec: WindSpec, env_index: int) -> str:
    """The ``<option>`` element of environment ``env_index``."""
    wx, wy, wz = wind_vector(spec, env_index)
    density = "" if spec.density is None else f'density="{spec.density:g}" '
    return (
        f'<option {density}integrator="RK4" timestep="0.01" viscosity="{spec.viscosity:g}" '
        f'wind="{wx!r} {wy!r} {wz!r}"/>'
    )


def edited_xml(spec: WindSpec, env_index: int, stock_xml: str) -> str:
    """``stock_xml`` with its single ``<option .../>`` line replaced by environment ``env_index``'s."""
    edited, count = re.subn(r"<option\b[^>]*/>", option_line(spec, env_index), stock_xml)
    if count != 1:
        raise AnewError(
            f"{spec.stock_xml} has {count} <option/> lines, expected 1; is this Gymnasium's stock model?"
        )
    return edited


def _import_mujoco_env(spec: WindSpec) -> tuple[type, Path]:
    try:
        importlib.import_module("mujoco")
        module = importlib.import_module(f"gymnasium.envs.mujoco.{spec.gym_module}")
    except ImportError as error:
        raise AnewError(
            f"{spec.env_id} needs MuJoCo ({error}); install it with pip install 'anew[mujoco]'"
        ) from error
    return getattr(module, spec.gym_class), Path(module.__file__).parent / "assets" / spec.stock_xml


def make_wind_env(spec: WindSpec, env_index: int = 0, **kwargs: Any) -> gym.Env:
    """Gymnasium's base env for ``spec`` on the edited model of ``env_index`` (``kwargs`` go to that env)."""
    wind_vector(spec, env_index)  # a bad index fails before MuJoCo is needed
    env_class, stock_path = _import_mujoco_env(spec)
    xml = edited_xml(spec, env_index, stock_path.read_text())
    handle, path = tempfile.mkstemp(prefix=f"anew_{spec.stock_xml[:-4]}_wind{env_index}_", suffix=".xml")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(xml)
        env = env_class(xml_file=path, **kwargs)
    finally:
        os.unlink(path)  # MuJoCo has compiled the model; the file is not needed any more
    env.env_index = env_index
    return env


# Factories named as the classes they stand for (the base class is imported only when an env is made).
def SwimmerWindEnv(env_index: int = 0, **kwargs: Any) -> gym.Env:
    """Swimmer-v5 in the wind of environment ``env_index`` (0.1 at angle 2 pi k / 20; density 4000)."""
    return make_wind_env(SWIMMER, env_index, **kwargs)


def AntWindEnv(env_index: int = 0, **kwargs: Any) -> gym.Env:
    """Ant-v5 in the wind of environment ``env_index`` (4.0 at angle 2 pi k / 20; viscosity 0.05)."""
    return make_wind_env(ANT, env_index, **kwargs)


def register_wind_envs() -> None:
    """Register ``anew/SwimmerWind-v0`` and ``anew/AntWind-v0`` (MuJoCo is imported only when one is made)."""
    for spec, factory in ((SWIMMER, "SwimmerWindEnv"), (ANT, "AntWindEnv")):
        if spec.env_id not in gym.registry:
            gym.register(
                id=spec.env_id,
                entry_point=f"anew.envs.mujoco_wind:{factory}",
                max_episode_steps=spec.max_episode_steps,
            )
