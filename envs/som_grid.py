"""Shared pieces of the SOM grid games (coin, recipe, door): turn-based moves, goal planes, the
perspective swap, random layouts and drawing. Pure numpy functions over a leading batch axis.

Observation layout common to the three games (channels first, float32, one array per slot):
``[self, other, <game channels>, <own goal one-hot as num_goals constant planes>]``. Channels that
depend on whose view it is (the two players, inventories, doors opened by each) come in self/other
pairs; a game's ``swap_index`` is the channel permutation that exchanges every pair, so
``obs[..., swap_index, :, :]`` is the board as the other player sees it. The goal planes are left
as they are by the swap (the viewer's own goal): a SOM agent overwrites them with its estimate of
the other's goal (:func:`with_goal`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anew.errors import AnewError

# Moves in OpenSpiel coin_game's action order: up, down, left, right, stand (row, column offsets).
OFFSETS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], dtype=np.int64)
ACTION_NAMES = ("up", "down", "left", "right", "stand")
NUM_ACTIONS = len(OFFSETS)


def check_actions(actions: Any, num_envs: int) -> np.ndarray:
    """``actions`` as an int64 array ``[num_envs, 2]`` of valid moves, or an AnewError naming the problem."""
    actions = np.asarray(actions)
    if actions.shape != (num_envs, 2):
        raise AnewError(f"expected actions of shape ({num_envs}, 2) (games, players), got {actions.shape}")
    actions = actions.astype(np.int64)
    if actions.size and (actions.min() < 0 or actions.max() >= NUM_ACTIONS):
        raise AnewError(f"actions must be moves 0..{NUM_ACTIONS - 1} ({', '.join(ACTION_NAMES)})")
    return actions


def mover_target(
    pos: np.ndarray, mover: np.ndarray, actions: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mover's cell, the cell its action points at, and whether it may enter it.

    The coin game's blocking rule (OpenSpiel): a move off the grid or into the other player's cell
    leaves the mover in place. ``pos`` is ``[B, 2, 2]`` (row, column), ``mover`` ``[B]``.
    """
    games = np.arange(len(mover))
    start = pos[games, mover]
    target = start + OFFSETS[actions[games, mover]]
    inside = (target >= 0).all(axis=1) & (target[:, 0] < shape[0]) & (target[:, 1] < shape[1])
    free = ~(target == pos[games, 1 - mover]).all(axis=1)
    return start, target, inside & free


def one_hot_cells(pos: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``[B, N, H, W]`` float32 planes with a 1 at each ``pos[B, N]`` cell (none for row -1)."""
    batch, count = pos.shape[:2]
    planes = np.zeros((batch, count, shape[0] * shape[1]), dtype=np.float32)
    flat = pos[..., 0] * shape[1] + pos[..., 1]
    b, n = np.nonzero(pos[..., 0] >= 0)
    planes[b, n, flat[b, n]] = 1.0
    return planes.reshape(batch, count, *shape)


def new_observation(batch: int, channels: int, shape: tuple[int, int], pos: np.ndarray) -> np.ndarray:
    """A zero observation ``[B, 2, channels, H, W]`` (float32) with channel 0 = the slot's own cell and
    channel 1 = the other player's. Games fill their channels in place (no large temporaries)."""
    obs = np.zeros((batch, 2, channels, *shape), dtype=np.float32)
    players = one_hot_cells(pos, shape)
    obs[:, :, 0] = players
    obs[:, :, 1] = players[:, ::-1]
    return obs


def write_goal_planes(obs: np.ndarray, goals: np.ndarray, num_goals: int) -> np.ndarray:
    """Set the last ``num_goals`` channels of ``obs`` to each slot's goal ``goals[B, 2]`` (one-hot planes)."""
    batch, _, channels = obs.shape[:3]
    obs[np.arange(batch)[:, None], np.arange(2)[None, :], channels - num_goals + goals] = 1.0
    return obs


def swap_index(channels: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """The channel permutation that exchanges each ``(a, b)`` pair and keeps the rest."""
    index = np.arange(channels)
    for a, b in pairs:
        index[[a, b]] = index[[b, a]]
    return index


def swap_channels(obs: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``obs[..., C, H, W]`` with its channels permuted by ``index`` (the perspective swap)."""
    return np.asarray(obs)[..., index, :, :]


def split_goal(obs: np.ndarray, num_goals: int) -> tuple[np.ndarray, np.ndarray]:
    """``(board [..., C - G, H, W], own goal one-hot [..., G])`` of an observation."""
    obs = np.asarray(obs)
    return obs[..., :-num_goals, :, :], obs[..., -num_goals:, 0, 0]


def with_goal(obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """``obs`` with its goal planes set to ``goal[..., G]`` (a one-hot or a belief) at every cell."""
    obs = np.array(obs, copy=True)
    goal = np.asarray(goal, dtype=obs.dtype)
    obs[..., -goal.shape[-1] :, :, :] = goal[..., :, None, None]
    return obs


# ---------------------------------------------------------------- random and explicit layouts
def sample_cells(rng: np.random.Generator, n: int, allowed: np.ndarray, k: int) -> np.ndarray:
    """``[n, k, 2]`` distinct cells drawn uniformly without replacement from the true cells of
    ``allowed[H, W]`` (in the order drawn, like OpenSpiel's chance nodes)."""
    keys = rng.random((n, allowed.size))
    keys[:, ~allowed.ravel()] = np.inf
    flat = np.argsort(keys, axis=1, kind="stable")[:, :k]
    return np.stack(np.divmod(flat, allowed.shape[1]), axis=-1)


def sample_distinct_goals(rng: np.random.Generator, n: int, num_goals: int) -> np.ndarray:
    """``[n, 2]`` goals drawn without replacement from ``0..num_goals-1``."""
    return np.argsort(rng.random((n, num_goals)), axis=1, kind="stable")[:, :2]


def layouts_for(layout: Any, count: int) -> list[dict[str, Any]]:
    """``options["layout"]`` as one dict per game being reset (one dict is used for all of them)."""
    if isinstance(layout, dict):
        return [layout] * count
    layouts = list(layout)
    if len(layouts) != count or not all(isinstance(item, dict) for item in layouts):
        raise AnewError(f"options['layout'] must be a dict or a list of {count} dicts (one per game reset)")
    return layouts


def check_cells(cells: Any, shape: tuple[int, int], what: str, width: int = 2) -> np.ndarray:
    """``cells`` as an int array ``[n, width]`` whose first two columns are distinct cells on the grid."""
    array = np.asarray(cells, dtype=np.int64).reshape(-1, width)
    rows, cols = array[:, 0], array[:, 1]
    if ((rows < 0) | (rows >= shape[0]) | (cols < 0) | (cols >= shape[1])).any():
        raise AnewError(f"layout {what} {array[:, :2].tolist()} must lie on the {shape[0]}x{shape[1]} grid")
    if len({(r, c) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)}) != len(array):
        raise AnewError(f"layout {what} {array[:, :2].tolist()} must be distinct cells")
    return array


def check_goals(goals: Any, num_goals: int) -> np.ndarray:
    """Two distinct goal indices in ``0..num_goals-1``."""
    array = np.asarray(goals, dtype=np.int64).reshape(-1)
    if array.shape != (2,) or array[0] == array[1] or array.min() < 0 or array.max() >= num_goals:
        raise AnewError(f"layout goals must be two distinct integers in 0..{num_goals - 1}, got {goals}")
    return array


# ---------------------------------------------------------------- drawing
PLAYER_COLOURS = np.array([[220, 40, 40], [40, 90, 220]], dtype=np.uint8)
ITEM_COLOURS = np.array(
    [[240, 190, 0], [0, 170, 90], [160, 60, 200], [0, 180, 200], [240, 120, 20], [120, 80, 40]],
    dtype=np.uint8,
)


def blank_board(shape: tuple[int, int], scale: int) -> np.ndarray:
    """A light grid of ``shape`` cells, ``scale`` pixels each, with thin cell borders."""
    image = np.full((shape[0] * scale, shape[1] * scale, 3), 235, dtype=np.uint8)
    image[::scale] = 200
    image[:, ::scale] = 200
    return image


def paint(image: np.ndarray, cell: tuple[int, int], colour: Any, scale: int, inset: int = 0) -> None:
    """Fill one cell (shrunk by ``inset`` pixels per side) with ``colour``."""
    r, c = int(cell[0]) * scale, int(cell[1]) * scale
    image[r + 1 + inset : r + scale - inset, c + 1 + inset : c + scale - inset] = colour
