"""Run-directory file access through ``tf.io.gfile``: local paths, ``gs://`` and ``ram://`` alike.

``pathlib.Path`` turns ``gs://bucket/run`` into ``gs:/bucket/run``, and builtin ``open`` /
``os.replace`` only reach local disks, so everything ``train.py`` writes into or reads from its
workdir goes through these few functions and keeps paths as plain strings.
"""

from __future__ import annotations

import os
import posixpath
import re

import tensorflow as tf

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


def makedirs(path: str | os.PathLike) -> None:
    tf.io.gfile.makedirs(os.fspath(path))


def isfile(path: str | os.PathLike) -> bool:
    path = os.fspath(path)
    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def listdir(path: str | os.PathLike) -> list[str]:
    """Entry names in a directory; empty if it does not exist."""
    try:
        return [name.rstrip("/") for name in tf.io.gfile.listdir(os.fspath(path))]
    except tf.errors.NotFoundError:
        return []


def read_bytes(path: str | os.PathLike) -> bytes:
    with tf.io.gfile.GFile(os.fspath(path), "rb") as handle:
        return handle.read()


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = False) -> None:
    """Write a whole file; ``durable`` also fsyncs a local file (remote stores commit on close)."""
    path = os.fspath(path)
    with tf.io.gfile.GFile(path, "wb") as handle:
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
    tf.io.gfile.rename(os.fspath(src), os.fspath(dst), overwrite=True)


def remove(path: str | os.PathLike) -> None:
    """Delete a file if it is there."""
    try:
        tf.io.gfile.remove(os.fspath(path))
    except tf.errors.NotFoundError:
        pass
