"""``python -m colorize_tf.jax_train``: the method's two phases under Keras' JAX backend.

    python -m colorize_tf.jax_train --set data.source=photos/ --out runs/jax --minutes 8
    python -m colorize_tf.jax_train --config quickstart --out runs/jax-quick   # config's steps

The schedule, the recipe and what it writes into ``--out``: see ``colorize_tf.training.jax_loop``.
Exits with 3 when a non-finite loss stopped training (the last finite weights are written).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from colorize_tf.cli import common
from colorize_tf.config import ConfigError, load_config
from colorize_tf.data import numpy_pipeline
from colorize_tf.training import jax_loop


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = common.parser("python -m colorize_tf.jax_train", __doc__)
    common.add_config_flags(parser, example="data.source=photos/")
    parser.add_argument(
        "--out", default=None, help="output folder (default: runs/<config name>-jax)"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="wall-clock budget of both phases (default: the config's step counts)",
    )
    parser.add_argument(
        "--pretrain-share", type=float, default=0.5, help="budget share of L1 pretraining"
    )
    parser.add_argument("--log-every", type=int, default=50, help="steps between log lines")
    parser.add_argument(
        "--eval-every", type=float, default=60.0, help="seconds between validations"
    )
    parser.add_argument(
        "--float16", action="store_true", help="also write a float16 copy of the weights"
    )
    parser.add_argument("--workers", type=int, default=0, help="crop threads (0: the CPU count)")
    parser.add_argument(
        "--loader-bench", type=float, default=0.0, help="seconds to time the loader first"
    )
    return parser.parse_args(argv)


@common.command(ConfigError, numpy_pipeline.DataSourceError, jax_loop.BackendError)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config(args.config, args.overrides)
    log = jax_loop.run(
        config,
        args.out or Path("runs") / f"{config.name}-jax",
        minutes=args.minutes,
        pretrain_share=args.pretrain_share,
        log_every=args.log_every,
        eval_every_s=args.eval_every,
        float16=args.float16,
        workers=args.workers,
        loader_bench_s=args.loader_bench,
    )
    return common.EXIT_STOPPED if log["stopped"] else common.EXIT_OK
