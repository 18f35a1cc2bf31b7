"""The training recipe, the same under every Keras backend: precision policies, optimizers,
steps per phase, the selection criterion, which config fields a backend cannot honour, the
non-finite-loss error and the names of the files a run writes.

``colorize_tf.training.loop`` runs it under TensorFlow and JAX alike. Only Keras: no
TensorFlow, no JAX.
"""

from __future__ import annotations

import keras

from colorize_tf.config import Config, ConfigError

# What a run writes is named in ``models`` (whose ``presets.preset_from_run`` reads it, and which
# may not import ``training``): ``PRODUCT_DIR`` (the preset folder), ``BEST_DIR``, ``SUMMARY_FILE``.
from colorize_tf.models.files import BEST_DIR, PRODUCT_DIR, SUMMARY_FILE  # noqa: F401

# --- precision ------------------------------------------------------------------------------------

# ``runtime.mixed_precision`` -> Keras dtype policy.
MIXED_PRECISION_POLICIES = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or infinite; the message says where (phase, step) and what
    was kept."""


# --- which backend honours what ------------------------------------------------------------------

BACKENDS = ("tensorflow", "jax")
# Config fields that only one Keras backend can honour, and why. Any other value than the
# field's default is refused under the other backend (``check_backend``); every field not
# listed here or in ``BACKEND_ONLY_VALUES`` is honoured by both (tests walk every field).
BACKEND_ONLY = {
    "runtime.tpu": (
        "tensorflow",
        "it addresses TPUStrategy's cluster; under JAX the TPU chips are local devices "
        "(runtime.strategy=tpu or auto)",
    ),
}
# Speed settings that change no number the step computes: what each backend does with them.
SPEED_ONLY = {
    "runtime.fused_batch_norm": "TensorFlow: one FusedBatchNormV3 kernel per BatchNormalization "
    "layer; JAX: XLA compiles each step whole and fuses batch norm itself, either value",
    "runtime.jit_compile": "TensorFlow: XLA for the step on or off; JAX: every step is compiled "
    "with XLA, either value",
}
# Single values of a field that only one backend can honour.
BACKEND_ONLY_VALUES = {
    ("runtime.strategy", "multi_worker"): (
        "tensorflow",
        "it is TensorFlow's MultiWorkerMirroredStrategy; under JAX use auto, cpu, mirrored or tpu",
    ),
    ("runtime.mixed_precision", "fp16"): (
        "tensorflow",
        "float16 needs loss scaling, which the JAX step does not do; use bf16",
    ),
}


def _field(config, dotted: str):
    value = config
    for key in dotted.split("."):
        value = getattr(value, key)
    return value


def check_backend(config, backend: str) -> None:
    """Refuse, naming the field and both backends, every setting ``backend`` cannot honour."""
    defaults = Config()
    problems = []
    for dotted, (only, why) in BACKEND_ONLY.items():
        value = _field(config, dotted)
        if backend != only and value != _field(defaults, dotted):
            problems.append(f"{dotted}={value!r} applies to the {only} backend only: {why}")
    for (dotted, value), (only, why) in BACKEND_ONLY_VALUES.items():
        if backend != only and _field(config, dotted) == value:
            problems.append(f"{dotted}={value!r} applies to the {only} backend only: {why}")
    if problems:
        raise ConfigError(
            f"the Keras backend is {backend!r}, and this config asks for what it cannot do:\n  "
            + "\n  ".join(problems)
        )


# --- selection ------------------------------------------------------------------------------------

# PSNR rewards dull color (gray scores well), so ``psnr_dcf`` takes 0.05 dB off per point of
# colorfulness error |CF(prediction) - CF(truth)|: gray (ΔCF ~50) loses 2.5 dB to it, a model
# within 10 points of the truth's colorfulness 0.5 dB.
DCF_PENALTY_DB = 0.05
# ``psnr_color`` also asks for real color: ΔCF at most half the gray baseline's (the gray
# image's ΔCF is the truth's own colorfulness). Each point of ΔCF above that half costs 1 dB
# more, so an epoch that meets it wins over one that misses it by a point or more unless the
# latter is that much more accurate.
COLOR_SHORTFALL_DB = 1.0
SELECTION_CRITERIA = ("psnr", "psnr_dcf", "psnr_color")


def selection_score(criterion: str, results: dict) -> float:
    """The number ``train.select_metric`` maximizes, from validation ``results`` (``psnr``,
    ``dcf``, ``gray_dcf``: see ``ColorizationGAN.test_step``)."""
    if criterion == "psnr":
        return float(results["psnr"])
    psnr_dcf = float(results["psnr"]) - DCF_PENALTY_DB * float(results["dcf"])
    if criterion == "psnr_dcf":
        return psnr_dcf
    if criterion == "psnr_color":
        shortfall = max(0.0, float(results["dcf"]) - 0.5 * float(results["gray_dcf"]))
        return psnr_dcf - COLOR_SHORTFALL_DB * shortfall
    raise ValueError(f"unknown selection criterion {criterion!r}; one of {SELECTION_CRITERIA}")


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
