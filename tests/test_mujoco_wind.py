"""SwimmerWind / AntWind (PD-VF): API conformance, the wind and fluid in the loaded model, episode caps,
lazy MuJoCo import and the error when it is missing."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from anew.envs.mujoco_wind import ANT, SWIMMER, WindSpec, edited_xml, make_wind_env, register_wind_envs
from anew.errors import AnewError

needs_mujoco = pytest.mark.skipif(
    importlib.util.find_spec("mujoco") is None, reason="mujoco is not installed: pip install 'anew[mujoco]'"
)
register_wind_envs()
SPECS = [SWIMMER, ANT]


@needs_mujoco
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.env_id)
def test_check_env(spec: WindSpec):
    check_env(make_wind_env(spec, env_index=3))


@needs_mujoco
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.env_id)
@pytest.mark.parametrize("env_index", [0, 7, 15])
def test_the_loaded_model_carries_the_wind_of_env_k(spec: WindSpec, env_index: int):
    import mujoco

    env = gym.make(spec.env_id, env_index=env_index)
    option = env.unwrapped.model.opt
    angle = 2 * math.pi * env_index / 20
    assert np.allclose(
        option.wind, [spec.wind_speed * math.cos(angle), spec.wind_speed * math.sin(angle), 0.0]
    )
    assert option.viscosity == pytest.approx(spec.viscosity)
    assert option.density == pytest.approx(4000.0 if spec is SWIMMER else 0.0)
    assert option.timestep == pytest.approx(0.01) and option.integrator == mujoco.mjtIntegrator.mjINT_RK4


@needs_mujoco
def test_the_edit_touches_only_the_option_line():
    stock = '<mujoco>\n  <option integrator="RK4" timestep="0.01"/>\n  <geom size="0.2 0.2"/>\n</mujoco>\n'
    lines = edited_xml(ANT, 5, stock).splitlines()
    assert lines[0] == "<mujoco>" and lines[2:] == ['  <geom size="0.2 0.2"/>', "</mujoco>"]
    assert 'viscosity="0.05"' in lines[1] and 'wind="' in lines[1] and "density" not in lines[1]
    with pytest.raises(AnewError, match="option"):
        edited_xml(ANT, 5, "<mujoco/>")


@needs_mujoco
def test_the_wind_moves_the_swimmer():
    finals = []
    for env_index in (0, 10):  # opposite winds
        env = make_wind_env(SWIMMER, env_index)
        env.reset(seed=0)
        for _ in range(100):
            env.step(np.zeros(2))
        finals.append(env.unwrapped.data.qpos[:2].copy())
    assert finals[0][0] - finals[1][0] > 0.05  # pushed along +x by wind 0, along -x by wind 10


@needs_mujoco
@pytest.mark.parametrize("spec, cap", [(SWIMMER, 1000), (ANT, 256)], ids=["swimmer", "ant"])
def test_episode_cap(spec: WindSpec, cap: int):
    env = gym.make(spec.env_id, env_index=2)
    assert env.spec.max_episode_steps == cap
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape)
    for step in range(1, cap + 1):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated and truncated == (step == cap)


def test_registration_does_not_import_mujoco():
    code = (
        "import sys; from anew.envs.mujoco_wind import register_wind_envs; register_wind_envs(); "
        "import gymnasium as gym; assert 'anew/AntWind-v0' in gym.registry; assert 'mujoco' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_mujoco_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # makes `import mujoco` fail
    with pytest.raises(AnewError, match=r"pip install 'anew\[mujoco\]'"):
        gym.make("anew/SwimmerWind-v0")


def test_bad_env_index():
    with pytest.raises(AnewError, match="env_index"):
        make_wind_env(ANT, env_index=20)
