"""The generator: a U-Net on a ResNet-18 encoder, normalized L in -> normalized ab out.

Input ``L / 50 - 1`` of shape ``(batch, H, W, 1)``; output ``ab / 110`` of shape
``(batch, H, W, 2)`` in [-1, 1] (see ``colorize_tf.core.color``). H and W must be multiples
of 32, the encoder's total stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from colorize_tf.models.pretrained import load_encoder_weights, validate_weights_spec
from colorize_tf.models.resnet import (
    RESNET18_STAGE_FILTERS,
    RESNET18_STEM_FILTERS,
    ResNet18Encoder,
    _validate_filters,
)

ENCODER_STRIDE = 32
# Widths of the five decoder stages, at strides 16, 8, 4, 2 and 1. They follow the reference
# fastai DynamicUnet on resnet18 (its stages are 512, 384, 256, 96 and 97 wide) and put the
# full generator at 31,095,074 trainable parameters, against 31,099,672 measured for
# DynamicUnet(resnet18 body, n_in=1, n_out=2, img_size=256) with fastai 2.8.12. fastai spends
# the budget on a 1024-wide middle conv and pixel shuffles; we spend it on 4x4 transposed
# convs and two 3x3 convs per stage, and keep the full-resolution stage narrow (32).
DEFAULT_DECODER_FILTERS = (512, 384, 256, 96, 32)
# Skips, deepest first, concatenated after each upsampling (stride 16, 8, 4, 2, 1).
_SKIPS = ("P4", "P3", "P2", "P1", "input")
# How each decoder stage doubles the resolution:
# "transpose": a stride-2 transposed conv, kernel 4 by default: the paper's (pix2pix's U-Net).
#   Its output pixels at even and odd positions come from different kernel taps, so unless the
#   learned taps balance, flat areas get a period-2 pattern per stage: the shipped preset shows
#   periods of 2 and 4 output pixels (its last two stages) as vertical stripes in skies.
# "bilinear": resize-convolution (Odena et al. 2016, "Deconvolution and Checkerboard
#   Artifacts"): bilinear x2, then a 3x3 conv. Every output pixel sees the same weights, so a
#   flat or linear input stays flat or linear: no stride-periodic pattern can be learned.
UPSAMPLE_MODES = ("transpose", "bilinear")
DEFAULT_UPSAMPLE_KERNEL = {"transpose": 4, "bilinear": 3}


def apply_decoder_block(
    x, skip, filters: int, kernel_size: int, name: str, dtype=None, upsample: str = "transpose"
):
    """Upsample by 2, concatenate the skip, then two conv-BN-ReLU.

    ``x`` (batch, h, w, c), ``skip`` (batch, 2h, 2w, c_skip) -> (batch, 2h, 2w, filters).
    ``upsample="transpose"``: a stride-2 transposed conv (+ BN + ReLU), as in the paper; with
    an even kernel size every output pixel receives the same number of kernel taps, which
    avoids the uneven-overlap checkerboard of odd kernels (but not the learned one, see
    ``UPSAMPLE_MODES``). ``upsample="bilinear"``: bilinear x2, then a ``kernel_size`` conv
    (+ BN + ReLU), the same for every output pixel. Layer names are the same in both modes.
    """
    if upsample == "transpose":
        x = layers.Conv2DTranspose(
            filters,
            kernel_size,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            dtype=dtype,
            name=f"{name}_upconv",
        )(x)  # (batch, 2h, 2w, filters)
    else:
        x = layers.UpSampling2D(2, interpolation="bilinear", dtype=dtype, name=f"{name}_upsample")(
            x
        )  # (batch, 2h, 2w, c)
        x = layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            dtype=dtype,
            name=f"{name}_upconv",
        )(x)  # (batch, 2h, 2w, filters)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=dtype, name=f"{name}_up_bn")(x)
    x = layers.Activation("relu", dtype=dtype, name=f"{name}_up_relu")(x)
    x = layers.Concatenate(axis=-1, dtype=dtype, name=f"{name}_concat")([x, skip])
    for index in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            dtype=dtype,
            name=f"{name}_{index}_conv",
        )(x)
        x = layers.BatchNormalization(
            epsilon=1e-5, momentum=0.9, dtype=dtype, name=f"{name}_{index}_bn"
        )(x)
        x = layers.Activation("relu", dtype=dtype, name=f"{name}_{index}_relu")(x)
    return x


def resolve_upsample(upsample: str, kernel_size: int | None) -> int:
    """Check an upsampling mode and its kernel size; returns the kernel size (None: default).

    Raises ValueError for an unknown mode, or an even kernel with ``"bilinear"`` (an even
    "same" conv shifts the image by half a pixel).
    """
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"`upsample` must be one of {UPSAMPLE_MODES}. Received: {upsample!r}")
    if kernel_size is None:
        return DEFAULT_UPSAMPLE_KERNEL[upsample]
    (kernel_size,) = _validate_filters([kernel_size], 1, "upsample_kernel_size")
    if upsample == "bilinear" and kernel_size % 2 == 0:
        raise ValueError(
            "upsample='bilinear' needs an odd `upsample_kernel_size` (an even 'same' conv "
            f"shifts the image by half a pixel). Received: upsample_kernel_size={kernel_size}"
        )
    return kernel_size


@keras.saving.register_keras_serializable(package="colorize_tf")
class UNetGenerator(keras.Model):
    """U-Net generator: ResNet-18 encoder, upsampling decoder with skips, tanh head.

    Skips come from the input (stride 1), the stem ``P1`` (stride 2) and every stage
    ``P2..P4``; ``P5`` (stride 32) is the bottleneck. Each decoder stage upsamples by 2
    (a transposed conv, as in the paper, or bilinear + conv: ``upsample``), concatenates the
    skip of that resolution, and applies two conv-BN-ReLU (``apply_decoder_block``). A 1x1
    conv head then maps to ``output_channels``.

    Output range: the paper ends with a sigmoid, whose range [0, 1] does not match our
    target ``ab / 110`` in [-1, 1]. We use ``tanh``, which is exactly the paper's sigmoid
    rescaled to that range: ``tanh(z) = 2 * sigmoid(2 z) - 1``. So ``ab = 110 * output``
    and no ab value outside [-110, 110] can be produced.

    Parameters (``count_params``) at the defaults, 1-channel input, 2 outputs:
    31,095,074 trainable + 17,280 non-trainable (BatchNormalization moving statistics);
    the encoder is 11,170,240 + 9,600 of that. The reference fastai DynamicUnet on
    resnet18 (1 in, 2 out, 256x256) has 31,099,672 trainable.

    Mixed precision: every layer follows ``dtype`` / the global policy except the head
    (``head_conv``, ``head_tanh``), which runs in float32, so the output is float32.

    Args:
        encoder: a ``ResNet18Encoder``; None builds the full-width one for
            ``(None, None, 1)`` inputs. Its ``image_shape`` is the generator's input shape;
            static height / width must be multiples of 32. Load pretrained weights into it
            with ``build_generator(encoder_weights=...)`` or ``load_encoder_weights``.
        decoder_filters: widths of the five decoder stages (strides 16, 8, 4, 2, 1).
        output_channels: channels predicted (2: a and b).
        upsample_kernel_size: kernel size of the upsampling convs; None: 4 for
            ``"transpose"`` (the paper), 3 for ``"bilinear"`` (must be odd there).
        upsample: ``"transpose"`` (stride-2 transposed convs, the paper's and the default) or
            ``"bilinear"`` (resize-convolution, free of stride-periodic stripes; see
            ``UPSAMPLE_MODES``). Configs saved before this option load as ``"transpose"``.
        dtype: dtype policy for every layer but the head (None: the global policy).
        input_size: the square size the network was trained at (or is meant to be served at),
            a multiple of 32; None: unknown (serving then uses 256). Recorded in the config,
            so ``.keras`` files and presets tell serving, evaluation and export what to feed.
        **kwargs: passed to ``keras.Model`` (e.g. ``name``).

    Input: ``(batch, H, W, C)`` float32, H and W multiples of 32 (C = 1: ``L / 50 - 1``).
    Output: ``(batch, H, W, output_channels)`` float32 in [-1, 1].
    """

    def __init__(
        self,
        encoder: ResNet18Encoder | None = None,
        decoder_filters: Sequence[int] = DEFAULT_DECODER_FILTERS,
        output_channels: int = 2,
        upsample_kernel_size: int | None = None,
        dtype=None,
        input_size: int | None = None,
        upsample: str = "transpose",
        **kwargs,
    ):
        if input_size is not None and (
            not isinstance(input_size, int)
            or input_size < ENCODER_STRIDE
            or input_size % ENCODER_STRIDE
        ):
            raise ValueError(
                f"`input_size` must be None or a positive multiple of {ENCODER_STRIDE}. "
                f"Received: input_size={input_size!r}"
            )
        if encoder is None:
            encoder = ResNet18Encoder(dtype=dtype)
        if not isinstance(encoder, ResNet18Encoder):
            raise ValueError(
                f"`encoder` must be a ResNet18Encoder or None. Received: encoder={encoder!r}"
            )
        height, width, _ = encoder.image_shape
        for dim in (height, width):
            if dim is not None and dim % ENCODER_STRIDE:
                raise ValueError(
                    f"Input height and width must be multiples of {ENCODER_STRIDE} (the encoder "
                    f"stride) or None. Received: image_shape={tuple(encoder.image_shape)}"
                )
        decoder_filters = _validate_filters(decoder_filters, len(_SKIPS), "decoder_filters")
        (output_channels,) = _validate_filters([output_channels], 1, "output_channels")
        upsample_kernel_size = resolve_upsample(upsample, upsample_kernel_size)

        # === Layers ===
        pyramid = keras.Model(encoder.input, encoder.pyramid_outputs, name="encoder_pyramid")
        head_conv = layers.Conv2D(output_channels, 1, dtype="float32", name="head_conv")
        head_activation = layers.Activation("tanh", dtype="float32", name="head_tanh")

        # === Functional model ===
        l_input = keras.Input(shape=encoder.image_shape, name="l_input")  # (batch, H, W, 1)
        features = pyramid(l_input)  # {"P1": (b, H/2, W/2, 64), ..., "P5": (b, H/32, W/32, 512)}
        features["input"] = l_input
        x = features["P5"]
        for index, (skip_name, filters) in enumerate(zip(_SKIPS, decoder_filters, strict=True)):
            x = apply_decoder_block(
                x,
                features[skip_name],
                filters,
                upsample_kernel_size,
                name=f"decoder{index}",
                dtype=dtype,
                upsample=upsample,
            )  # stride 16, 8, 4, 2, 1
        ab = head_activation(head_conv(x))  # (batch, H, W, 2), float32 in [-1, 1]
        super().__init__(inputs=l_input, outputs=ab, dtype=dtype, **kwargs)

        # === Config ===
        self.encoder = encoder
        self.decoder_filters = decoder_filters
        self.output_channels = output_channels
        self.upsample_kernel_size = upsample_kernel_size
        self.input_size = input_size
        self.upsample = upsample

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder_filters": list(self.decoder_filters),
            "output_channels": self.output_channels,
            "upsample_kernel_size": self.upsample_kernel_size,
            "input_size": self.input_size,
            "upsample": self.upsample,
        }

    @classmethod
    def from_config(cls, config: dict) -> UNetGenerator:
        config = dict(config)
        if isinstance(config.get("encoder"), dict):
            config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


def build_generator(
    image_size: int | None = None,
    input_channels: int = 1,
    output_channels: int = 2,
    encoder_filters: int = RESNET18_STEM_FILTERS,
    decoder_filters: Sequence[int] = DEFAULT_DECODER_FILTERS,
    upsample_kernel_size: int | None = None,
    encoder_weights: str = "none",
    name: str = "generator",
    input_size: int | None = None,
    upsample: str = "transpose",
) -> UNetGenerator:
    """Build the U-Net generator and load encoder weights.

    Args:
        image_size: static square input size (multiple of 32), or None for any size.
        input_channels: 1 for the L channel.
        output_channels: 2 for ab.
        encoder_filters: encoder width; stages are (1, 2, 4, 8) x this (64: ResNet-18).
        decoder_filters: five decoder widths, strides 16 .. 1.
        upsample_kernel_size: upsampling conv kernel size (None: 4 transposed, 3 bilinear).
        encoder_weights: ``"none"`` (random), ``"imagenet"`` (keras-hub ``resnet_18_imagenet``,
            needs the ``[hub]`` extra and the network or its local cache) or a local path
            (a ``.weights.h5`` saved from a ``ResNet18Encoder`` or a keras-hub preset
            directory); see ``load_encoder_weights``.
        name: model name.
        input_size: the size it is trained at, recorded for serving (see ``UNetGenerator``).
        upsample: ``"transpose"`` (the paper) or ``"bilinear"`` (no stripes); see
            ``UNetGenerator``.

    Returns:
        A ``UNetGenerator``: ``(batch, S, S, input_channels)`` ->
        ``(batch, S, S, output_channels)``.
    """
    validate_weights_spec(encoder_weights)
    upsample_kernel_size = resolve_upsample(upsample, upsample_kernel_size)
    (encoder_filters,) = _validate_filters([encoder_filters], 1, "encoder_filters")
    if encoder_weights == "imagenet" and encoder_filters != RESNET18_STEM_FILTERS:
        raise ValueError(
            "encoder_weights='imagenet' needs the full-width ResNet-18 "
            f"(encoder_filters={RESNET18_STEM_FILTERS}). "
            f"Received: encoder_filters={encoder_filters}"
        )
    scale = [f // RESNET18_STEM_FILTERS for f in RESNET18_STAGE_FILTERS]  # (1, 2, 4, 8)
    encoder = ResNet18Encoder(
        image_shape=(image_size, image_size, input_channels),
        stem_filters=encoder_filters,
        stage_filters=[encoder_filters * s for s in scale],
        name="encoder",
    )
    generator = UNetGenerator(
        encoder=encoder,
        decoder_filters=decoder_filters,
        output_channels=output_channels,
        upsample_kernel_size=upsample_kernel_size,
        name=name,
        input_size=input_size,
        upsample=upsample,
    )
    load_encoder_weights(encoder, encoder_weights)
    return generator
