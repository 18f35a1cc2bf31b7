"""``python -m colorize_tf.data prepare SRC OUT --shards N``: any source -> TFRecord shards.

Decoded, upright images resized to a short side and stored as JPEG, one ``tf.train.Example``
per image with the features ``colorize_tf.data.sources`` reads back (``FEATURE_*``), round-robin
over ``OUT/PREFIX-SSSSS-of-NNNNN.tfrecord`` (local or ``gs://``: folder sources are local
paths only, so shards are the way to read from GCS).
"""

from __future__ import annotations

import logging
import os

import tensorflow as tf

from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.data.pipeline import decoded_images
from colorize_tf.data.sources import (
    FEATURE_ENCODED,
    FEATURE_FILENAME,
    FEATURE_HEIGHT,
    FEATURE_SPLIT,
    FEATURE_WIDTH,
)
from colorize_tf.data.spec import DEFAULT_PREPARE_SHORT_SIDE

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE


def _progbar(target: int | None):
    import keras

    return keras.utils.Progbar(target, unit_name="image")


def _example(jpeg: bytes, name: bytes, split: bytes, height: int, width: int) -> bytes:
    def b(v: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    features = {
        FEATURE_ENCODED: b(jpeg),
        FEATURE_FILENAME: b(name),
        FEATURE_SPLIT: b(split),
        FEATURE_HEIGHT: i(height),
        FEATURE_WIDTH: i(width),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def prepare_tfrecords(
    source: str,
    out_dir: str,
    *,
    num_shards: int,
    split: str = "all",
    short_side: int = DEFAULT_PREPARE_SHORT_SIDE,
    quality: int = 95,
    val_fraction: float = 0.1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_images: int = 0,
    prefix: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> list[str]:
    """Write ``split`` of ``source`` as ``num_shards`` TFRecord shards in ``out_dir`` (or gs://).

    Images are decoded, turned upright, resized to ``short_side`` pixels (aspect kept) and stored
    as JPEG at ``quality`` with the features of ``colorize_tf.data.sources``, round-robin over
    ``OUT/PREFIX-SSSSS-of-NNNNN.tfrecord`` (``prefix`` defaults to ``split``, so ``train`` and
    ``val`` shards can share a directory). Existing shards of that prefix are never replaced
    unless ``overwrite``; shards appear only complete (written as .partial, then renamed).
    Returns the shard paths.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    prefix = prefix or split
    existing = tf.io.gfile.glob(os.path.join(out_dir, f"{prefix}-*-of-*.tfrecord"))
    if existing and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds {len(existing)} shard(s) such as {existing[0]}; "
            "pass --overwrite (overwrite=True) to replace them"
        )
    images = decoded_images(
        source, split=split, short_side=short_side, val_fraction=val_fraction,
        max_pixels=max_pixels, max_images=max_images,
    )  # fmt: skip

    def encode(x: dict) -> dict:
        shape = tf.shape(x["image"])
        jpeg = tf.io.encode_jpeg(x["image"], quality=quality, chroma_downsampling=False)
        return {"jpeg": jpeg, "name": x["name"], "split": x["split"], "hw": shape[:2]}

    records = images.dataset.map(encode, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    tf.io.gfile.makedirs(out_dir)
    for path in existing:
        tf.io.gfile.remove(path)
    paths = [
        os.path.join(out_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord")
        for i in range(num_shards)
    ]
    writers = [tf.io.TFRecordWriter(p + ".partial") for p in paths]
    bar = _progbar(images.count) if progress else None
    count = 0
    try:
        for x in records.as_numpy_iterator():
            height, width = (int(v) for v in x["hw"])
            record = _example(x["jpeg"], x["name"], x["split"], height, width)
            writers[count % num_shards].write(record)
            count += 1
            if bar is not None:
                bar.update(count)
    finally:
        for w in writers:
            w.close()
    for p in paths:
        tf.io.gfile.rename(p + ".partial", p, overwrite=True)
    if count < num_shards:
        log.warning(
            "%d image(s) for %d shards: %d shard(s) are empty",
            count,
            num_shards,
            num_shards - count,
        )
    log.info("wrote %d images to %d shard(s) in %s", count, num_shards, out_dir)
    return paths
