"""``metrics.stripes``: against an independent numpy implementation, hand-derived amplitudes,
and the banding the shipped preset paints (periods of 2 and 4 network pixels)."""

import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.core import metrics


def _stripes_numpy(ab: np.ndarray, period: int = 4, margin: int = 0) -> np.ndarray:
    """The definition by another road: np.convolve high-pass, then per tile the 2-D FFT energy at
    the lattice frequencies (k / period, l / period) but DC, over (tile size)^4."""
    cells = metrics.STRIPE_TILE_PERIODS
    size = cells * period
    taps = np.array([0.5] + [1.0] * (period - 1) + [0.5]) / period
    ab = np.asarray(ab, np.float64)
    out = []
    for image in ab.reshape(-1, *ab.shape[-3:]):
        if margin:
            image = image[margin:-margin, margin:-margin]
        height, width, channels = image.shape
        energies = []
        for c in range(channels):
            plane = image[..., c]
            low = np.apply_along_axis(lambda r: np.convolve(r, taps, "valid"), 0, plane)
            low = np.apply_along_axis(lambda r: np.convolve(r, taps, "valid"), 1, low)
            half = period // 2
            high = plane[half : half + height - period, half : half + width - period] - low
            for ty in range((height - period) // size):
                for tx in range((width - period) // size):
                    tile = high[ty * size : (ty + 1) * size, tx * size : (tx + 1) * size]
                    lattice = np.abs(np.fft.fft2(tile)[::cells, ::cells]) ** 2
                    energies.append((lattice.sum() - lattice[0, 0]) / size**4)
        out.append(np.sqrt(np.mean(energies)))
    return np.array(out).reshape(ab.shape[:-3])


def _sky(size: int = 128) -> np.ndarray:
    """A smooth sky-like ab map (size, size, 2): bluer towards the top, a slight horizontal tilt."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1.0)
    return np.stack([-2 + 3 * x, -30 + 20 * y + 4 * x * y], axis=-1).astype(np.float32)


def _banded(size: int = 128, a2: float = 3.0, a4: float = 2.0) -> np.ndarray:
    """The shipped preset's pattern on the sky: vertical bands of period 2 and 4 columns in b."""
    x = np.arange(size)
    bands = a2 * np.cos(np.pi * x) + a4 * np.cos(np.pi * x / 2 + 0.3)  # (size,)
    sky = _sky(size)
    sky[..., 1] += bands[None, :]
    return sky


def test_matches_the_independent_numpy_definition():
    rng = np.random.default_rng(0)
    maps = rng.normal(0, 5, (3, 52, 60, 2)).astype(np.float32)
    np.testing.assert_allclose(metrics.stripes(maps), _stripes_numpy(maps), rtol=1e-5)
    # Golden values of that definition (float64 numpy), so both cannot drift together.
    np.testing.assert_allclose(_stripes_numpy(maps), [1.2410710, 1.2414484, 1.2141591], rtol=1e-6)
    np.testing.assert_allclose(
        metrics.stripes(maps, period=8), _stripes_numpy(maps, period=8), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.stripes(maps, margin=4), _stripes_numpy(maps, margin=4), rtol=1e-5
    )


def test_amplitude_of_known_bands_and_zero_on_smooth_maps():
    # A cos(pi x) has RMS A, A cos(pi x / 2 + phase) has A / sqrt(2); over 2 channels (b only).
    expected = np.sqrt((3.0**2 + 2.0**2 / 2) / 2)
    assert float(metrics.stripes(_banded())) == pytest.approx(expected, rel=1e-4)
    assert float(metrics.stripes(_sky())) < 1e-4  # a linear-ish ramp leaves nothing
    assert float(metrics.stripes(np.full((64, 64, 2), 7.0, np.float32))) < 1e-5
    # Upsampled 2x (as colorize does from 128 to 256) the pattern sits at period 8.
    doubled = np.repeat(np.repeat(_banded(), 2, axis=0), 2, axis=1)
    assert float(metrics.stripes(doubled, period=8)) > 0.8 * expected
    # Pixel repetition leaves a staircase of steps ~0.05 ab: a period-2 pattern of 0.03.
    assert float(metrics.stripes(np.repeat(np.repeat(_sky(), 2, 0), 2, 1), period=8)) < 0.05


def test_the_measured_banding_is_flagged_and_a_clean_map_is_not():
    """The issue's sky: periods 2 and 4 columns, detrended std ~5 RGB levels (~2-3 ab units)."""
    banded = metrics.stripes(np.stack([_banded(a2=2.0, a4=2.0), _sky()]))
    assert float(banded[0]) > 1.0 > 0.01 > float(banded[1])


def test_rgb_stripes_and_graph_mode_agree():
    rgb = np.random.default_rng(1).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    eager = metrics.rgb_stripes(rgb)
    traced = tf.function(lambda x: metrics.rgb_stripes(x))(tf.constant(rgb))
    np.testing.assert_allclose(traced.numpy(), np.asarray(eager), rtol=1e-5)
    assert tuple(np.asarray(metrics.rgb_stripes(rgb[0])).shape) == ()


def test_bad_input_fails_naming_the_problem():
    with pytest.raises(ValueError, match=r"at least 20 x 20 pixels.*\(16, 40, 2\)"):
        metrics.stripes(np.zeros((16, 40, 2), np.float32))
    with pytest.raises(ValueError, match="period must be an integer >= 2, received 3.5"):
        metrics.stripes(np.zeros((40, 40, 2), np.float32), period=3.5)
    with pytest.raises(ValueError, match="margin must be an integer >= 0, received -1"):
        metrics.stripes(np.zeros((40, 40, 2), np.float32), margin=-1)
