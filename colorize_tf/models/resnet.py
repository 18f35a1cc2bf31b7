"""ResNet-18 encoder (basic blocks, stages [2, 2, 2, 2]) exposing its feature pyramid by name.

The layer names, paddings and BatchNormalization settings are those of keras-hub's
``ResNetBackbone`` (``keras_hub/src/models/resnet/resnet_backbone.py``, v1, ``basic_block``),
so the name mapping from a keras-hub ResNet-18 to this encoder is the identity and its
ImageNet weights load layer by layer (see ``pretrained.py``). The only difference is the
extra ``"P1"`` pyramid level (the stem, stride 2), which a U-Net needs as its last skip.
Plain Keras layers only: no keras-hub import, no ``tf.`` calls, any Keras backend.

Feature pyramid for an input of shape ``(batch, H, W, C)``::

    P1  conv1_relu        (batch, H/2,  W/2,  stem_filters)        stride 2
    P2  stack0_block1_out (batch, H/4,  W/4,  stage_filters[0])    stride 4
    P3  stack1_block1_out (batch, H/8,  W/8,  stage_filters[1])    stride 8
    P4  stack2_block1_out (batch, H/16, W/16, stage_filters[2])    stride 16
    P5  stack3_block1_out (batch, H/32, W/32, stage_filters[3])    stride 32
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import keras
from keras import layers

STAGE_BLOCKS = (2, 2, 2, 2)  # ResNet-18
STAGE_STRIDES = (1, 2, 2, 2)
RESNET18_STEM_FILTERS = 64
RESNET18_STAGE_FILTERS = (64, 128, 256, 512)
_BN_EPSILON = 1e-5  # PyTorch / keras-hub values, so converted ImageNet statistics mean the same
_BN_MOMENTUM = 0.9


def _batch_norm(name: str, dtype=None) -> layers.BatchNormalization:
    return layers.BatchNormalization(
        axis=-1, epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, dtype=dtype, name=name
    )


def _conv(filters: int, kernel_size: int, strides: int, padding: str, name: str, dtype=None):
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,  # every conv is followed by BatchNormalization
        kernel_initializer="he_normal",
        dtype=dtype,
        name=name,
    )


def apply_basic_block(x, filters: int, stride: int, conv_shortcut: bool, name: str, dtype=None):
    """Two 3x3 conv-BN layers plus a shortcut, then ReLU:
    (b, h, w, c) -> (b, h/stride, w/stride, filters).

    A stride-2 conv is explicitly zero-padded by 1 and run with ``"valid"`` padding, like
    PyTorch and keras-hub, because ``"same"`` pads asymmetrically for even inputs.
    """
    shortcut = x
    if conv_shortcut:
        shortcut = _conv(filters, 1, stride, "valid", f"{name}_0_conv", dtype)(x)
        shortcut = _batch_norm(f"{name}_0_bn", dtype)(shortcut)
    if stride > 1:
        x = layers.ZeroPadding2D(1, dtype=dtype, name=f"{name}_1_pad")(x)
    x = _conv(filters, 3, stride, "valid" if stride > 1 else "same", f"{name}_1_conv", dtype)(x)
    x = _batch_norm(f"{name}_1_bn", dtype)(x)
    x = layers.Activation("relu", dtype=dtype, name=f"{name}_1_relu")(x)
    x = _conv(filters, 3, 1, "same", f"{name}_2_conv", dtype)(x)
    x = _batch_norm(f"{name}_2_bn", dtype)(x)
    x = layers.Add(dtype=dtype, name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", dtype=dtype, name=f"{name}_out")(x)


def apply_stack(
    x, filters: int, blocks: int, stride: int, first_shortcut: bool, name: str, dtype=None
):
    """``blocks`` basic blocks; only the first one may downsample or change the width."""
    for index in range(blocks):
        x = apply_basic_block(
            x,
            filters,
            stride=stride if index == 0 else 1,
            conv_shortcut=first_shortcut and index == 0,
            name=f"{name}_block{index}",
            dtype=dtype,
        )
    return x


def _is_count(value, minimum: int = 1) -> bool:
    """A whole number >= minimum (Python or NumPy int; not a bool)."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum


def _validate_image_shape(image_shape, min_channels: int = 1) -> tuple:
    shape = tuple(image_shape) if isinstance(image_shape, Sequence) else None
    if shape is None or len(shape) != 3:
        raise ValueError(
            "`image_shape` must be (height, width, channels). "
            f"Received: image_shape={image_shape!r}"
        )
    height, width, channels = shape
    if not all(dim is None or _is_count(dim) for dim in (height, width)):
        raise ValueError(
            "`image_shape` height and width must be None or positive ints. "
            f"Received: image_shape={image_shape!r}"
        )
    if not _is_count(channels, min_channels):
        raise ValueError(
            f"`image_shape` channels must be an int >= {min_channels}. "
            f"Received: image_shape={image_shape!r}"
        )
    return tuple(None if dim is None else int(dim) for dim in shape)


def _validate_filters(value, count: int, arg_name: str) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, Sequence) else None
    if values is None or len(values) != count or not all(_is_count(v) for v in values):
        raise ValueError(
            f"`{arg_name}` must be {count} positive ints. Received: {arg_name}={value!r}"
        )
    return tuple(int(v) for v in values)


@keras.saving.register_keras_serializable(package="colorize_tf")
class ResNet18Encoder(keras.Model):
    """ResNet-18 (v1, basic blocks, no classifier) whose feature maps are exposed by name.

    The model's own output is the deepest map ``P5``; ``encoder.pyramid_outputs`` maps
    ``"P1".."P5"`` to the intermediate symbolic tensors, so a decoder is built from
    ``keras.Model(encoder.inputs, encoder.pyramid_outputs)`` (the keras-hub pattern).

    Parameters at full width (``count_params``, BatchNormalization moving statistics counted
    as non-trainable): 11,170,240 trainable + 9,600 non-trainable for a 1-channel input;
    a 3-channel input adds 2 * 7 * 7 * 64 = 6,272 stem weights (11,176,512 trainable, the
    torchvision ResNet-18 count without ``fc``).

    Args:
        image_shape: ``(height, width, channels)``; height / width may be None. The U-Net
            feeds ``(None, None, 1)``: the normalized L channel in [-1, 1].
        stem_filters: width of the 7x7 stride-2 stem conv (64 in ResNet-18). Must equal
            ``stage_filters[0]`` because the first stage has identity shortcuts.
        stage_filters: widths of the four stages (64, 128, 256, 512 in ResNet-18); shrink
            them for tests and CPU smoke runs.
        dtype: dtype policy for every layer (None: the global policy).
        **kwargs: passed to ``keras.Model`` (e.g. ``name``, ``trainable``).

    Input: ``(batch, H, W, channels)`` float. Outputs: ``(batch, H/32, W/32, stage_filters[3])``
    (H, W rounded up at each stride-2 step).
    """

    def __init__(
        self,
        image_shape: Sequence[int | None] = (None, None, 1),
        stem_filters: int = RESNET18_STEM_FILTERS,
        stage_filters: Sequence[int] = RESNET18_STAGE_FILTERS,
        dtype=None,
        **kwargs,
    ):
        image_shape = _validate_image_shape(image_shape)
        (stem_filters,) = _validate_filters([stem_filters], 1, "stem_filters")
        stage_filters = _validate_filters(stage_filters, len(STAGE_BLOCKS), "stage_filters")
        if stem_filters != stage_filters[0]:
            raise ValueError(
                "`stem_filters` must equal `stage_filters[0]` (the first stage adds its input "
                f"unchanged). Received: stem_filters={stem_filters}, stage_filters={stage_filters}"
            )

        # === Layers and functional wiring (repeated blocks are apply_* functions) ===
        image = keras.Input(shape=image_shape, name="image")  # (batch, H, W, C)
        x = layers.ZeroPadding2D(3, dtype=dtype, name="conv1_pad")(image)
        x = _conv(stem_filters, 7, 2, "valid", "conv1_conv", dtype)(x)
        x = _batch_norm("conv1_bn", dtype)(x)
        x = layers.Activation("relu", dtype=dtype, name="conv1_relu")(x)  # (batch, H/2, W/2, 64)
        pyramid_outputs = {"P1": x}
        # Zero padding before max pooling equals -inf padding here: inputs are >= 0 after ReLU.
        x = layers.ZeroPadding2D(1, dtype=dtype, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, dtype=dtype, name="pool1_pool")(x)  # (b, H/4, W/4)
        for index, (filters, blocks, stride) in enumerate(
            zip(stage_filters, STAGE_BLOCKS, STAGE_STRIDES, strict=True)
        ):
            x = apply_stack(
                x,
                filters,
                blocks,
                stride,
                first_shortcut=index > 0,
                name=f"stack{index}",
                dtype=dtype,
            )
            pyramid_outputs[f"P{index + 2}"] = x  # (batch, H/2**(index+2), W/2**(index+2), filters)
        super().__init__(inputs=image, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.stem_filters = stem_filters
        self.stage_filters = stage_filters
        self.pyramid_outputs = pyramid_outputs

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_shape": list(self.image_shape),
            "stem_filters": self.stem_filters,
            "stage_filters": list(self.stage_filters),
        }

    @classmethod
    def from_config(cls, config: dict) -> ResNet18Encoder:
        # The functional default would rebuild a plain keras.Model; we want the subclass.
        return cls(**config)
