"""The two networks: a ResNet-18 U-Net generator (L -> ab) and a conditional PatchGAN.

Both are Keras functional models built from Keras layers only (no ``tf.`` calls), so they
run under any Keras backend, and both are registered for ``.keras`` loading.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np

from colorize_tf.models.discriminator import (
    PatchDiscriminator,
    build_discriminator,
    patch_output_size,
    patch_receptive_field,
)
from colorize_tf.models.generator import DEFAULT_DECODER_FILTERS, UNetGenerator, build_generator
from colorize_tf.models.pretrained import (
    IMAGENET_PRESET,
    adapt_stem_kernel,
    load_encoder_weights,
    transfer_encoder_weights,
)
from colorize_tf.models.resnet import ResNet18Encoder


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


__all__ = [
    "DEFAULT_DECODER_FILTERS",
    "IMAGENET_PRESET",
    "ParamCount",
    "PatchDiscriminator",
    "ResNet18Encoder",
    "UNetGenerator",
    "adapt_stem_kernel",
    "build_discriminator",
    "build_generator",
    "count_params",
    "load_encoder_weights",
    "patch_output_size",
    "patch_receptive_field",
    "transfer_encoder_weights",
]
