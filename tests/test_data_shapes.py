"""The synthetic shapes source task: seeded, balanced, in range, and each class the figure it is named after."""

from __future__ import annotations

import numpy as np
import pytest

from nclib.data.shapes import SHAPES, shapes

# Expected foreground fraction of the side^2 canvas per class, from the figures' areas in units of radius^2 and
# E[radius^2] for radius ~ U(0.18, 0.38): (0.38^3 - 0.18^3) / (3 * 0.20) = 0.0817333.
R2 = (0.38**3 - 0.18**3) / (3 * 0.20)
AREA = {
    "disk": np.pi,
    "ring": np.pi * (1 - 0.6**2),
    "square": 1.6**2,
    "frame": 1.7**2 - 1.1**2,
    "triangle": 3 * np.sqrt(3) / 4,  # equilateral, circumradius 1
    "cross": 2 * 0.5 * 2 - 0.5**2,  # two 0.5 x 2 bars and their overlap
    "ellipse": np.pi * 0.45,
    "half_disk": np.pi / 2,
    "stripes": np.pi / 2,  # half of a disk, on average over stripe phases
}


def test_shapes_are_seeded_balanced_and_in_range() -> None:
    x, y = shapes(20, size=24, seed=3)
    again, y_again = shapes(20, size=24, seed=3)
    other, _ = shapes(20, size=24, seed=4)
    assert x.shape == (200, 24, 24) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, again) and np.array_equal(y, y_again) and not np.array_equal(x, other)
    assert np.array_equal(np.bincount(y), [20] * len(SHAPES)) and np.array_equal(y, np.sort(y))
    assert x.min() >= 0 and x.max() <= 1
    with pytest.raises(ValueError, match="n_per_class and size must be >= 1"):
        shapes(0)


def test_each_class_covers_the_area_of_its_figure() -> None:
    """Pixels above the midpoint of background (<= 0.3) and foreground (>= 0.6) levels are figure; 1,500 images a
    class make the sampling error of E[radius^2] about 1 %, and edge pixels add up to 3 % for outlines."""
    x, y = shapes(1500, size=32, seed=0)
    for c, name in enumerate(SHAPES):
        if name in AREA:
            covered = (x[y == c] > 0.45).mean()
            assert covered == pytest.approx(AREA[name] * R2, rel=0.05), name
    means = {name: x[y == c].mean() for c, name in enumerate(SHAPES)}
    assert means["ring"] < means["disk"] and means["frame"] < means["square"]  # outlines hold less bright area
