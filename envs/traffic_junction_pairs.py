"""What a traffic-junction step decides by comparing the cars of one game, for every game at once, and the
step's random numbers drawn a block of steps at a time.

Crashes: a car crashes when another car stands in its cell. Arrivals (Lua ``Traffic:add_agents``): each
source in turn, unless ``max_active`` cars are on the board, with probability ``p_arrive`` puts the free
slot with the smallest random key on its cell. Equivalently: rank a game's slots (cars on the board first,
then free slots by key, ties by slot); source s, if it wants a car, takes the slot of rank ``cars on the
board + wanting sources before s`` unless that rank reaches the cap.

Both are counts over the slot pairs (i < j) of a game (same cell? j's key below i's?) and over the sources,
so one float32 matmul of a small integer matrix with 0/1 rows gives, per game, every car's cell mates, and
the ranks and targets as flat positions ``game * width + rank`` (exact: all values are small integers).
Targets scatter their route's start there and slots gather it. The target of a source that wants no car,
or of one past nmax, lands in a spare region no slot reads; a slot ranked at or past ``max_active`` reads a
spare position that nothing writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_BLOCK = 16  # steps of random numbers drawn at once by ``TrafficJunctionSim.step``
PAIR_SLOTS = 10  # up to this many slots per game, crashes and ranks come from comparing slot pairs


class CarPairs:
    """The matrix and buffers of ``games`` games with ``slots`` slots and ``sources`` sources of
    ``routes_per_source`` routes each; ``start [S * (K+1)]`` is the code change from off the board to each
    route's first cell (``JunctionTables.start``); ``bins`` crash bins per game. ``rows`` holds [wants of
    each source; cars on the board; 1; game], then, up to ``PAIR_SLOTS`` slots, [pairs whose second key
    is below; pairs in one cell], and ``matrix @ rows`` gives [targets ``S``; ranks ``A``; cell mates
    ``A``]. With more slots (A^2 pairs cost more than they save) ranks come from a sort and cell mates
    from a bincount."""

    def __init__(
        self, games: int, slots: int, sources: int, routes_per_source: int, start: np.ndarray, bins: int
    ):
        B, A, S = games, slots, sources
        self.games, self.slots, self.sources, self.routes_per_source = B, A, S, routes_per_source
        self.start, self.start_offset = start, np.arange(S)[:, None] * (routes_per_source + 1)
        first, second = np.triu_indices(A, 1)
        self.compare_pairs = A <= PAIR_SLOTS
        P = self.pair_count = len(first) if self.compare_pairs else 0
        self.pair_slots = np.concatenate([first, second])
        # flat positions game * width + rank; targets: wanting before s + cars on the board + spare if s
        # wants no car, so those past nmax or not wanting land in [A, width): read by no slot
        spare = A + S
        self.width = 2 * spare
        self.unwritten = B * self.width  # read by capped slots, written by no target
        n = S + A + 2  # columns of [wants; on the board; 1; game]
        matrix = np.zeros((S + 2 * A if P else S, n + 2 * P))
        matrix[:S, :S] = np.tril(np.ones((S, S)), -1) - spare * np.eye(S)
        matrix[:S, S : S + A], matrix[:S, n - 2], matrix[: S + A, n - 1] = 1, spare, self.width
        if P:
            keys, cells = n + np.arange(P), n + P + np.arange(P)
            matrix[S + first, keys], matrix[S + second, keys] = 1, -1  # j below i: i's rank + 1, else j's
            matrix[S : S + A, n - 2] = np.arange(A)  # slot a starts with the a slots before it below it
            matrix[S + A + first, cells], matrix[S + A + second, cells] = 1, 1
        self.matrix = matrix.astype(np.float32)
        self.rows = np.zeros((n + 2 * P, B), np.float32)
        self.rows[n - 2], self.rows[n - 1] = 1, np.arange(B)
        self.game_bins = np.repeat(np.arange(B)[None] * bins, A, axis=0)  # the sort-and-bincount way
        self.bin_count = B * bins
        self.rank_positions = self.width * np.arange(B)[:, None] + np.arange(A)[None]  # [B, rank]
        self.rank_slots = np.arange(B)[:, None]

    def cap_positions(self, max_active: np.ndarray) -> np.ndarray:
        """``[B]`` first flat rank position at or past each game's cap (for :meth:`resolve`)."""
        return self.width * np.arange(self.games) + max_active

    def route_starts(self, route_u: np.ndarray) -> np.ndarray:
        """``[..., S, B]`` start code change of the route each source would send (``floor(u K)``)."""
        return self.start.take((route_u * self.routes_per_source).astype(np.intp) + self.start_offset)

    def resolve(
        self,
        cells: np.ndarray,
        stays: np.ndarray,
        wants: np.ndarray,
        slot_keys: np.ndarray,
        starts: np.ndarray,
        cap_position: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``([A, B]`` code change of each slot (0 unless it receives an arrival), ``[A, B]`` other cars in
        its cell). ``cells [A, B]``: crash bins (equal for two cars on one cell, else different);
        ``stays [A, B]``: 1 for cars on the board; ``wants [S, B]``: 1 where a source sends a car;
        ``slot_keys [A, B]``: this step's keys; ``starts``: :meth:`route_starts`; ``cap_position``:
        :meth:`cap_positions`, or None when no game is capped."""
        S, A, P, rows = self.sources, self.slots, self.pair_count, self.rows
        rows[:S], rows[S : S + A] = wants, stays
        keys = np.subtract(slot_keys, stays)  # cars on the board below 0: ranked first
        if self.compare_pairs:
            keys, cells = keys.take(self.pair_slots, axis=0), cells.take(self.pair_slots, axis=0)
            n = S + A + 2
            np.less(keys[P:], keys[:P], out=rows[n : n + P])
            np.equal(cells[:P], cells[P:], out=rows[n + P :])
            counts = (self.matrix @ rows).astype(np.intp)
            target, rank, mates = counts[:S], counts[S : S + A], counts[S + A :]
        else:
            target = (self.matrix @ rows).astype(np.intp)
            cells = cells + self.game_bins
            mates = np.bincount(cells.ravel(), minlength=self.bin_count).take(cells) - 1
            order = np.argsort(keys.T, axis=1, kind="stable")  # [B, rank]: the slot
            rank = np.empty((A, self.games), np.intp)
            rank.ravel()[order * self.games + self.rank_slots] = self.rank_positions
        if cap_position is not None:
            np.putmask(rank, rank >= cap_position, self.unwritten)
        scatter = np.zeros(self.unwritten + 1, np.int64)
        scatter[target] = starts
        return scatter.take(rank), mates


@dataclass
class NoiseBlock:
    """The uniforms of ``len(uniforms)`` consecutive steps from one draw of ``rng`` (the same numbers as
    one ``rng.random((B, 2S + A))`` per step), stored ``[step, 2S + A, B]``, with each step's route starts
    and which sources want a car."""

    rng: np.random.Generator
    state: dict
    uniforms: np.ndarray
    starts: np.ndarray
    wants: np.ndarray | None = None  # [step, S, B] float32 for the current p_arrive (None: stale)
    used: int = 0

    @classmethod
    def draw(
        cls, rng: np.random.Generator, games: int, sources: int, pairs: CarPairs, slots: int
    ) -> NoiseBlock:
        state = rng.bit_generator.state
        uniforms = rng.random((NOISE_BLOCK, games, 2 * sources + slots)).transpose(0, 2, 1).copy()
        return cls(rng, state, uniforms, pairs.route_starts(uniforms[:, sources : 2 * sources]))

    def state_now(self) -> dict:
        """The generator state after the steps used so far, as if each step had drawn its own numbers."""
        replay = np.random.Generator(type(self.rng.bit_generator)())
        replay.bit_generator.state = self.state
        replay.random(self.used * self.uniforms[0].size)
        return replay.bit_generator.state
