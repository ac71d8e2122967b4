"""Spaceship's force field: the analytic force of the paper and the reference code's tabulated one.

F(p) = sum_i q_i (p - P_i) / (|p - P_i|^3 + 0.1) with the charges at P1 = (0, 0) and P2 = (0, 5).
The force is linear in the charges, so both forms work from the two unit-charge fields.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from anew.errors import AnewError

ROOM_SIZE = 5.0
CHARGE_POSITIONS = np.array([[0.0, 0.0], [0.0, 5.0]])
SOFTENING = 0.1

ForceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def unit_fields(position: np.ndarray) -> np.ndarray:
    """Force of a unit charge at each of P1, P2 on the ship at ``position`` [B, 2] -> [B, 2 charges, 2]."""
    delta = position[:, None, :] - CHARGE_POSITIONS[None]
    distance = np.sqrt(np.einsum("bcd,bcd->bc", delta, delta))
    return delta / (distance**3 + SOFTENING)[..., None]


def analytic_force(position: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """F(p) = sum_i q_i (p - P_i) / (|p - P_i|^3 + 0.1) for a batch: [B, 2], [B, 2] -> [B, 2]."""
    return np.einsum("bc,bcd->bd", charges, unit_fields(position))


class GridForce:
    """The reference code's force: tabulated on the 0.1 grid 0..4.9, bilinear, clamped outside the grid."""

    def __init__(self) -> None:
        from scipy.interpolate import RegularGridInterpolator  # scipy only when this option is chosen

        axis = np.arange(0.0, ROOM_SIZE, 0.1)  # 0, 0.1, ..., 4.9 as in the reference
        xs, ys = np.meshgrid(axis, axis, indexing="ij")
        table = unit_fields(np.stack([xs.ravel(), ys.ravel()], axis=-1)).reshape(len(axis), len(axis), 2, 2)
        self.low, self.high = axis[0], axis[-1]
        self.interpolate = RegularGridInterpolator((axis, axis), table, method="linear")

    def __call__(self, position: np.ndarray, charges: np.ndarray) -> np.ndarray:
        fields = self.interpolate(np.clip(position, self.low, self.high))
        return np.einsum("bc,bcd->bd", charges, fields)


def make_force(force: str) -> ForceFn:
    """The force function named ``force``: "analytic" (default) or "grid" (the reference's table)."""
    if force == "analytic":
        return analytic_force
    if force == "grid":
        return GridForce()
    raise AnewError(f"Spaceship force must be 'analytic' or 'grid', got {force!r}")
