"""Photos on disk through a colorizer: the inputs (files, folders, globs), decoding and writing
images, and ``colorize_files``, the run behind ``python -m colorize_tf.colorize`` (its command
line: ``colorize_tf.cli.colorize``).

Outputs go under the output folder only; an input is never overwritten, an existing output is
kept unless asked, and an unreadable, too small or too large file is recorded with a reason
instead of ending the run.
"""

from __future__ import annotations

import glob
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from colorize_tf.inference import serving
from colorize_tf.inference.video import VIDEO_EXTENSIONS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
JPEG_EXTENSIONS = (".jpg", ".jpeg", ".jpe")
DEFAULT_MAX_PIXELS = 100_000_000  # a 12,000 x 8,000 scan; ~3 GB of float tensors on the way
DEFAULT_JPEG_QUALITY = 95
# zlib level 1: a 12-MP PNG in ~1.5 s instead of ~8 s at PIL's default 6, for ~20% more bytes.
PNG_COMPRESS_LEVEL = 1

Colorize = Callable[[np.ndarray], np.ndarray]  # uint8 (H, W, C) -> uint8 (H, W, 3)


class SkipImage(Exception):
    """An input that cannot be colorized; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    source: Path  # the input file
    name: Path  # output path relative to --out, without extension


# --- inputs ----------------------------------------------------------------------------------


def _is_image_name(path: str) -> bool:
    """A photo or a video (``video.py``) by its extension."""
    return path.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)


def find_inputs(specs: Sequence[str], out_dir: Path) -> tuple[list[Job], list[tuple[str, str]]]:
    """Expand files, folders and globs into jobs, in a stable order.

    A folder's images keep their paths relative to it under ``--out``; a file (or glob match)
    is named by its stem. Files already under ``out_dir`` (earlier results) are not picked up
    from folders.

    Returns:
        (jobs, problems): problems are (input spec, reason) for specs that matched nothing.
    """
    out_real = os.path.realpath(out_dir)
    jobs: list[Job] = []
    problems: list[tuple[str, str]] = []

    def add_folder(folder: str) -> int:
        count = 0
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            if _inside(dirpath, out_real):
                dirnames[:] = []
                continue
            dirnames.sort()
            for filename in sorted(filenames):
                if _is_image_name(filename):
                    path = os.path.join(dirpath, filename)
                    jobs.append(
                        Job(Path(path), Path(os.path.relpath(path, folder)).with_suffix(""))
                    )
                    count += 1
        return count

    for spec in specs:
        if os.path.isdir(spec):
            if not add_folder(spec):
                problems.append((spec, f"no image files ({' '.join(IMAGE_EXTENSIONS)}) inside"))
        elif os.path.isfile(spec):
            jobs.append(Job(Path(spec), Path(Path(spec).stem)))
        elif glob.has_magic(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            files = [m for m in matches if os.path.isfile(m) and _is_image_name(m)]
            for match in files:
                jobs.append(Job(Path(match), Path(Path(match).stem)))
            if not files:
                problems.append((spec, "the pattern matches no image file"))
        else:
            problems.append((spec, "no such file or folder"))
    return _unique_names(jobs), problems


def _unique_names(jobs: list[Job]) -> list[Job]:
    """Same source once; same output name (a.jpg and a.png) gets the source's suffix added."""
    seen_sources: set[str] = set()
    taken: set[str] = set()
    unique = []
    for job in jobs:
        real = os.path.realpath(job.source)
        if real in seen_sources:
            continue
        seen_sources.add(real)
        name = job.name
        if str(name).lower() in taken:
            name = name.with_name(f"{name.name}_{job.source.suffix.lstrip('.').lower()}")
        taken.add(str(name).lower())
        unique.append(Job(job.source, name))
    return unique


def _inside(path: str, folder_real: str) -> bool:
    real = os.path.realpath(path)
    return os.path.commonpath([real, folder_real]) == folder_real


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str]:
    """Decode an image file upright (EXIF orientation applied) for ``serving``.

    Returns:
        (uint8 (H, W, C) with C = 1 gray, 2 gray + alpha, 3 RGB or 4 RGBA; the PIL format).

    Raises:
        SkipImage: unreadable, not an image, or more than ``max_pixels`` pixels.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit rules
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise SkipImage(
                        f"too large: {width}x{height} = {width * height / 1e6:.1f} MP exceeds "
                        f"--max-pixels {max_pixels:,}"
                    )
                image_format = image.format or ""
                image = ImageOps.exif_transpose(image)  # loads the pixels
                return _to_array(image), image_format
    except SkipImage:
        raise
    except Image.DecompressionBombError as e:
        raise SkipImage(f"too large for PIL to open safely: {e}") from None
    except UnidentifiedImageError:
        raise SkipImage("not an image (unrecognised content)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise SkipImage(f"unreadable ({e})") from None


def _to_array(image) -> np.ndarray:
    """PIL image of any mode -> uint8 (H, W, C), C in 1..4, alpha kept for ``serving``."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float scans: scale the full range to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(np.round(values * (255.0 / peak)), 0, 255).astype(np.uint8)
        return gray[..., np.newaxis]
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in image.info
    gray = mode in ("1", "L", "LA", "La")
    target = ("LA" if has_alpha else "L") if gray else ("RGBA" if has_alpha else "RGB")
    array = np.asarray(image.convert(target), dtype=np.uint8)
    return array[..., np.newaxis] if array.ndim == 2 else array


def display_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) as shown to a viewer: (H, W, 3), gray repeated, alpha over white."""
    color, alpha = (
        (image[..., :-1], image[..., -1:]) if image.shape[-1] in (2, 4) else (image, None)
    )
    if alpha is not None:
        a = alpha.astype(np.float32) / 255.0
        color = np.round(color * a + 255.0 * (1.0 - a)).astype(np.uint8)
    return np.repeat(color, 3, axis=-1) if color.shape[-1] == 1 else color


def side_by_side(original: np.ndarray, colorized: np.ndarray, gap: int = 8) -> np.ndarray:
    """Input and result next to each other on white: uint8 (H, 2 W + gap, 3)."""
    left = display_rgb(original)
    spacer = np.full((left.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([left, spacer, colorized], axis=1)


def write_image(path: Path, rgb: np.ndarray, image_format: str, quality: int) -> None:
    """Write uint8 RGB as PNG or JPEG, through a temporary file so no partial file remains."""
    from PIL import Image

    partial = path.with_name(f".{path.name}.partial")
    options = (
        {"quality": quality} if image_format == "JPEG" else {"compress_level": PNG_COMPRESS_LEVEL}
    )
    Image.fromarray(rgb).save(partial, format=image_format, **options)
    os.replace(partial, path)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Summary:
    """What ``colorize_files`` did."""

    written: int = 0
    kept: int = 0  # outputs that existed already (no --overwrite)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)


def _output_format(choice: str, source: Path) -> tuple[str, str]:
    """(PIL format, extension) from --format and, for "auto", the input's file extension.

    The extension rather than the content decides, so that an existing output can be found
    (and kept) without decoding its input first.
    """
    if choice == "jpeg" or (choice == "auto" and source.suffix.lower() in JPEG_EXTENSIONS):
        return "JPEG", ".jpg"
    return "PNG", ".png"


def colorize_files(
    jobs: Sequence[Job],
    colorize: Colorize,
    out_dir: Path,
    *,
    output_format: str = "auto",
    quality: int = DEFAULT_JPEG_QUALITY,
    compare: bool = False,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    verbose: bool = True,
) -> Summary:
    """Colorize every job into ``out_dir``; never raises for a bad input (it is recorded)."""
    import keras

    out_dir.mkdir(parents=True, exist_ok=True)
    out_real = os.path.realpath(out_dir)
    inputs = {os.path.realpath(job.source) for job in jobs}
    summary = Summary()
    progress = keras.utils.Progbar(len(jobs), unit_name="image", verbose=1 if verbose else 0)
    for index, job in enumerate(jobs, start=1):
        try:
            pil_format, extension = _output_format(output_format, job.source)
            # with_name, not with_suffix: "scan.v2" must become "scan.v2.png", not "scan.png".
            targets = [out_dir / job.name.with_name(job.name.name + extension)]
            if compare:
                targets.append(out_dir / job.name.with_name(f"{job.name.name}_compare{extension}"))
            for target in targets:
                if not _inside(str(target), out_real):
                    raise SkipImage(f"output {target} would be outside --out")
                if os.path.realpath(target) in inputs:
                    raise SkipImage(f"output {target} would overwrite an input")
            if not overwrite and any(t.exists() for t in targets):
                summary.kept += 1
                _note(f"kept {targets[0]}: exists (pass --overwrite to replace)", verbose)
                progress.update(index)
                continue
            image, _ = read_image(job.source, max_pixels)
            try:
                serving.check_image(image)  # in Python: a SavedModel would only assert in-graph
            except ValueError as e:  # e.g. an image too small to colorize
                raise SkipImage(str(e)) from None
            try:
                colorized = colorize(image)
            except (tf.errors.OpError, MemoryError) as e:  # one bad image must not end a batch
                raise SkipImage(f"colorization failed ({type(e).__name__}: {e})") from None
            targets[0].parent.mkdir(parents=True, exist_ok=True)
            write_image(targets[0], colorized, pil_format, quality)
            if compare:
                write_image(targets[1], side_by_side(image, colorized), pil_format, quality)
            summary.written += 1
        except SkipImage as e:
            summary.failed.append((str(job.source), str(e)))
            _note(f"skipped {job.source}: {e}", verbose)
        progress.update(index)
    return summary


def _note(message: str, verbose: bool) -> None:
    if verbose:
        print(f"\n{message}", file=sys.stderr, flush=True)
