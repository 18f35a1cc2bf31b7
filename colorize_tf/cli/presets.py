"""``python -m colorize_tf.presets RUN_DIR OUT``: make a preset folder from a training run.

    python -m colorize_tf.presets runs/photos-gan my_preset --eval runs/eval \\
        --manifest training_photos.csv --set note="trained on PHOTOS"

The preset layout: see ``colorize_tf.models.presets``. ``preset_from_run`` lives here, not in
``models``: it reads a training run's files and loads its ``.keras`` file through
``colorize_tf.inference.loader``, which ``models`` may not import.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from colorize_tf.cli import common
from colorize_tf.inference.loader import load_keras_file
from colorize_tf.models import presets


def preset_from_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    evaluation: str | None = None,
    manifest: str | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """A training run's ``generator.keras`` -> a preset folder whose metadata records the
    run: its resolved config, the product's phase and epoch, the validation numbers (from
    ``summary.json``, and the ``evaluate`` report's ``metrics.json`` when given), the versions
    it was trained with, and the training photos' manifest (copied in as ``presets.MANIFEST_FILE``).
    """
    import keras

    run_dir, out = Path(run_dir), Path(out)
    generator = load_keras_file(run_dir / "generator.keras")
    summary = json.loads((run_dir / "summary.json").read_text())
    metadata: dict[str, Any] = {
        "name": out.name,
        "recipe": yaml.safe_load((run_dir / "config.yaml").read_text()),
        "training": {
            "steps": summary.get("step"),
            "product": summary.get("product"),
            "validation_during_training": summary.get("val"),
        },
        "versions": {"keras": keras.__version__, "python": platform.python_version()},
        "parameters": int(generator.count_params()),
    }
    try:
        import tensorflow as tf

        metadata["versions"]["tensorflow"] = tf.__version__
    except ImportError:
        pass
    if evaluation:
        metrics = json.loads((Path(evaluation) / "metrics.json").read_text())
        metadata["evaluation"] = {
            k: metrics[k] for k in ("count", "ours", "gray", "protocol") if k in metrics
        }
    metadata.update(extra or {})
    files = {}
    if manifest:
        metadata["training_photos"] = presets.MANIFEST_FILE
        files[presets.MANIFEST_FILE] = Path(manifest).read_text()
    return presets.save_preset(generator, out, metadata, overwrite=overwrite, files=files)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m colorize_tf.presets",
        description="Make a preset folder from a training run.",
    )
    parser.add_argument(
        "run_dir", help="a training workdir (generator.keras, config.yaml, summary.json)"
    )
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
    folder = preset_from_run(
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
