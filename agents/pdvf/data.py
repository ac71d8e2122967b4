"""PD-VF's data helpers: phase-2 minibatch mixing, return normalisation, the reference's return order.

Phase 2 (the DAgger-like stages) trains the value function and the policy decoder on minibatches that
are 1/4 phase-1 data ("old") and 3/4 data gathered by rolling out the decoded optimal policies ("new"),
shuffled together (reference ``train_utils.py``). The reference re-creates the new buffer at every
stage, so "new" is the current stage's data only; the caller decides what it passes as ``new``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

OLD_FRACTION = 0.25
# (min, max) episode returns mapped to [0, 1]; Spaceship's returns are already in [0, 1].
RETURN_BOUNDS: dict[str, tuple[float, float] | None] = {
    "anew/Spaceship-v0": None,
    "anew/SwimmerWind-v0": (-60.0, 200.0),
    "anew/AntWind-v0": (-400.0, 1000.0),
}


def mix_counts(batch_size: int, old_fraction: float = OLD_FRACTION) -> tuple[int, int]:
    """(old, new) rows of a mixed minibatch: int(1/4 B) old and the rest new (32 + 96 at B = 128)."""
    old = int(old_fraction * batch_size)
    return old, batch_size - old


def _rows(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    # Without replacement, as the reference's ``random.sample``; with replacement when a buffer is smaller.
    return rng.choice(size, size=count, replace=count > size)


def _take(value: Array, rows: np.ndarray) -> Array:
    return value[torch.as_tensor(rows)] if isinstance(value, torch.Tensor) else value[rows]


def _concat(first: Array, second: Array) -> Array:
    return torch.cat([first, second]) if isinstance(first, torch.Tensor) else np.concatenate([first, second])


def _length(data: Mapping[str, Array]) -> int:
    lengths = {len(value) for value in data.values()}
    if len(lengths) != 1:
        raise ValueError(f"every field needs the same number of rows, got lengths {sorted(lengths)}")
    return lengths.pop()


def mix_minibatch(
    old: Mapping[str, Array],
    new: Mapping[str, Array],
    batch_size: int,
    rng: np.random.Generator,
    old_fraction: float = OLD_FRACTION,
) -> dict[str, Array]:
    """A shuffled minibatch of ``mix_counts(batch_size)`` rows drawn from ``old`` and ``new``.

    ``old`` and ``new`` map the same field names to numpy arrays or tensors with a leading row axis.
    """
    if set(old) != set(new):
        raise ValueError(f"old and new need the same fields, got {sorted(old)} and {sorted(new)}")
    num_old, num_new = mix_counts(batch_size, old_fraction)
    old_rows, new_rows = _rows(_length(old), num_old, rng), _rows(_length(new), num_new, rng)
    order = rng.permutation(batch_size)
    return {
        name: _take(_concat(_take(old[name], old_rows), _take(new[name], new_rows)), order) for name in old
    }


def normalise_returns(returns: Array, bounds: tuple[float, float] | None) -> Array:
    """(R - min) / (max - min); ``None`` bounds leave R as it is (already in [0, 1]). Not clipped."""
    if bounds is None:
        return returns
    low, high = bounds
    return (returns - low) / (high - low)


def denormalise_returns(values: Array, bounds: tuple[float, float] | None) -> Array:
    """The inverse of ``normalise_returns``."""
    if bounds is None:
        return values
    low, high = bounds
    return values * (high - low) + low


def reference_return(rewards: Sequence[float], gamma: float = 0.99) -> float:
    """The reference's episode return R <- gamma R + r in time order (it discounts *early* rewards more).

    Spaceship's single terminal reward comes out undiscounted; on MuJoCo this is what the paper fitted.
    """
    total = 0.0
    for reward in rewards:
        total = gamma * total + float(reward)
    return total
