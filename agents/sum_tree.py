"""A numpy sum tree for proportional prioritized replay (Schaul et al., 2016).

The tree covers a flat index space ``0 .. capacity-1`` (the replay buffer's slots) and works on a
whole batch of indices per call: a prioritized-replay training step is one :meth:`SumTree.sample`
and one :meth:`SumTree.update`, each a fixed number of numpy calls whatever the batch size.

Shape: a wide, shallow tree. Below the top, every node has ``FANOUT`` (32) children; levels are
added until the top one has at most ``TOP_MAX`` nodes (a million slots: leaves, 31,264 nodes of 32
leaves, and a top of 977). Sampling takes one prefix sum over the top level, finds each query's top
node with ``searchsorted``, then descends with a (batch, 32) prefix sum per level; an update
re-sums the touched parents level by level. numpy charges per call far more than per element, so
few levels of wide nodes beat a deep binary tree (20 levels of ~6 calls each for a million slots);
``benchmarks/bench_sum_tree.py`` compares it with a vectorised binary tree and a Python loop tree.

Sums are always recomputed from the leaves, never adjusted by deltas, so floating-point error does
not accumulate over millions of updates. The tree stores whatever priorities it is given; raising
them to the priority exponent alpha is the caller's job (Dopamine's Rainbow stores
``sqrt(loss + 1e-10)``, i.e. alpha = 0.5 applied by the agent).
"""

from __future__ import annotations

import numpy as np

from anew.errors import AnewError

FANOUT = 32  # children per node below the top level
TOP_MAX = 2048  # the top level is searched with one prefix sum once it has at most this many nodes


class SumTree:
    """Priorities over ``capacity`` slots with batched update and stratified sampling."""

    def __init__(self, capacity: int, fanout: int = FANOUT, top_max: int = TOP_MAX):
        """``fanout`` and ``top_max`` only change speed (tests shrink them to build deep trees)."""
        if capacity < 1 or fanout < 2 or top_max < 1:
            raise ValueError(
                f"need capacity >= 1, fanout >= 2, top_max >= 1: got {capacity}, {fanout}, {top_max}"
            )
        self.capacity = int(capacity)
        self.fanout = int(fanout)
        # Levels from the leaves up. Every level below the top is padded with zero-mass nodes to a
        # multiple of the fanout, so ``level.reshape(-1, fanout)[i]`` are the children of node i above.
        sizes = [self.capacity]
        while sizes[-1] > top_max:
            sizes[-1] = -(-sizes[-1] // fanout) * fanout
            sizes.append(sizes[-1] // fanout)
        self._levels = [np.zeros(size, dtype=np.float64) for size in sizes]
        self._total: float | None = 0.0
        # Largest priority ever set (1.0 before any): Dopamine's priority for new transitions.
        self.max_priority = 1.0

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        if self._total is None:
            self._total = float(self._levels[-1].sum())
        return self._total

    def get(self, indices: np.ndarray | int) -> np.ndarray:
        """Priorities of the given slots."""
        return self._levels[0][self._check_indices(indices)]

    @property
    def priorities(self) -> np.ndarray:
        """A read-only view of all ``capacity`` leaf priorities."""
        view = self._levels[0][: self.capacity]
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
        nodes, first_in_reversed = np.unique(indices[::-1], return_index=True)
        self._levels[0][nodes] = priorities[indices.size - 1 - first_in_reversed]
        for below, level in zip(self._levels, self._levels[1:]):
            # Re-sum each touched parent from all its children. A parent listed twice gets the same
            # sum twice, so no deduplication is needed above the leaves.
            nodes = nodes // self.fanout
            level[nodes] = below.reshape(-1, self.fanout)[nodes].sum(axis=1)
        self._total = None
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def find(self, masses: np.ndarray) -> np.ndarray:
        """Slots whose cumulative-priority intervals ``[c_i, c_i + p_i)`` contain ``masses``.

        ``masses`` should lie in [0, total); values that rounding pushes to or past an interval's
        end are moved just inside it, so a slot of priority zero is never returned.
        """
        masses = np.array(masses, dtype=np.float64, copy=True).reshape(-1)
        top = self._levels[-1]
        starts = np.empty(top.size + 1)  # exclusive prefix sums of the top level, then the total
        starts[0] = 0.0
        np.cumsum(top, out=starts[1:])
        if starts[-1] <= 0.0:
            raise ValueError("cannot sample from a SumTree whose priorities are all zero")
        np.clip(masses, 0.0, np.nextafter(starts[-1], 0.0), out=masses)
        # nodes[k] satisfies starts[n] <= mass < starts[n+1], so node n has mass > 0.
        nodes = np.searchsorted(starts, masses, side="right") - 1
        masses -= starts[nodes]  # exactly >= 0, since mass >= starts[n]
        rows = np.arange(masses.size)
        for below in reversed(self._levels[:-1]):
            children = below.reshape(-1, self.fanout)[nodes]  # (B, fanout)
            starts = np.zeros((masses.size, self.fanout + 1))
            np.cumsum(children, axis=1, out=starts[:, 1:])
            np.minimum(masses, np.nextafter(starts[:, -1], 0.0), out=masses)
            # The chosen child j has starts[j] <= mass < starts[j+1], so its mass is > 0.
            chosen = (starts[:, 1:] <= masses[:, None]).sum(axis=1)
            masses -= starts[rows, chosen]
            nodes = nodes * self.fanout + chosen
        return nodes

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified sample: split the total mass into ``batch_size`` equal strata, one query in each.

        Each returned slot is drawn with probability ``priority / total`` marginally (Dopamine and
        Schaul et al. sample this way; it lowers the variance of a batch's composition).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self.find((np.arange(batch_size) + rng.random(batch_size)) * (self.total / batch_size))

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
                f"{self.capacity}: load them into a buffer of capacity {priorities.shape[0]}"
            )
        if not np.all(np.isfinite(priorities)) or np.any(priorities < 0):
            raise AnewError("saved sum-tree priorities are negative or not finite: the file is corrupt")
        self._levels[0][:] = 0.0
        self._levels[0][: self.capacity] = priorities
        for below, level in zip(self._levels, self._levels[1:]):
            sums = below.reshape(-1, self.fanout).sum(axis=1)
            level[:] = 0.0
            level[: sums.size] = sums
        self._total = None
        self.max_priority = float(state["max_priority"])

    def save(self, path_prefix: str) -> None:
        """Write ``<prefix>priorities.npy`` and ``<prefix>max_priority.npy``."""
        for name, array in self.state_dict().items():
            np.save(f"{path_prefix}{name}.npy", array, allow_pickle=False)

    def load(self, path_prefix: str) -> None:
        """Read what :meth:`save` wrote (``allow_pickle=False``)."""
        names = ("priorities", "max_priority")
        self.load_state_dict(
            {name: np.load(f"{path_prefix}{name}.npy", allow_pickle=False) for name in names}
        )

    def _check_indices(self, indices: np.ndarray | int) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise IndexError(
                f"SumTree index out of range [0, {self.capacity}): {indices.min()}..{indices.max()}"
            )
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
