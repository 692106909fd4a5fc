"""Synthetic shapes: an offline source task for the small image CNNs nclib pre-trains (``shapes_cnn``).

Ten classes of bright grey-level figures on a darker background, drawn with numpy alone: outlines (ring, frame),
solids (disk, square, triangle, cross, ellipse, half disk) and textures (a striped disk, a checkered square).
Every image has its own centre, radius, rotation, foreground and background levels and pixel noise, so a class is
its shape, not a template. Rendered at twice the size and 2 x 2 average-pooled (anti-aliased edges).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _box(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v))


_ROOT3 = np.sqrt(3.0)
# class -> its figure in the image's own rotated frame (u, v) = (x - centre) / radius, as a boolean mask
FIGURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "disk": lambda u, v: np.hypot(u, v) <= 1,
    "ring": lambda u, v: (np.hypot(u, v) >= 0.6) & (np.hypot(u, v) <= 1),
    "square": lambda u, v: _box(u, v) <= 0.8,
    "frame": lambda u, v: (_box(u, v) >= 0.55) & (_box(u, v) <= 0.85),
    "triangle": lambda u, v: (v >= -0.5) & (_ROOT3 * u + v <= 1) & (v - _ROOT3 * u <= 1),
    "cross": lambda u, v: ((np.abs(u) <= 0.25) | (np.abs(v) <= 0.25)) & (_box(u, v) <= 1),
    "ellipse": lambda u, v: u**2 + (v / 0.45) ** 2 <= 1,
    "stripes": lambda u, v: (np.hypot(u, v) <= 1) & (np.sin(3 * np.pi * u) > 0),
    "checker": lambda u, v: (_box(u, v) <= 0.85) & (np.sin(2.5 * np.pi * u) * np.sin(2.5 * np.pi * v) > 0),
    "half_disk": lambda u, v: (np.hypot(u, v) <= 1) & (v >= 0),
}
SHAPES = tuple(FIGURES)


def shapes(n_per_class: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` images of each of the ``SHAPES``: float32 N x size x size in [0, 1] and int64 labels N.

    Per image: centre uniform in [0.35, 0.65] of the side, radius in [0.18, 0.38] of it, rotation in [0, 2 pi),
    foreground level in [0.6, 1], background in [0, 0.3], then Gaussian noise (sd 0.05), clipped to [0, 1].
    Labels are in class order (``n_per_class`` zeros first); the images depend only on the arguments.
    """
    if n_per_class < 1 or size < 1:
        raise ValueError(f"n_per_class and size must be >= 1, got {n_per_class} and {size}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(SHAPES), dtype=np.int64), n_per_class)
    n, fine = len(labels), 2 * size
    grid = (np.arange(fine) + 0.5) / fine
    x, y = np.meshgrid(grid, grid)  # x: column, y: row, in units of the side
    cx, cy = rng.uniform(0.35, 0.65, (2, n, 1, 1))
    radius = rng.uniform(0.18, 0.38, (n, 1, 1))
    angle = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    figure = np.zeros((n, fine, fine), dtype=bool)
    for c, name in enumerate(SHAPES):  # one class at a time: a few MB of coordinates, not all at once
        i = labels == c
        dx, dy = (x - cx[i]) / radius[i], (y - cy[i]) / radius[i]
        cos, sin = np.cos(angle[i]), np.sin(angle[i])
        figure[i] = FIGURES[name](cos * dx + sin * dy, cos * dy - sin * dx)
    background, foreground = rng.uniform(0.0, 0.3, (n, 1, 1)), rng.uniform(0.6, 1.0, (n, 1, 1))
    images = np.where(figure, foreground, background).reshape(n, size, 2, size, 2).mean(axis=(2, 4))
    images += rng.normal(0.0, 0.05, images.shape)
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels
