"""Photos and films on disk through a colorizer: the inputs (files, folders, globs),
``colorize_files`` and ``colorize_videos``, the run behind ``python -m colorize_tf.colorize``
(its command line: ``colorize_tf.cli.colorize``; decoding and writing images:
``colorize_tf.inference.images``; one film: ``colorize_tf.inference.video``).

Outputs go under the output folder only; an input is never overwritten, an existing output is
kept unless asked, and an unreadable, too small or too large file is recorded with a reason
instead of ending the run.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.data.listing import inside, walk_files
from colorize_tf.data.spec import JPEG_EXTENSIONS
from colorize_tf.inference import serving, temporal, video
from colorize_tf.inference.images import (
    PHOTO_EXTENSIONS,
    SkipImage,
    read_image,
    side_by_side,
    write_image,
)
from colorize_tf.inference.video import VIDEO_EXTENSIONS, VideoError

if TYPE_CHECKING:
    from colorize_tf.inference.loader import Colorizer

DEFAULT_JPEG_QUALITY = 95

Colorize = Callable[[np.ndarray], np.ndarray]  # uint8 (H, W, C) -> uint8 (H, W, 3)


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    source: Path  # the input file
    name: Path  # output path relative to --out, without extension


# --- inputs ----------------------------------------------------------------------------------


def _is_image_name(path: str) -> bool:
    """A photo or a video (``video.py``) by its extension."""
    return path.lower().endswith(PHOTO_EXTENSIONS + VIDEO_EXTENSIONS)


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
        paths = walk_files(folder, PHOTO_EXTENSIONS + VIDEO_EXTENSIONS, exclude=out_real)
        for path in paths:
            jobs.append(Job(Path(path), Path(os.path.relpath(path, folder)).with_suffix("")))
        return len(paths)

    for spec in specs:
        if os.path.isdir(spec):
            if not add_folder(spec):
                problems.append((spec, f"no image files ({' '.join(PHOTO_EXTENSIONS)}) inside"))
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
                if not inside(str(target), out_real):
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


def colorize_videos(
    jobs: Sequence[Job],
    colorizer: Colorizer,
    out_dir: Path,
    summary: Summary,
    *,
    overwrite: bool = False,
    temporal_strength: float | None = temporal.DEFAULT_STRENGTH,
    cut_threshold: float = temporal.DEFAULT_CUT_THRESHOLD,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    inputs: set[str] = frozenset(),
    verbose: bool = True,
) -> Summary:
    """Colorize every video job into ``out_dir/NAME.mp4`` with the photos' ``colorizer``,
    recording written, kept and failed files in ``summary``; never raises for a bad input.

    Args:
        temporal_strength, cut_threshold: see ``temporal.TemporalSmoother``; a None strength
            colorizes each frame on its own.
        inputs: real paths of every input of the run, never overwritten.

    Without the ``[video]`` extra (PyAV, OpenCV), or with a temporal setting out of range,
    every job fails with that reason.
    """
    try:
        if temporal_strength is not None:
            temporal.TemporalSmoother(temporal_strength, cut_threshold)  # checks both
        video.load_av()  # the [video] extra: PyAV
        temporal.load_cv2()  # and OpenCV
    except (ImportError, ValueError) as e:
        summary.failed.extend((str(job.source), str(e)) for job in jobs)
        return summary
    out_real = os.path.realpath(out_dir)
    for job in jobs:
        target = out_dir / job.name.with_name(job.name.name + video.OUTPUT_EXTENSION)
        try:
            if not inside(str(target), out_real):
                raise VideoError(job.source, f"output {target} would be outside --out")
            if os.path.realpath(target) in inputs | {os.path.realpath(job.source)}:
                raise VideoError(job.source, f"output {target} would overwrite an input")
            if target.exists() and not overwrite:
                summary.kept += 1
                _note(f"kept {target}: exists (pass --overwrite to replace)", verbose)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if verbose:
                print(f"\n{job.source} -> {target}", flush=True)
            video.colorize_video(
                job.source,
                target,
                colorizer,
                temporal_strength=temporal_strength,
                cut_threshold=cut_threshold,
                max_pixels=max_pixels,
                verbose=verbose,
            )
            summary.written += 1
        except VideoError as e:
            summary.failed.append((str(job.source), e.reason))
            _note(f"skipped {job.source}: {e.reason}", verbose)
    return summary


def _note(message: str, verbose: bool) -> None:
    if verbose:
        print(f"\n{message}", file=sys.stderr, flush=True)
