"""The one inference path: any-size uint8 in -> same-size uint8 RGB out, L kept at full size.

These tests use a random-weight tiny generator: they check the pipeline, not the colors.
``helpers.trained_tiny_generator`` (a few L1 steps on the sample photos) serves the export and
colorize tests, where int8 PSNR needs a model whose colors mean something.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY_GENERATOR
from PIL import Image

from colorize_tf.core import color
from colorize_tf.data.samples import sample_photo_paths
from colorize_tf.inference import serving
from colorize_tf.models import build_generator


@pytest.fixture(scope="module")
def generator() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_generator(**TINY_GENERATOR)


def lightness(rgb_uint8: np.ndarray) -> np.ndarray:
    """CIE L* (H, W) of uint8 RGB (H, W, 3), through color.py."""
    return np.asarray(color.rgb_to_lab(rgb_uint8.astype(np.float32) / 255.0))[..., 0]


def zero_ab(l_norm):
    """A PredictAB that predicts no color at all."""
    return tf.zeros(tf.concat([tf.shape(l_norm)[:-1], [2]], axis=0))


@pytest.mark.parametrize(
    "shape",
    [(3000, 17, 3), (17, 3000), (37, 45, 4), (64, 64, 2), (31, 33, 1), (8, 8, 3)],
    ids=["3000x17_rgb", "17x3000_gray2d", "37x45_rgba", "64x64_gray_alpha", "31x33_gray", "8x8"],
)
def test_output_has_the_input_size(generator, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = serving.colorize_image(generator, image)
    assert out.shape == (shape[0], shape[1], 3)
    assert out.dtype == np.uint8


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((1, 1, 3), np.uint8), "too small to colorize: 1x1"),
        (np.zeros((7, 500), np.uint8), "too small to colorize: 7x500"),
        (np.zeros((16, 16, 3), np.float32), "uint8"),
        (np.zeros((16, 16, 5), np.uint8), "channels"),
        (np.zeros((2, 16, 16, 3), np.uint8), "shape"),
    ],
    ids=["1x1", "7x500", "float", "5_channels", "batched"],
)
def test_bad_images_are_refused_clearly(generator, image, message):
    with pytest.raises(ValueError, match=message):
        serving.colorize_image(generator, image)


def test_too_small_is_refused_inside_the_graph_too(generator):
    # SavedModel callers bypass the Python check: the graph asserts the same rule.
    module = serving.serving_module_for(generator)
    with pytest.raises(tf.errors.InvalidArgumentError, match="too small to colorize"):
        module.colorize(tf.zeros([1, 1, 3], tf.uint8))


def test_gray_photo_keeps_its_lightness(generator):
    """L of the output equals L of the gray input, at full resolution, wherever it can.

    Where the predicted color fits the sRGB gamut (no channel clipped to 0 or 255), |dL| <=
    0.3 L* units, which is uint8 rounding of the output (measured max 0.24 for any model);
    a pipeline that lost detail, e.g. rebuilt L from the 256 px copy, misses by several units
    on every edge. Clipped pixels (a color too saturated for that L) do move L, so no model-free
    bound holds there; this random generator leaves 99.6% of chelsea unclipped.
    """
    with Image.open(sample_photo_paths()[2]) as image:  # chelsea, 451 x 300
        gray = np.asarray(image.convert("L"))
    out = serving.colorize_image(generator, gray)
    error = np.abs(lightness(out) - lightness(np.repeat(gray[..., None], 3, axis=-1)))
    in_gamut = ((out > 0) & (out < 255)).all(axis=-1)
    assert in_gamut.mean() > 0.9, in_gamut.mean()
    assert error[in_gamut].max() <= 0.3, error[in_gamut].max()
    assert error.mean() < 0.15, error.mean()  # measured 0.07
    chroma = np.asarray(color.rgb_to_lab(out / 255.0))[..., 1:]
    assert np.abs(chroma).mean() > 1.0  # it did add color: not a trivial pass


def test_a_sepia_tint_keeps_lightness():
    """A fixed tint (a = 5, b = 20) through the same path: same bound, no model involved."""

    def sepia(l_norm):
        ones = tf.ones_like(l_norm)
        return tf.concat([ones * 5.0 / 110.0, ones * 20.0 / 110.0], axis=-1)

    with Image.open(sample_photo_paths()[0]) as image:  # astronaut, 512 x 512
        gray = np.asarray(image.convert("L"))
    out = serving.colorize_image(sepia, gray)
    error = np.abs(lightness(out) - lightness(np.repeat(gray[..., None], 3, axis=-1)))
    in_gamut = ((out > 0) & (out < 255)).all(axis=-1)
    assert in_gamut.mean() > 0.7  # measured 0.75: the astronaut has much black and white
    assert error[in_gamut].max() <= 0.3  # measured 0.195


def test_no_color_predicted_gives_back_the_gray_input():
    """With ab = 0 the full pipeline must return the gray levels exactly (up to 1 level)."""
    gray = np.random.default_rng(1).integers(0, 256, (300, 171), dtype=np.uint8)
    out = serving.colorize_image(zero_ab, gray)
    assert np.abs(out.astype(int) - gray[..., None]).max() <= 1


def test_gray_table_equals_the_rgb_path():
    """C = 1 reads L from a table; it must equal color.rgb_to_lab on R = G = B exactly."""
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    from_table = serving.luminance(gray[None], xla=False).numpy()
    from_rgb = serving.luminance(np.repeat(gray, 3, axis=-1)[None], xla=False).numpy()
    np.testing.assert_array_equal(from_table, from_rgb)
    assert from_table.min() == -1.0 and abs(from_table.max() - 1.0) < 1e-5  # L 0 and 100


def test_transparent_pixels_are_white():
    rgba = np.zeros((20, 30, 4), np.uint8)  # black, fully transparent
    rgba[:10, :, 3] = 255  # top half opaque black
    out = serving.colorize_image(zero_ab, rgba)
    assert (out[:10] == 0).all() and (out[10:] == 255).all()


def test_xla_chunks_equal_plain_ops(generator):
    images = np.random.default_rng(2).integers(0, 256, (2, 301, 257, 3), dtype=np.uint8)
    predict = serving.keras_predict_ab(generator)
    fast = serving.colorize_batch(images, predict, xla=True).numpy()
    plain = serving.colorize_batch(images, predict, xla=False).numpy()
    assert np.abs(fast.astype(int) - plain).max() <= 1


def test_batch_single_graph_and_eager_agree(generator):
    images = np.random.default_rng(3).integers(0, 256, (2, 40, 70, 3), dtype=np.uint8)
    module = serving.serving_module_for(generator)
    batch = module.colorize_batch(tf.constant(images)).numpy()
    single = np.stack([module.colorize(tf.constant(x)).numpy() for x in images])
    eager = np.stack(
        [serving.colorize_image(serving.keras_predict_ab(generator), x) for x in images]
    )
    assert np.abs(batch.astype(int) - single).max() <= 1
    assert np.abs(batch.astype(int) - eager).max() <= 1


def test_luminance_in_tf_data_equals_eager():
    """Preprocessing, eagerly and inside a tf.data map (they can differ; here they must not)."""
    images = np.random.default_rng(4).integers(0, 256, (3, 33, 65, 4), dtype=np.uint8)
    eager = serving.luminance(images).numpy()
    mapped = next(iter(tf.data.Dataset.from_tensors(images).map(serving.luminance))).numpy()
    np.testing.assert_allclose(mapped, eager, atol=1e-6)


def test_model_input_is_the_squeezed_image():
    l_norm = tf.random.uniform([1, 300, 200, 1], -1.0, 1.0)
    assert serving.model_input(l_norm, 256).shape == (1, 256, 256, 1)
    square = tf.random.uniform([1, 256, 256, 1])
    assert serving.model_input(square, 256) is square  # no resize op: TFLite has no kernel for it


def test_serving_module_rejects_sizes_the_unet_cannot_take(generator):
    with pytest.raises(ValueError, match="multiple of 32.*250"):
        serving.ServingModule(generator, size=250)
