"""The weights folder: a generator as its ``build_generator`` arguments beside its weights,
readable under any Keras backend: what the project's former JAX-only training loop wrote. Runs
now write preset folders (``colorize_tf.models.presets``); these folders still load.

    <folder>/
        generator.json              {"build_generator": {...}}: the network's arguments
        generator.weights.h5        its weights, float32
        generator.fp16.weights.h5   optional: the same weights as float16 (half the bytes)

``save_weights_folder`` writes one (tests make them); every command's ``--model`` reads it
(``colorize_tf.inference.loader`` calls ``load_weights_folder``). Only
Keras and h5py: no TensorFlow, no JAX.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from colorize_tf.models.generator import build_generator
from colorize_tf.models.presets import float16_weights_file

SPEC_FILE = "generator.json"
WEIGHTS_FILE = "generator.weights.h5"
FLOAT16_FILE = "generator.fp16.weights.h5"


def is_weights_folder(path: str | os.PathLike) -> bool:
    """True for a folder holding ``generator.json``."""
    return (Path(path) / SPEC_FILE).is_file()


def save_weights_folder(
    generator, spec: dict[str, Any], folder: str | os.PathLike, float16: bool = False
) -> list[Path]:
    """Write ``generator``'s weights and ``spec`` (its ``build_generator`` arguments, see
    ``colorize_tf.models.generator_spec``) into ``folder``; with ``float16``, also the float16
    copy. Returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    generator.save_weights(str(weights))
    spec_path = folder / SPEC_FILE
    spec_path.write_text(json.dumps({"build_generator": spec}, indent=2))
    written = [weights, spec_path]
    if float16:
        written.append(float16_weights_file(weights, folder / FLOAT16_FILE))
    return written


def load_weights_folder(folder: str | os.PathLike, prefer_float16: bool = False):
    """Rebuild the generator from ``generator.json`` and load its weights, under any backend.

    Reads ``generator.weights.h5``, or the float16 copy when that is absent or
    ``prefer_float16`` is set (float16 values are cast into the float32 variables).
    """
    folder = Path(folder)
    spec = json.loads((folder / SPEC_FILE).read_text())
    generator = build_generator(**spec["build_generator"])
    full, half = folder / WEIGHTS_FILE, folder / FLOAT16_FILE
    if not full.is_file() and not half.is_file():
        raise FileNotFoundError(
            f"{folder} has {SPEC_FILE} but neither {WEIGHTS_FILE} nor {FLOAT16_FILE}"
        )
    use_half = half.is_file() and (prefer_float16 or not full.is_file())
    generator.load_weights(str(half if use_half else full))
    return generator
