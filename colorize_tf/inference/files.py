"""``python -m colorize_tf.colorize``: colorize photos of any size with any exported model.

    python -m colorize_tf.colorize old_photos/ --out colorized/
    python -m colorize_tf.colorize scan.tif "album/**/*.jpg" --model exports/q/saved_model \\
        --out colorized/ --format png --compare

Inputs are files, folders (searched recursively) and globs (``**`` included). ``--model`` is a
generator ``.keras`` file, a preset folder, a JAX weights folder, an exported SavedModel
directory or a ``.tflite`` file of either contract (see ``export.py``); without it the model
shipped inside the package is used. The network is fed at the size it was trained at unless
``--size`` says otherwise. Every output has the size of its input, EXIF orientation applied.

Outputs go under ``--out`` only, as ``NAME.png`` / ``NAME.jpg`` (a folder input keeps its
subfolders; ``--compare`` adds ``NAME_compare.*``, input and result side by side). An input is
never overwritten, nothing is written outside ``--out``, and an existing output is kept unless
``--overwrite``. Unreadable, too small or too large files are skipped with a reason; the exit
code is 1 if any input failed, 2 if nothing could be run at all.

Videos among the inputs (``video.VIDEO_EXTENSIONS``) become ``NAME.mp4``: same size, frame
rate, frame count and audio, ab smoothed along the motion unless ``--no-temporal`` (see
``video.py``; needs ``pip install 'colorize-tf[video]'``).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from colorize_tf.inference import serving, temporal, video
from colorize_tf.inference.loader import MODEL_HELP
from colorize_tf.inference.video import VIDEO_EXTENSIONS, is_video_name

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


# --- models ----------------------------------------------------------------------------------


def load_colorizer(
    path: str | None, size: int | None = None, threads: int | None = None
) -> tuple[Colorize, str]:
    """Any model form -> (colorize function, description); see ``inference.load_colorizer``.

    Args:
        path: generator ``.keras``, preset folder or name, JAX weights folder, SavedModel
            folder or ``.tflite``; None: the preset shipped in the package.
        size: network input size for the Keras-based forms (None: the model's own).
        threads: TFLite interpreter threads (None: one per CPU core).

    Raises:
        FileNotFoundError: no model there.
        ValueError: not one of the forms.
    """
    from colorize_tf.inference.loader import load_colorizer as load

    colorizer = load(path, size=size, threads=threads)
    return colorizer, colorizer.description


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize-tf-colorize",
        description="Colorize photos of any size (files, folders, globs) into --out.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or globs")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument(
        "--format",
        choices=("auto", "png", "jpeg"),
        default="auto",
        help="output format; auto: JPEG for JPEG inputs, PNG otherwise (default: auto)",
    )
    parser.add_argument("--quality", type=int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality")
    parser.add_argument("--compare", action="store_true", help="also write NAME_compare.*")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"skip larger images (default: {DEFAULT_MAX_PIXELS:,})",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="network input size for Keras-based models (default: the size it was trained at)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="TFLite interpreter threads (default: cores)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    films = parser.add_argument_group(
        "videos (written as NAME.mp4; see colorize_tf/inference/video.py)"
    )
    films.add_argument(
        "--no-temporal", action="store_true", help="colorize every frame on its own (flickers)"
    )
    films.add_argument(
        "--temporal-strength",
        type=float,
        default=temporal.DEFAULT_STRENGTH,
        help="weight in [0, 1) of the motion-compensated history where tracking is reliable "
        f"(default: {temporal.DEFAULT_STRENGTH})",
    )
    films.add_argument(
        "--cut-threshold",
        type=float,
        default=temporal.DEFAULT_CUT_THRESHOLD,
        help="L-histogram distance in (0, 1] that starts a new shot "
        f"(default: {temporal.DEFAULT_CUT_THRESHOLD})",
    )
    return parser.parse_args(argv)


def _colorize_videos(
    videos: list[Job],
    photos: list[Job],
    colorize: Colorize,
    out_dir: Path,
    args: argparse.Namespace,
    summary: Summary,
) -> None:
    """The video jobs through ``video.colorize_videos``; a missing extra fails each one."""
    try:
        temporal.TemporalSmoother(args.temporal_strength, args.cut_threshold)  # checks both
        video.load_av()  # the [video] extra: PyAV
        temporal.load_cv2()  # and OpenCV
        predictor = video.load_predictor(args.model, colorize, args.size, args.threads)
    except (ImportError, ValueError) as e:
        summary.failed.extend((str(job.source), str(e)) for job in videos)
        return
    video.colorize_videos(
        videos, predictor, out_dir, summary, overwrite=args.overwrite,
        temporal_strength=None if args.no_temporal else args.temporal_strength,
        cut_threshold=args.cut_threshold, max_pixels=args.max_pixels,
        inputs={os.path.realpath(job.source) for job in videos + photos},
        verbose=not args.quiet,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out)
    jobs, problems = find_inputs(args.inputs, out_dir)
    if not jobs:
        reasons = "".join(f"\n  {spec}: {reason}" for spec, reason in problems)
        print(f"error: no input images{reasons}", file=sys.stderr)
        return 2
    try:
        colorize, description = load_colorizer(args.model, args.size, args.threads)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    videos = [job for job in jobs if is_video_name(job.source)]
    jobs = [job for job in jobs if not is_video_name(job.source)]
    if not args.quiet:
        print(f"{description}: {len(jobs)} image(s), {len(videos)} video(s) -> {out_dir}")
    start = time.perf_counter()
    summary = colorize_files(
        jobs, colorize, out_dir, output_format=args.format, quality=args.quality,
        compare=args.compare, overwrite=args.overwrite, max_pixels=args.max_pixels,
        verbose=not args.quiet,
    )  # fmt: skip
    if videos:
        _colorize_videos(videos, jobs, colorize, out_dir, args, summary)
    failed = summary.failed + problems
    print(
        f"{summary.written} written, {summary.kept} kept, {len(failed)} failed "
        f"({time.perf_counter() - start:.1f} s)"
    )
    for source, reason in failed:
        print(f"  failed {source}: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
