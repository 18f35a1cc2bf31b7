"""Run-directory file access through ``tf.io.gfile``: local paths, ``gs://`` and ``ram://`` alike.

``pathlib.Path`` turns ``gs://bucket/run`` into ``gs:/bucket/run``, and builtin ``open`` /
``os.replace`` only reach local disks, so everything ``train.py`` writes into or reads from its
workdir goes through these few functions and keeps paths as plain strings.

Where TensorFlow is not installed (Keras on JAX on a machine without it), local paths work
through ``os`` and a ``scheme://`` path is an error that says so.
"""

from __future__ import annotations

import os
import posixpath
import re

try:
    import tensorflow as tf
except ImportError:  # JAX without TensorFlow: local files only
    tf = None

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path: str | os.PathLike) -> bool:
    """True for ``scheme://...`` paths (``gs://``, ``ram://``, ``s3://``...), False for local
    ones."""
    return bool(_SCHEME.match(os.fspath(path)))


def join(base: str | os.PathLike, *parts: str) -> str:
    """Join path parts with ``/`` for ``scheme://`` paths (the scheme survives), else
    ``os.path``."""
    base = os.fspath(base)
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def basename(path: str | os.PathLike) -> str:
    return posixpath.basename(os.fspath(path).rstrip("/"))


def _no_tensorflow(path: str) -> bool:
    """True where TensorFlow is absent (local files through ``os``); a remote path needs it."""
    if tf is not None:
        return False
    if is_remote(path):
        raise OSError(f"{path}: a {path.split(':', 1)[0]}:// path needs TensorFlow (tf.io.gfile)")
    return True


def makedirs(path: str | os.PathLike) -> None:
    path = os.fspath(path)
    if _no_tensorflow(path):
        os.makedirs(path, exist_ok=True)
    else:
        tf.io.gfile.makedirs(path)


def isfile(path: str | os.PathLike) -> bool:
    path = os.fspath(path)
    if _no_tensorflow(path):
        return os.path.isfile(path)
    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def listdir(path: str | os.PathLike) -> list[str]:
    """Entry names in a directory; empty if it does not exist."""
    path = os.fspath(path)
    if _no_tensorflow(path):
        return os.listdir(path) if os.path.isdir(path) else []
    try:
        return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]
    except tf.errors.NotFoundError:
        return []


def _open(path: str, mode: str):
    return open(path, mode) if _no_tensorflow(path) else tf.io.gfile.GFile(path, mode)


def read_bytes(path: str | os.PathLike) -> bytes:
    with _open(os.fspath(path), "rb") as handle:
        return handle.read()


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = False) -> None:
    """Write a whole file; ``durable`` also fsyncs a local file (remote stores commit on close)."""
    path = os.fspath(path)
    with _open(path, "wb") as handle:
        handle.write(data)
    if durable and not is_remote(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text(path: str | os.PathLike, text: str, durable: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), durable)


def rename(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move ``src`` over ``dst`` (atomic on local disks; a copy then delete on object stores)."""
    src, dst = os.fspath(src), os.fspath(dst)
    if _no_tensorflow(src) or _no_tensorflow(dst):
        os.replace(src, dst)
    else:
        tf.io.gfile.rename(src, dst, overwrite=True)


def remove(path: str | os.PathLike) -> None:
    """Delete a file if it is there."""
    path = os.fspath(path)
    if _no_tensorflow(path):
        if os.path.isfile(path):
            os.remove(path)
        return
    try:
        tf.io.gfile.remove(path)
    except tf.errors.NotFoundError:
        pass
