"""TFLite files of a generator: conversion, int8 calibration, contracts and parity checks.

Two contracts, each in three precisions (files named by ``tflite_name``):

``colorize_rgb_{fp32,fp16,int8}.tflite`` (one signature, ``colorize_rgb``)
    What a phone app wants: uint8 ``image`` (1, S, S, 3) sRGB (a gray photo: R = G = B) ->
    uint8 ``rgb`` (1, S, S, 3), the Lab conversion inside the graph. To keep full resolution
    the app may take ab from this output and join it to its own full-size L, as ``serving.py``
    does; ``serving.TFLitePredictAB`` does exactly that.
``predict_ab_{fp32,fp16,int8}.tflite`` (one signature, ``predict_ab``)
    The bare network: float32 ``l_norm`` (1, S, S, 1) = L / 50 - 1 -> float32 ``ab_norm``
    (1, S, S, 2) = ab / 110, in [-1, 1]. Same contract in all three precisions (the int8
    file quantizes and dequantizes at its edges).

Precisions: ``fp32``; ``fp16`` (weights stored as float16, computed in float32 on CPU);
``int8`` (full-integer network, calibrated on real photos: ``--calibration``, default the
embedded samples). In ``colorize_rgb_int8`` only the network is int8 and the Lab math stays
float: 8-bit linear light would crush the dark tones (measured ~10 dB PSNR when quantized).

Conversion goes Keras model -> ``keras.export.ExportArchive`` -> SavedModel -> TFLite, the
route Keras itself uses. Converting a SavedModel written by ``tf.saved_model.save`` (or a
concrete function) of a Keras 3 model gives a small file whose outputs are NaN: its weights
are not captured. The export-time check (``check_tflite``) refuses such files.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from colorize_tf import metrics, serving
from colorize_tf.savedmodel import endpoint_functions, psnr_summary, write_archive

CONTRACTS = ("colorize_rgb", "predict_ab")
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_CALIBRATION_IMAGES = 64


def tflite_name(contract: str, precision: str) -> str:
    """The file name of (contract, precision), e.g. ``predict_ab_int8.tflite``."""
    return f"{contract}_{precision}.tflite"


def calibration_images(
    source: str = "samples",
    size: int = serving.DEFAULT_SIZE,
    count: int = DEFAULT_CALIBRATION_IMAGES,
    seed: int = 0,
    split: str = "all",
) -> list[np.ndarray]:
    """Real-photo crops for int8 calibration: ``count`` uint8 RGB arrays (1, size, size, 3).

    Drawn through the training pipeline (``data.build_dataset``: random crops with scale
    jitter and flips) from ``split`` of ``source``, so a small source still gives ``count``
    different crops.
    """
    from colorize_tf import color, data  # the data pipeline is needed only to calibrate

    ds = data.build_dataset(
        source, split=split, training=True, batch_size=1, crop_size=size, seed=seed,
        repeat=True, cache=False, shuffle_buffer=64,
    )  # fmt: skip
    images = []
    for l_norm, ab_norm in ds.take(count):
        rgb = color.l_ab_to_rgb(l_norm, ab_norm)  # the crop's RGB back from its (L, ab)
        images.append(np.round(np.asarray(rgb) * 255.0).astype(np.uint8))
    return images


def _representative(contract: str, images: Sequence[np.ndarray]) -> Callable[[], Iterable]:
    """The converter's representative dataset: one input list per calibration image."""

    def rgb() -> Iterable[list[np.ndarray]]:
        for image in images:
            yield [image]

    def l_norm() -> Iterable[list[np.ndarray]]:
        for image in images:
            yield [serving.luminance(image, xla=False).numpy()]

    return rgb if contract == "colorize_rgb" else l_norm


def _float_tensor_names(model: bytes) -> list[str]:
    """Output tensor names of every op outside the network scope (the Lab math)."""
    interpreter = serving.litert_interpreter(model_content=model)
    names = []
    for op in interpreter._get_ops_details():  # the only listing of ops LiteRT offers
        for index in op["outputs"]:
            name = interpreter._get_tensor_details(index, 0)["name"]
            if f"{serving.NETWORK_SCOPE}/" not in name:
                names.append(name)
    return names


def check_choices(values: Sequence[str], allowed: Sequence[str], what: str) -> None:
    """Fail unless ``values`` is a non-empty subset of ``allowed`` (``what``: for the message)."""
    unknown = sorted(set(values) - set(allowed))
    if unknown or not values:
        raise ValueError(f"{what}s must be a non-empty subset of {allowed}, got {list(values)}")


def convert_tflite_files(
    generator: keras.Model,
    files: Sequence[tuple[str, str]],
    size: int = serving.DEFAULT_SIZE,
    calibration: Sequence[np.ndarray] | None = None,
) -> Iterator[tuple[str, str, bytes]]:
    """Convert fixed-size contracts of ``generator`` to TFLite flatbuffers, one at a time.

    One SavedModel (``ExportArchive``, one signature per contract) serves every conversion.
    Each file has a single signature named after its contract, builtin ops only (no Flex).

    Args:
        generator: normalized L -> normalized ab.
        files: (contract, precision) pairs; contracts ``"colorize_rgb"`` / ``"predict_ab"``
            (see the module docstring), precisions ``"fp32"`` / ``"fp16"`` / ``"int8"``.
        size: the square input size S.
        calibration: uint8 RGB (1, S, S, 3) photos, required for int8.

    Yields:
        (contract, precision, ``.tflite`` bytes), float files of a contract before its int8.
    """
    check_choices([c for c, _ in files], CONTRACTS, "contract")
    check_choices([p for _, p in files], PRECISIONS, "precision")
    if any(p == "int8" for _, p in files) and not calibration:
        raise ValueError("int8 needs calibration images (see calibration_images)")
    contracts = sorted({c for c, _ in files})
    fns = endpoint_functions(generator, size, xla=False)
    with tempfile.TemporaryDirectory() as saved_model:
        write_archive(generator, saved_model, {c: fns[f"{c}_fixed"] for c in contracts})
        float_models: dict[str, bytes] = {}
        for contract, precision in sorted(files, key=lambda f: (f[0], f[1] == "int8")):
            model = _convert(saved_model, contract, precision, calibration, float_models)
            if precision == "fp32":
                float_models[contract] = model
            yield contract, precision, model


def _convert(
    saved_model: str,
    contract: str,
    precision: str,
    calibration: Sequence[np.ndarray] | None,
    float_models: dict[str, bytes],
) -> bytes:
    """One conversion of signature ``contract`` of ``saved_model``."""

    def converter() -> tf.lite.TFLiteConverter:
        c = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[contract])
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return c

    if precision == "fp32":
        return converter().convert()
    quantizing = converter()
    quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        quantizing.target_spec.supported_types = [tf.float16]
        return quantizing.convert()
    # int8: weights and activations; float32 in/out keeps one contract per file kind.
    representative = _representative(contract, calibration)
    quantizing.representative_dataset = representative
    if contract == "predict_ab":
        # Only int8 kernels: the conversion fails rather than fall back to float.
        quantizing.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return quantizing.convert()
    float_model = float_models.get(contract) or converter().convert()
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=_float_tensor_names(float_model)
    )
    with warnings.catch_warnings():
        # The debugger builds a tf.lite.Interpreter internally, which warns of its
        # deprecation; we run every model with ai_edge_litert ourselves.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=quantizing, debug_dataset=representative, debug_options=options
        )
        return debugger.get_nondebug_quantized_model()


def convert_tflite(
    generator: keras.Model,
    contract: str,
    precision: str,
    size: int = serving.DEFAULT_SIZE,
    calibration: Sequence[np.ndarray] | None = None,
) -> bytes:
    """One file of ``convert_tflite_files``: the ``.tflite`` bytes of (contract, precision)."""
    ((_, _, model),) = convert_tflite_files(generator, [(contract, precision)], size, calibration)
    return model


def tflite_contract(model: bytes) -> dict:
    """A TFLite model's signature: its name, inputs and outputs ({name: {dtype, shape}})."""
    interpreter = serving.litert_interpreter(model_content=model)
    (signature,) = interpreter.get_signature_list()
    runner = interpreter.get_signature_runner(signature)

    def describe(details: dict) -> dict:
        return {
            name: {"dtype": np.dtype(d["dtype"]).name, "shape": [int(x) for x in d["shape"]]}
            for name, d in details.items()
        }

    return {
        "signature": signature,
        "inputs": describe(runner.get_input_details()),
        "outputs": describe(runner.get_output_details()),
    }


# --- parity with the Keras generator ------------------------------------------------------------


def _square(photo: np.ndarray, size: int) -> np.ndarray:
    """A photo squeezed to (1, size, size, 3) uint8, as ``serving`` feeds the network."""
    resized = tf.image.resize(photo[np.newaxis], [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8).numpy()


def check_tflite(
    model: bytes, generator: keras.Model, photos: Sequence[np.ndarray], size: int
) -> dict[str, float]:
    """PSNR (dB) of a TFLite file's RGB against the Keras generator's, at ``size`` x ``size``.

    Both sides colorize the same squeezed photo through ``serving.colorize_batch`` (plain ops),
    so only the network's numerics differ. A ``predict_ab`` file's ab is joined to the photo's
    L the same way. Returns {"min", "mean"} over the photos.
    """
    predictor = serving.TFLitePredictAB(model)
    reference = serving.keras_predict_ab(generator)
    values = []
    for photo in photos:
        square = _square(photo, size)  # (1, S, S, 3)
        expected = serving.colorize_batch(square, reference, size, xla=False)
        if predictor.contract == "colorize_rgb":
            actual = predictor.invoke(square)
        else:
            actual = serving.colorize_batch(square, predictor, size, xla=False)
        values.append(float(metrics.psnr(actual, expected)[0]))
    return psnr_summary(values)
