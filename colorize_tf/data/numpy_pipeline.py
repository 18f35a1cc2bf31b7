"""The input path without TensorFlow: photos decoded once into memory, crops cut on CPU threads.

For machines that have JAX but no TensorFlow (``colorize_tf.training.loop`` falls back to it).
It follows
``colorize_tf.data.pipeline`` where the two overlap, so a JAX run trains and validates on the same
images as a TF run:

* Files: the same listing (``samples`` or a folder, recursively, same extensions, name order)
  and the same deterministic train / val split. ``sources.assign_splits`` hashes each relative
  name with TensorFlow's keyed SipHash-2-4; ``siphash24`` below is a pure-Python twin, and
  the tests check that both give the identical split.
* Decoding (PIL): EXIF orientation applied, alpha composited over white, converted to RGB,
  the long side center-cropped to ``MAX_ASPECT`` times the short side, then resized so the
  short side is ``ceil(crop_size * MAX_ZOOM)`` (JPEGs are first DCT-downscaled by libjpeg).
* Training crops: a random square covering 1/``MAX_ZOOM`` to all of the short side (scale
  jitter), resized to ``crop_size`` (bilinear), then a random horizontal flip.
* Validation crops (the evaluation protocol): short side resized to ``crop_size``, center crop.

Batches are uint8 RGB ``(batch, S, S, 3)``: the Lab conversion (``color.rgb_to_l_ab``) runs
inside the jitted training step, on the accelerator, so the host only ships bytes.
No TensorFlow and no Keras import here.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.data.image_files import ImageFileError, read_rgb
from colorize_tf.data.listing import relative_name, walk_files
from colorize_tf.data.samples import sample_photo_dir, sample_photo_paths
from colorize_tf.data.spec import (
    IMAGE_EXTENSIONS,
    MAX_ASPECT,
    MAX_ZOOM,
    SPLIT_BUCKETS,
    SPLIT_HASH_KEY,
    DataSourceError,
    splits_from_fractions,
)

_MASK64 = (1 << 64) - 1
log = logging.getLogger(__name__)


# --- the deterministic split ----------------------------------------------------------------


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK64


def siphash24(key: tuple[int, int], data: bytes) -> int:
    """SipHash-2-4 of ``data`` under a 128-bit key ``(k0, k1)``: an unsigned 64-bit int.

    The function TensorFlow's ``tf.strings.to_hash_bucket_strong`` applies (through
    highwayhash's ``SipHash``) before taking the bucket modulo.
    """
    k0, k1 = key
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]  # fmt: skip

    def rounds(count: int) -> None:
        for _ in range(count):
            v[0] = (v[0] + v[1]) & _MASK64
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & _MASK64
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & _MASK64
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & _MASK64
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    whole = len(data) - len(data) % 8
    # The last word holds the tail bytes and, in its top byte, the length mod 256.
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, whole, 8)]
    words.append(((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little"))
    for word in words:
        v[3] ^= word
        rounds(2)
        v[0] ^= word
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def split_fractions(names: Sequence[str]) -> np.ndarray:
    """Relative names (n,) -> (n,) float32 in [0, 1): ``sources.split_fractions`` without TF."""
    buckets = [siphash24(SPLIT_HASH_KEY, name.encode("utf-8")) % SPLIT_BUCKETS for name in names]
    # float32 like the TF op, so values near val_fraction fall on the same side.
    return np.asarray(buckets, np.int64).astype(np.float32) / np.float32(SPLIT_BUCKETS)


def assign_splits(names: Sequence[str], val_fraction: float = 0.1) -> list[str]:
    """Relative file names -> "train" / "val" each; identical to ``sources.assign_splits``."""
    return splits_from_fractions(split_fractions(names), val_fraction)


def list_image_files(source: str) -> tuple[str, list[str]]:
    """``samples`` or a folder -> (root, absolute paths in name order), as ``scan_source`` lists."""
    if source == "samples":
        return sample_photo_dir(), sample_photo_paths()
    if not os.path.isdir(source):
        raise DataSourceError(
            f"data source {source!r} is not 'samples' or an existing folder (the JAX path reads "
            "image files only; TFRecord / TFDS sources need colorize_tf.data.pipeline)"
        )
    root = os.path.abspath(source)
    paths = walk_files(root)
    if not paths:
        raise DataSourceError(f"no image files ({' '.join(IMAGE_EXTENSIONS)}) under {root}")
    return root, paths


def split_files(
    source: str, split: str, val_fraction: float = 0.1, max_images: int = 0
) -> list[str]:
    """Absolute paths of ``source``'s images in ``split`` ("train", "val" or "all").

    ``max_images`` > 0 first keeps the first that many files in name order (a fixed subset,
    split afterwards), like ``data.decoded_images``.
    """
    root, paths = list_image_files(source)
    paths = paths[:max_images] if max_images > 0 else paths
    if split == "all":
        return paths
    names = [relative_name(p, root) for p in paths]
    tags = assign_splits(names, val_fraction)
    chosen = [p for p, tag in zip(paths, tags, strict=True) if tag == split]
    if not chosen:
        raise DataSourceError(f"split {split!r} of {root} is empty ({len(paths)} images, "
                         f"val_fraction={val_fraction})")  # fmt: skip
    return chosen


# --- decoding -------------------------------------------------------------------------------


def decode_photo(path: str, short_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """One file -> upright RGB PIL image whose short side is ``short_side`` (aspect <= 4:1).

    Read by ``image_files.read_rgb`` (alpha over white; ``ImageFileError`` names the file).
    """
    # JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale while the short side stays large
    # enough; several times faster than a full decode for big photos.
    image = read_rgb(path, max_pixels, short_side=short_side)
    width, height = image.size
    short = min(width, height)
    max_long = math.floor(short * MAX_ASPECT)
    crop_w, crop_h = min(width, max_long), min(height, max_long)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    scale = short_side / short
    size = (max(short_side, round(crop_w * scale)), max(short_side, round(crop_h * scale)))
    # PIL's bilinear filter widens with the shrink factor (antialiased), like image_ops.py's resize.
    return image.resize(size, Image.BILINEAR, box=(left, top, left + crop_w, top + crop_h))


def decode_photos(
    paths: Sequence[str],
    short_side: int,
    workers: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Image.Image]:
    """Decode every path in parallel (PIL releases the GIL), in order.

    An unreadable file, or one over ``max_pixels`` (the TF pipeline's pre-scan skips by the
    same limit), is skipped and named in a warning (one bad photo must not end a run); if none
    can be read, ``DataSourceError``.
    """

    def load(path: str) -> Image.Image | str:
        try:
            return decode_photo(path, short_side, max_pixels)
        except ImageFileError as error:  # names the file
            return str(error)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            return f"{path}: {error}"

    with concurrent.futures.ThreadPoolExecutor(workers or min(32, os.cpu_count() or 1)) as pool:
        results = list(pool.map(load, paths))
    images = [r for r in results if not isinstance(r, str)]
    skipped = [r for r in results if isinstance(r, str)]
    if skipped:
        log.warning(
            "skipped %d unreadable image(s):\n  %s", len(skipped), "\n  ".join(skipped[:50])
        )
    if paths and not images:
        raise DataSourceError(f"none of {len(paths)} image files could be decoded: {skipped[:3]}")
    return images


def eval_crops(images: Sequence[Image.Image], crop_size: int) -> np.ndarray:
    """The evaluation protocol: short side -> ``crop_size``, center crop. uint8 (n, S, S, 3)."""
    crops = []
    for image in images:
        width, height = image.size
        scale = crop_size / min(width, height)
        width, height = max(crop_size, round(width * scale)), max(crop_size, round(height * scale))
        image = image.resize((width, height), Image.BILINEAR)
        left, top = (width - crop_size) // 2, (height - crop_size) // 2
        crops.append(np.asarray(image.crop((left, top, left + crop_size, top + crop_size))))
    return np.stack(crops)


# --- training batches ------------------------------------------------------------------------


def train_crop(image: Image.Image, crop_size: int, rng: np.random.Generator,
               max_zoom: float = MAX_ZOOM) -> Image.Image:  # fmt: skip
    """Random scale-jitter square crop + random horizontal flip: an RGB (S, S) PIL image."""
    width, height = image.size
    short = min(width, height)
    side = int(rng.integers(math.ceil(short / max_zoom), short + 1))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    # Crop and resize in one C call (box=), and flip in C too: PIL releases the GIL in both,
    # so several threads cut crops at once.
    crop = image.resize(
        (crop_size, crop_size), Image.BILINEAR, box=(left, top, left + side, top + side)
    )
    return crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


class TrainBatches:
    """An endless, reproducible stream of uint8 training batches ``(batch, S, S, 3)``.

    Batch ``i`` depends only on ``(seed, i)``: its images come from per-epoch permutations of
    the image list, and its crops from a generator seeded with ``(seed, i)``. So the stream is
    the same whatever the thread timing. ``workers`` threads cut batches ahead of use
    (``prefetch`` batches in flight).

    Args:
        images: decoded images (``decode_photos`` with short side ``ceil(crop_size * max_zoom)``).
        batch_size: images per batch.
        crop_size: output side S in pixels.
        seed: stream seed.
        workers: cutting threads (0: the CPU count).
        prefetch: batches cut ahead (0: twice the workers).
    """

    def __init__(self, images: Sequence[Image.Image], batch_size: int, crop_size: int,
                 seed: int = 0, workers: int = 0, prefetch: int = 0,
                 max_zoom: float = MAX_ZOOM):  # fmt: skip
        if not images:
            raise ValueError("TrainBatches needs at least one image")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = list(images)
        self.batch_size = batch_size
        self.crop_size = crop_size
        self.seed = seed
        self.max_zoom = max_zoom
        self.workers = workers or os.cpu_count() or 1
        self.prefetch = prefetch or 2 * self.workers
        self._permutations: dict[int, np.ndarray] = {}

    def _indices(self, batch_index: int) -> list[int]:
        count = len(self.images)
        out = []
        for position in range(batch_index * self.batch_size, (batch_index + 1) * self.batch_size):
            epoch, offset = divmod(position, count)
            if epoch not in self._permutations:
                self._permutations = {e: p for e, p in self._permutations.items() if e >= epoch - 1}
                rng = np.random.default_rng([self.seed, 1, epoch])
                self._permutations[epoch] = rng.permutation(count)
            out.append(int(self._permutations[epoch][offset]))
        return out

    def batch(self, batch_index: int, indices: Sequence[int] | None = None) -> np.ndarray:
        """Batch number ``batch_index``: uint8 ``(batch, S, S, 3)``."""
        indices = self._indices(batch_index) if indices is None else indices
        rng = np.random.default_rng([self.seed, 2, batch_index])
        out = np.empty((len(indices), self.crop_size, self.crop_size, 3), np.uint8)
        for row, index in enumerate(indices):  # filled in place: one copy per crop, no np.stack
            out[row] = np.asarray(
                train_crop(self.images[index], self.crop_size, rng, self.max_zoom)
            )
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        pool = concurrent.futures.ThreadPoolExecutor(self.workers)
        pending: collections.deque = collections.deque()
        index = 0
        try:
            while True:
                while len(pending) < self.prefetch:
                    # Indices are drawn here, in order, so the permutation cache is single-threaded.
                    pending.append(pool.submit(self.batch, index, self._indices(index)))
                    index += 1
                yield pending.popleft().result()
        finally:  # the consumer stopped: drop the batches cut ahead
            pool.shutdown(wait=False, cancel_futures=True)


def measure_throughput(batches: TrainBatches, seconds: float = 3.0) -> float:
    """Crops per second that ``batches`` delivers on this host (after one warm-up batch)."""
    stream = iter(batches)
    next(stream)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += len(next(stream))
    rate = count / (time.perf_counter() - start)
    stream.close()
    return rate
