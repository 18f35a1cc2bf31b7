"""The training recipe both loops share: precision policies, optimizers, steps per phase, the
non-finite-loss error and the names of the files a run writes.

``colorize_tf.training.loop`` (TensorFlow, ``fit()``) and ``colorize_tf.training.jax_loop``
(Keras' JAX backend) both call it, so the two cannot drift apart on these. Only Keras: no
TensorFlow, no JAX.
"""

from __future__ import annotations

import keras

# The TensorFlow loop's product and validation numbers are named in ``models`` (whose
# ``presets.preset_from_run`` reads them, and which may not import ``training``).
from colorize_tf.models.files import GENERATOR_FILE, SUMMARY_FILE  # noqa: F401

# --- what a run writes ---------------------------------------------------------------------------

LOG_FILE = "train_log.json"  # the JAX loop's log
# The JAX loop's product is a weights folder; its file names live in ``colorize_tf.models.weights``.

# --- precision ------------------------------------------------------------------------------------

# ``runtime.mixed_precision`` -> Keras dtype policy.
MIXED_PRECISION_POLICIES = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or infinite; the message says where (phase, step) and what
    was kept."""


# --- optimizers -----------------------------------------------------------------------------------


def make_optimizer(
    learning_rate: float, beta_1: float, beta_2: float
) -> keras.optimizers.Optimizer:
    """Adam, wrapped for loss scaling when the global policy computes in float16."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)
    if keras.mixed_precision.global_policy().compute_dtype == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def make_optimizers(train) -> dict[str, keras.optimizers.Optimizer]:
    """The three optimizers of a run from ``config.train``: ``pretrain`` (the generator's in
    L1 pretraining), ``g_gan`` and ``d_gan`` (the GAN phase's; the discriminator's rate is
    ``d_learning_rate`` when set, else the GAN phase's). Unbuilt: build them on the variables
    (under ``tf.distribute``, inside ``strategy.scope()``)."""
    pretrain, gan = train.pretrain, train.gan
    return {
        "pretrain": make_optimizer(pretrain.learning_rate, pretrain.beta_1, pretrain.beta_2),
        "g_gan": make_optimizer(gan.learning_rate, gan.beta_1, gan.beta_2),
        "d_gan": make_optimizer(train.d_learning_rate or gan.learning_rate, gan.beta_1, gan.beta_2),
    }


# --- steps ---------------------------------------------------------------------------------------


def steps_per_epoch(configured_steps: int, train_images: int | None, global_batch: int) -> int:
    """A phase's steps per epoch: its configured ``steps_per_epoch`` when > 0, else the whole
    global batches the training images fill (the images beyond them open the next epoch).

    Raises:
        ValueError: neither is known, or the images do not fill one batch.
    """
    if configured_steps:
        return configured_steps
    if train_images is None:
        raise ValueError("the training set's size is not known: set train.<phase>.steps_per_epoch")
    if train_images < global_batch:
        raise ValueError(
            f"{train_images} training images do not fill one global batch of {global_batch}"
        )
    return train_images // global_batch


def phase_steps(phase_cfg, train_images: int | None, global_batch: int) -> int:
    """A phase's whole schedule in steps: ``epochs`` x its steps per epoch."""
    return phase_cfg.epochs * steps_per_epoch(phase_cfg.steps_per_epoch, train_images, global_batch)
