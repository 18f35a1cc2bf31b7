"""The class-rebalanced L1 (``train.l1_rebalance``) against an independent numpy version of
Zhang et al.'s eq. 4, and the plain L1 it must reduce to."""

import numpy as np
import pytest

from colorize_tf.core import losses

BINS = 22


def _bins_numpy(ab_norm: np.ndarray) -> np.ndarray:
    """Independent: a and b in Lab units, 10-unit bins from -110, the edges clamped."""
    lab = ab_norm.astype(np.float64) * 110.0
    a = np.clip(((lab[..., 0] + 110.0) // 10.0).astype(int), 0, BINS - 1)
    b = np.clip(((lab[..., 1] + 110.0) // 10.0).astype(int), 0, BINS - 1)
    return a * BINS + b


def _weights_numpy(counts: np.ndarray, strength: float) -> np.ndarray:
    """Independent: a 2-D Gaussian (sigma 5 Lab units) spread from each bin center, summed
    point by point; w = 1 / (strength * p + (1 - strength) / Q), E_p[w] = 1."""
    counts = counts.reshape(BINS, BINS).astype(np.float64)
    centers = (np.arange(BINS) + 0.5) * 10.0
    smooth = np.zeros((BINS, BINS))
    for i in range(BINS):
        for j in range(BINS):
            if counts[i, j]:
                spread = np.exp(
                    -((centers[:, None] - centers[i]) ** 2 + (centers[None, :] - centers[j]) ** 2)
                    / (2 * 5.0**2)
                )
                # Each source bin keeps its mass along each axis (the edges lose none).
                spread /= np.outer(
                    np.exp(-((centers - centers[i]) ** 2) / 50.0).sum(),
                    np.exp(-((centers - centers[j]) ** 2) / 50.0).sum(),
                )
                smooth += counts[i, j] * spread
    p = (smooth / smooth.sum()).ravel()
    reached = counts.ravel() > 0
    raw = 1.0 / (strength * p + (1.0 - strength) / reached.sum())
    raw[~reached] = raw[reached].max()
    return raw / (p * raw).sum()


def _skewed_ab(seed: int = 0) -> np.ndarray:
    """Mostly near-gray ab with a few saturated pixels, as in photos: (2, 16, 16, 2)."""
    rng = np.random.default_rng(seed)
    ab = rng.normal(0.0, 0.05, (2, 16, 16, 2))
    ab[:, :3, :3] = [0.6, 0.5]  # a rare orange patch
    return np.clip(ab, -1.0, 1.0).astype(np.float32)


def test_bins_and_counts_match_numpy_on_edges_and_inside():
    ab = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-0.001, 0.1], [0.5, -0.3]], np.float32)
    np.testing.assert_array_equal(np.asarray(losses.ab_bin_index(ab)), _bins_numpy(ab))
    # -1 -> bin 0, +1 -> bin 21 (the edge is clamped), 0 -> bin 11, (-0.11, 11) Lab -> (10, 12).
    assert _bins_numpy(ab)[:4].tolist() == [0, 21 * 22 + 21, 11 * 22 + 11, 10 * 22 + 12]
    data = _skewed_ab()
    counts = np.asarray(losses.ab_bin_counts(data))
    np.testing.assert_array_equal(counts, np.bincount(_bins_numpy(data).ravel(), minlength=484))


@pytest.mark.parametrize("strength", [0.25, 0.5, 1.0])
def test_rebalance_weights_match_an_independent_implementation(strength):
    counts = np.asarray(losses.ab_bin_counts(_skewed_ab()))
    found = np.asarray(losses.rebalance_weights(counts, strength))
    expected = _weights_numpy(counts, strength)
    np.testing.assert_allclose(found, expected, rtol=1e-4)
    orange = _bins_numpy(np.array([0.6, 0.5]))
    gray = _bins_numpy(np.array([0.0, 0.0]))
    assert found[orange] > 1.2 * found[gray]  # the rare color counts for more


def test_rebalanced_l1_keeps_its_size_and_strength_zero_is_plain_l1():
    truth = _skewed_ab()
    pred = truth + np.float32(0.1)
    counts = losses.ab_bin_counts(truth)
    plain = np.asarray(losses.l1_loss(pred, truth))
    np.testing.assert_allclose(plain, 0.1, rtol=1e-5)
    flat = np.asarray(losses.rebalance_weights(counts, 0.0))
    np.testing.assert_allclose(flat, 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(losses.l1_loss(pred, truth, flat)), plain, rtol=1e-6)
    # With Zhang's strength the weights average to 1 under the smoothed distribution, so a
    # uniform error of 0.1 costs about the same; a pixel's weight follows its true bin.
    weights = np.asarray(losses.rebalance_weights(counts, 0.5))
    weighted = np.asarray(losses.l1_loss(pred, truth, weights))
    per_pixel = weights[_bins_numpy(truth)]  # (2, 16, 16)
    np.testing.assert_allclose(weighted, 0.1 * per_pixel.mean(axis=(1, 2)), rtol=1e-5)
    assert 0.5 < weighted.mean() / plain.mean() < 2.0


def test_bad_strength_fails():
    with pytest.raises(ValueError, match="strength must be in"):
        losses.rebalance_weights(np.ones(484), 1.5)
