"""The one folder walk: image files below a folder, recursively, in a stable name order.

Training (``sources``), the numpy pipeline and ``colorize`` list folders through
``walk_files``, so all three see the same files in the same order: folders sorted, files
sorted within each folder, a folder's own files before those of its subfolders, symbolic
links followed, extensions matched in any case.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from colorize_tf.data.spec import IMAGE_EXTENSIONS


def inside(path: str, folder_real: str) -> bool:
    """Whether ``path`` (resolved) lies in the folder whose real path is ``folder_real``."""
    real = os.path.realpath(path)
    return os.path.commonpath([real, folder_real]) == folder_real


def walk_files(
    root: str, extensions: Sequence[str] = IMAGE_EXTENSIONS, *, exclude: str | None = None
) -> list[str]:
    """Paths (joined onto ``root``) of the files below ``root`` ending in ``extensions``.

    ``exclude``: the real path of a folder whose subtree is not entered (e.g. the output
    folder of ``colorize``, so earlier results are not picked up again).
    """
    extensions = tuple(e.lower() for e in extensions)
    paths: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        if exclude is not None and inside(dirpath, exclude):
            dirnames[:] = []
            continue
        dirnames.sort()
        paths += [
            os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(extensions)
        ]
    return paths


def relative_name(path: str, root: str) -> str:
    """``path`` relative to ``root``, '/'-separated: the name the train / val split hashes."""
    return os.path.relpath(path, root).replace(os.sep, "/")
