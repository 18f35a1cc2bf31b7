"""``python -m colorize_tf.export``: a trained generator -> SavedModel and TFLite files.

    python -m colorize_tf.export --model runs/quickstart/model --out exports/quickstart
    python -m colorize_tf.export --model g.keras --out exp --formats tflite --precisions int8 \\
        --calibration /path/to/photos --calibration-images 200 --calibration-percentile 99.95
    python -m colorize_tf.export --web site   # the in-browser colorizer, a static folder

``--model`` is any form a Keras generator is rebuilt from (a ``.keras`` file, a preset folder or
name, a JAX weights folder), loaded by ``colorize_tf.inference.loader.load_generator``. The files
written and their checks: see ``colorize_tf.export.export_lib``; with ``--web``, the static folder
of ``colorize_tf.export.web`` (docs/web.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from colorize_tf.cli import common
from colorize_tf.export import export_lib, tflite, web
from colorize_tf.inference import loader


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize-tf-export",
        description="Export a generator to a SavedModel and TFLite files (see the module doc).",
    )
    common.add_model_flag(parser, keras_only=True)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="output directory")
    target.add_argument(
        "--web",
        metavar="DIR",
        help="write the in-browser colorizer (page, LiteRT.js, colorize_web.tflite) to DIR, a "
        "static folder for any web server, instead of the files of --out",
    )
    parser.add_argument(
        "--web-precision",
        choices=web.WEB_PRECISIONS,
        default=web.DEFAULT_WEB_PRECISION,
        help=f"weights of colorize_web.tflite (default: {web.DEFAULT_WEB_PRECISION})",
    )
    parser.add_argument(
        "--formats",
        type=_csv,
        default=list(export_lib.FORMATS),
        help="comma-separated: savedmodel,tflite (default: both)",
    )
    parser.add_argument(
        "--contracts",
        type=_csv,
        default=list(tflite.CONTRACTS),
        help="TFLite contracts: colorize_rgb,predict_ab (default: both)",
    )
    parser.add_argument(
        "--precisions",
        type=_csv,
        default=list(tflite.TFLITE_PRECISIONS),
        help="TFLite precisions: fp32,fp16,int8 (default: all)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="network input size, a multiple of 32 (default: the size the model was trained at)",
    )
    parser.add_argument(
        "--calibration",
        default="samples",
        help="int8 calibration photos: a data source (folder, 'samples', "
        "tfrecord:..., tfds:...; default: samples)",
    )
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=tflite.DEFAULT_CALIBRATION_IMAGES,
        help=f"crops drawn for calibration (default: {tflite.DEFAULT_CALIBRATION_IMAGES})",
    )
    parser.add_argument(
        "--calibration-percentile",
        type=float,
        default=tflite.CALIBRATION_PERCENTILE,
        help="int8 activation ranges: this percentile of the calibration values, not their "
        f"min/max (100: min/max; default: {tflite.CALIBRATION_PERCENTILE})",
    )
    parser.add_argument(
        "--no-xla",
        action="store_true",
        help="SavedModel without XLA kernels (for runtimes built without XLA)",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the PSNR check against the Keras generator"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    return parser.parse_args(argv)


@common.command(
    export_lib.ExportError, web.WebExportError, ValueError, FileNotFoundError, ImportError
)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = args.model or loader.default_model()
    generator = loader.load_generator(model_path)
    if args.web:
        web.write_web(
            generator,
            args.web,
            precision=args.web_precision,
            size=args.size,
            check=not args.no_check,
            overwrite=args.overwrite,
            model_name=Path(model_path).name,
        )
        return common.EXIT_OK
    export_lib.export(
        generator,
        args.out,
        formats=args.formats,
        contracts=args.contracts,
        precisions=args.precisions,
        size=args.size,
        calibration=args.calibration,
        calibration_count=args.calibration_images,
        calibration_percentile=args.calibration_percentile,
        xla=not args.no_xla,
        check=not args.no_check,
        overwrite=args.overwrite,
        model_path=model_path,
    )
    return common.EXIT_OK
