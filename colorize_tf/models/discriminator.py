"""The conditional PatchGAN discriminator (pix2pix / the reference tutorial's PatchDiscriminator).

It judges (L, ab) pairs: the GAN calls it on one 3-channel tensor,
``discriminator(keras.ops.concatenate([l_norm, ab_norm], axis=-1))``, shape
``(batch, H, W, 3)``, and gets one real/fake logit per overlapping 70x70 patch.

Layers (``num_downsamples`` = 3, ``base_filters`` = 64; every conv 4x4 with padding 1)::

    block0  conv  64, stride 2, no norm      LeakyReLU(0.2)   H   -> H/2
    block1  conv 128, stride 2, BN           LeakyReLU(0.2)   H/2 -> H/4
    block2  conv 256, stride 2, BN           LeakyReLU(0.2)   H/4 -> H/8
    block3  conv 512, stride 1, BN           LeakyReLU(0.2)   H/8 -> H/8 - 1
    logits  conv   1, stride 1, float32                       -> H/8 - 2

Output size: each 4x4 conv with padding 1 maps n -> floor((n + 2 - 4) / s) + 1, i.e.
floor(n / 2) for stride 2 and n - 1 for stride 1, so the output side is
``floor(S / 2**num_downsamples) - 2``: 256 -> 30 (the reference's 30x30 patch map).

Receptive field, from the logit back to the input, ``r <- (r - 1) * stride + 4``:
1 -> 4 (logits) -> 7 (block3) -> 16 (block2) -> 34 (block1) -> 70 (block0): a 70x70 patch.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from colorize_tf.models.resnet import _validate_filters, _validate_image_shape

_KERNEL = 4
_PAD = 1
_LEAKY_SLOPE = 0.2


def _layer_strides(num_downsamples: int) -> list[int]:
    """Strides of the conv layers, first to last (the last is the logits conv)."""
    return [2] * num_downsamples + [1, 1]


def patch_output_size(image_size: int, num_downsamples: int = 3) -> int:
    """Side of the logit map for a ``image_size`` square input: ``floor(S / 2**n) - 2``."""
    size = image_size
    for stride in _layer_strides(num_downsamples):
        size = (size + 2 * _PAD - _KERNEL) // stride + 1
    return size


def patch_receptive_field(num_downsamples: int = 3) -> int:
    """Side of the input patch one logit sees (70 for ``num_downsamples`` = 3)."""
    field = 1
    for stride in reversed(_layer_strides(num_downsamples)):
        field = (field - 1) * stride + _KERNEL
    return field


def apply_patch_block(x, filters: int, stride: int, use_norm: bool, name: str, dtype=None):
    """Pad 1, conv 4x4 (N(0, 0.02) init), optional BN, LeakyReLU(0.2).

    (batch, h, w, c) -> (batch, floor((h - 2) / stride) + 1, ..., filters).
    """
    x = layers.ZeroPadding2D(_PAD, dtype=dtype, name=f"{name}_pad")(x)
    x = layers.Conv2D(
        filters,
        _KERNEL,
        strides=stride,
        padding="valid",
        use_bias=not use_norm,
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02),
        dtype=dtype,
        name=f"{name}_conv",
    )(x)
    if use_norm:
        x = layers.BatchNormalization(
            epsilon=1e-5,
            momentum=0.9,
            gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02),
            dtype=dtype,
            name=f"{name}_bn",
        )(x)
    return layers.LeakyReLU(_LEAKY_SLOPE, dtype=dtype, name=f"{name}_leaky_relu")(x)


@keras.saving.register_keras_serializable(package="colorize_tf")
class PatchDiscriminator(keras.Model):
    """Conditional PatchGAN: ``concat(L, ab)`` -> one logit per 70x70 patch (no sigmoid).

    Parameters (``count_params``) at the defaults: 2,765,633 trainable (the reference
    PyTorch model's count) + 1,792 non-trainable BatchNormalization moving statistics.

    Mixed precision: every layer follows ``dtype`` / the global policy except the logits
    conv, which runs in float32, so the logits are float32.

    Args:
        image_shape: ``(height, width, channels)``; channels 3 = L + ab. Static sides must
            give at least one logit: ``S >= 3 * 2**num_downsamples`` (24 by default).
        base_filters: width of the first conv; block i has ``base_filters * 2**i``.
        num_downsamples: the reference's ``n_down``: stride-2 convs after the first one
            is ``num_downsamples - 1``; the output stride is ``2**num_downsamples``.
        dtype: dtype policy for every layer but the logits conv (None: the global policy).
        **kwargs: passed to ``keras.Model`` (e.g. ``name``).

    Input: ``(batch, H, W, 3)`` float32, ``concat([L / 50 - 1, ab / 110], axis=-1)``.
    Output: ``(batch, floor(H / 2**n) - 2, floor(W / 2**n) - 2, 1)`` float32 logits.
    """

    def __init__(
        self,
        image_shape: Sequence[int | None] = (None, None, 3),
        base_filters: int = 64,
        num_downsamples: int = 3,
        dtype=None,
        **kwargs,
    ):
        image_shape = _validate_image_shape(image_shape)
        (base_filters,) = _validate_filters([base_filters], 1, "base_filters")
        (num_downsamples,) = _validate_filters([num_downsamples], 1, "num_downsamples")
        for dim in image_shape[:2]:
            if dim is not None and patch_output_size(dim, num_downsamples) < 1:
                raise ValueError(
                    f"Input sides must be >= {3 * 2**num_downsamples} for num_downsamples="
                    f"{num_downsamples} (one logit at least). Received: image_shape={image_shape}"
                )

        # === Layers ===
        logits_pad = layers.ZeroPadding2D(_PAD, dtype=dtype, name="logits_pad")
        logits_conv = layers.Conv2D(
            1,
            _KERNEL,
            padding="valid",
            kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02),
            dtype="float32",
            name="logits_conv",
        )

        # === Functional model ===
        pair = keras.Input(shape=image_shape, name="l_ab")  # (batch, H, W, 3)
        x = apply_patch_block(pair, base_filters, 2, use_norm=False, name="block0", dtype=dtype)
        for index in range(1, num_downsamples + 1):
            stride = 1 if index == num_downsamples else 2
            x = apply_patch_block(
                x, base_filters * 2**index, stride, use_norm=True, name=f"block{index}", dtype=dtype
            )  # (batch, H/2**(index+1) or H/2**n - 1, ..., base_filters * 2**index)
        logits = logits_conv(logits_pad(x))  # (batch, H/2**n - 2, W/2**n - 2, 1), float32
        super().__init__(inputs=pair, outputs=logits, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.base_filters = base_filters
        self.num_downsamples = num_downsamples

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_shape": list(self.image_shape),
            "base_filters": self.base_filters,
            "num_downsamples": self.num_downsamples,
        }

    @classmethod
    def from_config(cls, config: dict) -> PatchDiscriminator:
        return cls(**config)


def build_discriminator(
    image_size: int | None = None,
    input_channels: int = 3,
    base_filters: int = 64,
    num_downsamples: int = 3,
    name: str = "discriminator",
) -> PatchDiscriminator:
    """Build the PatchGAN for ``(batch, S, S, input_channels)`` inputs (S None: any size).

    Returns a ``PatchDiscriminator`` with output ``(batch, floor(S / 2**n) - 2, same, 1)``.
    """
    return PatchDiscriminator(
        image_shape=(image_size, image_size, input_channels),
        base_filters=base_filters,
        num_downsamples=num_downsamples,
        name=name,
    )
