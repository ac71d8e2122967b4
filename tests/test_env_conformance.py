"""The ecosystem's own conformance suites on every env anew registers: Gymnasium's ``check_env`` on each
single-agent ``anew/`` id and PettingZoo's ``parallel_api_test`` on each multi-agent one (every env family)."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from anew.envs import list_envs, make_parallel

SINGLE = [env_id for env_id, kind in list_envs() if env_id.startswith("anew/") and kind == "gymnasium"]
MULTI = [env_id for env_id, kind in list_envs() if kind == "pettingzoo"]
NEEDS = {"anew/MinAtar": "minatar", "anew/SwimmerWind": "mujoco", "anew/AntWind": "mujoco"}


def needed_module(env_id: str) -> str | None:
    return next((module for prefix, module in NEEDS.items() if env_id.startswith(prefix)), None)


def test_every_family_is_registered() -> None:
    assert {"anew/LostSales-v0", "anew/Spaceship-v0", "anew/MinAtar-Breakout-v0"} <= set(SINGLE)
    assert {"anew/TrafficJunction-easy-v0", "anew/Levers-v0", "anew/CoinGame-SOM-v0"} <= set(MULTI)


@pytest.mark.parametrize("env_id", SINGLE)
def test_gymnasium_check_env(env_id: str) -> None:
    module = needed_module(env_id)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{env_id} needs {module}")
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", MULTI)
def test_pettingzoo_parallel_api(env_id: str) -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    parallel_api_test(make_parallel(env_id), num_cycles=30)
