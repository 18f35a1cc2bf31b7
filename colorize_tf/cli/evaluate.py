"""``python -m colorize_tf.evaluate``: ours vs the gray baseline on the same crops, with a report.

    python -m colorize_tf.evaluate --model runs/quickstart/model --data samples \\
        --out runs/eval
    python -m colorize_tf.evaluate --model exported/colorizer_fp32_rgb.tflite --data /photos \\
        --split all --out runs/eval-tflite --limit 200 --full-res

The protocol and the report's files: see ``colorize_tf.evaluation.protocol``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from colorize_tf.cli import common
from colorize_tf.config import PROTOCOL_SIZE
from colorize_tf.data.spec import SPLITS
from colorize_tf.evaluation import protocol


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = common.parser("python -m colorize_tf.evaluate", __doc__)
    common.add_model_flag(parser)
    parser.add_argument(
        "--data",
        default="samples",
        help="any source colorize_tf.data.pipeline reads (default: samples)",
    )
    parser.add_argument(
        "--split",
        default="val",
        choices=SPLITS,
        help="which part of a folder to score: report (seen by neither training nor its "
        "choice of epoch), val (chose the epoch), train, all (default: val)",
    )
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--limit", type=int, default=0, help="score at most N images (0: all)")
    parser.add_argument(
        "--size",
        type=int,
        default=PROTOCOL_SIZE,
        help=f"crop size of the protocol (default: {PROTOCOL_SIZE})",
    )
    parser.add_argument(
        "--model-size",
        type=int,
        default=None,
        help="network input size (default: the size the model was trained at)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--full-res", action="store_true", help="also score full-resolution outputs"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="the deterministic split's validation share (as in training)",
    )
    return parser.parse_args(argv)


@common.command(FileNotFoundError, ValueError, ImportError)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    summary = protocol.evaluate(
        args.model,
        args.data,
        Path(args.out),
        split=args.split,
        size=args.size,
        limit=args.limit,
        batch_size=args.batch_size,
        full_res=args.full_res,
        val_fraction=args.val_fraction,
        model_size=args.model_size,
    )
    print(protocol.markdown_table(summary))
    print(f"report written to {args.out}")
    return common.EXIT_OK
