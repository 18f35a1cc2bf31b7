"""``python -m colorize_tf.export``: a trained generator -> SavedModel and TFLite files.

    python -m colorize_tf.export --model runs/quickstart/model --out exports/quickstart
    python -m colorize_tf.export --model g.keras --out exp --formats tflite --precisions int8 \\
        --calibration /path/to/photos --calibration-images 200 --calibration-percentile 99.95

Writes into ``--out`` (existing files are kept unless ``--overwrite``):

``saved_model/``
    ``serving_default`` (any-size uint8 image -> same-size uint8 RGB), ``colorize_batch`` and
    ``predict_ab``; the signatures are documented in ``colorize_tf.export.savedmodel``.
``colorize_rgb_{fp32,fp16,int8}.tflite``, ``predict_ab_{fp32,fp16,int8}.tflite``
    Fixed-size files for apps (uint8 RGB in and out) and the bare network (normalized L in,
    normalized ab out); the contracts and precisions are documented in
    ``colorize_tf.export.tflite``.
``export.json``
    The sidecar: for every file its contract (signature, tensor names, dtypes, shapes), its
    size and SHA-256, and the PSNR of its RGB output against the Keras generator on the sample
    photos, measured at export time.

``export`` runs those two in order, checks every file against the Keras generator before
writing it, and writes the sidecar; ``colorize_tf.cli.export`` is the command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from colorize_tf.export.savedmodel import check_savedmodel, export_savedmodel
from colorize_tf.export.tflite import (
    CALIBRATION_PERCENTILE,
    CONTRACTS,
    DEFAULT_CALIBRATION_IMAGES,
    TFLITE_PRECISIONS,
    calibration_images,
    check_choices,
    check_tflite,
    convert_tflite_files,
    tflite_contract,
    tflite_name,
)
from colorize_tf.inference import serving

SAVEDMODEL_DIR = "saved_model"
SIDECAR_FILE = "export.json"
FORMATS = ("savedmodel", "tflite")
# Export-time check against the Keras generator on the sample photos (RGB PSNR, dB): float
# files must agree to rounding; a broken conversion (NaN, missing weights) scores ~10 dB.
MIN_PSNR_DB = {"fp32": 50.0, "fp16": 35.0, "int8": 20.0}
SIDECAR_VERSION = 1


class ExportError(RuntimeError):
    """An export that would overwrite files, or that produced a file failing its check."""


# --- export-time checks ------------------------------------------------------------------------


def check_photos() -> list[np.ndarray]:
    """The embedded sample photos at full size, uint8 RGB (H, W, 3) each: the parity set."""
    from colorize_tf.data.image_files import read_rgb
    from colorize_tf.data.samples import sample_photo_paths

    return [np.asarray(read_rgb(path)) for path in sample_photo_paths()]


def _require(name: str, precision: str, psnr: dict[str, float]) -> None:
    floor = MIN_PSNR_DB[precision]
    if not psnr["min"] >= floor:  # `not >=` so that NaN fails too
        raise ExportError(
            f"{name}: PSNR against the Keras generator is {psnr['min']} dB on the worst sample "
            f"photo, below the {floor} dB floor for {precision}: the conversion is broken "
            "(not written)"
        )


# --- the export --------------------------------------------------------------------------------


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
    precisions: Sequence[str] = TFLITE_PRECISIONS,
    size: int | None = None,
    calibration: str = "samples",
    calibration_count: int = DEFAULT_CALIBRATION_IMAGES,
    calibration_percentile: float = CALIBRATION_PERCENTILE,
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
    check_choices(formats, FORMATS, "format")
    check_choices(contracts, CONTRACTS, "contract")
    check_choices(precisions, TFLITE_PRECISIONS, "precision")
    size = serving.model_size(generator, size)  # the size it was trained at, unless given
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
        f"{len(photos)} sample photos (colorize_tf.data.samples)"
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
    converted = convert_tflite_files(generator, tflite_files, size, images, calibration_percentile)
    for contract, precision, model in converted:
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
            entry["calibration"] = {
                "source": calibration,
                "images": len(images),
                "percentile": calibration_percentile,
            }
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
