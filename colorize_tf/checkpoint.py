"""Training state on disk, backend-neutral: named arrays in one ``.npz`` plus a JSON progress record.

A checkpoint holds the generator, the discriminator and both optimizers' variables (Adam
moments and iteration counts) keyed by Keras variable path, so a run resumes exactly where it
stopped, under TensorFlow or JAX alike. Files are written to a temporary name and renamed, so a
process killed mid-write never leaves a half checkpoint; the newest ``keep`` are kept. Paths go
through ``tf.io.gfile`` (``colorize_tf.fileio``): a directory may be local, ``gs://`` or ``ram://``.
"""

from __future__ import annotations

import io
import json
import os
import re

import numpy as np

from colorize_tf import fileio

_NAME = re.compile(r"^ckpt-(\d{9})\.npz$")


def _named_variables(groups: dict) -> list[tuple[str, object]]:
    """``{"generator": model, "g_optimizer": opt}`` -> [("generator/<var path>", var), ...]."""
    named = []
    for group, owner in groups.items():
        if owner is None:
            continue
        for index, variable in enumerate(owner.variables):
            # The index keeps keys unique even where two optimizer slots share a path.
            named.append((f"{group}/{index:05d}/{variable.path}", variable))
    return named


def _meta(path: str) -> str:
    """``.../ckpt-N.npz`` -> ``.../ckpt-N.json`` (its progress record)."""
    return path[: -len(".npz")] + ".json"


def save(directory: str | os.PathLike, step: int, groups: dict, progress: dict, keep: int = 2) -> str:
    """Write ``ckpt-<step>.npz`` and ``ckpt-<step>.json`` (progress: phase, epoch, step...)."""
    directory = os.fspath(directory)
    fileio.makedirs(directory)
    stem = fileio.join(directory, f"ckpt-{step:09d}")
    arrays = {key: np.asarray(variable.numpy()) for key, variable in _named_variables(groups)}
    buffer = io.BytesIO()  # object stores take whole files: build the archive in memory first
    np.savez(buffer, **arrays)
    fileio.write_bytes(f"{stem}.tmp.npz", buffer.getvalue(), durable=True)
    fileio.write_text(f"{stem}.tmp.json", json.dumps({**progress, "step": int(step)}, indent=2))
    fileio.rename(f"{stem}.tmp.npz", f"{stem}.npz")  # the .npz lands first: a .json always has its arrays
    fileio.rename(f"{stem}.tmp.json", f"{stem}.json")
    for old in list_checkpoints(directory)[:-keep]:
        fileio.remove(old)
        fileio.remove(_meta(old))
    return f"{stem}.npz"


def list_checkpoints(directory: str | os.PathLike) -> list[str]:
    """Complete checkpoints (arrays and progress record both present), oldest first."""
    names = set(fileio.listdir(directory))
    found = [name for name in names if _NAME.match(name) and _meta(name) in names]
    return [fileio.join(directory, name) for name in sorted(found)]


def latest(directory: str | os.PathLike) -> tuple[str, dict] | None:
    """The newest complete checkpoint and its progress record, or None."""
    checkpoints = list_checkpoints(directory)
    if not checkpoints:
        return None
    path = checkpoints[-1]
    return path, json.loads(fileio.read_text(_meta(path)))


def restore(path: str | os.PathLike, groups: dict) -> None:
    """Load a checkpoint into built models/optimizers; refuse on any name or shape mismatch."""
    with np.load(io.BytesIO(fileio.read_bytes(path))) as stored:
        named = _named_variables(groups)
        expected = [key for key, _ in named]
        stored_keys = [k for k in stored.files if k.split("/", 1)[0] in groups and groups[k.split("/", 1)[0]] is not None]
        if sorted(stored_keys) != sorted(expected):
            missing = sorted(set(expected) - set(stored_keys))[:3]
            extra = sorted(set(stored_keys) - set(expected))[:3]
            raise ValueError(
                f"checkpoint {path} does not match the model built from this config "
                f"(missing e.g. {missing}, unexpected e.g. {extra}): was it written with another model config?"
            )
        for key, variable in named:
            value = stored[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"checkpoint {path}: {key} has shape {value.shape}, the model wants {tuple(variable.shape)}"
                )
            variable.assign(value)
