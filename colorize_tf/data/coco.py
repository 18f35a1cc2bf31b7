"""COCO photos on local disk without TFDS: one image archive, downloaded once, verified,
extracted once, then read as an ordinary folder source.

Sets (``COCO_SETS``; the source string ``coco[:SET][:DIR]`` and
``python -m colorize_tf.data download coco [DIR] --set SET`` name them)
-------------------------------------------------------------------------------------------
``test2017`` (the default)
    The official COCO 2017 test images, ``test2017.zip``: 6,646,970,404 bytes, 40,670 JPEGs,
    a uniform draw of COCO. The smallest official archive with 10,000 images or more.
``val2017``
    The official COCO 2017 validation images, ``val2017.zip``: 815,585,330 bytes, 5,000 JPEGs
    (too few for the paper's 10,000; a quick first run).
``sample``
    fast.ai's ``coco_sample.tgz``, the reference tutorial's pool: 3,245,877,008 bytes, the
    train2017 images that show a chair, couch, tv, remote, book or vase (indoor scenes).

Checks: the official zips are checked against the whole-file SHA-256 that TensorFlow
Datasets records for the same URLs (``tensorflow_datasets/url_checksums/coco.txt``; COCO itself
publishes none), then every member's CRC-32 while extracting. fast.ai publishes only the size
and the MD5 of the first MiB of ``coco_sample.tgz`` (``fastai/data/checks.txt``): those are
checked, and the gzip CRC-32 of the whole stream while extracting. The official zips are
also mirrored, byte for byte, in fast.ai's public S3 bucket: tried when the first address fails.

On disk: ``DIR/SET/`` holds the images (default ``DIR``: ``$COLORIZE_TF_COCO_DIR``, else
``~/.cache/colorize_tf/data/coco``); how it gets there (resumable ``.part``, checks, one rename,
nothing of the user's overwritten) is ``colorize_tf.data.download``'s.
"""

from __future__ import annotations

import os

from colorize_tf.data.download import DEFAULT_TIMEOUT_S, Archive, DownloadError, ensure_archive

__all__ = [
    "COCO_SETS", "DEFAULT_SET", "DEFAULT_TIMEOUT_S", "ENV_DIR", "DownloadError", "default_dir",
    "ensure_coco", "parse_coco_source", "source_string",
]  # fmt: skip

ENV_DIR = "COLORIZE_TF_COCO_DIR"
DEFAULT_SET = "test2017"

_OFFICIAL = "http://images.cocodataset.org/zips/"
_FASTAI = "https://s3.amazonaws.com/fast-ai-coco/"


COCO_SETS: dict[str, Archive] = {
    "test2017": Archive(
        "test2017", (_OFFICIAL + "test2017.zip", _FASTAI + "test2017.zip"), 6_646_970_404,
        sha256="c7908c3c9f94ba2f3340ebbeec58c25db6be8774f18d68c2f15d0e369d95baba",
        images=40_670, prefix="test2017/",
    ),
    "val2017": Archive(
        "val2017", (_OFFICIAL + "val2017.zip", _FASTAI + "val2017.zip"), 815_585_330,
        sha256="4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05",
        images=5_000, prefix="val2017/",
    ),
    "sample": Archive(
        "sample", (_FASTAI + "coco_sample.tgz",), 3_245_877_008,
        md5_first_mib="006cd55d633d94b36ecaf661467830ec", prefix="coco_sample/train_sample/",
    ),
}  # fmt: skip


def default_dir() -> str:
    """``$COLORIZE_TF_COCO_DIR``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    ``/colorize_tf/data/coco``."""
    if os.environ.get(ENV_DIR):
        return os.path.abspath(os.path.expanduser(os.environ[ENV_DIR]))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "colorize_tf", "coco")


def parse_coco_source(text: str) -> tuple[str, str | None]:
    """Source string ``coco[:SET][:DIR]`` -> (set name, directory or None: ``default_dir()``).

    A field that is not a set name is the directory; it must look like a path (hold a ``/``
    or start with ``~``), so a misspelt set name fails here instead of downloading 6.6 GB.
    """
    if text == "coco":
        return DEFAULT_SET, None
    if not text.startswith("coco:"):
        raise ValueError(f"not a COCO source: {text!r} (expected coco[:SET][:DIR])")
    rest = text[len("coco:") :]
    head, _, tail = rest.partition(":")
    if head in COCO_SETS:
        return head, tail or None
    if not ("/" in rest or os.sep in rest or rest.startswith("~")):
        raise ValueError(
            f"bad COCO source {text!r}: {rest!r} is neither a set ({', '.join(COCO_SETS)}) nor "
            f"a directory (a directory needs a '/', e.g. coco:./{rest})"
        )
    return DEFAULT_SET, rest


def source_string(set_name: str, directory: str | None) -> str:
    """The source string that reads ``set_name`` from ``directory`` (inverse of the parser)."""
    fields = [] if set_name == DEFAULT_SET else [set_name]
    if directory and os.path.abspath(directory) != default_dir():
        fields.append(directory if "/" in directory else f"./{directory}")
    return ":".join(["coco", *fields])


def ensure_coco(set_name: str = DEFAULT_SET, directory: str | None = None, **kwargs) -> str:
    """The image folder of COCO set ``set_name`` under ``directory``, downloaded if missing.

    Keyword arguments go to ``ensure_archive``.
    """
    if set_name not in COCO_SETS:
        raise ValueError(f"unknown COCO set {set_name!r}: expected one of {sorted(COCO_SETS)}")
    return ensure_archive(COCO_SETS[set_name], directory or default_dir(), **kwargs)
