"""What both input paths must agree on, free of TensorFlow.

``pipeline`` (tf.data) and ``numpy_pipeline`` (for machines without TensorFlow) read the
same files (``listing.walk_files``), cut crops of the same geometry and split train / val /
report identically; the rules live here once. Each path hashes names with its own SipHash-2-4 (a TF
op, a pure-Python twin), and ``splits_from_fractions`` turns the hashes into splits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class DataSourceError(ValueError):
    """A data source that cannot be read (missing, empty, of an unknown kind, a bad split);
    the message says which and why. Commands report it as a user error."""


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp")  # tf.io decodes
JPEG_EXTENSIONS = IMAGE_EXTENSIONS[:3]
# PIL reads these too, TensorFlow does not: photos to colorize, not to train on.
PIL_ONLY_EXTENSIONS = (".tif", ".tiff")
# TFRecord shards keep this short side: room for crop 256 x zoom 1.25 (= 320) and then some.
DEFAULT_PREPARE_SHORT_SIDE = 384
MAX_ZOOM = 1.25  # training crops cover 1/1.25 .. 1 of the short side
MAX_ASPECT = 4.0  # longer sides are center-cropped first, so panoramas cannot blow up memory

# Fixed SipHash key: changing it would silently move images between train and val.
SPLIT_HASH_KEY = (0x636F6C6F72697A65, 0x5F74665F73706C69)
SPLIT_BUCKETS = 1 << 30


# The report split: a share of a folder that neither training nor the choice of epoch (which
# selects on val) ever sees, so the figures quoted for a model are not flattered by selection.
# It is cut from the top of the hash range, val from the bottom: val keeps the same files.
REPORT_FRACTION = 0.1
SPLITS = ("train", "val", "report", "all")


def check_fractions(val_fraction: float, report_fraction: float) -> None:
    """Raise ValueError unless both shares are in [0, 1) and together at most 1."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not 0.0 <= report_fraction < 1.0:
        raise ValueError(f"report_fraction must be in [0, 1), got {report_fraction}")
    if val_fraction + report_fraction > 1.0:
        raise ValueError(
            f"val_fraction + report_fraction must be at most 1, got "
            f"{val_fraction} + {report_fraction}"
        )


def splits_from_fractions(
    fractions: Sequence[float] | np.ndarray,
    val_fraction: float,
    report_fraction: float = REPORT_FRACTION,
) -> list[str]:
    """Per-name hash fractions in [0, 1) -> "train" / "val" / "report" each.

    A name is ``val`` when its fraction is below ``val_fraction``, ``report`` when it is at or
    above ``1 - report_fraction``, else ``train`` (thresholds in float32, as the TF op
    compares). A tiny source whose hash split leaves train or val empty lends it one file
    (the smallest fraction to val, the largest other one to train); report may stay empty.
    """
    check_fractions(val_fraction, report_fraction)
    fractions = np.asarray(fractions, np.float32)
    low = np.float32(val_fraction)
    high = np.float32(1.0 - report_fraction) if report_fraction > 0 else np.float32(np.inf)
    splits = ["val" if f < low else "report" if f >= high else "train" for f in fractions]
    if len(splits) >= 2 and val_fraction > 0:
        if "val" not in splits:
            splits[int(np.argmin(fractions))] = "val"
        if "train" not in splits:
            others = np.where(np.array(splits) == "val", -np.inf, fractions)
            splits[int(np.argmax(others))] = "train"
    return splits
