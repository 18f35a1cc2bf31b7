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

int8 ranges are percentile-clipped (``clip_calibration``): the converter's min/max calibration
takes each tensor's range from its most extreme calibration crop, and a trained generator's
BN-folded activations have rare outliers (decoder maxima ~160 where 99.9% of values are < 13).
TFLite's int8 CONCATENATION also forces one scale on all its operands, so the widest decoder
range reaches the skips and the network input: min/max calibration of ``runs/photos`` gave the
input L (range [-1, 1]) a step of 0.62, three levels, and P1..P4 steps 10-30x their spread.
Clipping every network tensor's range to the ``CALIBRATION_PERCENTILE`` of its calibration
values took int8-vs-fp32 RGB PSNR from 25.7 to 45.1 dB (mean; min 35.6) on that model.

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

from colorize_tf.core import metrics
from colorize_tf.export.savedmodel import endpoint_functions, psnr_summary, write_archive
from colorize_tf.inference import serving

CONTRACTS = ("colorize_rgb", "predict_ab")
TFLITE_PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_CALIBRATION_IMAGES = 64
# Range of every int8 activation: [P(100 - p), P(p)] of its calibration values (always holding
# 0), never wider than min/max. 100 is plain min/max. Measured on runs/photos (width 0.25, 64
# crops of a photo folder), int8-vs-fp32 RGB PSNR on the samples, min / mean dB: 100: 23.4 /
# 25.7; 99.999: 29.7 / 30.3; 99.99: 35.2 / 37.0; 99.95 (128 crops): 36.3 / 43.1; 99.9: 34.7 /
# 44.3 (a sample photo's real peaks clipped).
CALIBRATION_PERCENTILE = 99.95
# Values per tensor and calibration image kept for the percentiles (uniformly drawn, plus the
# image's exact min and max): 64 images give ~260k values per tensor.
_SAMPLES_PER_IMAGE = 4096


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
    from colorize_tf.core import color
    from colorize_tf.data import pipeline as data  # the data pipeline is needed only to calibrate

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
    size: int | None = None,
    calibration: Sequence[np.ndarray] | None = None,
    percentile: float = CALIBRATION_PERCENTILE,
) -> Iterator[tuple[str, str, bytes]]:
    """Convert fixed-size contracts of ``generator`` to TFLite flatbuffers, one at a time.

    One SavedModel (``ExportArchive``, one signature per contract) serves every conversion.
    Each file has a single signature named after its contract, builtin ops only (no Flex).

    Args:
        generator: normalized L -> normalized ab.
        files: (contract, precision) pairs; contracts ``"colorize_rgb"`` / ``"predict_ab"``
            (see the module docstring), precisions ``"fp32"`` / ``"fp16"`` / ``"int8"``.
        size: the square input size S (None: the generator's own, ``serving.model_size``).
        calibration: uint8 RGB (1, S, S, 3) photos, required for int8.
        percentile: int8 activation ranges, see ``clip_calibration`` (100: plain min/max).

    Yields:
        (contract, precision, ``.tflite`` bytes), float files of a contract before its int8.
    """
    check_choices([c for c, _ in files], CONTRACTS, "contract")
    check_choices([p for _, p in files], TFLITE_PRECISIONS, "precision")
    if any(p == "int8" for _, p in files) and not calibration:
        raise ValueError("int8 needs calibration images (see calibration_images)")
    if not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], got {percentile}")
    contracts = sorted({c for c, _ in files})
    fns = endpoint_functions(generator, serving.model_size(generator, size), xla=False)
    with tempfile.TemporaryDirectory() as saved_model:
        write_archive(generator, saved_model, {c: fns[f"{c}_fixed"] for c in contracts})
        float_models: dict[str, bytes] = {}
        for contract, precision in sorted(files, key=lambda f: (f[0], f[1] == "int8")):
            model = _convert(
                saved_model, contract, precision, calibration, float_models, percentile
            )
            if precision == "fp32":
                float_models[contract] = model
            yield contract, precision, model


def _convert(
    saved_model: str,
    contract: str,
    precision: str,
    calibration: Sequence[np.ndarray] | None,
    float_models: dict[str, bytes],
    percentile: float = CALIBRATION_PERCENTILE,
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
    # Calibrate (min/max), clip the ranges to percentiles, then quantize; the debugger is the
    # public route to both halves and to keeping chosen ops float.
    representative = _representative(contract, calibration)
    quantizing.representative_dataset = representative
    if contract == "predict_ab":
        # Every op of the bare network is int8 (checked below): nothing falls back to float.
        quantizing.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        float_tensors: list[str] = []
    else:
        float_model = float_models.get(contract) or converter().convert()
        float_tensors = _float_tensor_names(float_model)  # the Lab math stays float
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_tensors)
    with warnings.catch_warnings():
        # The debugger builds a tf.lite.Interpreter internally, which warns of its
        # deprecation; we run every model with ai_edge_litert ourselves.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=quantizing, debug_dataset=representative, debug_options=options
        )
        # `calibrated_model` (float ops, min/max per tensor) is what the debugger quantizes.
        debugger.calibrated_model = clip_calibration(
            debugger.calibrated_model, representative, percentile, skip=float_tensors
        )
        model = debugger.get_nondebug_quantized_model()
    if contract == "predict_ab":
        _check_integer_inside(model)
    return model


def clip_calibration(
    calibrated: bytes,
    representative: Callable[[], Iterable],
    percentile: float = CALIBRATION_PERCENTILE,
    skip: Sequence[str] = (),
    seed: int = 0,
) -> bytes:
    """A calibrated model (min/max per tensor) with each range clipped to percentiles.

    Runs ``calibrated`` (a float model) on the representative inputs, keeping every tensor, and
    narrows each activation range [min, max] to [P(100 - percentile), P(percentile)] of its
    values (widened to hold 0, never widened beyond min/max). Graph inputs and outputs and the
    tensors named in ``skip`` (the float Lab math) keep min/max. ``percentile`` 100: unchanged.
    """
    if not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], got {percentile}")
    if percentile == 100.0:
        return calibrated
    from tensorflow.lite.tools import flatbuffer_utils  # the TFLite schema as Python objects

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    graph = model.subgraphs[0]
    edges = set(graph.inputs) | set(graph.outputs)
    kept = set(skip)
    tensors = [
        i
        for i, t in enumerate(graph.tensors)
        if i not in edges
        and t.quantization is not None
        and t.quantization.min is not None
        and len(t.quantization.min) == 1
        and t.name.decode() not in kept
    ]
    with warnings.catch_warnings():  # it warns that keeping every tensor is for debugging
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interpreter = serving.litert_interpreter(
            model_content=calibrated, experimental_preserve_all_tensors=True
        )
    interpreter.allocate_tensors()
    inputs = [d["index"] for d in interpreter.get_input_details()]
    rng = np.random.default_rng(seed)
    samples: dict[int, list[np.ndarray]] = {i: [] for i in tensors}
    for values in representative():
        for index, value in zip(inputs, values, strict=True):
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        for i in tensors:
            flat = interpreter.get_tensor(i).ravel()
            drawn = flat[rng.integers(0, flat.size, _SAMPLES_PER_IMAGE)]
            samples[i].append(np.concatenate([drawn, [flat.min(), flat.max()]]))
    for i in tensors:
        low, high = np.percentile(np.concatenate(samples[i]), [100.0 - percentile, percentile])
        q = graph.tensors[i].quantization
        q.min = np.array([max(float(q.min[0]), min(float(low), 0.0))], np.float32)
        q.max = np.array([min(float(q.max[0]), max(float(high), 0.0))], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _check_integer_inside(model: bytes) -> None:
    """Fail unless every op of a ``predict_ab`` int8 file but its edge (de)quantize is int8."""
    interpreter = serving.litert_interpreter(model_content=model)
    float_ops = [
        op["op_name"]
        for op in interpreter._get_ops_details()
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")
        and interpreter._get_tensor_details(op["outputs"][0], 0)["dtype"] != np.int8
    ]
    if float_ops:
        raise ValueError(f"int8 predict_ab conversion left float ops: {float_ops}")


def convert_tflite(
    generator: keras.Model,
    contract: str,
    precision: str,
    size: int | None = None,
    calibration: Sequence[np.ndarray] | None = None,
    percentile: float = CALIBRATION_PERCENTILE,
) -> bytes:
    """One file of ``convert_tflite_files``: the ``.tflite`` bytes of (contract, precision)."""
    ((_, _, model),) = convert_tflite_files(
        generator, [(contract, precision)], size, calibration, percentile
    )
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
