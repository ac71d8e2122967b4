"""Lookup tables of the batched traffic junction, built once per (map, slots, layout, vision).

A car's whole state but its time on the board is one integer, its *code*: ``2 * (slot * block + track)``
with ``track = route * stride + cells travelled`` on a route row, or ``OFF = routes * stride`` (the last
track of a slot's block) off the board. Everything a step needs about a car is a row of a table indexed by
its code, so a step reads each fact of every car of every game with one ``take`` instead of a chain of
``where``/compare calls. Codes are even so that ``code + brake`` indexes the step table directly.

A car that leaves (a commnet car reaching its route's last cell, where it still crashes; an ic3net car
gassing from its last cell, off the board at once) settles to ``OFF`` within the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anew.envs.traffic_junction_maps import RoadMap

# Off-board sentinels of the vision window test, (int8, int16): far enough from every cell that no difference
# of an observer and a seen coordinate involving one of them falls in the window, even wrapped around.
OFF_SIGHT = {np.int8: 64, np.int16: 16000}
OWN_ROWS_BYTES = 1 << 22  # largest per-code table of own-word rows (vision 0) worth a dense gather


@dataclass(frozen=True)
class JunctionTables:
    """Per-code tables of one junction (``A`` slots); rows (or, for planes ``[k, ..]``, columns) are
    indexed by a code.

    ``step [2*A*block, 4]`` int32, at ``code + brake``: what the step does to the car: ``A`` if it is on the
    board at the step start (its time on the board grows; times are stored times ``A`` so that time + cell
    mates indexes the rewards), its crash bin (the road cell it moves to, else ``road cells + slot``: a bin
    of its own), 1 if it is still on the board after the step, and the code it settles to (``OFF`` once it
    has left). ``bin_cell [road cells + A]``: the cell of a crash bin (-1 for the others). ``on`` bool;
    ``shown [.., 2]``: (route, cell), -1 off the board. ``sight [4, ..]``: (observer row - v, observer col
    - v, seen row, seen col), far sentinels off the board. ``words [4, ..]``: vocabulary ids (agent, slot
    id, cell, route). Vision 0 only (else None): ``own [.., V]`` int8, the car's own words as a multi-hot
    row, and ``meet [2, ..]``: (observer cell, seen cell), off the board -1/-2 so that no pair matches.
    ``blocks [.., window^2]`` int8 or None: the ``block`` word around the car (easy CommNet map only).
    ``start [S * (K+1)]``: code change from ``OFF`` to the first track of route ``floor(u K)`` of each
    source (the last column repeats the last route: ``u K`` can round up to K).
    """

    block: int
    stride: int
    step: np.ndarray
    bin_cell: np.ndarray
    on: np.ndarray
    shown: np.ndarray
    sight: np.ndarray
    words: np.ndarray
    own: np.ndarray | None
    meet: np.ndarray | None
    blocks: np.ndarray | None
    start: np.ndarray

    @property
    def off_track(self) -> int:
        return self.block - 1


def build_tables(
    m: RoadMap, slots: int, layout: str, vision: int, cell_word: int, route_word: int, vocab_size: int
) -> JunctionTables:
    """The tables of map ``m`` with ``slots`` cars per game (see :class:`JunctionTables`)."""
    n_cells, stride = m.size * m.size, int(m.route_len.max()) + 1
    block = m.num_routes * stride + 1
    off = block - 1
    track = np.arange(block)
    route, pos = np.divmod(track, stride)
    real = route < m.num_routes
    route = np.where(real, route, 0)
    length = m.route_len[route]
    standing = real & (pos < length)  # on a cell of its route (counted in crashes)
    on = standing & (pos < length - 1 if layout == "commnet" else True)  # still on the board after the step
    y = np.where(standing, m.route_y[route, np.minimum(pos, length - 1)], -1)
    x = np.where(standing, m.route_x[route, np.minimum(pos, length - 1)], -1)
    cell = np.where(standing, y * m.size + x, n_cells)
    road_index = np.cumsum(m.road.ravel()) - 1  # road cells numbered 0.. (crash bins)

    slot = np.arange(slots)[:, None]
    code = 2 * (slot * block + track)  # [A, block]
    off_code = 2 * (slot * block + off)
    moved = np.stack([np.where(on, track + 1, off), np.where(on, track, off)])  # [gas/brake, block]
    stands = standing[moved]
    bins = np.where(stands, road_index[np.minimum(cell[moved], n_cells - 1)], m.road.sum() + slot[:, None])
    stays = on[moved]
    settled = np.where(stays, 2 * (slot[:, None] * block + moved), off_code[:, None])
    grows = np.broadcast_to(slots * on, stays.shape)
    step = np.stack(np.broadcast_arrays(grows, bins, stays, settled), -1)  # [A, action, block, 4]
    step = step.transpose(0, 2, 1, 3).reshape(-1, 4)  # row code + brake
    small = np.int8 if m.size + vision <= 40 else np.int16  # int8 differences keep the pair test cheap
    far = OFF_SIGHT[small]
    observer = [np.where(on, y - vision, far), np.where(on, x - vision, far)]
    sight = np.stack([*observer, np.where(on, y, -far), np.where(on, x, -far)], -1).astype(small)
    words = np.stack(
        np.broadcast_arrays(0, 1 + slot, cell_word + np.minimum(cell, n_cells - 1), route_word + route), -1
    )
    words = _doubled(words)
    own = meet = None
    if vision == 0 and len(words) * vocab_size <= OWN_ROWS_BYTES:
        own = np.zeros((len(words), vocab_size), np.int8)
        np.put_along_axis(own, words, 1, axis=1)
        own *= _doubled(np.broadcast_to(on, code.shape))[:, None]
        meet = np.stack([np.where(on, cell, -1), np.where(on, cell, -2)], -1)
        meet = _doubled(
            np.broadcast_to(meet, (slots, *meet.shape)).astype(np.int8 if n_cells < 127 else np.int16)
        ).T.copy()
    shown = np.stack([np.where(on, route, -1), np.where(on, cell, -1)], -1)
    starts = 2 * (m.source_routes * stride - off)
    return JunctionTables(
        block=block,
        stride=stride,
        step=step.astype(np.int32),  # 16-byte rows
        bin_cell=np.concatenate([np.flatnonzero(m.road.ravel()), np.full(slots, -1)]),
        on=_doubled(np.broadcast_to(on, code.shape)),
        shown=_doubled(np.broadcast_to(shown, (slots, *shown.shape))),
        sight=np.ascontiguousarray(_doubled(np.broadcast_to(sight, (slots, *sight.shape))).T),
        words=np.ascontiguousarray(words.T).astype(np.int16 if vocab_size < 1 << 15 else np.int32),
        own=own,
        meet=meet,
        blocks=_block_table(m, vision, cell, on, slots),
        start=np.concatenate([starts, starts[:, -1:]], axis=1).ravel(),
    )


def _doubled(per_slot: np.ndarray) -> np.ndarray:
    """A ``[A, block, ...]`` table as rows indexed by even codes (odd rows repeat them, never read)."""
    flat = per_slot.reshape(-1, *per_slot.shape[2:])
    return np.ascontiguousarray(np.repeat(flat, 2, axis=0))


def _block_table(m: RoadMap, vision: int, cell: np.ndarray, on: np.ndarray, slots: int) -> np.ndarray | None:
    """The ``block`` word over each car's window, or None when no car can ever see a block."""
    if not m.blocks.any():
        return None
    w = 2 * vision + 1
    padded = np.pad(m.blocks, vision)
    ys, xs = np.divmod(np.arange(m.size * m.size), m.size)
    offsets = np.arange(w)
    window = padded[ys[:, None, None] + offsets[None, :, None], xs[:, None, None] + offsets[None, None, :]]
    window = window.reshape(m.size * m.size, w * w).astype(np.int8)
    if not window[m.road.ravel()].any():  # cars stand on roads: with vision 0 they never see a block
        return None
    window = np.vstack([window, np.zeros((1, w * w), np.int8)])  # + the off-map cell
    per_track = window[cell] * on[:, None]
    return _doubled(np.broadcast_to(per_track, (slots, *per_track.shape)))
