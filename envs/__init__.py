"""anew.envs: environments, their registration under ``anew/``, and the factories the runner uses.

``make_env`` builds one env (with the Atari protocol wrappers where they apply) and
``make_vector_env`` the batch the runner trains on. ``list_envs`` lists every id anew can make.
Importing this package (so importing ``anew``) registers every single-agent ``anew/`` id with Gymnasium
(``anew.envs.registration``), without importing any env module.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from anew.envs.atari import (
    PROTOCOLS,
    check_atari_id,
    is_atari,
    make_atari_env,
    make_atari_vector_env,
    protocol,
)
from anew.envs.multiagent import is_multiagent, make_parallel, make_team_env, parallel_env_ids
from anew.envs.registration import missing_requirement, register_envs
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
    "missing_requirement",
    "register_envs",
]

register_envs()  # importing anew (or anew.envs) registers every anew/ id: gym.register_envs(anew)


def _ensure_known(env_id: str) -> None:
    """A one-line error for an id that is not registered (with the closest ids) or cannot be made here."""
    register_envs()
    if is_atari(env_id):
        check_atari_id(env_id)
    elif env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else " Run `anew envs` to list the ids."
        raise AnewError(f"unknown env id {env_id!r}.{hint}")
    install = missing_requirement(env_id)
    if install:
        raise AnewError(f"{env_id} cannot be made here: it needs {install}")


def default_protocol(env_id: str) -> str:
    return "dopamine" if is_atari(env_id) else ""


def make_env(
    env_id: str,
    env_protocol: str = "",
    training: bool = True,
    render_mode: str | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """One environment; Atari ids get the named protocol's preprocessing (default ``dopamine``).

    ``env_kwargs`` go to the env's constructor (e.g. ``lead_time=2, p=4`` for anew/LostSales-v0).
    """
    _ensure_known(env_id)
    if is_atari(env_id):
        if env_kwargs:
            raise AnewError(
                f"Atari envs take no extra options here (got {sorted(env_kwargs)}); use --env-protocol"
            )
        return make_atari_env(env_id, protocol(env_protocol or "dopamine"), training, render_mode)
    if env_protocol:
        raise AnewError(f"--env-protocol applies to Atari ids only, not {env_id!r}; drop the flag")
    try:
        return gym.make(env_id, render_mode=render_mode, **env_kwargs)
    except gym.error.DependencyNotInstalled as error:
        raise AnewError(f"{env_id} cannot be made here: {str(error).splitlines()[0]}") from error
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
            raise AnewError(
                f"--env-backend ale needs an ALE/ env id, not {env_id!r}; use --env-backend seeded"
            )
        return make_atari_vector_env(env_id, num_envs, protocol(env_protocol or "dopamine"), training)
    if backend != "seeded":
        raise AnewError(f"unknown env backend {backend!r}: choose 'seeded' or 'ale'")
    thunk: Callable[[], gym.Env] = lambda: make_env(env_id, env_protocol, training, **(env_kwargs or {}))
    return SeededVectorEnv([thunk] * num_envs, seed=seed)


def list_envs() -> list[tuple[str, str]]:
    """(id, kind) for every environment anew can make: anew's own and Gymnasium's (kind ``gymnasium``), ALE's
    (``ale``) and the multi-agent worlds (``pettingzoo``). ``missing_requirement(id)`` says what an id needs."""
    register_envs()
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass
    ids = sorted(gym.registry)
    rows = [
        (env_id, "ale" if str(gym.registry[env_id].entry_point).startswith("ale_py") else "gymnasium")
        for env_id in ids
    ]
    rows += [(env_id, "pettingzoo") for env_id in sorted(parallel_env_ids())]
    return rows
