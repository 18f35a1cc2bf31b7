"""Training state on disk, backend-neutral: named arrays in one ``.npz`` plus a JSON progress record.

A checkpoint holds the generator, the discriminator and both optimizers' variables (Adam
moments and iteration counts) keyed by Keras variable path, so a run resumes exactly where it
stopped, under TensorFlow or JAX alike. Files are written to a temporary name and renamed, so a
process killed mid-write never leaves a half checkpoint; the newest ``keep`` are kept.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

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


def save(directory: str | Path, step: int, groups: dict, progress: dict, keep: int = 2) -> Path:
    """Write ``ckpt-<step>.npz`` and ``ckpt-<step>.json`` (progress: phase, epoch, step...)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ckpt-{step:09d}.npz"
    arrays = {key: np.asarray(variable.numpy()) for key, variable in _named_variables(groups)}
    tmp = path.with_suffix(".tmp.npz")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    meta = path.with_suffix(".json")
    meta_tmp = path.with_suffix(".tmp.json")
    meta_tmp.write_text(json.dumps({**progress, "step": int(step)}, indent=2))
    os.replace(tmp, path)  # the .npz lands first: a .json always has its arrays
    os.replace(meta_tmp, meta)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
    return path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints (arrays and progress record both present), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _NAME.match(p.name) and p.with_suffix(".json").is_file()]
    return sorted(found)


def latest(directory: str | Path) -> tuple[Path, dict] | None:
    """The newest complete checkpoint and its progress record, or None."""
    checkpoints = list_checkpoints(directory)
    if not checkpoints:
        return None
    path = checkpoints[-1]
    return path, json.loads(path.with_suffix(".json").read_text())


def restore(path: str | Path, groups: dict) -> None:
    """Load a checkpoint into built models/optimizers; refuse on any name or shape mismatch."""
    with np.load(path) as stored:
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
