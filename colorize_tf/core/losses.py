"""The method's losses, per example, in ``keras.ops`` (portable across Keras backends).

Each function returns one value per example, shape ``(batch,)``, so the caller decides how to
reduce: under a ``tf.distribute`` strategy the sum over a replica's examples is divided by the
*global* batch size (see ``gan.py``).

* Discriminator: ``0.5 * (BCE(D(L, ab_real), 1) + BCE(D(L, ab_fake), 0))`` on PatchGAN logits
  (the reference halves the sum, which halves D's learning rate relative to G's).
* Generator: ``BCE(D(L, ab_fake), 1) + l1_weight * |ab_fake - ab_real|`` with ``l1_weight = 100``.
* Class-rebalanced L1 (an option, not the paper's): each pixel's ``|ab_fake - ab_real|`` is
  weighted by the rarity of its true color's ab bin over the training set, Zhang et al.'s
  (2016) rebalancing applied to a regression loss (``rebalance_weights``).
"""

from __future__ import annotations

from keras import ops


def _per_example_mean(x):
    """(batch, ...) -> (batch,)."""
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def bce_with_logits(logits, target: float):
    """Binary cross-entropy of every logit against a constant label, averaged per example."""
    logits = ops.cast(logits, "float32")
    labels = ops.full_like(logits, target)
    return _per_example_mean(ops.binary_crossentropy(labels, logits, from_logits=True))


# ab bins of the rebalanced L1: 10 Lab units square (Zhang et al.'s grid) over [-110, 110].
AB_BIN_SIZE = 10.0
AB_BINS = 22  # per axis; bins are numbered a_index * AB_BINS + b_index
AB_RANGE = 110.0  # ab_norm = ab / AB_RANGE (core.color's convention)
# Zhang et al. smooth the empirical distribution with a Gaussian of sigma 5 Lab units.
REBALANCE_SIGMA = 5.0


def ab_bin_index(ab_norm):
    """Normalized ab (..., 2) -> the index of its 10 x 10 Lab-unit bin (...,), int32."""
    scaled = (ops.cast(ab_norm, "float32") * AB_RANGE + AB_RANGE) / AB_BIN_SIZE
    index = ops.cast(ops.clip(ops.floor(scaled), 0, AB_BINS - 1), "int32")
    return index[..., 0] * AB_BINS + index[..., 1]


def ab_bin_counts(ab_norm):
    """How many pixels of ``ab_norm`` (..., 2) fall in each ab bin: (AB_BINS ** 2,) float32."""
    flat = ops.reshape(ab_bin_index(ab_norm), (-1,))
    return ops.cast(ops.bincount(flat, minlength=AB_BINS * AB_BINS), "float32")


def rebalance_weights(counts, strength: float = 0.5):
    """Per-bin L1 weights from the training set's ab bin counts: (AB_BINS ** 2,) -> same.

    Zhang et al. (2016), eq. 4: ``w ~ ((1 - lam) * p + lam / Q) ** -1`` with ``p`` the bin
    distribution smoothed by a Gaussian of ``REBALANCE_SIGMA`` Lab units, ``Q`` the number of
    bins the data reaches, ``lam = 1 - strength``, scaled so that ``sum(p * w) == 1`` (the
    loss keeps its size on average). ``strength`` 0 gives every pixel weight 1 (plain L1);
    0.5 is Zhang et al.'s; 1 is pure inverse frequency. Bins the data never reaches get the
    weight of the rarest reached bin.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    counts = ops.reshape(ops.cast(counts, "float32"), (AB_BINS, AB_BINS))
    centers = (ops.arange(AB_BINS, dtype="float32") + 0.5) * AB_BIN_SIZE
    distance = ops.expand_dims(centers, 0) - ops.expand_dims(centers, 1)
    kernel = ops.exp(-0.5 * ops.square(distance / REBALANCE_SIGMA))
    kernel = kernel / ops.sum(kernel, axis=0, keepdims=True)  # each source bin keeps its mass
    smooth = ops.matmul(ops.matmul(kernel, counts), ops.transpose(kernel))  # separable blur
    p = ops.reshape(smooth / ops.maximum(ops.sum(smooth), 1e-12), (-1,))
    reached = ops.reshape(counts, (-1,)) > 0
    q = ops.maximum(ops.sum(ops.cast(reached, "float32")), 1.0)
    raw = 1.0 / (strength * p + (1.0 - strength) / q)
    rarest = ops.max(ops.where(reached, raw, 0.0))
    raw = ops.where(reached, raw, rarest)
    return raw / ops.sum(p * raw)


def l1_loss(ab_pred, ab_true, bin_weights=None):
    """Mean absolute error of normalized ab, per example: (batch, H, W, 2) x2 -> (batch,).

    ``bin_weights`` (AB_BINS ** 2,): each pixel's error is weighted by the weight of its true
    ab's bin (``rebalance_weights``); None: plain L1.
    """
    error = ops.abs(ops.cast(ab_pred, "float32") - ops.cast(ab_true, "float32"))
    if bin_weights is not None:
        weight = ops.take(ops.cast(bin_weights, "float32"), ab_bin_index(ab_true))
        error = error * ops.expand_dims(weight, -1)
    return _per_example_mean(error)


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0) -> dict:
    """Real/fake BCE. Returns per-example ``total``, ``real``, ``fake``, each (batch,).

    ``label_smoothing`` > 0 sets the real target to ``1 - label_smoothing`` (one-sided label
    smoothing, Salimans et al. 2016): a discriminator that cannot become certain overfits a
    small photo set more slowly. 0 is the paper's loss.
    """
    real = bce_with_logits(real_logits, 1.0 - label_smoothing)
    fake = bce_with_logits(fake_logits, 0.0)
    return {"total": 0.5 * (real + fake), "real": real, "fake": fake}


def generator_loss(fake_logits, ab_pred, ab_true, l1_weight: float, bin_weights=None) -> dict:
    """Adversarial BCE (fool D) + ``l1_weight`` * L1 (rebalanced by ``bin_weights`` if given).
    Per-example ``total``, ``gan``, ``l1``."""
    gan = bce_with_logits(fake_logits, 1.0)
    l1 = l1_loss(ab_pred, ab_true, bin_weights)
    return {"total": gan + l1_weight * l1, "gan": gan, "l1": l1}
