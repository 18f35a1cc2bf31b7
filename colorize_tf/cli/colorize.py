"""``python -m colorize_tf.colorize``: colorize photos of any size with any exported model.

    python -m colorize_tf.colorize old_photos/ --out colorized/
    python -m colorize_tf.colorize scan.tif "album/**/*.jpg" --model exports/q/saved_model \\
        --out colorized/ --format png --compare

Inputs are files, folders (searched recursively) and globs (``**`` included). ``--model`` is a
generator ``.keras`` file, a preset folder, a JAX weights folder, an exported SavedModel
directory or a ``.tflite`` file of either contract (see ``colorize_tf.export``); without it the
model shipped inside the package is used. The network is fed at the size it was trained at unless
``--size`` says otherwise. Every output has the size of its input, EXIF orientation applied.

Outputs go under ``--out`` only, as ``NAME.png`` / ``NAME.jpg`` (a folder input keeps its
subfolders; ``--compare`` adds ``NAME_compare.*``, input and result side by side). An input is
never overwritten, nothing is written outside ``--out``, and an existing output is kept unless
``--overwrite``. Unreadable, too small or too large files are skipped with a reason; the exit
code is 1 if any input failed, 2 if nothing could be run at all.

Videos among the inputs (``inference.video.VIDEO_EXTENSIONS``) become ``NAME.mp4``: same size,
frame rate, frame count and audio, ab smoothed along the motion unless ``--no-temporal`` (see
``colorize_tf.inference.video``; needs ``pip install 'colorize-tf[video]'``), colorized by the
same loaded model as the photos.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from colorize_tf.cli import common
from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.inference import files, loader, temporal
from colorize_tf.inference.video import is_video_name


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize-tf-colorize",
        description="Colorize photos of any size (files, folders, globs) into --out.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or globs")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    common.add_model_flag(parser)
    parser.add_argument(
        "--format",
        choices=("auto", "png", "jpeg"),
        default="auto",
        help="output format; auto: JPEG for JPEG inputs, PNG otherwise (default: auto)",
    )
    parser.add_argument(
        "--quality", type=int, default=files.DEFAULT_JPEG_QUALITY, help="JPEG quality"
    )
    parser.add_argument("--compare", action="store_true", help="also write NAME_compare.*")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"skip larger images (default: {DEFAULT_MAX_PIXELS:,})",
    )
    common.add_runtime_flags(parser)
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


@common.command()
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out)
    jobs, problems = files.find_inputs(args.inputs, out_dir)
    if not jobs:
        reasons = "".join(f"\n  {spec}: {reason}" for spec, reason in problems)
        raise common.CommandError(f"no input images{reasons}")
    with common.user_errors(FileNotFoundError, ValueError, ImportError):
        colorizer = loader.load_colorizer(args.model, size=args.size, threads=args.threads)
    videos = [job for job in jobs if is_video_name(job.source)]
    jobs = [job for job in jobs if not is_video_name(job.source)]
    if not args.quiet:
        print(f"{colorizer.description}: {len(jobs)} image(s), {len(videos)} video(s) -> {out_dir}")
    start = time.perf_counter()
    summary = files.colorize_files(
        jobs, colorizer, out_dir, output_format=args.format, quality=args.quality,
        compare=args.compare, overwrite=args.overwrite, max_pixels=args.max_pixels,
        verbose=not args.quiet,
    )  # fmt: skip
    if videos:
        files.colorize_videos(
            videos, colorizer, out_dir, summary, overwrite=args.overwrite,
            temporal_strength=None if args.no_temporal else args.temporal_strength,
            cut_threshold=args.cut_threshold, max_pixels=args.max_pixels,
            inputs={os.path.realpath(job.source) for job in videos + jobs},
            verbose=not args.quiet,
        )  # fmt: skip
    failed = summary.failed + problems
    print(
        f"{summary.written} written, {summary.kept} kept, {len(failed)} failed "
        f"({time.perf_counter() - start:.1f} s)"
    )
    for source, reason in failed:
        print(f"  failed {source}: {reason}", file=sys.stderr)
    return common.EXIT_SOME_FAILED if failed else common.EXIT_OK
