"""``python -m colorize_tf.data``: prepare TFRecord shards, preview crops, download COCO.

    python -m colorize_tf.data prepare SRC OUT --shards N
    python -m colorize_tf.data preview SRC --out grid.png
    python -m colorize_tf.data download coco [DIR] [--set SET]

The sources (``samples``, a folder, ``coco[:SET][:DIR]``, ``tfrecord:PATTERN``,
``tfds:NAME[:SPLIT]``) and the pipeline: see ``colorize_tf.data.pipeline``.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from colorize_tf.cli import common
from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.data import coco, pipeline, sources, spec, tfrecords

# The --help summary the command has always shown: the pipeline module's first line.
DESCRIPTION = (
    "The input pipeline: image sources -> decode -> train / eval crops -> (L, ab) batches."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorize-tf-data", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "source", help="samples | DIR | coco[:SET][:DIR] | tfrecord:PATTERN | tfds:NAME[:SPLIT]"
    )
    shared.add_argument("--split", choices=sources.SPLITS, default="all")
    shared.add_argument("--val-fraction", type=float, default=0.1)
    shared.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    shared.add_argument("--max-images", type=int, default=0, help="0: all")

    prep = commands.add_parser("prepare", parents=[shared], help="write TFRecord shards")
    prep.add_argument("out", help="output directory (local or gs://)")
    prep.add_argument("--shards", type=int, required=True)
    prep.add_argument("--short-side", type=int, default=tfrecords.DEFAULT_PREPARE_SHORT_SIDE)
    prep.add_argument("--quality", type=int, default=95)
    prep.add_argument("--prefix", default=None, help="shard file prefix (default: the split)")
    prep.add_argument("--overwrite", action="store_true", help="replace existing shards")

    view = commands.add_parser("preview", parents=[shared], help="draw a grid of examples")
    view.add_argument("--out", required=True, help="PNG file to write")
    view.add_argument("--count", type=int, default=8)
    view.add_argument("--crop-size", type=int, default=pipeline.DEFAULT_CROP_SIZE)
    view.add_argument("--train", action="store_true", help="show random training crops")
    view.add_argument("--seed", type=int, default=0)

    fetch = commands.add_parser(
        "download", help="download and extract a COCO image set once (resumable, checked)"
    )
    fetch.add_argument("dataset", choices=["coco"])
    fetch.add_argument(
        "dir", nargs="?", default=None,
        help=f"where SET/ goes (default: ${coco.ENV_DIR} or ~/.cache/colorize_tf/data/coco)",
    )  # fmt: skip
    fetch.add_argument(
        "--set", dest="coco_set", choices=list(coco.COCO_SETS), default=coco.DEFAULT_SET,
        help="test2017: 6.6 GB, 40,670 images (default); val2017: 0.8 GB, 5,000 images; "
        "sample: the reference tutorial's 3.2 GB pool",
    )  # fmt: skip
    fetch.add_argument("--keep-archive", action="store_true", help="keep the zip / tgz")
    fetch.add_argument(
        "--timeout", type=float, default=coco.DEFAULT_TIMEOUT_S,
        help="seconds per connection attempt or stalled read",
    )  # fmt: skip

    return parser


@common.command(ValueError, FileNotFoundError, FileExistsError)
def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``colorize-tf-data``: ``prepare``, ``preview``, ``download``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "download":
        folder = coco.ensure_coco(
            args.coco_set, args.dir, timeout_s=args.timeout, keep_archive=args.keep_archive
        )
        count = sum(f.lower().endswith(spec.IMAGE_EXTENSIONS) for f in os.listdir(folder))
        source = coco.source_string(args.coco_set, args.dir)
        print(f"{folder}: {count:,} images; train on them with --set data.source={source}")
    elif args.command == "prepare":
        tfrecords.prepare_tfrecords(
            args.source, args.out, num_shards=args.shards, split=args.split,
            short_side=args.short_side, quality=args.quality,
            val_fraction=args.val_fraction, max_pixels=args.max_pixels,
            max_images=args.max_images, prefix=args.prefix, overwrite=args.overwrite,
        )  # fmt: skip
    else:
        path = pipeline.preview(
            args.source, args.out, split=args.split, count=args.count,
            crop_size=args.crop_size, training=args.train, seed=args.seed,
            val_fraction=args.val_fraction, max_pixels=args.max_pixels,
            max_images=args.max_images,
        )  # fmt: skip
        print(f"wrote {path}")
    return common.EXIT_OK
