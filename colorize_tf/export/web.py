"""The in-browser colorizer: a static folder that runs the TFLite model on the visitor's device.

``write_web(generator, out)`` writes a folder that any static file server can host (GitHub
Pages included); the page colorizes in the browser with LiteRT.js (Google's WebAssembly runtime
for ``.tflite`` files, WebGPU where the browser has it) and sends nothing anywhere:

``index.html``, ``web.js``, ``web.css``, ``style.css``
    The page: pick, drop or photograph an image; before/after slider; full-resolution download.
    ``style.css`` is the local app's (``colorize_tf/app/static``), so both pages look alike.
``colorize_web.tflite``
    The web contract (below), in one file with three signatures.
``web.json``
    What the page needs to know: the model's size, the chunk size, the limits.
``litertjs/``
    The LiteRT.js runtime, vendored from npm with its license (``litertjs/MANIFEST.json`` names
    the versions and SHA-256 of every file; ``tools/refresh_litertjs.py`` refreshes them).

The web contract, ``colorize_web.tflite``: the page does what ``serving.colorize_batch`` does,
with every per-pixel step inside the graph. LiteRT.js compiles fixed shapes, so the per-pixel
signatures take chunks of ``WEB_CHUNK_PIXELS`` pixels in raster order (the last chunk
zero-padded):

``luminance``: uint8 ``rgba`` (N, 4) -> float32 ``l_norm`` (N, 1)
    ``serving.luminance``: alpha over white, then L / 50 - 1 (``core.color``).
``predict_ab``: float32 ``l_norm`` (1, S, S, 1) -> float32 ``ab_norm`` (1, S, S, 2)
    The network (the ``predict_ab`` contract of ``tflite.py``).
``compose``: float32 ``l_norm`` (N, 1), float32 ``ab_norm`` (N, 2) -> uint8 ``rgba`` (N, 4)
    ``serving.compose``'s pixel math: Lab -> sRGB, rounded, alpha 255.

The two resamplings stay in the page's script, since their shapes are the photo's: L shrunk to
S x S (TensorFlow's antialiased bilinear, ``tf.image.resize(antialias=True)``) and ab brought
back to full size (TensorFlow's half-pixel bilinear; antialiased where a side shrinks), the
same kernels as ``serving.model_input`` and ``serving._resize_ab``. ``colorize`` with
``--model colorize_web.tflite`` runs the same file's ``predict_ab`` through ``serving``, the
reference the browser test compares with.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorize_tf.core import metrics
from colorize_tf.export.savedmodel import psnr_summary
from colorize_tf.export.tflite import check_choices
from colorize_tf.inference import serving

WEB_FILE = "colorize_web.tflite"
CONFIG_FILE = "web.json"
SIGNATURES = ("luminance", "predict_ab", "compose")
WEB_PRECISIONS = ("fp32", "fp16")
# fp16: half the download at no cost on a phone's CPU (XNNPack widens the weights to float32
# at load) and none visible in quality; the shipped preset's sizes and PSNR against the Keras
# model are measured in docs/web.md, which also says why int8 is not offered.
DEFAULT_WEB_PRECISION = "fp16"
# Pixels per call of the per-pixel signatures: 2^18 = 1 MB of RGBA in, 1 MB out; a 12-MP photo
# takes 46 calls of each.
WEB_CHUNK_PIXELS = 1 << 18
# The largest photo the page takes: 4096 x 4096 = 16.8 MP, iOS Safari's canvas area limit (a
# larger canvas fails on iPhones), and ~0.4 GB of page memory at that size (the decoded bitmap,
# its RGBA copy, L as float32 and the RGBA result, 4 bytes a pixel each, and the PNG encoder's
# buffer). 12-MP phone photos fit; 24- and 48-MP ones get a message.
WEB_MAX_PIXELS = 4096 * 4096
WEB_MAX_BYTES = 64_000_000  # checked before decoding: no photo of <= 16.8 MP is larger
MIN_PSNR_DB = {"fp32": 50.0, "fp16": 35.0}  # as export_lib's floors, for the network's RGB

STATIC = Path(__file__).with_name("web_static")  # the page and the vendored runtime
APP_STYLE = Path(__file__).parents[1] / "app" / "static" / "style.css"
RUNTIME_DIR = "litertjs"
MANIFEST_FILE = "MANIFEST.json"


class WebExportError(RuntimeError):
    """A web export that would overwrite a folder or a file, whose vendored runtime is damaged,
    or whose converted network fails its PSNR check against the Keras generator."""


# --- the web contract --------------------------------------------------------------------------


def web_functions(generator: keras.Model, size: int, chunk: int) -> dict[str, tuple]:
    """The three signatures of ``colorize_web.tflite``: name -> (fn returning a dict, specs)."""
    predict = serving.keras_predict_ab(generator)

    def luminance(rgba: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"l_norm": serving.luminance(rgba, xla=False)}  # (N, 1)

    def predict_ab(l_norm: tf.Tensor) -> dict[str, tf.Tensor]:
        # The network's ops under NETWORK_SCOPE, as in serving.colorize_batch.
        with tf.name_scope(serving.NETWORK_SCOPE):
            return {"ab_norm": predict(l_norm)}  # (1, S, S, 2)

    def compose(l_norm: tf.Tensor, ab_norm: tf.Tensor) -> dict[str, tf.Tensor]:
        # As one row of N pixels (1, 1, N, c): same size, so compose resizes nothing.
        row = [x[tf.newaxis, tf.newaxis] for x in (l_norm, ab_norm)]
        rgb = serving.compose(*row, xla=False)[0, 0]  # (N, 3)
        opaque = tf.ones_like(rgb[:, :1]) * 255  # not a constant: the file stays small
        return {"rgba": tf.concat([rgb, opaque], axis=-1)}  # (N, 4)

    return {
        "luminance": (luminance, [tf.TensorSpec([chunk, 4], tf.uint8, "rgba")]),
        "predict_ab": (predict_ab, [tf.TensorSpec([1, size, size, 1], tf.float32, "l_norm")]),
        "compose": (
            compose,
            [
                tf.TensorSpec([chunk, 1], tf.float32, "l_norm"),
                tf.TensorSpec([chunk, 2], tf.float32, "ab_norm"),
            ],
        ),
    }


def convert_web(
    generator: keras.Model,
    precision: str = DEFAULT_WEB_PRECISION,
    size: int | None = None,
    chunk: int = WEB_CHUNK_PIXELS,
) -> bytes:
    """The ``colorize_web.tflite`` bytes of ``generator`` (builtin ops, three signatures).

    Args:
        generator: normalized L -> normalized ab.
        precision: ``"fp32"``, or ``"fp16"`` (weights stored as float16).
        size: the network's square input (None: the generator's own, ``serving.model_size``).
        chunk: pixels per call of ``luminance`` and ``compose``.
    """
    check_choices([precision], WEB_PRECISIONS, "web precision")
    size = serving.model_size(generator, size)
    functions = web_functions(generator, size, chunk)
    with tempfile.TemporaryDirectory() as saved_model:
        archive = keras.export.ExportArchive()
        archive.track(generator)
        for name, (fn, specs) in functions.items():
            archive.add_endpoint(name, fn, input_signature=specs)
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model, signature_keys=list(SIGNATURES)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if precision == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


class WebModel:
    """``colorize_web.tflite`` run with the LiteRT interpreter, signature by signature, the way
    the page runs it (for the export-time check and the tests)."""

    def __init__(self, model: bytes | str):
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        self.interpreter = serving.litert_interpreter(**source)
        found = sorted(self.interpreter.get_signature_list())
        if found != sorted(SIGNATURES):
            raise ValueError(f"expected the signatures {sorted(SIGNATURES)}, got {found}")
        self.runners = {name: self.interpreter.get_signature_runner(name) for name in SIGNATURES}
        self.chunk = int(self.runners["luminance"].get_input_details()["rgba"]["shape"][0])
        self.size = int(self.runners["predict_ab"].get_input_details()["l_norm"]["shape"][1])

    def _chunked(self, name: str, out: str, **inputs: np.ndarray) -> np.ndarray:
        """Run a per-pixel signature over (P, c) inputs in zero-padded chunks -> (P, c_out)."""
        pixels = next(iter(inputs.values())).shape[0]
        parts = []
        for start in range(0, pixels, self.chunk):
            feed = {}
            for key, value in inputs.items():
                part = value[start : start + self.chunk]
                feed[key] = np.pad(part, [(0, self.chunk - len(part)), (0, 0)])
            parts.append(self.runners[name](**feed)[out][: pixels - start])
        return np.concatenate(parts)

    def colorize(self, rgba: np.ndarray) -> np.ndarray:
        """uint8 RGBA (H, W, 4) -> uint8 RGB (H, W, 3), resampling with ``serving``'s ops."""
        height, width = rgba.shape[:2]
        l_norm = self._chunked("luminance", "l_norm", rgba=rgba.reshape(-1, 4))
        l_full = l_norm.reshape(1, height, width, 1)
        l_small = serving.model_input(l_full, self.size).numpy()
        ab = self.runners["predict_ab"](l_norm=l_small)["ab_norm"]
        ab_full = serving._resize_ab(tf.constant(ab), tf.constant([height, width])).numpy()
        rgba_out = self._chunked(
            "compose", "rgba", l_norm=l_norm, ab_norm=ab_full.reshape(-1, 2)
        )  # (H W, 4)
        return rgba_out.reshape(height, width, 4)[..., :3]


def check_web(model: bytes, generator: keras.Model, photos: Sequence[np.ndarray]) -> dict:
    """PSNR (dB) of the web file's RGB, run as the page runs it, against the Keras generator
    through ``serving.colorize_image``, on full-size photos: {"min", "mean"}."""
    web = WebModel(model)
    values = []
    for photo in photos:
        rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], -1)
        actual = web.colorize(rgba)
        expected = serving.colorize_image(generator, photo, web.size)
        values.append(float(metrics.psnr(actual, expected)))
    return psnr_summary(values)


# --- the folder --------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def runtime_files() -> dict[str, str]:
    """The vendored runtime's files -> SHA-256, checked against its manifest.

    Raises:
        WebExportError: a file is missing or differs from the manifest (a damaged install).
    """
    folder = STATIC / RUNTIME_DIR
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file() or _sha256(path.read_bytes()) != digest:
            raise WebExportError(
                f"{path}: missing or not the file its manifest names (SHA-256 {digest}); "
                "reinstall colorize-tf or run tools/refresh_litertjs.py"
            )
    return manifest["files"]


def _log(message: str) -> None:
    print(f"[export --web] {message}", flush=True)


def write_web(
    generator: keras.Model,
    out_dir: str | Path,
    *,
    precision: str = DEFAULT_WEB_PRECISION,
    size: int | None = None,
    check: bool = True,
    overwrite: bool = False,
    model_name: str | None = None,
) -> dict:
    """Write the static folder (the module docstring lists it); return its ``web.json``.

    Raises:
        WebExportError: ``out_dir`` holds files and not ``overwrite``, the web file fails its
            check against the Keras generator, or the vendored runtime is damaged.
        ValueError: an unknown precision or a bad size.
    """
    check_choices([precision], WEB_PRECISIONS, "web precision")
    size = serving.model_size(generator, size)
    if size < 32 or size % 32:
        raise ValueError(f"size must be a positive multiple of 32, got {size}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise WebExportError(f"{out} is a file, not a folder: the web export writes a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise WebExportError(
            f"refusing to write into {out}: it is not empty (pass --overwrite to replace the "
            "files the export writes there)"
        )
    runtime = runtime_files()
    start = time.perf_counter()
    model = convert_web(generator, precision, size)
    config = {
        "model": model_name or generator.name,
        "file": WEB_FILE,
        "bytes": len(model),
        "sha256": _sha256(model),
        "precision": precision,
        "size": size,
        "chunk_pixels": WEB_CHUNK_PIXELS,
        "max_pixels": WEB_MAX_PIXELS,
        "max_bytes": WEB_MAX_BYTES,
        "runtime": json.loads((STATIC / RUNTIME_DIR / MANIFEST_FILE).read_text())["packages"],
    }
    _log(f"{WEB_FILE} {len(model) / 1e6:.1f} MB ({time.perf_counter() - start:.1f} s)")
    if check:
        from colorize_tf.export.export_lib import check_photos

        config["psnr_db"] = check_web(model, generator, check_photos())
        floor = MIN_PSNR_DB[precision]
        if not config["psnr_db"]["min"] >= floor:  # `not >=` so that NaN fails too
            raise WebExportError(
                f"{WEB_FILE}: PSNR against the Keras generator is {config['psnr_db']} dB, below "
                f"the {floor} dB floor for {precision}: the conversion is broken (not written)"
            )
        _log(f"check against the Keras generator: PSNR {config['psnr_db']} dB")
    shutil.copytree(STATIC, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(APP_STYLE, out / "style.css")  # the local app's look, from its one home
    (out / WEB_FILE).write_bytes(model)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    runtime_bytes = sum((out / RUNTIME_DIR / name).stat().st_size for name in runtime)
    _log(f"{out}: page, model and LiteRT.js ({runtime_bytes / 1e6:.1f} MB); serve it with any "
         "static file server, e.g. python -m http.server -d " + str(out))  # fmt: skip
    return config
