"""Road maps of the traffic junction: sources, routes and visible blocks, as static numpy tables.

The CommNet maps are transcribed from ``facebookarchive/CommNet`` ``games/CrossingEasy.lua`` (7x7, one
1-lane road per axis, 2 sources x 2 routes), ``Crossing.lua`` (14x14, one 2-lane road per axis, 4 sources
x 3 routes) and ``CrossingHard.lua`` (18x18, two 2-lane roads per axis, 8 sources x 7 routes), keeping the
Lua route numbering (route r here is the Lua ``route{r+1}``). Coordinates are 0-based ``(row, col)``.
The IC3Net easy map (``ic3net_envs/traffic_junction_env.py``, ``--dim 6``) is the 7x7 cross with only the
two straight routes. Everything here runs once at construction; nothing is on the step path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Cell = tuple[int, int]
Transform = Callable[[int, int], Cell]


@dataclass(frozen=True)
class RoadMap:
    """A junction map as arrays: ``route_y/route_x [R, Lmax]`` (padded with the last cell), ``route_len [R]``,
    ``source_routes [S, K]`` (route ids per source, the same K for every source), ``blocks [H, W]``
    (cells holding a visible ``block`` word; only the CommNet easy map has them) and ``road [H, W]``."""

    size: int
    route_y: np.ndarray
    route_x: np.ndarray
    route_len: np.ndarray
    source_routes: np.ndarray
    blocks: np.ndarray
    road: np.ndarray

    @property
    def num_routes(self) -> int:
        return len(self.route_len)

    @property
    def num_sources(self) -> int:
        return self.source_routes.shape[0]

    def route_cells(self, route: int) -> list[Cell]:
        return [
            (int(self.route_y[route, i]), int(self.route_x[route, i])) for i in range(self.route_len[route])
        ]


def _build(size: int, routes_per_source: list[list[list[Cell]]], blocks: list[Cell]) -> RoadMap:
    routes = [route for group in routes_per_source for route in group]
    ids, start = [], 0
    for group in routes_per_source:
        ids.append(list(range(start, start + len(group))))
        start += len(group)
    longest = max(len(route) for route in routes)
    padded = np.array([route + [route[-1]] * (longest - len(route)) for route in routes], dtype=np.int64)
    for route in routes:  # every move is one step to a 4-neighbour inside the grid
        steps = np.abs(np.diff(np.array(route), axis=0)).sum(axis=1)
        assert (steps == 1).all() and min(min(c) for c in route) >= 0 and max(max(c) for c in route) < size
    block_grid = np.zeros((size, size), dtype=bool)
    for y, x in blocks:
        block_grid[y, x] = True
    road = np.zeros((size, size), dtype=bool)
    road[padded[..., 0], padded[..., 1]] = True
    return RoadMap(
        size,
        padded[..., 0].copy(),
        padded[..., 1].copy(),
        np.array([len(r) for r in routes]),
        np.array(ids, dtype=np.int64),
        block_grid,
        road,
    )


def _one_based(cells: list[Cell]) -> list[Cell]:
    return [(y - 1, x - 1) for y, x in cells]


def easy_map(straight_only: bool = False) -> RoadMap:
    """CrossingEasy (7x7): sources top and left; routes straight or turning (Lua order: the two straight
    routes first, then the two turns). ``straight_only`` gives the IC3Net easy map (2 straight routes)."""
    n, length = 7, 7 // 2
    mid = length + 1  # the road's row and column, 1-based
    top_straight = [(i, mid) for i in range(1, n + 1)]
    left_straight = [(mid, i) for i in range(1, n + 1)]
    top_turn = [(i, mid) for i in range(1, mid + 1)] + [(mid, i) for i in range(mid + 1, n + 1)]
    left_turn = [(mid, i) for i in range(1, mid + 1)] + [(i, mid) for i in range(mid + 1, n + 1)]
    if straight_only:
        groups = [[top_straight], [left_straight]]
        return _build(n, [[_one_based(r) for r in g] for g in groups], [])
    # Lua route ids: 1 top straight, 2 left straight, 3 top turn, 4 left turn; sources hold {1,3} and {2,4}.
    routes = [top_straight, left_straight, top_turn, left_turn]
    built = _build(n, [[_one_based(r) for r in routes]], _easy_blocks(n, length))
    source_routes = np.array([[0, 2], [1, 3]], dtype=np.int64)
    return RoadMap(n, built.route_y, built.route_x, built.route_len, source_routes, built.blocks, built.road)


def _easy_blocks(n: int, length: int) -> list[Cell]:
    cells = []
    for y in [*range(1, length + 1), *range(length + 2, n + 1)]:
        cells += [(y, length), (y, length + 2)]
    for x in [*range(1, length), *range(length + 3, n + 1)]:
        cells += [(length, x), (length + 2, x)]
    return _one_based(cells)


def _rotations(n: int) -> list[Transform]:
    return [
        lambda y, x: (y, x),
        lambda y, x: (x, n + 1 - y),
        lambda y, x: (n + 1 - x, y),
        lambda y, x: (n + 1 - y, n + 1 - x),
    ]


def medium_map() -> RoadMap:
    """Crossing (14x14): each of the 4 rotated parts adds one source with straight, right and left routes."""
    n = 14
    length = n // 2 - 1
    first = 1  # 1 + length - road_length with road_length = length
    groups = []
    for tr in _rotations(n):
        straight = [tr(i, length + 1) for i in range(first, n - length + length + 1)]
        right = [tr(i, length + 1) for i in range(first, length + 2)]
        right += [tr(length + 1, i) for i in range(length, first - 1, -1)]
        left = [tr(i, length + 1) for i in range(first, length + 3)]
        left += [tr(length + 2, i) for i in range(length + 2, n - length + length + 1)]
        groups.append([_one_based(r) for r in (straight, right, left)])
    return _build(n, groups, [])


def _segments(tr: Transform, parts: list[tuple[str, int, int, int]]) -> list[Cell]:
    """Cells of consecutive straight segments: ('row', fixed_y, x_from, x_to) or ('col', fixed_x, y_from, y_to)."""
    cells = []
    for kind, fixed, start, stop in parts:
        step = 1 if stop >= start else -1
        for v in range(start, stop + step, step):
            cells.append(tr(fixed, v) if kind == "row" else tr(v, fixed))
    return cells


def hard_map() -> RoadMap:
    """CrossingHard (18x18): each rotated part adds a left-side source (row 6) and a top source (col 5),
    each with 7 routes, in the Lua order."""
    groups = []
    for tr in _rotations(18):
        from_left = [
            [("row", 6, 1, 6), ("col", 6, 5, 1)],  # 1st left
            [("row", 6, 1, 14), ("col", 14, 5, 1)],  # 2nd left
            [("row", 6, 1, 18)],  # straight
            [("row", 6, 1, 5), ("col", 5, 7, 14), ("row", 14, 6, 18)],  # 1st right, then left
            [("row", 6, 1, 13), ("col", 13, 7, 18)],  # 2nd right, then straight
            [("row", 6, 1, 5), ("col", 5, 7, 18)],  # 1st right, then straight
            [("row", 6, 1, 5), ("col", 5, 7, 13), ("row", 13, 4, 1)],  # 1st right, then right
        ]
        from_top = [
            [("col", 5, 1, 5), ("row", 5, 4, 1)],  # 1st right
            [("col", 5, 1, 13), ("row", 13, 4, 1)],  # 2nd right
            [("col", 5, 1, 18)],  # straight
            [("col", 5, 1, 6), ("row", 6, 6, 13), ("col", 13, 7, 18)],  # 1st left, then right
            [("col", 5, 1, 14), ("row", 14, 6, 18)],  # 2nd left, then straight
            [("col", 5, 1, 6), ("row", 6, 6, 18)],  # 1st left, then straight
            [("col", 5, 1, 6), ("row", 6, 6, 14), ("col", 14, 5, 1)],  # 1st left, then left
        ]
        groups.append([_one_based(_segments(tr, r)) for r in from_left])
        groups.append([_one_based(_segments(tr, r)) for r in from_top])
    return _build(18, groups, [])


def road_map(difficulty: str, layout: str) -> RoadMap:
    """The map of a difficulty; the IC3Net layout differs from CommNet's only on easy (straight routes)."""
    if difficulty == "easy":
        return easy_map(straight_only=layout == "ic3net")
    return medium_map() if difficulty == "medium" else hard_map()
