"""The small shared vocabulary of anew: transition batches and the agent protocol.

Everything else (buffers, losses, runners) speaks in these terms, the way Acme's ``core.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class TransitionBatch:
    """One step of N parallel envs; every array has a leading env axis of length N.

    ``terminated`` ends bootstrapping (a true terminal state); ``truncated`` (a time limit) does not.
    ``next_obs`` is the observation that follows ``obs`` in the same episode, also when the
    episode just ended (the vector env's final observation, never the reset one).
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: np.ndarray

    @property
    def num_envs(self) -> int:
        return int(self.reward.shape[0])


@runtime_checkable
class Agent(Protocol):
    """Acts and learns; never owns the environment loop (the runner does)."""

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """Actions for a batch of observations (leading env axis)."""

    def observe(self, batch: TransitionBatch) -> None:
        """Record one step of every env (the agent counts its own steps)."""

    def update(self) -> dict[str, float]:
        """Take the gradient steps that are due now; return scalars to log (empty if none)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, target net, counters."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
