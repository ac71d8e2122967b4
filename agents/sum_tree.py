"""A numpy sum tree for proportional prioritized replay (Schaul et al., 2016).

The tree covers a flat index space ``0 .. capacity-1`` (the replay buffer's slots). Every operation
works on a whole batch of indices at once: a batch update touches ``depth`` levels of the tree with
one vectorised step each, and a batch sample walks all queries down the tree together. That is the
whole point of this module: Python loops over batch elements dominate the cost of prioritized
replay otherwise (see ``benchmarks/bench_sum_tree.py``).

Layout: a heap in one float64 array of length ``2 * leaves`` (``leaves`` = capacity rounded up to a
power of two); the root is node 1, node ``i`` has children ``2i`` and ``2i+1``, leaf ``j`` is node
``leaves + j``. Parents are recomputed from their children rather than adjusted by deltas, so
floating-point error never accumulates over millions of updates.

The tree stores whatever priorities it is given; raising them to the priority exponent alpha is
the caller's job (Dopamine's Rainbow stores ``sqrt(loss)``, i.e. alpha = 0.5 applied by the agent).
"""

from __future__ import annotations

import numpy as np

from anew.errors import AnewError


class SumTree:
    """Priorities over ``capacity`` slots with O(log n) batched update and stratified sampling."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self._depth = self._leaves.bit_length() - 1  # levels between the root and the leaves
        self._nodes = np.zeros(2 * self._leaves, dtype=np.float64)
        # Largest priority ever set (1.0 before any), Dopamine's priority for new transitions.
        self.max_priority = 1.0

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._nodes[1])

    def get(self, indices: np.ndarray | int) -> np.ndarray:
        """Priorities of the given slots."""
        return self._nodes[self._leaves + self._check_indices(indices)]

    @property
    def priorities(self) -> np.ndarray:
        """A read-only view of all ``capacity`` leaf priorities."""
        view = self._nodes[self._leaves : self._leaves + self.capacity]
        view.flags.writeable = False
        return view

    def update(self, indices: np.ndarray | int, priorities: np.ndarray | float) -> None:
        """Set ``priorities[k]`` at slot ``indices[k]``; with repeated indices the last one wins."""
        indices = self._check_indices(indices)
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), indices.shape)
        if not np.all(np.isfinite(priorities)) or np.any(priorities < 0):
            bad = priorities[~np.isfinite(priorities) | (priorities < 0)][0]
            raise AnewError(
                f"priority {bad} is negative or not finite: the loss diverged; "
                "lower the learning rate or check the rewards"
            )
        if indices.size == 0:
            return
        # Keep the last occurrence of each index so duplicates behave like sequential updates.
        reversed_unique, first_in_reversed = np.unique(indices[::-1], return_index=True)
        last = indices.size - 1 - first_in_reversed
        nodes = reversed_unique + self._leaves
        self._nodes[nodes] = priorities[last]
        self.max_priority = max(self.max_priority, float(priorities.max()))
        for _ in range(self._depth):
            nodes = np.unique(nodes >> 1)
            self._nodes[nodes] = self._nodes[2 * nodes] + self._nodes[2 * nodes + 1]

    def find(self, masses: np.ndarray) -> np.ndarray:
        """Slots whose cumulative-priority intervals contain ``masses`` (values in [0, total)).

        Never returns a slot of priority zero: a query that rounding pushes past a subtree's mass
        is sent to the sibling that has some.
        """
        if self.total <= 0.0:
            raise ValueError("cannot sample from a SumTree whose priorities are all zero")
        masses = np.array(masses, dtype=np.float64, copy=True).reshape(-1)
        nodes = np.ones(masses.shape, dtype=np.int64)
        for _ in range(self._depth):
            left = 2 * nodes
            left_mass = self._nodes[left]
            go_right = (masses >= left_mass) & (self._nodes[left + 1] > 0.0)
            go_right |= left_mass <= 0.0
            masses -= np.where(go_right, left_mass, 0.0)
            nodes = left + go_right
        return nodes - self._leaves

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified sample: split the total mass into ``batch_size`` equal strata, one query in each.

        Each returned slot is drawn with probability ``priority / total`` marginally (Dopamine and
        Schaul et al. sample this way; it lowers the variance of a batch's composition).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        offsets = rng.random(batch_size)
        masses = (np.arange(batch_size) + offsets) * (self.total / batch_size)
        return self.find(np.minimum(masses, np.nextafter(self.total, 0.0)))

    def probabilities(self, indices: np.ndarray | int) -> np.ndarray:
        """Sampling probability ``priority / total`` of each slot."""
        return self.get(indices) / self.total

    # --- persistence: plain arrays, so the replay buffer can write them as .npy (no pickle) ---

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"priorities": float64 (capacity,), "max_priority": float64 ()}``."""
        return {
            "priorities": self.priorities.copy(),
            "max_priority": np.asarray(self.max_priority, dtype=np.float64),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        priorities = np.asarray(state["priorities"], dtype=np.float64)
        if priorities.shape != (self.capacity,):
            raise AnewError(
                f"saved sum-tree priorities have shape {priorities.shape} but the buffer capacity is "
                f"{self.capacity}: load it into a buffer with capacity {priorities.shape[0]}"
            )
        if not np.all(np.isfinite(priorities)) or np.any(priorities < 0):
            raise AnewError("saved sum-tree priorities are negative or not finite: the file is corrupt")
        self._nodes[:] = 0.0
        self._nodes[self._leaves : self._leaves + self.capacity] = priorities
        for level in range(self._depth - 1, -1, -1):  # rebuild every internal level bottom-up
            first, last = 1 << level, 2 << level
            children = self._nodes[2 * first : 2 * last]
            self._nodes[first:last] = children[0::2] + children[1::2]
        self.max_priority = float(state["max_priority"])

    def save(self, path_prefix: str) -> None:
        """Write ``<prefix>priorities.npy`` and ``<prefix>max_priority.npy``."""
        for name, array in self.state_dict().items():
            np.save(f"{path_prefix}{name}.npy", array, allow_pickle=False)

    def load(self, path_prefix: str) -> None:
        """Read what :meth:`save` wrote (``allow_pickle=False``)."""
        self.load_state_dict(
            {name: np.load(f"{path_prefix}{name}.npy", allow_pickle=False) for name in ("priorities", "max_priority")}
        )

    def _check_indices(self, indices: np.ndarray | int) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise IndexError(f"SumTree index out of range [0, {self.capacity}): {indices.min()}..{indices.max()}")
        return indices


def importance_weights(probabilities: np.ndarray, beta: float) -> np.ndarray:
    """Importance-sampling weights ``(N * P(i)) ** -beta`` normalised by their maximum over the batch.

    The buffer size N cancels in the normalisation, so only the sampled probabilities are needed;
    with beta = 0.5 this is Dopamine's ``1 / sqrt(p + 1e-10)`` divided by its max. The largest
    weight is 1, so the weights only ever scale the loss down (Schaul et al., 2016, Sec. 3.4).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    weights = np.power(probabilities + 1e-10, -beta)
    return weights / weights.max()
