"""``python -m colorize_tf.train``: both phases of the method in one resumable command.

    python -m colorize_tf.train                                   # configs/quickstart.yaml
    python -m colorize_tf.train --config coco_paper --workdir runs/coco
    python -m colorize_tf.train --backend jax --config photos --set data.source=photos/

The Keras backend is ``--backend``, else ``KERAS_BACKEND``, else Keras' default (TensorFlow).
What it writes into ``--workdir`` (default ``runs/<config name>``), and how a rerun resumes:
see ``colorize_tf.training.loop``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from colorize_tf.cli import common
from colorize_tf.config import ConfigError, load_config

BACKENDS = ("tensorflow", "jax")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = common.parser("python -m colorize_tf.train", __doc__)
    common.add_config_flags(parser, example="train.gan.epochs=5")
    parser.add_argument(
        "--workdir", default=None, help="where outputs go (default: runs/<config name>)"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="the Keras backend to train under (default: KERAS_BACKEND, else tensorflow)",
    )
    return parser.parse_args(argv)


def select_backend(backend: str | None) -> None:
    """Make ``backend`` Keras' backend; Keras reads it once, at its first import."""
    if backend is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise common.CommandError(
                f"--backend {backend}: Keras was already imported with the "
                f"{keras.backend.backend()!r} backend in this process; set KERAS_BACKEND={backend}"
            )
    os.environ["KERAS_BACKEND"] = backend


@common.command(ConfigError)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    select_backend(args.backend)
    from colorize_tf.data.spec import DataSourceError
    from colorize_tf.training import distribute, loop, recipe  # Keras starts here

    config = load_config(args.config, args.overrides)
    errors = (loop.ResumeError, distribute.StrategyError, recipe.NonFiniteLossError)
    with common.user_errors(DataSourceError, *errors):
        loop.run(config, args.workdir or os.path.join("runs", config.name))
    return common.EXIT_OK
