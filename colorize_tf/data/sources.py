"""Where the images come from: source strings, the file pre-scan, the train / val / report split,
and
readers of the encoded images of each source kind (``colorize_tf.data.pipeline`` decodes them).

Source strings
--------------
``samples``
    The seven color photos scikit-image ships in its wheel (``colorize_tf.data.samples``): works
    on a fresh machine with pip alone.
a directory path
    Every ``.jpg .jpeg .jpe .png .bmp .gif .webp`` file below it, recursively (any case). Each
    file is checked once by a cheap PIL pre-scan (header, pixel count, EXIF orientation, a
    truncation test); bad files are skipped, counted and named in the log. Local paths only:
    for GCS, ``prepare`` shards.
``tfrecord:PATTERN``, or any path / glob ending in ``.tfrecord`` / ``.tfrec`` (``gs://`` too)
    Shards written by ``prepare`` (or anyone using the feature keys below).
``coco[:SET][:DIR]``, e.g. ``coco`` or ``coco:sample:/content/coco``
    COCO photos without TFDS (``colorize_tf.data.coco``): on first use one image archive is
    downloaded into ``DIR/SET`` (default set ``test2017``, a 6.6 GB zip of 40,670 images; default
    ``DIR`` ``$COLORIZE_TF_COCO_DIR`` or ``~/.cache/colorize_tf/data/coco``), checked and extracted;
    from then on it is that folder. The keyword wins over a folder named ``coco`` (write
    ``./coco``).
``tfds:NAME[:SPLIT]``, e.g. ``tfds:coco/2017`` or ``tfds:coco/2017:train``
    A TensorFlow Datasets data set (``NAME`` may carry a ``:X.Y.Z`` version). Without ``SPLIT``,
    ``split="train"`` reads TFDS ``train``, ``"val"`` reads ``validation`` (else ``test``) and
    ``"all"`` reads both (``"report"`` needs ``SPLIT``). With ``SPLIT`` (any TFDS split string)
    that split is one pool, cut into train / val / report by name hash like a folder. A data set
    not yet prepared under the TFDS data dir is downloaded only if ``TFDS_PROBE_ADDRESS`` answers
    within seconds; otherwise it fails at once, saying where it looked (tfds itself would retry
    for minutes). ``tfds:coco/2017`` prepares
    every split first: 27.05 GB of archives, then records about as large again.

TFRecord features (one ``tf.train.Example`` per image)
------------------------------------------------------
``image/encoded`` (bytes, JPEG, upright: EXIF orientation already applied), ``image/filename``
(bytes, UTF-8 path relative to the source), ``image/height`` and ``image/width`` (int64, of the
stored JPEG) and ``image/split`` (bytes, ``train``, ``val`` or ``report``: the split at prepare
time). Only ``image/encoded`` is required; without ``image/split`` the split is hashed from the
file name. Shards written before the report split existed tag its files ``train``; those are
read as ``report`` (by the same hash), so a model never trains on them.
``prepare`` writes ``OUT/PREFIX-SSSSS-of-NNNNN.tfrecord``, ``PREFIX`` defaulting to the split.

Train / val / report split
--------------------------
A keyed SipHash of each file's relative path, mapped to [0, 1), puts it in ``val`` when below
``val_fraction`` (0.1), in ``report`` when at or above ``1 - report_fraction`` (0.1), else in
``train``: deterministic, independent of the other files, so adding files never moves old ones.
The same TF op computes it eagerly for folders and in-graph for records. Training fits on
``train`` and chooses its epoch on ``val``; ``report`` is seen by neither, so the figures quoted
for a model (``evaluate --split report``) are not flattered by that choice. A tiny file list
whose hash split leaves train or val empty lends it one file (smallest / largest hash).
``max_images`` first cuts a source to a fixed subset (see ``data.decoded_images``), then
splits it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import re
import socket
from collections.abc import Sequence

import tensorflow as tf

from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.data import coco
from colorize_tf.data.image_files import ImageFileError, open_image
from colorize_tf.data.listing import relative_name, walk_files
from colorize_tf.data.samples import sample_photo_dir, sample_photo_paths
from colorize_tf.data.spec import (
    IMAGE_EXTENSIONS,
    REPORT_FRACTION,
    SPLIT_BUCKETS,
    SPLIT_HASH_KEY,
    SPLITS,
    DataSourceError,
    check_fractions,
    splits_from_fractions,
)

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
TFRECORD_SUFFIXES = (".tfrecord", ".tfrec")

SKIPPED_NAMED_MAX = 200  # lines of skipped files in one log record; the rest are counted

FEATURE_ENCODED = "image/encoded"
FEATURE_FILENAME = "image/filename"
FEATURE_HEIGHT = "image/height"
FEATURE_WIDTH = "image/width"
FEATURE_SPLIT = "image/split"

# Contacted (TCP connect, seconds) before a TFDS download, so an offline machine fails at once
# instead of retrying for minutes inside tfds.
TFDS_PROBE_ADDRESS = ("storage.googleapis.com", 443)
TFDS_PROBE_TIMEOUT_S = 3.0
# PIL formats that tf.io.decode_image reads (MPO: multi-picture JPEG from cameras).
_TF_DECODABLE = {"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"}
_TFDS_NAME_SPLIT = re.compile(r"^(?P<name>[^:]+?(?::\d+\.\d+\.\d+)?)(?::(?P<split>.+))?$")


# --- sources and the pre-scan --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    """A parsed source string: ``kind`` is samples | folder | tfrecord | tfds."""

    kind: str
    location: str  # folder path, file pattern or TFDS name
    tfds_split: str | None = None


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """One usable image file found by the pre-scan."""

    path: str  # absolute
    name: str  # relative to the source root, '/'-separated: the split key
    width: int  # pixels as stored, before EXIF orientation
    height: int
    orientation: int  # EXIF orientation 1..8 (1: upright)


@dataclasses.dataclass
class Scan:
    """What the pre-scan of a file source found: usable images and (path, reason) skips."""

    where: str
    images: list[ImageFile]
    skipped: list[tuple[str, str]]


def parse_source(source: str) -> Source:
    """Source string (grammar in the module docstring) -> ``Source``; unknown strings fail here."""
    text = source.strip()
    if text == "samples":
        return Source("samples", sample_photo_dir())
    if text == "coco" or text.startswith("coco:"):  # downloads on first use, then a folder
        return Source("folder", coco.ensure_coco(*coco.parse_coco_source(text)))
    if text.startswith("tfds:"):
        match = _TFDS_NAME_SPLIT.match(text[len("tfds:") :])
        if not match:
            raise DataSourceError(f"bad TFDS source {source!r}: expected tfds:NAME[:SPLIT]")
        return Source("tfds", match["name"], match["split"])
    if text.startswith("tfrecord:"):
        return Source("tfrecord", text[len("tfrecord:") :])
    if text.lower().endswith(TFRECORD_SUFFIXES):
        return Source("tfrecord", text)
    if os.path.isdir(text):
        return Source("folder", os.path.abspath(text))
    raise DataSourceError(
        f"unknown data source {source!r}: not an existing directory, and not 'samples', "
        "'coco[:SET][:DIR]', 'tfrecord:PATTERN' (or a path/glob ending in .tfrecord/.tfrec), "
        "or 'tfds:NAME[:SPLIT]'"
    )


def _is_complete(path: str, image_format: str, size: int) -> bool:
    """Cheap truncation test: the end-of-image marker sits near the end of the file."""
    with open(path, "rb") as f:
        f.seek(max(0, size - 4096))
        tail = f.read()
    if image_format in ("JPEG", "MPO"):
        return b"\xff\xd9" in tail
    if image_format == "PNG":
        return b"IEND" in tail
    return False  # GIF / BMP / WebP are rare here: always decode them once


def check_image_file(path: str, name: str, max_pixels: int) -> ImageFile | str:
    """Pre-scan one file with PIL: an ``ImageFile``, or the reason it cannot be used."""
    try:
        with open_image(path, max_pixels) as im:
            width, height = im.size
            if im.format not in _TF_DECODABLE:
                return f"{im.format} images are not supported (use JPEG, PNG, GIF, BMP or WebP)"
            orientation = int(im.getexif().get(0x0112, 1))
            if not _is_complete(path, im.format, os.path.getsize(path)):
                # The slow path: a real decode (at 1/8 scale for JPEG) finds truncation.
                im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                im.load()
    except ImageFileError as e:
        return e.reason
    return ImageFile(path, name, width, height, orientation if 1 <= orientation <= 8 else 1)


def scan_source(
    source: str | Source, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_images: int = 0
) -> Scan:
    """Find and pre-scan the image files of a ``samples`` or folder source (sorted by name).

    ``max_images`` > 0 keeps the first that many usable files in name order (a fixed subset),
    and scans only as far as it needs to.
    """
    spec = parse_source(source) if isinstance(source, str) else source
    if spec.kind == "samples":
        paths = sample_photo_paths()
        root = spec.location
    elif spec.kind == "folder":
        root = spec.location
        paths = walk_files(root)
    else:
        raise DataSourceError(f"{spec.kind} sources hold records, not files: cannot list {spec}")
    names = [relative_name(p, root) for p in paths]
    images: list[ImageFile] = []
    skipped: list[tuple[str, str]] = []
    start = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:  # PIL releases the GIL
        while start < len(paths) and not (max_images and len(images) >= max_images):
            stop = len(paths)
            if max_images:
                stop = min(stop, start + max(256, 2 * (max_images - len(images))))
            chunk = paths[start:stop]
            checks = pool.map(check_image_file, chunk, names[start:stop], [max_pixels] * len(chunk))
            for path, result in zip(chunk, checks, strict=True):
                if isinstance(result, str):
                    skipped.append((path, result))
                elif not max_images or len(images) < max_images:
                    images.append(result)
            start = stop
    scan = Scan(root, images, skipped)
    if skipped:
        lines = [f"  {p}: {reason}" for p, reason in skipped[:SKIPPED_NAMED_MAX]]
        if len(skipped) > SKIPPED_NAMED_MAX:
            lines.append(f"  ... and {len(skipped) - SKIPPED_NAMED_MAX} more")
        log.warning(
            "skipped %d of %d image files under %s:\n%s",
            len(skipped), start, root, "\n".join(lines),
        )  # fmt: skip
    if not images:
        detail = "".join(f"\n  {p}: {reason}" for p, reason in skipped[:20])
        raise DataSourceError(
            f"no usable images in {root} (looked recursively for {' '.join(IMAGE_EXTENSIONS)}; "
            f"{start} candidate file(s), {len(skipped)} skipped){detail}"
        )
    return scan


# --- the deterministic split ---------------------------------------------------------------


def split_fractions(names) -> tf.Tensor:
    """Names (n,) string -> (n,) float32 in [0, 1): a keyed hash; works eagerly and in-graph."""
    buckets = tf.strings.to_hash_bucket_strong(names, SPLIT_BUCKETS, key=list(SPLIT_HASH_KEY))
    return tf.cast(buckets, tf.float32) / float(SPLIT_BUCKETS)


def assign_splits(
    names: Sequence[str], val_fraction: float = 0.1, report_fraction: float = REPORT_FRACTION
) -> list[str]:
    """Relative file names -> "train" / "val" / "report" each (rules in the module docstring)."""
    check_fractions(val_fraction, report_fraction)
    fractions = split_fractions(tf.constant(list(names), tf.string)).numpy()
    return splits_from_fractions(fractions, val_fraction, report_fraction)


def select_split(
    scan: Scan, split: str, val_fraction: float, report_fraction: float = REPORT_FRACTION
) -> list[ImageFile]:
    """The images of ``scan`` in ``split`` (one of ``SPLITS``); an empty split fails."""
    if split not in SPLITS:
        raise DataSourceError(f"split must be one of {SPLITS}, got {split!r}")
    check_fractions(val_fraction, report_fraction)
    if split == "all":
        return scan.images
    splits = assign_splits([im.name for im in scan.images], val_fraction, report_fraction)
    chosen = [im for im, s in zip(scan.images, splits, strict=True) if s == split]
    if not chosen:
        raise DataSourceError(
            f"split {split!r} of {scan.where} is empty ({len(scan.images)} usable image(s), "
            f"val_fraction={val_fraction}, report_fraction={report_fraction}); use "
            "split='all' or add images"
        )
    return chosen


def list_images(
    source: str,
    split: str = "all",
    *,
    val_fraction: float = 0.1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_images: int = 0,
    report_fraction: float = REPORT_FRACTION,
) -> list[str]:
    """Absolute paths of the usable images of a ``samples`` / folder source in ``split``, sorted.

    Raises ValueError for record sources (TFRecord, TFDS), whose files are not images.
    """
    scan = scan_source(source, max_pixels=max_pixels, max_images=max_images)
    return [im.path for im in select_split(scan, split, val_fraction, report_fraction)]


# --- encoded images per source kind --------------------------------------------------------
# Each yields dicts: encoded (bytes), orientation (EXIF 1..8), path (string: what evaluation
# reports), name (relative: the split key), split ("train" / "val" / "report"; "" = hash the
# name).


def file_records(images: list[ImageFile], split_tags: list[str], shuffle: bool, seed):
    """Pre-scanned files with their split tags -> records (file names shuffled if asked)."""
    ds = tf.data.Dataset.from_tensor_slices(
        {
            "path": [im.path for im in images],
            "orientation": [im.orientation for im in images],
            "name": [im.name for im in images],
            "split": split_tags,
        }
    )
    if shuffle:  # file names are cheap to shuffle whole; images are shuffled again after cache
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return ds.map(lambda x: {**x, "encoded": tf.io.read_file(x["path"])})


def _split_records(
    ds: tf.data.Dataset,
    split: str,
    val_fraction: float,
    report_fraction: float = REPORT_FRACTION,
    carve_train: bool = True,
) -> tf.data.Dataset:
    """Fill in hashed split tags where a record has none, then keep those of ``split``.

    ``carve_train``: stored ``train`` tags whose hash falls in the report share become
    ``report`` (shards written before that split existed); off for TFDS's own splits.
    """
    check_fractions(val_fraction, report_fraction)
    high = 1.0 - report_fraction if report_fraction > 0 else 2.0  # float32 compare, as spec

    def tag(x: dict) -> dict:
        fraction = split_fractions(x["name"])
        hashed = tf.where(
            fraction < val_fraction, "val", tf.where(fraction >= high, "report", "train")
        )
        stored = x["split"]
        if carve_train:
            is_report = tf.logical_and(tf.equal(stored, "train"), fraction >= high)
            stored = tf.where(is_report, "report", stored)
        return {**x, "split": tf.where(tf.equal(stored, ""), hashed, stored)}

    ds = ds.map(tag, num_parallel_calls=AUTOTUNE)
    return ds if split == "all" else ds.filter(lambda x: tf.equal(x["split"], split))


def _record(encoded, name, split) -> dict:
    # Records hold upright pixels (prepare applies EXIF orientation; TFDS ignores it).
    return {"encoded": encoded, "orientation": 1, "path": name, "name": name, "split": split}


def tfrecord_records(
    pattern, split, val_fraction, input_context, shuffle, seed, max_images,
    report_fraction=REPORT_FRACTION,
) -> tuple[tf.data.Dataset, int]:  # fmt: skip
    """TFRecord shards -> (records of ``split`` for this input pipeline, their encoded bytes)."""
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise DataSourceError(f"no TFRecord files match {pattern!r}")
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    if max_images:
        # A fixed subset: the first records in file order (read in sequence), then split per host.
        ds = tf.data.TFRecordDataset(files).take(max_images).shard(pipelines, pipeline_id)
    else:
        ds = tf.data.Dataset.from_tensor_slices(files)
        by_file = len(files) >= pipelines  # else every host reads all and keeps 1/n records
        if by_file:
            ds = ds.shard(pipelines, pipeline_id)
        if shuffle:
            ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        ds = ds.interleave(
            tf.data.TFRecordDataset, cycle_length=min(len(files), 16), num_parallel_calls=AUTOTUNE
        )
        if not by_file:
            ds = ds.shard(pipelines, pipeline_id)
    features = {
        FEATURE_ENCODED: tf.io.FixedLenFeature([], tf.string),
        FEATURE_FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        FEATURE_SPLIT: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }

    def parse(serialized: tf.Tensor) -> dict:
        x = tf.io.parse_single_example(serialized, features)
        return _record(x[FEATURE_ENCODED], x[FEATURE_FILENAME], x[FEATURE_SPLIT])

    ds = ds.map(parse, num_parallel_calls=AUTOTUNE)
    ds = _split_records(ds, split, val_fraction, report_fraction)
    return ds, sum(tf.io.gfile.stat(f).length for f in files) // pipelines


def _network_reachable(address: tuple[str, int], timeout: float) -> bool:
    try:
        socket.create_connection(address, timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds_builder(name: str, data_dir: str | None, download: bool):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown / unreadable names
        raise DataSourceError(f"TFDS has no data set {name!r} (data_dir={data_dir}): {e}") from e
    if tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        return builder
    where = f"{name!r} is not prepared under {builder.data_dir}"
    if not download:
        raise DataSourceError(f"TFDS data set {where} and download is off")
    host, port = TFDS_PROBE_ADDRESS
    if not _network_reachable(TFDS_PROBE_ADDRESS, TFDS_PROBE_TIMEOUT_S):
        raise DataSourceError(
            f"TFDS data set {where}, and {host}:{port} is unreachable (offline?): prepare it on a "
            f"connected machine (`tfds build {name} --data_dir DIR`), then pass that data_dir"
        )
    builder.download_and_prepare()
    return builder


def tfds_records(
    spec, split, val_fraction, data_dir, download, input_context, shuffle, seed, max_images,
    report_fraction=REPORT_FRACTION,
) -> tuple[tf.data.Dataset, int]:  # fmt: skip
    """A TFDS data set -> (records of ``split`` for this input pipeline, their encoded bytes)."""
    import tensorflow_datasets as tfds

    builder = _tfds_builder(spec.location, data_dir, download)
    info = builder.info
    images = [k for k, f in info.features.items() if isinstance(f, tfds.features.Image)]
    if not images:
        raise DataSourceError(f"TFDS data set {spec.location!r} has no image feature")
    image_key = "image" if "image" in images else images[0]
    name_key = FEATURE_FILENAME if FEATURE_FILENAME in info.features else "tfds_id"
    if spec.tfds_split is not None:
        parts = [(spec.tfds_split, "")]  # one pool, split by name hash like a folder
    elif split == "report":
        raise DataSourceError(
            f"split 'report' of TFDS data set {spec.location!r}: name one pool to cut it from, "
            f"tfds:{spec.location}:SPLIT (its own train / validation splits stay as they are)"
        )
    else:
        val = "validation" if "validation" in info.splits else "test"
        if split != "train" and val not in info.splits:
            raise DataSourceError(
                f"TFDS data set {spec.location!r} has no validation or test split"
            )
        wanted = {"train": ["train"], "val": [val], "all": ["train", val]}[split]
        parts = [(s, "train" if s == "train" else "val") for s in wanted]
    if max_images:
        if any("[" in s for s, _ in parts):
            raise DataSourceError(
                f"max_images cannot cut the sliced TFDS split of {spec}: slice it there"
            )
        parts = [(f"{s}[:{max_images}]", tag) for s, tag in parts]  # a fixed subset per split
    read_config = tfds.ReadConfig(
        input_context=input_context, shuffle_seed=seed, add_tfds_id=True, try_autocache=False
    )
    ds = None
    for tfds_split, tag in parts:
        part = builder.as_dataset(
            split=tfds_split,
            shuffle_files=shuffle,
            read_config=read_config,
            decoders={image_key: tfds.decode.SkipDecoding()},  # ours: DCT scaling, alpha, 16-bit
        ).map(lambda x, tag=tag: _record(x[image_key], x[name_key], tag))
        ds = part if ds is None else ds.concatenate(part)
    ds = _split_records(ds, split, val_fraction, report_fraction, carve_train=False)
    try:
        encoded_bytes = sum(info.splits[s].num_bytes for s, _ in parts)
    except (KeyError, ValueError, TypeError):  # sliced splits have no byte count
        encoded_bytes = info.dataset_size or 0
    pipelines = input_context.num_input_pipelines if input_context else 1
    return ds, int(encoded_bytes) // pipelines
