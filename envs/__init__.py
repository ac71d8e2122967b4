"""anew.envs: environments, their registration under ``anew/``, and the factories the runner uses.

``make_env`` builds one env (with the Atari protocol wrappers where they apply) and
``make_vector_env`` the batch the runner trains on. ``list_envs`` lists every id anew can make.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from anew.envs.atari import PROTOCOLS, is_atari, make_atari_env, make_atari_vector_env, protocol
from anew.envs.multiagent import is_multiagent, make_parallel, make_team_env, parallel_env_ids
from anew.envs.vector import SeededVectorEnv, final_next_obs
from anew.errors import AnewError

__all__ = [
    "PROTOCOLS",
    "SeededVectorEnv",
    "final_next_obs",
    "is_multiagent",
    "list_envs",
    "make_env",
    "make_parallel",
    "make_team_env",
    "make_vector_env",
    "register_envs",
]

# Modules that register families of anew envs; each exposes the named function.
_REGISTRARS = (
    ("anew.envs.minatar", "register_minatar_envs"),
    ("anew.envs.inventory_gym", "register_inventory_envs"),
    ("anew.envs.spaceship", "register_spaceship_envs"),
    ("anew.envs.mujoco_wind", "register_wind_envs"),
)
_registered = False


def register_envs() -> None:
    """Register every anew environment with Gymnasium (idempotent; the ``gymnasium.envs`` entry point)."""
    global _registered
    if _registered:
        return
    _registered = True
    for module_name, function in _REGISTRARS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and error.name.startswith("anew"):
                continue  # that family is not part of this build
            raise
        getattr(module, function)()


def _ensure_known(env_id: str) -> None:
    register_envs()
    if is_atari(env_id):
        return
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else " Run `anew envs` to list the ids."
        raise AnewError(f"unknown env id {env_id!r}.{hint}")


def default_protocol(env_id: str) -> str:
    return "dopamine" if is_atari(env_id) else ""


def make_env(
    env_id: str, env_protocol: str = "", training: bool = True, render_mode: str | None = None, **env_kwargs: Any
) -> gym.Env:
    """One environment; Atari ids get the named protocol's preprocessing (default ``dopamine``).

    ``env_kwargs`` go to the env's constructor (e.g. ``lead_time=2, p=4`` for anew/LostSales-v0).
    """
    _ensure_known(env_id)
    if is_atari(env_id):
        if env_kwargs:
            raise AnewError(f"Atari envs take no extra options here (got {sorted(env_kwargs)}); use --env-protocol")
        return make_atari_env(env_id, protocol(env_protocol or "dopamine"), training, render_mode)
    if env_protocol:
        raise AnewError(f"--env-protocol applies to Atari ids only, not {env_id!r}; drop the flag")
    try:
        return gym.make(env_id, render_mode=render_mode, **env_kwargs)
    except TypeError as error:
        if not env_kwargs or "argument" not in str(error):
            raise
        options = ", ".join("--" + key.replace("_", "-") for key in env_kwargs)
        raise AnewError(f"{env_id} does not accept {options} ({error}); check the flag names") from error


def make_vector_env(
    env_id: str,
    num_envs: int,
    seed: int,
    env_protocol: str = "",
    training: bool = True,
    backend: str = "seeded",
    env_kwargs: dict[str, Any] | None = None,
) -> gym.vector.VectorEnv:
    """The batch of envs a run trains on.

    ``seeded`` (default) is exactly resumable (see ``SeededVectorEnv``); ``ale`` is ale-py's C++
    vector env, faster on Atari but not resumable mid-episode.
    """
    _ensure_known(env_id)
    if backend == "ale":
        if not is_atari(env_id):
            raise AnewError(f"--env-backend ale needs an ALE/ env id, not {env_id!r}; use --env-backend seeded")
        return make_atari_vector_env(env_id, num_envs, protocol(env_protocol or "dopamine"), training)
    if backend != "seeded":
        raise AnewError(f"unknown env backend {backend!r}: choose 'seeded' or 'ale'")
    thunk: Callable[[], gym.Env] = lambda: make_env(env_id, env_protocol, training, **(env_kwargs or {}))
    return SeededVectorEnv([thunk] * num_envs, seed=seed)


def list_envs() -> list[tuple[str, str]]:
    """(id, kind) for every environment anew can make: anew's own, Gymnasium's and ALE's."""
    register_envs()
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass
    ids = sorted(gym.registry)
    rows = [(env_id, "gymnasium") for env_id in ids]
    rows += [(env_id, "pettingzoo") for env_id in sorted(parallel_env_ids())]
    return rows
