"""The evaluation protocol in one place: PSNR, SSIM, colorfulness and stripes, beside the gray
baseline.

PSNR alone rewards dull, "brownish" colors: the trivial gray image (the true L with a = b = 0)
already scores well. So every report gives fidelity (PSNR, SSIM) *and* colorfulness (CF of the
prediction, of the truth, and their gap), and computes the same numbers for
:func:`gray_baseline_rgb` so a model is always read against doing nothing.

Everything is written with ``keras.ops`` (no ``tf.`` calls), so the same code runs inside a
Keras ``test_step`` graph (XLA included), under other Keras backends, and eagerly on numpy
arrays in the evaluate command.

Conventions
-----------
* Inputs are RGB, channels last, either float in [0, 1] or ``uint8``. Every metric is computed
  on uint8 *levels*: floats are clipped to [0, 1] and quantized with ``round(x * 255)``
  (half to even), so a float prediction scores exactly what its saved 8-bit image would.
* Shapes: ``(..., height, width, 3)`` -> ``(...)``, one value per image, e.g.
  ``(batch, H, W, 3)`` -> ``(batch,)``. Average over images yourself (a ``keras.metrics.Mean``
  in ``test_step``, ``numpy.mean`` in the evaluate command); PSNR is per image, then averaged.
* Identical images: PSNR is capped at :data:`PSNR_CAP_DB` = 100 dB by flooring the MSE, so
  identical images score a finite 100 dB and dataset means stay finite (an ``inf`` would turn
  every running mean into ``inf``). The cap is above any real difference on common sizes: one
  level off in one value of a 224 x 224 image is still 99.9 dB.
* Results are float32.

:func:`stripes` is apart: it reads a chroma map (ab in Lab units, at the network's resolution
or a whole multiple of it), not RGB levels, and measures an artifact rather than fidelity.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from colorize_tf.core import color

PEAK = 255.0  # uint8 data range, for PSNR and SSIM
PSNR_CAP_DB = 100.0
_MSE_FLOOR = PEAK**2 / 10.0 ** (PSNR_CAP_DB / 10.0)  # 10 log10(255^2 / floor) == 100 dB

# SSIM as in Wang et al. 2004 (and scikit-image with gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False): 11-tap Gaussian (radius = int(3.5 * 1.5 + 0.5) = 5).
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_C1 = (SSIM_K1 * PEAK) ** 2
_SSIM_C2 = (SSIM_K2 * PEAK) ** 2
# Second moments are filtered on values centered on mid-gray: variance and covariance are
# shift invariant, and the smaller magnitudes cut float32 cancellation in E[x^2] - E[x]^2.
_SSIM_CENTER = PEAK / 2.0

Tensor = Any  # a backend tensor or a numpy array; keras.ops accepts both


def _gaussian_taps(size: int, sigma: float) -> tuple[float, ...]:
    """Normalized 1-D Gaussian of ``size`` taps (same formula as ``scipy.ndimage``)."""
    radius = size // 2
    weights = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    total = sum(weights)
    return tuple(w / total for w in weights)


_SSIM_TAPS = _gaussian_taps(SSIM_WINDOW, SSIM_SIGMA)

# Colorfulness of Hasler and Suesstrunk (2003): sigma_rgyb + 0.3 * mu_rgyb.
CF_MEAN_WEIGHT = 0.3


# --- input handling --------------------------------------------------------------------------


def _check_rgb(x: Tensor, name: str) -> Tensor:
    """Convert to a tensor and check the (..., H, W, 3) layout and dtype; returns the tensor."""
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype != "uint8" and "float" not in dtype:
        raise ValueError(f"{name} must be float RGB in [0, 1] or uint8, received dtype {dtype}.")
    shape = tuple(x.shape)
    if len(shape) < 3 or shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., height, width, 3), received {shape}.")
    return x


def _to_levels(x: Tensor, name: str) -> Tensor:
    """RGB (..., H, W, 3), float [0, 1] or uint8 -> float32 uint8 levels in {0, ..., 255}."""
    x = _check_rgb(x, name)
    if keras.backend.standardize_dtype(x.dtype) == "uint8":
        return ops.cast(x, "float32")
    return ops.round(ops.clip(ops.cast(x, "float32"), 0.0, 1.0) * PEAK)


def _pair_to_levels(pred_rgb: Tensor, true_rgb: Tensor) -> tuple[Tensor, Tensor]:
    pred = _to_levels(pred_rgb, "pred_rgb")
    true = _to_levels(true_rgb, "true_rgb")
    if None not in pred.shape and None not in true.shape and pred.shape != true.shape:
        raise ValueError(
            "pred_rgb and true_rgb must have the same shape, received "
            f"{tuple(pred.shape)} and {tuple(true.shape)}."
        )
    return pred, true


# --- the metrics on levels -------------------------------------------------------------------


def _psnr_levels(pred: Tensor, true: Tensor) -> Tensor:
    mse = ops.mean(ops.square(pred - true), axis=(-3, -2, -1))  # (...)
    mse = ops.maximum(mse, _MSE_FLOOR)
    return 10.0 * ops.log10(PEAK**2 / mse)


def _ssim_levels(pred: Tensor, true: Tensor) -> Tensor:
    shape = tuple(pred.shape)
    height, width = shape[-3], shape[-2]
    for size in (height, width):
        if size is not None and size < SSIM_WINDOW:
            raise ValueError(
                f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels, "
                f"received shape {shape}."
            )
    # Convolutions want exactly one batch axis: fold any leading dims into it.
    leading = ops.shape(pred)[:-3]
    if len(shape) != 4:
        pred = ops.reshape(pred, (-1, *ops.shape(pred)[-3:]))
        true = ops.reshape(true, (-1, *ops.shape(true)[-3:]))

    x = pred - _SSIM_CENTER
    y = true - _SSIM_CENTER
    moments = ops.concatenate([x, y, x * x, y * y, x * y], axis=-1)  # (n, H, W, 15)
    taps = ops.convert_to_tensor(_SSIM_TAPS, dtype="float32")
    channels = 5 * 3
    # Separable Gaussian, per channel, "valid": the same pixels scikit-image keeps after it
    # filters with reflect padding and crops (win_size - 1) // 2 from every border.
    kernel_h = ops.tile(ops.reshape(taps, (SSIM_WINDOW, 1, 1, 1)), (1, 1, channels, 1))
    kernel_w = ops.tile(ops.reshape(taps, (1, SSIM_WINDOW, 1, 1)), (1, 1, channels, 1))
    filtered = ops.depthwise_conv(moments, kernel_h, padding="valid")  # (n, H - 10, W, 15)
    filtered = ops.depthwise_conv(filtered, kernel_w, padding="valid")  # (n, H - 10, W - 10, 15)
    mu_x, mu_y, e_xx, e_yy, e_xy = ops.split(filtered, 5, axis=-1)  # each (n, H', W', 3)

    var_x = e_xx - mu_x * mu_x  # population (co)variances, as Wang et al.
    var_y = e_yy - mu_y * mu_y
    cov_xy = e_xy - mu_x * mu_y
    mu_x = mu_x + _SSIM_CENTER  # back to levels for the luminance term
    mu_y = mu_y + _SSIM_CENTER
    ssim_map = ((2.0 * mu_x * mu_y + _SSIM_C1) * (2.0 * cov_xy + _SSIM_C2)) / (
        (mu_x * mu_x + mu_y * mu_y + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    )  # (n, H', W', 3)
    # Mean over pixels per channel, then over channels: one mean, as all channels have H' x W'.
    ssim = ops.mean(ssim_map, axis=(-3, -2, -1))  # (n,)
    return ops.reshape(ssim, leading) if len(shape) != 4 else ssim


def _colorfulness_levels(rgb: Tensor) -> Tensor:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g  # (..., H, W)
    yb = 0.5 * (r + g) - b
    mean_rg = ops.mean(rg, axis=(-2, -1))
    mean_yb = ops.mean(yb, axis=(-2, -1))
    var_rg = ops.mean(ops.square(rg - mean_rg[..., None, None]), axis=(-2, -1))  # population
    var_yb = ops.mean(ops.square(yb - mean_yb[..., None, None]), axis=(-2, -1))
    spread = ops.sqrt(var_rg + var_yb)
    offset = ops.sqrt(ops.square(mean_rg) + ops.square(mean_yb))
    return spread + CF_MEAN_WEIGHT * offset


# --- public API ------------------------------------------------------------------------------


def psnr(pred_rgb: Tensor, true_rgb: Tensor) -> Tensor:
    """Peak signal-to-noise ratio on uint8 levels, per image.

    ``10 log10(255^2 / MSE)`` with the MSE over all pixels and channels of one image, capped at
    :data:`PSNR_CAP_DB` (identical images score 100 dB). Matches scikit-image's
    ``peak_signal_noise_ratio(true_u8, pred_u8, data_range=255)`` below the cap.

    Args:
        pred_rgb: prediction, (..., H, W, 3), float in [0, 1] or uint8.
        true_rgb: ground truth, same shape, float in [0, 1] or uint8.

    Returns:
        (...) float32 PSNR in dB, e.g. (batch,).
    """
    return _psnr_levels(*_pair_to_levels(pred_rgb, true_rgb))


def ssim(pred_rgb: Tensor, true_rgb: Tensor) -> Tensor:
    """Structural similarity on uint8 RGB levels, per channel then averaged, per image.

    The Wang et al. (2004) settings most colorization papers use: 11 x 11 Gaussian window with
    sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255, population (co)variances, and the mean of
    the SSIM map over "valid" window positions only (borders of 5 pixels dropped). Equal to
    scikit-image's ``structural_similarity(true_u8, pred_u8, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)`` up to float32 rounding.

    Args:
        pred_rgb: prediction, (..., H, W, 3) with H, W >= 11, float in [0, 1] or uint8.
        true_rgb: ground truth, same shape, float in [0, 1] or uint8.

    Returns:
        (...) float32 SSIM in [-1, 1] (1 for identical images), e.g. (batch,).
    """
    return _ssim_levels(*_pair_to_levels(pred_rgb, true_rgb))


def colorfulness(rgb: Tensor) -> Tensor:
    """Colorfulness of Hasler and Suesstrunk (2003), per image, on uint8 levels (0..255).

    With ``rg = R - G`` and ``yb = (R + G) / 2 - B`` over the pixels of one image:
    ``CF = sqrt(std_rg^2 + std_yb^2) + 0.3 * sqrt(mean_rg^2 + mean_yb^2)`` (population std).
    0 for any gray image (R = G = B).

    Args:
        rgb: (..., H, W, 3), float in [0, 1] or uint8.

    Returns:
        (...) float32 colorfulness, e.g. (batch,).
    """
    return _colorfulness_levels(_to_levels(rgb, "rgb"))


def image_metrics(pred_rgb: Tensor, true_rgb: Tensor) -> dict[str, Tensor]:
    """All protocol metrics of a prediction against the truth, per image.

    For the gray baseline call ``image_metrics(gray_baseline_rgb(true_rgb), true_rgb)``.

    Args:
        pred_rgb: prediction, (..., H, W, 3) with H, W >= 11, float in [0, 1] or uint8.
        true_rgb: ground truth, same shape, float in [0, 1] or uint8.

    Returns:
        ``{"psnr", "ssim", "cf_pred", "cf_true", "delta_cf"}``, each a (...) float32 tensor,
        e.g. (batch,); ``delta_cf = |cf_pred - cf_true|``. Keys are in :data:`METRIC_NAMES`.
    """
    pred, true = _pair_to_levels(pred_rgb, true_rgb)
    cf_pred = _colorfulness_levels(pred)
    cf_true = _colorfulness_levels(true)
    return {
        "psnr": _psnr_levels(pred, true),
        "ssim": _ssim_levels(pred, true),
        "cf_pred": cf_pred,
        "cf_true": cf_true,
        "delta_cf": ops.abs(cf_pred - cf_true),
    }


METRIC_NAMES = ("psnr", "ssim", "cf_pred", "cf_true", "delta_cf")


def gray_baseline_rgb(true_rgb: Tensor) -> Tensor:
    """The trivial colorization: keep the true L, set a = b = 0, back to RGB via ``color.py``.

    This is what a network predicting ``ab = 0`` would output through the same conversion,
    so every caller compares against the same baseline. Its colorfulness is ~0 but not
    exactly 0: scikit-image's sRGB matrix does not map the D65 white to exactly R = G = B
    (off by up to 1e-4), which occasionally flips one uint8 rounding.

    Args:
        true_rgb: (..., H, W, 3), float in [0, 1] or uint8.

    Returns:
        (..., H, W, 3) float32 RGB in [0, 1].
    """
    rgb = _check_rgb(true_rgb, "true_rgb")
    if keras.backend.standardize_dtype(rgb.dtype) == "uint8":
        rgb = ops.cast(rgb, "float32") / PEAK
    lab = color.rgb_to_lab(rgb)  # (..., H, W, 3)
    gray_lab = ops.concatenate([lab[..., :1], ops.zeros_like(lab[..., 1:])], axis=-1)
    return color.lab_to_rgb(gray_lab)


# --- stripes: the decoder's stride-periodic pattern ------------------------------------------

# A U-Net decoder that doubles resolution with stride-2 transposed convs can paint, in flat
# areas, a pattern that repeats every 2 pixels (its last stage) and 4 pixels (the one before):
# even and odd output pixels come from different kernel taps. One lattice of period 4 holds
# both (period 2 is its harmonic).
STRIPE_PERIOD = 4  # network pixels
STRIPE_TILE_PERIODS = 4  # a tile is this many periods wide: the pattern's phase may vary by tile
# Periods dropped at each border by the evaluation: zero-padded convolutions leave transients
# there that are no decoder's stripes (a resize-conv decoder with random weights on a vertical
# gray ramp at 128 x 128: 0.95 with the borders, 0.31 without 8 pixels, 0.11 without 16).
STRIPE_MARGIN_PERIODS = 4


def stripes(ab: Tensor, period: int = STRIPE_PERIOD, margin: int = 0) -> Tensor:
    """RMS amplitude of the part of a chroma map that repeats every ``period`` pixels.

    The map is first high-passed with a symmetric filter that is zero at every multiple of
    ``1 / period`` cycles per pixel (``[1/2, 1, ..., 1, 1/2] / period``, ``period + 1`` taps,
    separable, "valid" positions only), so linear ramps and flat areas leave nothing and the
    periodic part passes untouched. The rest is cut into square tiles of
    ``STRIPE_TILE_PERIODS * period`` pixels; in each, the mean over the pixels of each of the
    ``period x period`` phases, minus the tile mean, is the periodic pattern (stripes along
    either axis, or a checkerboard). The result is the RMS of those phase means over tiles,
    phases and channels: the amplitude of a pattern ``A cos(pi x)`` is ``A``, that of
    ``A cos(pi x / 2)`` is ``A / sqrt(2)``. Equivalently, the tile's 2-D DFT energy at the
    lattice frequencies ``(k / period, l / period)`` but (0, 0), over (tile size)^4.

    Texture of the image itself has some energy there too: compare with the same measure of
    the truth, or measure on smooth inputs (where a clean decoder gives ~0).

    Args:
        ab: chroma, (..., H, W, C) float (ab in Lab units for a result in those units), with
            static H and W of at least ``(STRIPE_TILE_PERIODS + 1) * period`` pixels.
        period: the pattern's period in pixels of ``ab``: 4 at the network's resolution;
            ``4 * k`` where the network's output was upsampled k times.
        margin: pixels dropped at each border first (see ``STRIPE_MARGIN_PERIODS``).

    Returns:
        (...) float32 amplitude, in the units of ``ab``, e.g. (batch,).
    """
    if not isinstance(period, int) or period < 2:
        raise ValueError(f"period must be an integer >= 2, received {period!r}.")
    if not isinstance(margin, int) or margin < 0:
        raise ValueError(f"margin must be an integer >= 0, received {margin!r}.")
    x = ops.cast(ops.convert_to_tensor(ab), "float32")
    shape = tuple(x.shape)
    tile = STRIPE_TILE_PERIODS * period
    if len(shape) < 3 or None in shape[-3:]:
        raise ValueError(
            f"ab must have a static shape (..., height, width, channels), got {shape}."
        )
    height, width, channels = shape[-3:]
    height, width = height - 2 * margin, width - 2 * margin
    tiles_y, tiles_x = (height - period) // tile, (width - period) // tile
    if tiles_y < 1 or tiles_x < 1:
        least = tile + period + 2 * margin
        raise ValueError(
            f"stripes with period {period} and margin {margin} need at least {least} x {least} "
            f"pixels, received shape {shape}."
        )
    leading = ops.shape(x)[:-3]
    x = ops.reshape(x, (-1, *shape[-3:]))  # (n, H, W, C)
    x = x[:, margin : margin + height, margin : margin + width, :]  # (n, H - 2m, W - 2m, C)

    taps = [0.5] + [1.0] * (period - 1) + [0.5]
    taps = ops.convert_to_tensor([t / period for t in taps], dtype="float32")
    kernel_h = ops.tile(ops.reshape(taps, (period + 1, 1, 1, 1)), (1, 1, channels, 1))
    kernel_w = ops.tile(ops.reshape(taps, (1, period + 1, 1, 1)), (1, 1, channels, 1))
    low = ops.depthwise_conv(x, kernel_h, padding="valid")  # (n, H - period, W, C)
    low = ops.depthwise_conv(low, kernel_w, padding="valid")  # (n, H - period, W - period, C)
    half = period // 2
    high = x[:, half : half + height - period, half : half + width - period, :] - low
    high = high[:, : tiles_y * tile, : tiles_x * tile, :]
    cells = STRIPE_TILE_PERIODS
    high = ops.reshape(high, (-1, tiles_y, cells, period, tiles_x, cells, period, channels))
    phases = ops.mean(high, axis=(2, 5))  # (n, tiles_y, period, tiles_x, period, C)
    phases = phases - ops.mean(phases, axis=(2, 4), keepdims=True)
    amplitude = ops.sqrt(ops.mean(ops.square(phases), axis=(1, 2, 3, 4, 5)))  # (n,)
    return ops.reshape(amplitude, leading)


def rgb_stripes(rgb: Tensor, period: int = STRIPE_PERIOD, margin: int = 0) -> Tensor:
    """:func:`stripes` of an RGB image's ab (uint8 or float [0, 1] RGB, as the other metrics).

    Args:
        rgb: (..., H, W, 3), float in [0, 1] or uint8.
        period, margin: see :func:`stripes`.

    Returns:
        (...) float32 amplitude in Lab ab units.
    """
    levels = _to_levels(rgb, "rgb")  # what its saved 8-bit image holds
    lab = color.rgb_to_lab(levels / PEAK)  # (..., H, W, 3)
    return stripes(lab[..., 1:], period, margin)
