"""Networks from a run's config: the generator's arguments (``generator_spec``), both networks
(``build_models``), parameter counts, and the float32 copy inference and export want.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import keras
import numpy as np

from colorize_tf.models.discriminator import build_discriminator
from colorize_tf.models.generator import DEFAULT_DECODER_FILTERS, build_generator
from colorize_tf.models.resnet import RESNET18_STEM_FILTERS

if TYPE_CHECKING:
    from colorize_tf.config import Config


def generator_spec(config: Config) -> dict[str, Any]:
    """``build_generator`` keyword arguments for ``config.model.width`` (the encoder weights
    aside): every width scaled, at least 1, and the crop size it trains at (``input_size``,
    what serving feeds it later). Saved beside weights files to rebuild the network."""
    width = config.model.width
    return {
        "encoder_filters": max(1, round(RESNET18_STEM_FILTERS * width)),
        "decoder_filters": [max(1, round(f * width)) for f in DEFAULT_DECODER_FILTERS],
        "input_size": config.data.crop_size,
        "upsample": config.model.upsample,
    }


def build_models(config: Config, image_size: int | None = None) -> tuple[keras.Model, keras.Model]:
    """The generator (with ``config.model.encoder_weights`` loaded) and the discriminator the
    config describes; under ``tf.distribute``, call inside ``strategy.scope()``."""
    generator = build_generator(
        image_size=image_size,
        encoder_weights=config.model.encoder_weights,
        **generator_spec(config),
    )
    discriminator = build_discriminator(
        image_size=image_size,
        base_filters=max(1, round(config.model.disc_filters * config.model.width)),
        num_downsamples=config.model.disc_downsamples,
    )
    return generator, discriminator


class ParamCount(NamedTuple):
    """Parameter counts; non-trainable are BatchNormalization moving statistics."""

    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __str__(self) -> str:
        return (
            f"{self.trainable / 1e6:.2f} M trainable ({self.trainable:,}) "
            f"+ {self.non_trainable:,} non-trainable"
        )


def count_params(model: keras.Model) -> ParamCount:
    """Count ``model``'s trainable and non-trainable weights (shared weights once)."""

    def size(weights) -> int:
        unique = {id(w): w for w in weights}.values()
        return sum(int(np.prod(w.shape)) for w in unique)

    return ParamCount(size(model.trainable_weights), size(model.non_trainable_weights))


def _float32_config(config):
    """``config`` with every dtype policy replaced by float32 (nested configs included)."""
    if isinstance(config, dict):
        return {
            key: "float32" if key == "dtype" and value is not None else _float32_config(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_float32_config(value) for value in config]
    return config


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` rebuilt with float32 compute and the same weights; ``model`` itself if it
    already computes in float32 everywhere.

    A network trained under ``mixed_bfloat16`` / ``mixed_float16`` keeps that policy in its
    ``.keras`` file; inference and export want float32 (TFLite cannot convert bf16 kernels).
    Variables are float32 under mixed precision, so the copy has exactly the same weights.
    """
    if all(layer.compute_dtype == "float32" for layer in model._flatten_layers(include_self=True)):
        return model
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # layers built without an explicit dtype
    try:
        copy = model.__class__.from_config(_float32_config(model.get_config()))
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy
