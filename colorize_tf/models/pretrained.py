"""Encoder weights: ImageNet (keras-hub preset), a local keras-hub preset, or our own .weights.h5.

Our ``ResNet18Encoder`` reuses keras-hub's ``ResNetBackbone`` layer names, so the mapping
from a keras-hub ResNet-18 to our encoder is the identity on names::

    conv1_conv, conv1_bn                        stem (7x7 stride 2)
    stack{s}_block{b}_{1,2}_conv / _bn          the two 3x3 convs of block b in stage s
    stack{s}_block0_0_conv / _0_bn              the 1x1 projection shortcut (stages 1-3)

``transfer_encoder_weights`` copies every weighted layer by that name and refuses a source
with missing, extra or differently shaped layers (e.g. a ResNet-34 or ResNet-50 preset).

Stem adaptation: ImageNet weights expect 3 channels, our generator feeds 1. As fastai does,
the 1-channel stem kernel is the sum of the RGB kernels over the input-channel axis, so the
adapted encoder on ``x`` computes exactly what the RGB encoder computes on ``(x, x, x)``: a
gray image seen by the ImageNet network. ImageNet networks also expect per-channel
mean/std normalized RGB, while we feed ``L / 50 - 1`` in [-1, 1]; like fastai and the
reference tutorial we do not correct for that shift (it is a near-affine change of the stem
response that the BatchNormalization layers absorb within the first steps of fine-tuning).

keras-hub is optional (the ``[hub]`` extra) and imported only here, only when a keras-hub
preset is requested.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import keras
import numpy as np

IMAGENET_PRESET = "resnet_18_imagenet"
# keras-hub downloads presets through kagglehub (handle kaggle://keras/resnetv1/keras/
# resnet_18_imagenet/<version>, see keras_hub resnet_presets.py), which caches each version in
# $KAGGLEHUB_CACHE (default ~/.cache/kagglehub)/<this path>/<version>/.
IMAGENET_KAGGLE_PATH = ("models", "keras", "resnetv1", "keras", IMAGENET_PRESET)
# Probed before any download so that an offline machine fails in seconds, not after retries.
IMAGENET_CHECK_URL = "https://www.kaggle.com"
REACHABILITY_TIMEOUT_S = 3.0
STEM_CONV = "conv1_conv"

WEIGHTS_ALTERNATIVES = (
    "encoder_weights='none' (random init), a local keras-hub preset directory (for example "
    f"a downloaded '{IMAGENET_PRESET}': config.json + model.weights.h5), or a .weights.h5 "
    "file saved from a ResNet18Encoder (encoder.save_weights('x.weights.h5'))"
)


def validate_weights_spec(weights: str | os.PathLike | None) -> None:
    """Fail early (before building anything) on an encoder_weights value we cannot use."""
    if weights is None or weights in ("none", "imagenet"):
        return
    path = Path(weights)
    if path.is_dir() and (path / "config.json").is_file():
        return
    if path.is_file() and path.name.endswith(".weights.h5"):
        return
    raise ValueError(
        "`encoder_weights` must be 'none', 'imagenet', a keras-hub preset directory "
        f"(with config.json) or an existing .weights.h5 file. Received: encoder_weights={weights!r}"
    )


def load_encoder_weights(encoder: keras.Model, weights: str | os.PathLike | None) -> None:
    """Load ``weights`` into ``encoder`` (a ``ResNet18Encoder``) in place.

    Args:
        encoder: the target encoder; its input may have 1 channel (stem adapted) or 3.
        weights: ``"none"`` / None: leave the random init. ``"imagenet"``: keras-hub's
            ``resnet_18_imagenet`` (the newest version in the kagglehub cache if any, else
            downloaded; fails within ~3 s when offline). A directory: a local keras-hub preset. A
            ``*.weights.h5`` file: weights saved from a ``ResNet18Encoder`` of the same
            widths with any number of input channels.

    Raises:
        ValueError: unknown spec, or weights that do not fit the encoder.
        ConnectionError: ``"imagenet"`` requested, not cached, and the hub unreachable.
        ImportError: a keras-hub preset requested without keras-hub installed.
    """
    validate_weights_spec(weights)
    if weights is None or weights == "none":
        return
    if weights == "imagenet":
        source = _hub_backbone(_imagenet_preset())
    elif Path(weights).is_dir():
        source = _hub_backbone(str(weights))
    else:
        source = _encoder_from_weights_file(Path(weights), like=encoder)
    transfer_encoder_weights(source, encoder)


def adapt_stem_kernel(kernel: np.ndarray, input_channels: int) -> np.ndarray:
    """Stem kernel ``(k, k, c_source, f)`` -> ``(k, k, input_channels, f)``.

    Same channel count: unchanged. One target channel: summed over the source channels
    (fastai's rule), so a gray input gives the response the source gives to gray RGB.
    """
    source_channels = kernel.shape[2]
    if source_channels == input_channels:
        return kernel
    if input_channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    raise ValueError(
        "Can only adapt a stem kernel to 1 input channel or keep its channel count. "
        f"Received: kernel shape={kernel.shape}, input_channels={input_channels}"
    )


def transfer_encoder_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy weights from ``source`` (keras-hub ResNetBackbone or ResNet18Encoder) to ``target``.

    Layers are matched by name (identical in both, see the module docstring); the stem
    kernel is adapted to the target's input channels. Raises ``ValueError`` listing every
    missing, extra or mismatched layer, and copies nothing in that case.
    """
    source_layers = {layer.name: layer for layer in source.layers if layer.weights}
    target_layers = {layer.name: layer for layer in target.layers if layer.weights}
    missing = sorted(set(target_layers) - set(source_layers))
    extra = sorted(set(source_layers) - set(target_layers))
    problems = [f"missing in source: {missing}"] if missing else []
    if extra:
        problems.append(f"not in target: {extra}")
    updates = []
    for name in sorted(set(target_layers) & set(source_layers)):
        values = [np.asarray(keras.ops.convert_to_numpy(w)) for w in source_layers[name].weights]
        if name == STEM_CONV:
            values[0] = adapt_stem_kernel(values[0], target_layers[name].weights[0].shape[2])
        expected = [tuple(w.shape) for w in target_layers[name].weights]
        received = [v.shape for v in values]
        if expected != received:
            problems.append(f"{name}: target shapes {expected}, source shapes {received}")
        updates.append((target_layers[name], values))
    if problems:
        raise ValueError(
            f"Source model '{source.name}' does not fit encoder '{target.name}': "
            + "; ".join(problems)
        )
    for layer, values in updates:
        layer.set_weights(values)


def _encoder_from_weights_file(path: Path, like: keras.Model) -> keras.Model:
    """A ``ResNet18Encoder`` with ``like``'s widths and the file's input channels, loaded."""
    from colorize_tf.models.resnet import ResNet18Encoder

    channels = _stem_channels_in_file(path)
    source = ResNet18Encoder(
        image_shape=(None, None, channels),
        stem_filters=like.stem_filters,
        stage_filters=like.stage_filters,
        dtype=like.dtype_policy,
        name="weights_file_encoder",
    )
    try:
        source.load_weights(str(path))
    except ValueError as error:
        raise ValueError(
            f"{path} does not hold ResNet18Encoder weights of widths stem_filters="
            f"{like.stem_filters}, stage_filters={list(like.stage_filters)}: {error}"
        ) from error
    return source


def _stem_channels_in_file(path: Path) -> int:
    """Input channels of the only 7x7 kernel (the stem) in a Keras ``.weights.h5`` file."""
    import h5py  # a Keras dependency

    shapes = []

    def collect_stem_kernels(_, obj) -> None:
        if isinstance(obj, h5py.Dataset) and len(obj.shape) == 4 and obj.shape[:2] == (7, 7):
            shapes.append(obj.shape)

    with h5py.File(path, "r") as file:
        file.visititems(collect_stem_kernels)
    if len(shapes) != 1:
        raise ValueError(
            f"{path} is not a ResNet18Encoder weights file: expected one 7x7 stem kernel, "
            f"found kernel shapes {shapes}"
        )
    return int(shapes[0][2])


def _imagenet_preset() -> str:
    """The newest complete cached version's directory if kagglehub has one, else the preset name.

    The name is returned only after a reachability probe, so that an offline machine fails
    within seconds instead of after the download client's retries.
    """
    cache_root = os.environ.get("KAGGLEHUB_CACHE", str(Path.home() / ".cache" / "kagglehub"))
    versions = Path(cache_root, *IMAGENET_KAGGLE_PATH)
    complete = [
        path
        for path in versions.glob("*")
        if path.name.isdigit()
        and (path / "config.json").is_file()
        and (path / "model.weights.h5").is_file()
    ]
    if complete:
        return str(max(complete, key=lambda path: int(path.name)))
    if not _is_reachable(IMAGENET_CHECK_URL, REACHABILITY_TIMEOUT_S):
        raise ConnectionError(
            f"encoder_weights='imagenet' needs to download keras-hub's '{IMAGENET_PRESET}' from "
            f"{IMAGENET_CHECK_URL}, which did not answer within {REACHABILITY_TIMEOUT_S:g} s, and "
            f"no version is in the kagglehub cache ({versions}). Alternatives: "
            f"{WEIGHTS_ALTERNATIVES}."
        )
    return IMAGENET_PRESET


def _is_reachable(url: str, timeout_s: float) -> bool:
    """True if ``url`` answers at all (any HTTP status) within ``timeout_s``.

    Runs in a daemon thread because a stalled DNS lookup ignores socket timeouts.
    """
    answered = threading.Event()

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s)
            answered.set()
        except urllib.error.HTTPError:
            answered.set()  # the server answered, if with an error status
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    return answered.is_set()


def _hub_backbone(preset: str) -> keras.Model:
    """keras-hub ``ResNetBackbone.from_preset(preset)`` (a preset name or local directory)."""
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            f"Loading the keras-hub preset {preset!r} needs keras-hub: "
            f"pip install 'colorize-tf[hub]'. Alternatives: {WEIGHTS_ALTERNATIVES}."
        ) from error
    backbone = keras_hub.models.ResNetBackbone.from_preset(preset)
    if backbone.block_type != "basic_block" or backbone.use_pre_activation:
        raise ValueError(
            f"Preset {preset!r} is not a ResNet v1 with basic blocks. Received: "
            f"block_type={backbone.block_type!r}, use_pre_activation={backbone.use_pre_activation}"
        )
    return backbone
