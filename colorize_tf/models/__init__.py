"""The two networks: a ResNet-18 U-Net generator (L -> ab) and a conditional PatchGAN; and
every file a generator is kept in.

Both networks are Keras functional models built from Keras layers only (no ``tf.`` calls), so
they run under any Keras backend, and both are registered for ``.keras`` loading. One module
per role: ``generator``, ``discriminator``, ``resnet``, ``pretrained`` (the networks),
``builders`` (the networks a config describes), and the three model-file forms ``files``
(``.keras``), ``presets`` (preset folders) and ``weights`` (weights folders).
"""

from colorize_tf.models.builders import (
    ParamCount,
    build_models,
    count_params,
    float32_copy,
    generator_spec,
)
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
    "build_models",
    "count_params",
    "float32_copy",
    "generator_spec",
    "load_encoder_weights",
    "patch_output_size",
    "patch_receptive_field",
    "transfer_encoder_weights",
]
