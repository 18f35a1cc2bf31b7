"""``python -m colorize_tf.presets RUN_DIR OUT``: make a preset folder from a training run.

    python -m colorize_tf.presets runs/photos-gan my_preset --eval runs/eval \\
        --manifest training_photos.csv --set note="trained on PHOTOS"

The preset layout and what its metadata records: ``colorize_tf.models.presets``
(``preset_from_run``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import yaml

from colorize_tf.cli import common
from colorize_tf.models import presets


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m colorize_tf.presets",
        description="Make a preset folder from a training run.",
    )
    parser.add_argument("run_dir", help="a training workdir (model/, config.yaml, summary.json)")
    parser.add_argument("out", help="the preset folder to write")
    parser.add_argument("--eval", default=None, help="an `evaluate --out` folder to record")
    parser.add_argument("--manifest", default=None, help="CSV of the training photos and licenses")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra metadata (value read as YAML), repeatable",
    )
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


@common.command(FileNotFoundError, FileExistsError, ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    extra = {}
    for item in args.extra:  # not the config's --set: free metadata, each value read as YAML
        key, _, value = item.partition("=")
        extra[key] = yaml.safe_load(value)
    folder = presets.preset_from_run(
        args.run_dir,
        args.out,
        evaluation=args.eval,
        manifest=args.manifest,
        extra=extra,
        overwrite=args.overwrite,
    )
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"preset written to {folder} ({size / 1e6:.1f} MB)")
    return common.EXIT_OK
