"""The steps CommNet has played since its last update, kept until every game has finished an episode.

Rows are whole vector steps (``[B, ...]`` per field, time-major). Each game b trains on its rows from
``start[b]`` (an episode start) to its last finished episode; the rows after that (an episode still running,
in worlds whose games end at different times) stay for the next update. Games of a fixed-length world finish
together, so there the buffer empties completely at each update.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """The buffer as ``[T, B, ...]`` tensors, ``trainable [T, B]`` (rows of whole episodes not yet trained on)
    and the number of those episodes."""

    fields: dict[str, torch.Tensor]
    trainable: torch.Tensor
    episodes: int


class EpisodeBuffer:
    """Time-major rows of fields; ``done`` ``[B]`` bool must be one of them."""

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.rows: list[dict[str, torch.Tensor]] = []
        self.start = torch.zeros(num_envs, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: dict[str, torch.Tensor]) -> None:
        self.rows.append({name: value.detach().clone() for name, value in row.items()})

    def last_done(self) -> torch.Tensor:
        """``[B]`` index of each game's last finished step (-1 when it has none)."""
        if not self.rows:
            return torch.full((self.num_envs,), -1, dtype=torch.long)
        done = torch.stack([row["done"].bool() for row in self.rows])  # [T, B]
        index = torch.arange(len(self.rows))[:, None].expand_as(done)
        return torch.where(done, index, torch.full_like(index, -1)).max(0).values

    def ready(self) -> bool:
        """Every game has finished an episode since its ``start``."""
        return bool((self.last_done() >= self.start).all())

    def batch(self) -> Batch:
        fields = {name: torch.stack([row[name] for row in self.rows]) for name in self.rows[0]}
        last = self.last_done()
        t = torch.arange(len(self.rows))[:, None]
        trainable = (t >= self.start) & (t <= last)
        episodes = int((fields["done"].bool() & trainable).sum())
        return Batch(fields, trainable, episodes)

    def drop_trained(self) -> None:
        """Forget the rows every game has trained on; keep the running episodes."""
        self.start = self.last_done() + 1
        first = int(self.start.min())
        self.rows = self.rows[first:]
        self.start -= first

    def state_dict(self) -> dict[str, object]:
        fields = {}
        if self.rows:
            fields = {name: torch.stack([row[name] for row in self.rows]) for name in self.rows[0]}
        return {"fields": fields, "length": len(self.rows), "start": self.start.clone()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        fields: dict[str, torch.Tensor] = state["fields"]  # type: ignore[assignment]
        length = int(state["length"])  # type: ignore[arg-type]
        self.rows = [{name: value[t].clone() for name, value in fields.items()} for t in range(length)]
        self.start = state["start"].clone()  # type: ignore[union-attr]
