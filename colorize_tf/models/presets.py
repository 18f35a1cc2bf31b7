"""Presets: a trained generator as a folder, laid out like a keras-hub preset.

    colorize_tf/presets/<name>/
        config.json        the generator's Keras config (``keras.saving.serialize_keras_object``)
        model.weights.h5   its weights, float16 (half the bytes; cast to float32 on load)
        metadata.json      input size, training data and licenses, recipe, CPU time, versions,
                           validation numbers

The package ships one (``DEFAULT_PRESET``): the default model of ``colorize``, ``evaluate``,
``export`` and ``load_colorizer``, so a fresh install colorizes with no download. A training
run becomes one with ``preset_from_run`` (``python -m colorize_tf.presets RUN_DIR OUT``).
Backend neutral: only Keras and h5py, no TensorFlow.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from colorize_tf.models.builders import float32_copy
from colorize_tf.models.files import (
    EVALUATION_FILE,
    LEGACY_GENERATOR_FILE,
    PRODUCT_DIR,
    RUN_CONFIG_FILE,
    SUMMARY_FILE,
    load_keras_file,
)

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
DEFAULT_PRESET = "photos_unet_small"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "training_photos.csv"  # the photos a preset was trained on, with licenses


class PresetError(ValueError):
    """A preset name or folder that cannot be loaded; the message says which and why."""


def available_presets() -> list[str]:
    """Names of the presets shipped inside the package."""
    if not PRESET_DIR.is_dir():
        return []
    return sorted(p.name for p in PRESET_DIR.iterdir() if is_preset(p))


def is_preset(path: str | os.PathLike) -> bool:
    """A folder holding ``config.json`` and ``model.weights.h5``."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def preset_path(name_or_path: str | os.PathLike | None = None) -> Path:
    """A shipped preset's name (None: ``DEFAULT_PRESET``) or a preset folder -> its folder."""
    if name_or_path is None:
        name_or_path = DEFAULT_PRESET
    path = Path(name_or_path)
    if is_preset(path):
        return path
    packaged = PRESET_DIR / str(name_or_path)
    if is_preset(packaged):
        return packaged
    raise PresetError(
        f"{str(name_or_path)!r} is neither a preset folder ({CONFIG_FILE} + {WEIGHTS_FILE}) "
        f"nor a shipped preset {available_presets()}"
    )


def load_metadata(name_or_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The preset's ``metadata.json`` ({} when it has none)."""
    path = preset_path(name_or_path) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def load_preset(name_or_path: str | os.PathLike | None = None):
    """Rebuild a preset's generator (float32, inference-ready) under any Keras backend."""
    import keras

    import colorize_tf.models  # noqa: F401  (registers the custom classes for deserializing)

    folder = preset_path(name_or_path)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        generator = keras.saving.deserialize_keras_object(config)
    except (ValueError, TypeError, KeyError) as e:
        raise PresetError(f"{folder / CONFIG_FILE}: not a generator config ({e})") from None
    try:
        generator.load_weights(str(folder / WEIGHTS_FILE))  # float16 values cast into float32
    except (OSError, ValueError) as e:  # h5py: no file, not HDF5, truncated; Keras: mismatch
        raise PresetError(f"{folder / WEIGHTS_FILE}: unreadable weights ({e})") from None
    return generator


def float16_weights_file(weights_path: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy a Keras ``.weights.h5`` file with every floating array stored as float16."""
    import h5py  # a Keras dependency

    with h5py.File(weights_path, "r") as source, h5py.File(target, "w") as out:
        out.attrs.update(source.attrs)

        def copy(name: str, item) -> None:
            if isinstance(item, h5py.Group):
                out.require_group(name).attrs.update(item.attrs)
                return
            value = item[()]
            if np.issubdtype(value.dtype, np.floating):
                value = value.astype(np.float16)
            out.create_dataset(name, data=value).attrs.update(item.attrs)

        source.visititems(copy)
    return Path(target)


def save_preset(
    generator,
    folder: str | os.PathLike,
    metadata: dict[str, Any],
    overwrite: bool = False,
    files: dict[str, str] | None = None,
) -> Path:
    """Write ``generator`` as a preset folder (float16 weights) with ``metadata`` and any extra
    text ``files`` (name -> content, e.g. the training photos' manifest).

    The folder is written under a temporary name and renamed, so a half-written preset never
    looks complete; an existing folder is kept unless ``overwrite``.
    """
    import keras

    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} exists (pass overwrite=True to replace it)")
    if folder.exists() and not (is_preset(folder) or folder.is_dir() and not any(folder.iterdir())):
        # overwrite replaces a preset, never a folder of something else (a run, a project).
        raise FileExistsError(f"{folder} exists and is not a preset folder: not replaced")
    generator = float32_copy(generator)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a preset is read by every user
    config = keras.saving.serialize_keras_object(generator)
    (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "float32.weights.h5"
        generator.save_weights(str(full))
        float16_weights_file(full, staging / WEIGHTS_FILE)
    metadata = {"input_size": getattr(generator, "input_size", None), **metadata}
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    for name, text in (files or {}).items():
        (staging / name).write_text(text)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return folder


def preset_from_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    evaluation: str | os.PathLike | None = None,
    manifest: str | os.PathLike | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """A training run's folder -> a preset folder whose metadata records the run.

    Reads the run's ``PRODUCT_DIR`` (or a ``LEGACY_GENERATOR_FILE`` of an older run),
    ``RUN_CONFIG_FILE`` (the resolved config,
    recorded as ``recipe``) and ``SUMMARY_FILE`` (steps, product, validation numbers).

    Args:
        evaluation: an ``evaluate --out`` folder; its ``EVALUATION_FILE`` numbers are
            recorded too.
        manifest: a CSV of the training photos and their licenses, copied in as
            ``MANIFEST_FILE``.
        extra: more metadata, recorded last (it wins over the keys above).
        overwrite: replace an existing ``out``.

    Raises:
        FileNotFoundError: a file of the run (or ``evaluation``, ``manifest``) is missing.
        FileExistsError: ``out`` exists and not ``overwrite``, or is no preset folder, or
            is (or holds) the run.
    """
    import keras
    import yaml

    run_dir, out = Path(run_dir), Path(out)
    product = run_dir / PRODUCT_DIR
    if out.resolve() == run_dir.resolve() or run_dir.resolve().is_relative_to(out.resolve()):
        raise FileExistsError(f"{out}: the preset would replace the run {run_dir} it is made from")
    if is_preset(product):
        generator = load_preset(product)
    elif (run_dir / LEGACY_GENERATOR_FILE).is_file():
        generator = load_keras_file(run_dir / LEGACY_GENERATOR_FILE)
    else:
        raise FileNotFoundError(
            f"{run_dir}: no trained model (neither {PRODUCT_DIR}/ nor {LEGACY_GENERATOR_FILE})"
        )
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    metadata: dict[str, Any] = {
        "name": out.name,
        "recipe": yaml.safe_load((run_dir / RUN_CONFIG_FILE).read_text()),
        "training": {
            "steps": summary.get("step"),
            "product": summary.get("product"),
            "validation_during_training": summary.get("val"),
        },
        "versions": {"keras": keras.__version__, "python": platform.python_version()},
        "parameters": int(generator.count_params()),
    }
    try:
        import tensorflow as tf

        metadata["versions"]["tensorflow"] = tf.__version__
    except ImportError:
        pass
    if evaluation:
        metrics = json.loads((Path(evaluation) / EVALUATION_FILE).read_text())
        metadata["evaluation"] = {
            k: metrics[k] for k in ("count", "ours", "gray", "protocol") if k in metrics
        }
    metadata.update(extra or {})
    texts = {}
    if manifest:
        metadata["training_photos"] = MANIFEST_FILE
        texts[MANIFEST_FILE] = Path(manifest).read_text()
    return save_preset(generator, out, metadata, overwrite=overwrite, files=texts)
