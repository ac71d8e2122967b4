"""Small numpy drawing helpers shared by the grid games' ``render`` (no plotting library needed)."""

from __future__ import annotations

import colorsys

import numpy as np

RED = (220, 30, 30)


def slot_colours(count: int) -> np.ndarray:
    """``count`` distinct bright colours (uint8 [count, 3]) with hues kept away from red, which marks crashes."""
    hues = 0.08 + 0.84 * ((np.arange(count) * 0.618034) % 1.0)
    values = np.where(np.arange(count) % 2 == 0, 1.0, 0.75)
    rgb = [colorsys.hsv_to_rgb(h, 0.85, v) for h, v in zip(hues, values, strict=True)]
    return (np.array(rgb).reshape(count, 3) * 255).round().astype(np.uint8)


def upscale(cells: np.ndarray, pixels: int) -> np.ndarray:
    """A ``[H, W, 3]`` colour grid as an image with ``pixels`` x ``pixels`` per cell and faint grid lines."""
    image = np.repeat(np.repeat(cells.astype(np.uint8), pixels, axis=0), pixels, axis=1)
    image[::pixels] = (image[::pixels] * 0.8).astype(np.uint8)
    image[:, ::pixels] = (image[:, ::pixels] * 0.8).astype(np.uint8)
    return image


def fill(
    image: np.ndarray, y: int, x: int, pixels: int, colour, inset: int, part: int = 0, parts: int = 1
) -> None:
    """Fill cell (y, x) inset by ``inset`` px; with ``parts`` > 1 only quadrant ``part`` of a 2x2 split."""
    top, left, size = y * pixels, x * pixels, pixels
    if parts > 1:
        size = pixels // 2
        top, left = top + (part // 2 % 2) * size, left + (part % 2) * size
    image[top + inset : top + size - inset, left + inset : left + size - inset] = colour


def frame(image: np.ndarray, y: int, x: int, pixels: int, colour, width: int = 3) -> None:
    """Draw a ``width`` px border inside cell (y, x)."""
    top, left = y * pixels, x * pixels
    block = image[top : top + pixels, left : left + pixels]
    block[:width], block[-width:], block[:, :width], block[:, -width:] = colour, colour, colour, colour


def cross(image: np.ndarray, y: int, x: int, pixels: int, colour, width: int = 2) -> None:
    """Draw an X over cell (y, x) (a unit that was hit, a crash)."""
    index = np.arange(pixels)
    for offset in range(-(width // 2), width - width // 2):
        ok = (index + offset >= 0) & (index + offset < pixels)
        rows, cols = y * pixels + index[ok], x * pixels + index[ok] + offset
        image[rows, cols] = colour
        image[rows, x * pixels + pixels - 1 - index[ok] - offset] = colour
