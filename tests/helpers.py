"""Small test fixtures shared by several test modules (imported as ``helpers``)."""

from __future__ import annotations

import numpy as np


def smooth_photo(rng: np.random.Generator, index: int, height: int, width: int) -> np.ndarray:
    """A smooth, colorful uint8 RGB (height, width, 3) image: a learnable signal, not noise.

    Three sinusoids with frequencies drawn from ``rng`` and a phase set by ``index``.
    """
    yy, xx = np.mgrid[0:height, 0:width] / float(height - 1)
    f = rng.uniform(0.5, 2.0, 3)
    img = np.stack(
        [np.sin(f[0] * xx * 3 + index), np.cos(f[1] * yy * 3), np.sin(f[2] * (xx + yy))], -1
    )
    return ((img + 1) * 127.5).astype(np.uint8)
