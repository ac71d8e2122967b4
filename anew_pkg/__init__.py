"""anew: never start from scratch. Train, reincarnate and evaluate RL agents in PyTorch.

Importing ``anew`` registers every single-agent ``anew/…`` id with Gymnasium (cheaply: no env module is
imported until an env is made), so ``import gymnasium as gym; import anew; gym.register_envs(anew);
gym.make("anew/LostSales-v0")`` works.

From Python, the same runs as the ``anew`` command (loaded on first use, from :mod:`anew.runners.api`):
``anew.train("dqn", env_id="CartPole-v1")`` returns the run directory, ``anew.load_agent(run_dir)`` the
trained agent, ``anew.evaluate(agent, env_id)`` its returns.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from anew import envs  # registers the anew/ ids on import

__all__ = ["__version__", "envs", "evaluate", "load_agent", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "load_agent", "evaluate"):
        from anew.runners import api

        return getattr(api, name)
    raise AttributeError(f"module 'anew' has no attribute {name!r}")
