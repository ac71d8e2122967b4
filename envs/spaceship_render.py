"""An RGB frame of one Spaceship state, drawn with numpy alone (no pygame): room, door, charges, ship."""

from __future__ import annotations

import numpy as np

PIXELS_PER_UNIT = 40
MARGIN = 24  # pixels around the room, so the corner charges and a ship just outside stay visible
ROOM = 5.0
SIZE = int(ROOM * PIXELS_PER_UNIT) + 2 * MARGIN

BACKGROUND = (225, 225, 225)
FLOOR = (255, 255, 255)
WALL = (90, 90, 90)
DOOR = (40, 170, 70)
POSITIVE = (215, 50, 50)
NEGATIVE = (50, 90, 215)
SHIP = (20, 20, 20)


def to_pixel(point: np.ndarray) -> tuple[float, float]:
    """(row, column) of a room point; y points up, so row 0 is the top."""
    x, y = float(point[0]), float(point[1])
    return MARGIN + (ROOM - y) * PIXELS_PER_UNIT, MARGIN + x * PIXELS_PER_UNIT


def _disk(frame: np.ndarray, center: tuple[float, float], radius: float, color: tuple[int, int, int]) -> None:
    rows, cols = np.ogrid[: frame.shape[0], : frame.shape[1]]
    frame[(rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2] = color


def draw_spaceship(position: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """A (SIZE, SIZE, 3) uint8 frame: charges sized by |q| and red (+) or blue (-), the ship in black.

    The top wall (the door) is green, the other walls grey; a ship outside the frame is drawn at its edge.
    """
    frame = np.full((SIZE, SIZE, 3), BACKGROUND, dtype=np.uint8)
    low, high = MARGIN, MARGIN + int(ROOM * PIXELS_PER_UNIT)
    frame[low:high, low:high] = FLOOR
    frame[low:high, low - 2 : low] = WALL
    frame[low:high, high : high + 2] = WALL
    frame[high : high + 2, low - 2 : high + 2] = WALL
    frame[low - 2 : low, low - 2 : high + 2] = DOOR
    for corner, charge in zip(((0.0, 0.0), (0.0, ROOM)), charges):
        radius = 3 + 10 * min(abs(float(charge)) / 1.5, 1.0)
        _disk(frame, to_pixel(np.asarray(corner)), radius, POSITIVE if charge >= 0 else NEGATIVE)
    row, col = to_pixel(position)
    _disk(frame, (float(np.clip(row, 0, SIZE - 1)), float(np.clip(col, 0, SIZE - 1))), 5, SHIP)
    return frame
