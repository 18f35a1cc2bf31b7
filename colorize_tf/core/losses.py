"""The method's losses, per example, in ``keras.ops`` (portable across Keras backends).

Each function returns one value per example, shape ``(batch,)``, so the caller decides how to
reduce: under a ``tf.distribute`` strategy the sum over a replica's examples is divided by the
*global* batch size (see ``gan.py``).

* Discriminator: ``0.5 * (BCE(D(L, ab_real), 1) + BCE(D(L, ab_fake), 0))`` on PatchGAN logits
  (the reference halves the sum, which halves D's learning rate relative to G's).
* Generator: ``BCE(D(L, ab_fake), 1) + l1_weight * |ab_fake - ab_real|`` with ``l1_weight = 100``.
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


def l1_loss(ab_pred, ab_true):
    """Mean absolute error of normalized ab, per example: (batch, H, W, 2) x2 -> (batch,)."""
    return _per_example_mean(ops.abs(ops.cast(ab_pred, "float32") - ops.cast(ab_true, "float32")))


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0) -> dict:
    """Real/fake BCE. Returns per-example ``total``, ``real``, ``fake``, each (batch,).

    ``label_smoothing`` > 0 sets the real target to ``1 - label_smoothing`` (one-sided label
    smoothing, Salimans et al. 2016): a discriminator that cannot become certain overfits a
    small photo set more slowly. 0 is the paper's loss.
    """
    real = bce_with_logits(real_logits, 1.0 - label_smoothing)
    fake = bce_with_logits(fake_logits, 0.0)
    return {"total": 0.5 * (real + fake), "real": real, "fake": fake}


def generator_loss(fake_logits, ab_pred, ab_true, l1_weight: float) -> dict:
    """Adversarial BCE (fool D) + ``l1_weight`` * L1. Per-example ``total``, ``gan``, ``l1``."""
    gan = bce_with_logits(fake_logits, 1.0)
    l1 = l1_loss(ab_pred, ab_true)
    return {"total": gan + l1_weight * l1, "gan": gan, "l1": l1}
