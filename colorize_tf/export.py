"""``python -m colorize_tf.export``: a trained generator -> SavedModel and TFLite files.

    python -m colorize_tf.export --model runs/quickstart/generator.keras --out exports/quickstart
    python -m colorize_tf.export --model g.keras --out exp --formats tflite --precisions int8 \\
        --calibration /path/to/photos --calibration-images 200

Writes into ``--out`` (existing files are kept unless ``--overwrite``):

``saved_model/``
    ``serving_default``: uint8 ``image`` (H, W, C), C = 1 (gray), 2 (gray + alpha), 3 (RGB) or
    4 (RGBA), any H, W >= 8 -> uint8 ``rgb`` (H, W, 3), same size: the whole of ``serving.py``
    in the graph. ``colorize_batch``: the same for (B, H, W, C). ``predict_ab``: float32
    ``l_norm`` (B, S, S, 1) -> float32 ``ab_norm`` (B, S, S, 2), the bare network. Reloads with
    plain ``tf.saved_model.load`` (no colorize_tf import).
``colorize_rgb_{fp32,fp16,int8}.tflite`` (one signature, ``colorize_rgb``)
    What a phone app wants: uint8 ``image`` (1, S, S, 3) sRGB (a gray photo: R = G = B) ->
    uint8 ``rgb`` (1, S, S, 3), the Lab conversion inside the graph. To keep full resolution
    the app may take ab from this output and join it to its own full-size L, as ``serving.py``
    does; ``serving.TFLitePredictAB`` does exactly that.
``predict_ab_{fp32,fp16,int8}.tflite`` (one signature, ``predict_ab``)
    The bare network: float32 ``l_norm`` (1, S, S, 1) = L / 50 - 1 -> float32 ``ab_norm``
    (1, S, S, 2) = ab / 110, in [-1, 1]. Same contract in all three precisions (the int8
    file quantizes and dequantizes at its edges).
``export.json``
    The sidecar: for every file its contract (signature, tensor names, dtypes, shapes), its
    size and SHA-256, and the PSNR of its RGB output against the Keras generator on the sample
    photos, measured at export time.

Precisions: ``fp32``; ``fp16`` (weights stored as float16, computed in float32 on CPU);
``int8`` (full-integer network, calibrated on real photos: ``--calibration``, default the
embedded samples). In ``colorize_rgb_int8`` only the network is int8 and the Lab math stays
float: 8-bit linear light would crush the dark tones (measured ~10 dB PSNR when quantized).

Conversion goes Keras model -> ``keras.export.ExportArchive`` -> SavedModel -> TFLite, the
route Keras itself uses. Converting a SavedModel written by ``tf.saved_model.save`` (or a
concrete function) of a Keras 3 model gives a small file whose outputs are NaN: its weights
are not captured. The export-time check refuses such files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorize_tf import metrics, serving

SAVEDMODEL_DIR = "saved_model"
SIDECAR_FILE = "export.json"
FORMATS = ("savedmodel", "tflite")
CONTRACTS = ("colorize_rgb", "predict_ab")
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_CALIBRATION_IMAGES = 64
# Export-time check against the Keras generator on the sample photos (RGB PSNR, dB): float
# files must agree to rounding; a broken conversion (NaN, missing weights) scores ~10 dB.
MIN_PSNR_DB = {"fp32": 50.0, "fp16": 35.0, "int8": 20.0}
SIDECAR_VERSION = 1


class ExportError(RuntimeError):
    """An export that would overwrite files, or that produced a file failing its check."""


# --- the graphs --------------------------------------------------------------------------------


def _endpoint_functions(generator: keras.Model, size: int, xla: bool) -> dict[str, tuple]:
    """name -> (function returning a dict, input signature) for every exported endpoint."""
    predict = serving.keras_predict_ab(generator)

    def colorize(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"rgb": serving.colorize_batch(image[tf.newaxis], predict, size, xla)[0]}

    def colorize_batch(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"rgb": serving.colorize_batch(images, predict, size, xla)}

    def colorize_rgb(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"rgb": serving.colorize_batch(image, predict, size, xla)}

    def predict_ab(l_norm: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"ab_norm": predict(l_norm)}

    return {
        "colorize": (colorize, tf.TensorSpec([None, None, None], tf.uint8, name="image")),
        "colorize_batch": (
            colorize_batch,
            tf.TensorSpec([None, None, None, None], tf.uint8, name="images"),
        ),
        "predict_ab": (predict_ab, tf.TensorSpec([None, size, size, 1], tf.float32, "l_norm")),
        # The fixed-shape TFLite graphs.
        "colorize_rgb_fixed": (colorize_rgb, tf.TensorSpec([1, size, size, 3], tf.uint8, "image")),
        "predict_ab_fixed": (predict_ab, tf.TensorSpec([1, size, size, 1], tf.float32, "l_norm")),
    }


def _write_archive(generator: keras.Model, path: str, endpoints: dict[str, tuple]) -> None:
    """SavedModel with ``endpoints`` {signature name: (fn, spec)}; the first is the default."""
    archive = keras.export.ExportArchive()
    archive.track(generator)
    for name, (fn, spec) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=[spec])
    archive.write_out(path, verbose=False)


def export_savedmodel(
    generator: keras.Model, path: str | Path, size: int = serving.DEFAULT_SIZE, xla: bool = True
) -> None:
    """Write the serving SavedModel (signatures in the module docstring) to ``path``.

    Args:
        generator: normalized L -> normalized ab.
        path: the SavedModel directory to create.
        size: the network's square input size.
        xla: XLA kernels for the full-resolution pixel math (False for runtimes without XLA).
    """
    fns = _endpoint_functions(generator, size, xla)
    _write_archive(
        generator,
        str(path),
        {
            "serving_default": fns["colorize"],
            "colorize_batch": fns["colorize_batch"],
            "predict_ab": fns["predict_ab"],
        },
    )


# --- TFLite ------------------------------------------------------------------------------------


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


def _check_choices(values: Sequence[str], allowed: Sequence[str], what: str) -> None:
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
    _check_choices([c for c, _ in files], CONTRACTS, "contract")
    _check_choices([p for _, p in files], PRECISIONS, "precision")
    if any(p == "int8" for _, p in files) and not calibration:
        raise ValueError("int8 needs calibration images (see calibration_images)")
    contracts = sorted({c for c, _ in files})
    fns = _endpoint_functions(generator, size, xla=False)
    with tempfile.TemporaryDirectory() as saved_model:
        _write_archive(generator, saved_model, {c: fns[f"{c}_fixed"] for c in contracts})
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


# --- export-time checks ------------------------------------------------------------------------


def check_photos() -> list[np.ndarray]:
    """The embedded sample photos at full size, uint8 RGB (H, W, 3) each: the parity set."""
    from PIL import Image

    from colorize_tf.samples import sample_photo_paths

    photos = []
    for path in sample_photo_paths():
        with Image.open(path) as image:
            photos.append(np.asarray(image.convert("RGB")))
    return photos


def _square(photo: np.ndarray, size: int) -> np.ndarray:
    """A photo squeezed to (1, size, size, 3) uint8, as ``serving`` feeds the network."""
    resized = tf.image.resize(photo[np.newaxis], [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8).numpy()


def _psnr_summary(values: Sequence[float]) -> dict[str, float]:
    return {"min": round(float(np.min(values)), 2), "mean": round(float(np.mean(values)), 2)}


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
    return _psnr_summary(values)


def check_savedmodel(
    path: str | Path, generator: keras.Model, photos: Sequence[np.ndarray], size: int
) -> dict[str, float]:
    """Reload the SavedModel and compare its full-size output with ``serving.colorize_image``.

    Returns {"min", "mean"} PSNR (dB) and "max_abs_diff" in uint8 levels, over the photos.
    """
    loaded = tf.saved_model.load(str(path))
    values, worst = [], 0
    for photo in photos:
        actual = loaded.signatures["serving_default"](image=tf.constant(photo))["rgb"].numpy()
        expected = serving.colorize_image(generator, photo, size)
        values.append(float(metrics.psnr(actual, expected)))
        worst = max(worst, int(np.abs(actual.astype(np.int16) - expected).max()))
    return {**_psnr_summary(values), "max_abs_diff": worst}


def _require(name: str, precision: str, psnr: dict[str, float]) -> None:
    floor = MIN_PSNR_DB[precision]
    if not psnr["min"] >= floor:  # `not >=` so that NaN fails too
        raise ExportError(
            f"{name}: PSNR against the Keras generator is {psnr['min']} dB on the worst sample "
            f"photo, below the {floor} dB floor for {precision}: the conversion is broken "
            "(not written)"
        )


# --- the export --------------------------------------------------------------------------------


def tflite_name(contract: str, precision: str) -> str:
    return f"{contract}_{precision}.tflite"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _log(message: str) -> None:
    print(f"[export] {message}", flush=True)


def export(
    generator: keras.Model,
    out_dir: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    contracts: Sequence[str] = CONTRACTS,
    precisions: Sequence[str] = PRECISIONS,
    size: int = serving.DEFAULT_SIZE,
    calibration: str = "samples",
    calibration_count: int = DEFAULT_CALIBRATION_IMAGES,
    xla: bool = True,
    check: bool = True,
    overwrite: bool = False,
    model_path: str | None = None,
) -> dict:
    """Write the requested files and the sidecar into ``out_dir``; return the sidecar dict.

    Raises:
        ExportError: if a target exists and not ``overwrite`` (nothing is written then), or
            a file fails its check against the Keras generator (that file is not written).
        ValueError: for unknown formats, contracts or precisions, or a bad size.
    """
    _check_choices(formats, FORMATS, "format")
    _check_choices(contracts, CONTRACTS, "contract")
    _check_choices(precisions, PRECISIONS, "precision")
    if size < 32 or size % 32:
        raise ValueError(f"size must be a positive multiple of 32, got {size}")
    out = Path(out_dir)
    tflite_files = [(c, p) for c in contracts for p in precisions] if "tflite" in formats else []
    targets = [out / SIDECAR_FILE] + [out / tflite_name(c, p) for c, p in tflite_files]
    if "savedmodel" in formats:
        targets.append(out / SAVEDMODEL_DIR)
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise ExportError(
            "refusing to overwrite existing export files (pass --overwrite to replace them): "
            + ", ".join(existing)
        )
    out.mkdir(parents=True, exist_ok=True)
    photos = check_photos() if check else []
    sidecar: dict = {
        "version": SIDECAR_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"path": model_path, "parameters": int(generator.count_params())},
        "size": size,
        "normalization": {
            "l_norm": "L / 50 - 1, CIE L* in [0, 100] (sRGB, D65)",
            "ab_norm": "ab / 110, CIE a*, b*; within [-1, 1]",
        },
        "check": f"PSNR (dB) of the RGB output against the Keras generator on "
        f"{len(photos)} sample photos (colorize_tf.samples)"
        if check
        else "skipped",
        "files": {},
    }

    if "savedmodel" in formats:
        start = time.perf_counter()
        final = out / SAVEDMODEL_DIR
        staging = out / f".{SAVEDMODEL_DIR}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        export_savedmodel(generator, staging, size, xla)
        entry = {
            "format": "savedmodel",
            "signatures": {
                "serving_default": "uint8 image (H, W, C), C in 1..4 -> uint8 rgb (H, W, 3)",
                "colorize_batch": "uint8 images (B, H, W, C) -> uint8 rgb (B, H, W, 3)",
                "predict_ab": f"float32 l_norm (B, {size}, {size}, 1) -> float32 ab_norm "
                f"(B, {size}, {size}, 2)",
            },
            "xla": xla,
        }
        if check:
            entry["psnr_db"] = check_savedmodel(staging, generator, photos, size)
            _require(SAVEDMODEL_DIR, "fp32", entry["psnr_db"])
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        sidecar["files"][SAVEDMODEL_DIR] = entry
        _log(f"{final} ({time.perf_counter() - start:.1f} s) {entry.get('psnr_db', '')}")

    images = None
    if "int8" in precisions and tflite_files:
        images = calibration_images(calibration, size, calibration_count)
    start = time.perf_counter()
    for contract, precision, model in convert_tflite_files(generator, tflite_files, size, images):
        name = tflite_name(contract, precision)
        entry = {
            "format": "tflite",
            "contract": contract,
            "precision": precision,
            **tflite_contract(model),
            "bytes": len(model),
            "sha256": _sha256(model),
        }
        if precision == "int8":
            entry["calibration"] = {"source": calibration, "images": len(images)}
        if check:
            entry["psnr_db"] = check_tflite(model, generator, photos, size)
            _require(name, precision, entry["psnr_db"])
        (out / name).write_bytes(model)
        sidecar["files"][name] = entry
        _log(
            f"{out / name} {len(model) / 1e6:.1f} MB ({time.perf_counter() - start:.1f} s) "
            f"{entry.get('psnr_db', '')}"
        )
        start = time.perf_counter()

    (out / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=2) + "\n")
    _log(f"{out / SIDECAR_FILE}")
    return sidecar


# --- command line ------------------------------------------------------------------------------


def default_model_path() -> str:
    """Where the quickstart run leaves its generator: ``runs/quickstart/generator.keras``."""
    from colorize_tf.train import GENERATOR_FILE  # the one place the file name is defined

    return os.path.join("runs", "quickstart", GENERATOR_FILE)


def load_generator(path: str | Path) -> keras.Model:
    """A generator ``.keras`` file -> the model (normalized L -> normalized ab)."""
    import colorize_tf.models  # noqa: F401  (registers the custom classes for loading)

    path = str(path)
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise FileNotFoundError(f"expected a generator .keras file, got {path!r}")
    model = keras.saving.load_model(path, compile=False)
    in_channels, out_channels = model.input_shape[-1], model.output_shape[-1]
    if (in_channels, out_channels) != (1, 2):
        raise ValueError(
            f"{path} maps {in_channels} to {out_channels} channels; a generator maps L (1) to "
            "ab (2). (Saved the GAN wrapper instead of its generator?)"
        )
    return model


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize-tf-export",
        description="Export a generator to a SavedModel and TFLite files (see the module doc).",
    )
    parser.add_argument(
        "--model",
        help="generator .keras file (default: the quickstart run's, "
        "runs/quickstart/generator.keras)",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--formats",
        type=_csv,
        default=list(FORMATS),
        help="comma-separated: savedmodel,tflite (default: both)",
    )
    parser.add_argument(
        "--contracts",
        type=_csv,
        default=list(CONTRACTS),
        help="TFLite contracts: colorize_rgb,predict_ab (default: both)",
    )
    parser.add_argument(
        "--precisions",
        type=_csv,
        default=list(PRECISIONS),
        help="TFLite precisions: fp32,fp16,int8 (default: all)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=serving.DEFAULT_SIZE,
        help="network input size, a multiple of 32 (default: 256)",
    )
    parser.add_argument(
        "--calibration",
        default="samples",
        help="int8 calibration photos: a data source (folder, 'samples', "
        "tfrecord:..., tfds:...; default: samples)",
    )
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=DEFAULT_CALIBRATION_IMAGES,
        help=f"crops drawn for calibration (default: {DEFAULT_CALIBRATION_IMAGES})",
    )
    parser.add_argument(
        "--no-xla",
        action="store_true",
        help="SavedModel without XLA kernels (for runtimes built without XLA)",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the PSNR check against the Keras generator"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = args.model or default_model_path()
    if not os.path.isfile(model_path):
        hint = "" if args.model else " (train one first: python -m colorize_tf.train)"
        print(f"error: no generator at {model_path}{hint}", file=sys.stderr)
        return 2
    try:
        generator = load_generator(model_path)
        export(
            generator, args.out, formats=args.formats, contracts=args.contracts,
            precisions=args.precisions, size=args.size, calibration=args.calibration,
            calibration_count=args.calibration_images, xla=not args.no_xla,
            check=not args.no_check, overwrite=args.overwrite, model_path=model_path,
        )  # fmt: skip
    except (ExportError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
