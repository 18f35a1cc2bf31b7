"""The Lab convention against an independent implementation (scikit-image), in three
execution modes.

Measured on this machine (float32 ours vs float64 scikit-image, 10,000 random colors + cube
corners + a 256-step gray ramp): max |dL| ~ 2e-5, |da| ~ 8e-5, |db| ~ 4e-5, RGB round trip ~ 7e-6.
The asserted bounds (Lab 1e-3, RGB round trip 1e-4) leave float32 headroom for XLA / oneDNN
reassociation while still catching any wrong constant (a wrong knee or white point costs > 1e-2).
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from skimage import color as skcolor

from colorize_tf.core import color

LAB_TOL = 1e-3
RGB_ROUND_TRIP_TOL = 1e-4


def _test_colors() -> np.ndarray:
    rng = np.random.default_rng(1234)
    random = rng.random((10_000, 3))
    corners = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    ramp = np.repeat(np.linspace(0.0, 1.0, 256)[:, None], 3, axis=1)
    near_knee = np.repeat(np.linspace(0.0, 0.06, 64)[:, None], 3, axis=1)  # sRGB and Lab knees
    return np.concatenate([random, corners, ramp, near_knee]).astype(np.float32)


COLORS = _test_colors()
REFERENCE_LAB = skcolor.rgb2lab(COLORS.astype(np.float64))


def _eager(fn, x):
    return np.asarray(fn(tf.constant(x)))


def _in_tf_data(fn, x):
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4096).map(fn)
    return np.concatenate([b.numpy() for b in ds])


def _xla(fn, x):
    return tf.function(fn, jit_compile=True)(tf.constant(x)).numpy()


MODES = {"eager": _eager, "tf_data": _in_tf_data, "xla": _xla}


@pytest.mark.parametrize("mode", MODES)
def test_rgb_to_lab_matches_scikit_image(mode):
    lab = MODES[mode](color.rgb_to_lab, COLORS)
    err = np.abs(lab - REFERENCE_LAB).max(axis=0)
    print(f"{mode}: max |dL|={err[0]:.2e} |da|={err[1]:.2e} |db|={err[2]:.2e}")
    assert lab.dtype == np.float32
    assert np.all(err < LAB_TOL), err


@pytest.mark.parametrize("mode", MODES)
def test_lab_to_rgb_matches_scikit_image_and_round_trips(mode):
    rgb = MODES[mode](color.lab_to_rgb, REFERENCE_LAB.astype(np.float32))
    reference = skcolor.lab2rgb(REFERENCE_LAB)
    round_trip = np.abs(rgb - COLORS).max()
    print(f"{mode}: max RGB round-trip error={round_trip:.2e}")
    assert np.abs(rgb - reference).max() < RGB_ROUND_TRIP_TOL
    assert round_trip < RGB_ROUND_TRIP_TOL


def test_known_values():
    lab = np.asarray(
        color.rgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    )
    # White is neutral only to 5e-3: the matrix rows sum to the D65 white to 6 digits (as in
    # scikit-image), so a, b of pure white are -0.0024 / 0.0046, far below a visible difference.
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=5e-3)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=1e-3)
    # sRGB red: L=53.24, a=80.09, b=67.20 (CIE; also scikit-image's value)
    np.testing.assert_allclose(lab[2], [53.2408, 80.0925, 67.2032], atol=1e-2)


def test_any_leading_dimensions():
    x = COLORS[: 2 * 3 * 4 * 5].reshape(2, 3, 4, 5, 3)
    lab = np.asarray(color.rgb_to_lab(x))
    assert lab.shape == x.shape
    np.testing.assert_allclose(lab.reshape(-1, 3), REFERENCE_LAB[: x.size // 3], atol=LAB_TOL)


def test_normalization_spans_unit_range_and_inverts():
    l_norm, ab_norm = (np.asarray(t) for t in color.rgb_to_l_ab(COLORS))
    assert l_norm.shape == (len(COLORS), 1) and ab_norm.shape == (len(COLORS), 2)
    # The convention: L/50 - 1 and ab/110 lie in [-1, 1] for every sRGB color.
    assert l_norm.min() >= -1.0 - 1e-6 and l_norm.max() <= 1.0 + 1e-6
    assert np.abs(ab_norm).max() <= 1.0
    np.testing.assert_allclose(l_norm[:, 0], REFERENCE_LAB[:, 0] / 50.0 - 1.0, atol=LAB_TOL / 50)
    np.testing.assert_allclose(ab_norm, REFERENCE_LAB[:, 1:] / 110.0, atol=LAB_TOL / 110)
    rgb = np.asarray(color.l_ab_to_rgb(l_norm, ab_norm))
    assert np.abs(rgb - COLORS).max() < RGB_ROUND_TRIP_TOL


def test_out_of_gamut_is_clipped_not_nan():
    extreme = np.array([[50.0, 110.0, -110.0], [100.0, -110.0, 110.0], [0.0, 110.0, 110.0]])
    rgb = np.asarray(color.lab_to_rgb(extreme))
    assert np.all(np.isfinite(rgb)) and rgb.min() >= 0.0 and rgb.max() <= 1.0


def test_gradients_are_finite_at_black_and_the_knees():
    x = tf.constant(np.concatenate([COLORS[-64:], np.zeros((1, 3), np.float32)]))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(color.lab_to_rgb(color.rgb_to_lab(x)))
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))
