"""The training crops of the two input paths (``tf.data`` and the numpy pipeline used where
TensorFlow is absent) follow one rule: a square whose side is uniform over
``ceil(short / max_zoom) .. short``, anywhere in the image, flipped half the time."""

import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorize_tf.data import image_ops
from colorize_tf.data import numpy_pipeline as npd

HEIGHT, WIDTH, CROP = 60, 90, 16


def _marked_image() -> np.ndarray:
    """Every pixel says where it is: R = column, G = row (so a crop's corners give its box)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([xx * 2, yy * 4, np.zeros_like(xx)], -1).astype(np.uint8)


def _tf_sides(max_zoom: float, draws: int) -> list[int]:
    """Crop sides of the tf.data path, read back from the column marks of a crop at full size."""
    image = tf.constant(_marked_image())
    sides = []
    for seed in range(draws):
        crop = image_ops.random_crop(image, CROP, [seed, 7], max_zoom).numpy()  # (S, S, 3)
        columns = crop[0, :, 0] / 2.0
        # Half-pixel-centred bilinear: output pixels are side / CROP source columns apart.
        span = abs(columns[-1] - columns[0])
        sides.append(round(span * CROP / (CROP - 1)))
    return sides


def _numpy_sides(max_zoom: float, draws: int) -> list[int]:
    image = Image.fromarray(_marked_image())
    rng = np.random.default_rng(0)
    sides = []
    for _ in range(draws):
        before = rng.bit_generator.state
        npd.train_crop(image, CROP, rng, max_zoom)
        replay = np.random.default_rng()
        replay.bit_generator.state = before
        short = min(HEIGHT, WIDTH)
        sides.append(int(replay.integers(math.ceil(short / max_zoom), short + 1)))
    return sides


@pytest.mark.parametrize("max_zoom", [1.0, 1.5, 2.0])
def test_both_paths_draw_crop_sides_over_the_same_range(max_zoom):
    short = min(HEIGHT, WIDTH)
    low = math.ceil(short / max_zoom)
    for sides in (_tf_sides(max_zoom, 60), _numpy_sides(max_zoom, 200)):
        assert min(sides) >= low - 1 and max(sides) <= short + 1
        if max_zoom == 1.0:
            assert set(sides) <= {short - 1, short, short + 1}  # the whole short side
        else:  # the range is used, not a single zoom
            assert max(sides) - min(sides) >= (short - low) // 2


def test_both_paths_flip_about_half_the_crops():
    image = _marked_image()
    tf_flips = sum(
        image_ops.random_crop(tf.constant(image), CROP, [s, 3], 1.0).numpy()[0, 0, 0]
        > image_ops.random_crop(tf.constant(image), CROP, [s, 3], 1.0).numpy()[0, -1, 0]
        for s in range(40)
    )
    rng = np.random.default_rng(1)
    np_flips = 0
    for _ in range(40):
        crop = np.asarray(npd.train_crop(Image.fromarray(image), CROP, rng, 1.0))
        np_flips += int(crop[0, 0, 0] > crop[0, -1, 0])
    assert 8 <= tf_flips <= 32 and 8 <= np_flips <= 32
