"""SOM's per-episode state: each player's estimate of the other's goal, and how often its argmax was right.

Training and evaluation each own one :class:`EpisodeState` (the agent keys them by ``explore``), so an
evaluation never touches what training does next. The accuracy is kept per quarter of the episode: step k of
an episode of length L falls in quarter ``floor(4 k / L)``, decided when the episode ends (the next
``episode_start`` of that game), so games of different lengths are compared at the same stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

QUARTERS = 4


class QuarterAccuracy:
    """Per step of each game's running episode: how many counted players' estimates named the other's true goal,
    folded into totals per quarter of the episode when the episode ends."""

    def __init__(self, num_games: int):
        self.hits = np.zeros((num_games, 0), dtype=np.int64)
        self.seen = np.zeros((num_games, 0), dtype=np.int64)
        self.length = np.zeros(num_games, dtype=np.int64)
        self.totals = np.zeros((2, QUARTERS), dtype=np.int64)  # hits, estimates seen

    def record(self, correct: np.ndarray, counted: np.ndarray) -> None:
        """One step of every game: ``correct`` and ``counted`` ``[games, players]`` booleans."""
        if self.length.max(initial=0) >= self.hits.shape[1]:
            extra = max(self.hits.shape[1], 8)
            self.hits = np.pad(self.hits, ((0, 0), (0, extra)))
            self.seen = np.pad(self.seen, ((0, 0), (0, extra)))
        games = np.arange(len(self.length))
        self.hits[games, self.length] = (correct & counted).sum(axis=1)
        self.seen[games, self.length] = counted.sum(axis=1)
        self.length += 1

    def finish(self, mask: np.ndarray) -> None:
        """The episodes of the games where ``mask`` is true ended: add them to the totals, start afresh."""
        ended = np.flatnonzero(np.asarray(mask, dtype=bool) & (self.length > 0))
        if len(ended):
            steps = np.arange(self.hits.shape[1])[None, :]
            length = self.length[ended, None]
            quarter = np.where(steps < length, QUARTERS * steps // length, QUARTERS)  # QUARTERS: past the end
            for row, values in enumerate((self.hits[ended], self.seen[ended])):
                counts = np.bincount(quarter.ravel(), values.ravel(), QUARTERS + 1)
                self.totals[row] += counts[:QUARTERS].astype(np.int64)
        self.discard(mask)

    def discard(self, mask: np.ndarray) -> None:
        """Forget the running episodes of the games where ``mask`` is true (unfinished: not counted)."""
        rows = np.asarray(mask, dtype=bool)
        self.hits[rows], self.seen[rows], self.length[rows] = 0, 0, 0

    def take(self) -> dict[str, float]:
        """``{"inference_accuracy_q1": …}`` for the quarters with estimates since the last take; resets them."""
        hits, seen = self.totals
        result = {
            f"inference_accuracy_q{q + 1}": float(hits[q] / seen[q]) for q in range(QUARTERS) if seen[q]
        }
        self.totals[:] = 0
        return result

    def state_dict(self) -> dict[str, Any]:
        return {
            "hits": torch.as_tensor(self.hits),
            "seen": torch.as_tensor(self.seen),
            "length": torch.as_tensor(self.length),
            "totals": torch.as_tensor(self.totals),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("hits", "seen", "length", "totals"):
            setattr(self, name, state[name].numpy().astype(np.int64).copy())


class EpisodeState:
    """The estimate logits ``[games, players, goals]`` (zeros, a uniform estimate, at every episode start) and
    the accuracy of their argmax, for one batch of games."""

    def __init__(self, num_games: int, num_goals: int, device: torch.device):
        self.logits = torch.zeros((num_games, 2, num_goals), device=device)
        self.accuracy = QuarterAccuracy(num_games)

    @property
    def num_games(self) -> int:
        return int(self.logits.shape[0])

    def episode_start(self, mask: np.ndarray) -> None:
        """New episodes in the games where ``mask`` is true: close their accuracy records, reset the estimates."""
        mask = np.asarray(mask, dtype=bool)
        self.accuracy.finish(mask)
        self.logits[torch.as_tensor(mask, device=self.logits.device)] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"logits": self.logits.clone(), "accuracy": self.accuracy.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.logits = state["logits"].to(self.logits.device).clone()
        self.accuracy.load_state_dict(state["accuracy"])
