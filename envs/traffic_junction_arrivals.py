"""Arrivals of the batched traffic junction with no loop over sources or games, and the step's random
numbers drawn a block of steps at a time.

Arrivals (Lua ``Traffic:add_agents``): each source in turn, unless ``max_active`` cars are on the board,
with probability ``p_arrive`` puts the free slot with the smallest random key on its cell. Equivalently:
rank a game's slots (cars on the board first, then free slots by key, ties by slot); source s, if it
wants a car, takes the slot of rank ``cars on the board + wanting sources before s`` unless that rank
reaches the cap. Ranks and targets are small integer matrices times 0/1 rows, so two float32 matmuls give
them as flat positions ``rank * B + game`` (exact: every value is a small integer): targets scatter their
route's start there and slots gather it. The target of a source that wants no car, or of one past nmax,
lands in a spare region no slot reads; a slot ranked at or past ``max_active`` reads a spare position that
nothing writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_BLOCK = 16  # steps of random numbers drawn at once by ``TrafficJunctionSim.step``


class Arrivals:
    """The arrival matrix and buffers of ``games`` games with ``slots`` slots and ``sources`` sources of
    ``routes_per_source`` routes each; ``start [S * (K+1)]`` is the code change from off the board to each
    route's first cell (``JunctionTables.start``). One matmul ``matrix @ rows`` gives the targets ``[S, B]``
    and the ranks ``[A, B]`` as flat positions; ``rows`` holds [wants of each source; cars on the board;
    pair comparisons; 1; game]."""

    def __init__(self, games: int, slots: int, sources: int, routes_per_source: int, start: np.ndarray):
        B, A, S = games, slots, sources
        self.games, self.slots, self.sources, self.routes_per_source = B, A, S, routes_per_source
        self.start, self.start_offset = start, np.arange(S)[:, None] * (routes_per_source + 1)
        first, second = np.triu_indices(A, 1)  # slot pairs i < j: j ranks below i if key_j < key_i
        P = self.pair_count = len(first)
        self.pair_slots = np.concatenate([first, second])
        spare = (
            A + S + 1
        )  # targets: B * (wanting before s + cars on the board + spare * (1 - wants_s)) + game
        self.positions = B * (2 * spare + 1)
        self.unwritten = self.positions - 1
        matrix = np.zeros((S + A, S + A + P + 2))
        matrix[:S, :S] = B * (np.tril(np.ones((S, S)), -1) - spare * np.eye(S))
        matrix[:S, S : S + A], matrix[:S, -2] = B, B * spare
        matrix[S + first, S + A + np.arange(P)], matrix[S + second, S + A + np.arange(P)] = B, -B
        matrix[S:, -2] = B * np.arange(A)  # slot a starts with the a slots before it below it
        matrix[:, -1] = 1
        self.matrix = matrix.astype(np.float32)
        self.rows = np.zeros((S + A + P + 2, B), np.float32)
        self.rows[-2], self.rows[-1] = 1, np.arange(B)

    def route_starts(self, route_u: np.ndarray) -> np.ndarray:
        """``[..., S, B]`` start code change of the route each source would send (``floor(u K)``)."""
        return self.start.take((route_u * self.routes_per_source).astype(np.intp) + self.start_offset)

    def changes(
        self,
        stays: np.ndarray,
        wants: np.ndarray,
        slot_keys: np.ndarray,
        starts: np.ndarray,
        cap_position: np.ndarray | None,
    ) -> np.ndarray:
        """``[A, B]`` code change of each slot (0 unless it receives an arrival). ``stays [A, B]``: 1 for
        cars on the board; ``wants [S, B]``: 1 where a source sends a car (``u < p_arrive``);
        ``slot_keys [A, B]``: this step's keys; ``starts``: :meth:`route_starts`; ``cap_position [B]``:
        ``B * max_active + game``, or None when no game is capped."""
        S, A, P, rows = self.sources, self.slots, self.pair_count, self.rows
        rows[:S], rows[S : S + A] = wants, stays
        keys = np.subtract(slot_keys, stays).take(self.pair_slots, axis=0)  # on the board: below 0
        np.less(keys[P:], keys[:P], out=rows[S + A : S + A + P])
        positions = (self.matrix @ rows).astype(np.intp)
        target, rank = positions[:S], positions[S:]
        if cap_position is not None:
            np.putmask(rank, rank >= cap_position, self.unwritten)
        scatter = np.zeros(self.positions, np.int64)
        scatter[target] = starts
        return scatter.take(rank)


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
        cls, rng: np.random.Generator, games: int, sources: int, arrivals: Arrivals, slots: int
    ) -> NoiseBlock:
        state = rng.bit_generator.state
        uniforms = rng.random((NOISE_BLOCK, games, 2 * sources + slots)).transpose(0, 2, 1).copy()
        return cls(rng, state, uniforms, arrivals.route_starts(uniforms[:, sources : 2 * sources]))

    def state_now(self) -> dict:
        """The generator state after the steps used so far, as if each step had drawn its own numbers."""
        replay = np.random.Generator(type(self.rng.bit_generator)())
        replay.bit_generator.state = self.state
        replay.random(self.used * self.uniforms[0].size)
        return replay.bit_generator.state
