"""The evaluation protocol against scikit-image, hand-derived values and its own sanity properties.

Measured on this machine (float32 ours vs float64 scikit-image 0.26, on the images below):
max |dPSNR| ~ 3e-6 dB, max |dSSIM| ~ 4e-6 (worst on the bright low-contrast image, where
E[x^2] - E[x]^2 cancels most; without centering the second moments it was 2e-5). The bounds,
PSNR 1e-4 dB and SSIM 1e-5, leave room for float32 reassociation (oneDNN, XLA) while a wrong
window, sigma, constant or border crop costs > 1e-3.
"""

import math
import re

import numpy as np
import pytest
import tensorflow as tf
from skimage import color as skcolor
from skimage import data, transform
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorize_tf.core import color, metrics

PSNR_TOL_DB = 1e-4
SSIM_TOL = 1e-5
GRAPH_RTOL = 1e-5  # graph / XLA vs eager, relative (measured: graph 9e-8, XLA 4e-7)


def _resize_u8(image: np.ndarray, size: int = 64) -> np.ndarray:
    resized = transform.resize(image, (size, size), anti_aliasing=True)  # float64 [0, 1]
    return np.round(resized * 255).astype(np.uint8)


ASTRONAUT = _resize_u8(data.astronaut())  # (64, 64, 3) uint8


def _pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (pred, true), uint8 (batch, H, W, 3)."""
    rng = np.random.default_rng(0)
    true_random = rng.integers(0, 256, (4, 48, 40, 3), dtype=np.uint8)  # non-square on purpose
    noise = rng.integers(-40, 41, true_random.shape)
    pred_random = np.clip(true_random.astype(int) + noise, 0, 255).astype(np.uint8)

    yy, xx = np.mgrid[0:48, 0:64] / 64.0
    smooth = np.stack([0.5 + 0.5 * np.sin(3 * xx + p) * np.cos(2 * yy) for p in (0, 1, 2)], -1)
    true_smooth = np.round(smooth * 255).astype(np.uint8)[None]
    pred_smooth = np.round((0.8 * smooth + 0.1) * 255).astype(np.uint8)[None]

    # Bright and nearly flat: the worst case for float32 variance cancellation.
    true_bright = (245 + rng.integers(-3, 4, (2, 32, 32, 3))).astype(np.uint8)
    pred_bright = (245 + rng.integers(-3, 4, (2, 32, 32, 3))).astype(np.uint8)

    swapped = ASTRONAUT[..., ::-1]  # R <-> B
    return {
        "random": (pred_random, true_random),
        "smooth": (pred_smooth, true_smooth),
        "bright_flat": (pred_bright, true_bright),
        "astronaut": (swapped[None], ASTRONAUT[None]),
    }


PAIRS = _pairs()


def _sk_ssim(pred: np.ndarray, true: np.ndarray) -> float:
    return structural_similarity(
        true,
        pred,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )


@pytest.mark.parametrize("name", PAIRS)
def test_psnr_matches_scikit_image(name):
    pred, true = PAIRS[name]
    ours = np.asarray(metrics.psnr(pred, true))
    reference = np.array(
        [peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(pred, true, strict=True)]
    )
    err = np.abs(ours - reference).max()
    print(f"{name}: PSNR {ours} max |d|={err:.1e} dB")
    assert ours.shape == (len(pred),)
    assert err < PSNR_TOL_DB


@pytest.mark.parametrize("name", PAIRS)
def test_ssim_matches_scikit_image(name):
    pred, true = PAIRS[name]
    ours = np.asarray(metrics.ssim(pred, true))
    reference = np.array([_sk_ssim(p, t) for p, t in zip(pred, true, strict=True)])
    err = np.abs(ours - reference).max()
    print(f"{name}: SSIM {ours} max |d|={err:.1e}")
    assert ours.shape == (len(pred),)
    assert err < SSIM_TOL


def test_float_input_is_scored_as_its_uint8_image():
    pred, true = PAIRS["astronaut"]
    # Sub-level float noise (< half a level) must round away: "PSNR on uint8".
    jitter = np.random.default_rng(1).uniform(-0.4, 0.4, pred.shape) / 255
    pred_float = (pred / 255 + jitter).astype(np.float32)
    true_float = (true / 255).astype(np.float32)
    from_uint8 = metrics.image_metrics(pred, true)
    from_float = metrics.image_metrics(pred_float, true_float)
    for key in metrics.METRIC_NAMES:
        np.testing.assert_array_equal(from_float[key], from_uint8[key], err_msg=key)
    # Out-of-range floats are clipped, as writing them as uint8 would.
    too_bright = np.full((1, 16, 16, 3), 1.7, np.float32)
    white = np.full((1, 16, 16, 3), 255, np.uint8)
    assert float(metrics.psnr(too_bright, white)[0]) == metrics.PSNR_CAP_DB


def test_identical_images_score_the_cap():
    true = PAIRS["random"][1]
    for same in (true, (true / 255).astype(np.float32)):
        np.testing.assert_array_equal(
            metrics.psnr(same, true), np.full(len(true), 100.0, np.float32)
        )
        np.testing.assert_allclose(metrics.ssim(same, true), 1.0, atol=1e-6)


def test_one_level_off_scores_below_the_cap():
    true = np.full((1, 16, 16, 3), 100, np.uint8)
    pred = true.copy()
    pred[0, 3, 5, 1] = 101  # MSE = 1 / 768
    expected = 10 * math.log10(255**2 * 768)  # 76.98 dB
    got = float(metrics.psnr(pred, true)[0])
    assert abs(got - expected) < PSNR_TOL_DB
    assert abs(got - peak_signal_noise_ratio(true[0], pred[0], data_range=255)) < PSNR_TOL_DB
    assert got < metrics.PSNR_CAP_DB - 20


def test_colorfulness_is_zero_for_gray_images():
    gray = np.random.default_rng(2).integers(0, 256, (3, 20, 24, 1), dtype=np.uint8)
    cf = np.asarray(metrics.colorfulness(np.repeat(gray, 3, axis=-1)))
    np.testing.assert_array_equal(cf, np.zeros(3, np.float32))


def test_colorfulness_of_hand_derived_images():
    # Half pure red (255, 0, 0), half pure blue (0, 0, 255):
    #   red:  rg = 255, yb = 127.5      blue: rg = 0, yb = -255
    #   mean_rg = 127.5, std_rg = 127.5; mean_yb = -63.75, std_yb = 191.25
    #   CF = sqrt(127.5^2 + 191.25^2) + 0.3 sqrt(127.5^2 + 63.75^2)
    #      = 127.5 (sqrt(3.25) + 0.3 sqrt(1.25)) = 272.62
    half = np.zeros((16, 16, 3), np.uint8)
    half[:, :8, 0] = 255
    half[:, 8:, 2] = 255
    # All pure red: no spread, CF = 0.3 sqrt(255^2 + 127.5^2) = 0.3 * 127.5 sqrt(5) = 85.53
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    cf = np.asarray(metrics.colorfulness(np.stack([half, red])))
    expected = [127.5 * (math.sqrt(3.25) + 0.3 * math.sqrt(1.25)), 0.3 * 127.5 * math.sqrt(5)]
    np.testing.assert_allclose(cf, expected, rtol=1e-6)


def test_gray_baseline_matches_scikit_image_gray():
    lab = skcolor.rgb2lab(ASTRONAUT)
    lab[..., 1:] = 0
    reference = np.round(skcolor.lab2rgb(lab) * 255)
    ours = np.round(np.asarray(metrics.gray_baseline_rgb(ASTRONAUT)) * 255)
    assert np.abs(ours - reference).max() <= 1  # at most one uint8 rounding flip
    from_float = metrics.gray_baseline_rgb((ASTRONAUT / 255).astype(np.float32))
    np.testing.assert_allclose(from_float, metrics.gray_baseline_rgb(ASTRONAUT), atol=1e-6)


def test_gray_baseline_is_colorless_and_beats_a_badly_colored_image():
    """The protocol's sanity: gray has CF ~ 0, yet out-scores wrong hues on PSNR (hence CF)."""
    lab = color.rgb_to_lab(ASTRONAUT / 255)
    lab = np.asarray(lab) * np.array([1.0, -1.0, -1.0], np.float32)  # same L, (a, b) -> (-a, -b)
    inverted_hue = color.lab_to_rgb(lab)
    gray = metrics.image_metrics(metrics.gray_baseline_rgb(ASTRONAUT), ASTRONAUT)
    bad = metrics.image_metrics(inverted_hue, ASTRONAUT)
    print({k: float(v) for k, v in gray.items()}, {k: float(v) for k, v in bad.items()})
    # Measured: gray CF 0.07, truth CF 70.1, PSNR gray 18.1 dB vs inverted 10.9 dB.
    assert float(gray["cf_pred"]) < 0.5
    assert float(gray["cf_true"]) > 60
    assert float(gray["delta_cf"]) > 60
    assert float(gray["psnr"]) > float(bad["psnr"]) + 5
    assert float(gray["ssim"]) > float(bad["ssim"])


def _graph(fn, pred, true):
    return tf.function(fn)(tf.constant(pred), tf.constant(true))


def _graph_unknown_shape(fn, pred, true):
    spec = tf.TensorSpec((None, None, None, 3), tf.uint8)
    return tf.function(fn, input_signature=[spec, spec])(pred, true)


def _xla(fn, pred, true):
    return tf.function(fn, jit_compile=True)(tf.constant(pred), tf.constant(true))


GRAPH_MODES = {"graph": _graph, "graph_unknown_shape": _graph_unknown_shape, "xla": _xla}


@pytest.mark.parametrize("mode", GRAPH_MODES)
def test_graph_matches_eager(mode):
    pred, true = PAIRS["random"]
    eager = metrics.image_metrics(pred, true)
    traced = GRAPH_MODES[mode](metrics.image_metrics, pred, true)
    assert list(traced) == list(metrics.METRIC_NAMES)
    for key in metrics.METRIC_NAMES:
        # delta_cf is a small difference of two CFs, so its rounding scales with cf_true.
        scale = np.abs(eager["cf_true" if key == "delta_cf" else key])
        diff = np.abs(np.asarray(traced[key]) - np.asarray(eager[key])) / scale
        print(f"{mode} {key}: max rel diff {diff.max():.1e}")
        assert traced[key].shape == (len(pred),)
        assert diff.max() < GRAPH_RTOL, key


def test_image_metrics_agrees_with_the_single_metrics():
    pred, true = PAIRS["smooth"]
    results = metrics.image_metrics(pred, true)
    np.testing.assert_array_equal(results["psnr"], metrics.psnr(pred, true))
    np.testing.assert_array_equal(results["ssim"], metrics.ssim(pred, true))
    np.testing.assert_array_equal(results["cf_pred"], metrics.colorfulness(pred))
    np.testing.assert_array_equal(results["cf_true"], metrics.colorfulness(true))
    np.testing.assert_allclose(
        results["delta_cf"], np.abs(metrics.colorfulness(pred) - metrics.colorfulness(true))
    )


def test_any_leading_dims():
    pred, true = PAIRS["random"]  # (4, 48, 40, 3)
    flat = metrics.image_metrics(pred, true)
    nested = metrics.image_metrics(pred.reshape(2, 2, 48, 40, 3), true.reshape(2, 2, 48, 40, 3))
    single = metrics.image_metrics(pred[1], true[1])
    for key in metrics.METRIC_NAMES:
        assert nested[key].shape == (2, 2), key
        assert single[key].shape == (), key
        np.testing.assert_allclose(np.reshape(nested[key], -1), flat[key], rtol=1e-6, err_msg=key)
        np.testing.assert_allclose(single[key], flat[key][1], rtol=1e-6, err_msg=key)


@pytest.mark.parametrize(
    "pred, true, message",
    [
        (np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 12, 3), np.uint8), "same shape"),
        (np.zeros((1, 16, 16, 3), np.int32), np.zeros((1, 16, 16, 3), np.int32), "int32"),
        (np.zeros((1, 16, 16, 4), np.uint8), np.zeros((1, 16, 16, 4), np.uint8), "(1, 16, 16, 4)"),
        (np.zeros((1, 10, 16, 3), np.uint8), np.zeros((1, 10, 16, 3), np.uint8), "(1, 10, 16, 3)"),
    ],
    ids=["shape_mismatch", "int32", "four_channels", "smaller_than_window"],
)
def test_bad_inputs_fail_early_and_say_what_they_got(pred, true, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        metrics.image_metrics(pred, true)
