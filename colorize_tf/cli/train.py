"""``python -m colorize_tf.train``: both phases of the method in one resumable command.

    python -m colorize_tf.train                                   # configs/quickstart.yaml
    python -m colorize_tf.train --config coco_paper --workdir runs/coco
    python -m colorize_tf.train --config my.yaml --set train.gan.epochs=5 --set data.batch_size=32

What it writes into ``--workdir`` (default ``runs/<config name>``), and how a rerun resumes: see
``colorize_tf.training.loop``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from colorize_tf.cli import common
from colorize_tf.config import ConfigError, load_config
from colorize_tf.training import distribute, loop, recipe


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = common.parser("python -m colorize_tf.train", __doc__)
    common.add_config_flags(parser, example="train.gan.epochs=5")
    parser.add_argument(
        "--workdir", default=None, help="where outputs go (default: runs/<config name>)"
    )
    return parser.parse_args(argv)


@common.command(ConfigError, loop.ResumeError, distribute.StrategyError, recipe.NonFiniteLossError)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config(args.config, args.overrides)
    loop.run(config, args.workdir or os.path.join("runs", config.name))
    return common.EXIT_OK
