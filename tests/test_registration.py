"""anew's ids register the way Gymnasium users expect: ``import anew`` registers them (cheaply, in a fresh
interpreter), the registration table agrees with each env family's own registrar, ids that need a missing
package say what to install, and Stable-Baselines3 trains on every single-agent anew env."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import anew
from anew.envs import make_env, registration
from anew.errors import AnewError

SINGLE_AGENT_IDS = [entry.env_id for entry in registration.ANEW_ENVS]


def test_import_anew_registers_every_id_in_a_fresh_interpreter_without_torch() -> None:
    script = """
import json, sys
import gymnasium as gym
import anew
gym.register_envs(anew)
before = sorted(m for m in ("torch", "anew.envs.inventory_gym", "anew.envs.minatar") if m in sys.modules)
ids = sorted(i for i in gym.registry if i.startswith("anew/"))
env = gym.make("anew/LostSales-v0")
obs, _ = env.reset(seed=0)
print(json.dumps({"heavy": before, "ids": ids, "obs": len(obs)}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []  # registering imported no env module and no torch
    assert result["ids"] == sorted(SINGLE_AGENT_IDS)
    assert result["obs"] > 0


def _specs_of(register: object, ids: list[str]) -> dict[str, tuple]:
    """The specs a registrar writes for ``ids`` (removed first, restored after)."""
    saved = {env_id: gym.registry.pop(env_id) for env_id in ids if env_id in gym.registry}
    try:
        register()
        return {env_id: _key(gym.registry[env_id]) for env_id in ids if env_id in gym.registry}
    finally:
        for env_id in ids:
            gym.registry.pop(env_id, None)
        gym.registry.update(saved)


def _key(spec: gym.envs.registration.EnvSpec) -> tuple:
    return (
        spec.entry_point,
        spec.vector_entry_point,
        spec.max_episode_steps,
        json.dumps(spec.kwargs, sort_keys=True),
    )


@pytest.mark.parametrize(
    "module,function",
    [
        ("anew.envs.minatar", "register_minatar_envs"),
        ("anew.envs.inventory_gym", "register_inventory_envs"),
        ("anew.envs.spaceship", "register_spaceship_envs"),
        ("anew.envs.mujoco_wind", "register_wind_envs"),
    ],
)
def test_the_table_matches_each_family_registrar(module: str, function: str) -> None:
    import importlib

    register = getattr(importlib.import_module(module), function)
    before = set(gym.registry)
    family = _specs_of(register, SINGLE_AGENT_IDS)
    written = {env_id for env_id, spec in family.items() if spec[0].startswith(module)}
    assert written, f"{function} registered none of the table's ids"
    table = _specs_of(registration.register_envs, sorted(written))
    assert {env_id: family[env_id] for env_id in written} == table
    assert set(gym.registry) == before


def test_an_id_whose_package_is_missing_names_the_extra(monkeypatch) -> None:
    real = registration.module_available
    monkeypatch.setattr(registration, "module_available", lambda name: name != "mujoco" and real(name))
    for env_id, extra in (("Walker2d-v5", "gymnasium[mujoco]"), ("anew/AntWind-v0", "anew[mujoco]")):
        with pytest.raises(
            AnewError, match=re.escape(f"{env_id} cannot be made here: it needs pip install '{extra}'")
        ):
            make_env(env_id)
    assert registration.missing_requirement("CartPole-v1") == ""


def test_a_misspelt_atari_id_names_the_right_one() -> None:
    pytest.importorskip("ale_py")
    with pytest.raises(AnewError, match=r"unknown Atari id 'ALE/Pongg-v5'; did you mean ALE/Pong-v5"):
        make_env("ALE/Pongg-v5")


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_stable_baselines3_ppo_trains_on_every_single_agent_env(env_id: str, monkeypatch, tmp_path) -> None:
    stable_baselines3 = pytest.importorskip("stable_baselines3")
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # else SB3 leaves an empty /tmp/SB3-<time> folder per run
    anew.envs.register_envs()
    missing = registration.missing_requirement(env_id)
    if missing:
        pytest.skip(f"{env_id} needs {missing}")
    env = gym.make(env_id)
    model = stable_baselines3.PPO(
        "MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))
    env.close()
