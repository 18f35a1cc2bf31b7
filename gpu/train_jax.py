"""Train the generator under Keras' JAX backend on a GPU machine that has JAX but no TensorFlow.

    python gpu/train_jax.py --photos PHOTOS --out RESULTS --set train.gan.epochs=4
    python gpu/train_jax.py --photos PHOTOS --out RESULTS --width 0.0625 --size 64 --batch 4 \\
        --imagenet none --set train.pretrain.epochs=1 --set train.gan.epochs=1   # CPU smoke

1. Looks for a ResNet-18 ImageNet checkpoint in the machine's torch / timm caches
   (``imagenet_resnet18.find_checkpoint``, a bounded walk of seconds); if one is found and the
   width is 1.0, converts it to numpy in a separate process (torch and JAX never share a
   process, nor their CUDA libraries) and maps it onto our encoder (``.weights.h5``).
2. Runs ``python -m colorize_tf.train --backend jax`` (the one training loop) with the
   ``photos`` recipe on the photo folder, under ``mixed_bfloat16``, with these flags as
   overrides; ``--set`` adds more (epochs, steps per epoch).
3. The run folder ``--out`` is the training command's workdir: checkpoints (rerun to resume),
   ``summary.json``, ``history_*.csv`` and ``model/``, a preset folder that every command
   (``colorize``, ``evaluate``, ``export``) takes as ``--model``, under any backend.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(REPO),
    str(Path(__file__).resolve().parent),
]  # colorize_tf is not installed there

import imagenet_resnet18  # noqa: E402
import numpy as np  # noqa: E402

from colorize_tf.cli import train  # noqa: E402


def _log(message: str) -> None:
    print(f"[train_jax] {message}", flush=True)


def imagenet_encoder(choice: str, width: float, workdir: Path) -> tuple[str | None, str]:
    """(``encoder_weights`` file or None, a note for the log) for ``--imagenet`` auto|none|PATH."""
    if choice == "none":
        return None, "not asked for"
    started = time.perf_counter()
    checkpoint = imagenet_resnet18.find_checkpoint() if choice == "auto" else Path(choice)
    if checkpoint is None:
        return (
            None,
            f"no ResNet-18 checkpoint in {[str(d) for d in imagenet_resnet18.cache_dirs()]}",
        )
    if width != 1.0:
        return None, f"found {checkpoint}, unused: ImageNet weights need --width 1.0"
    npz = workdir / "resnet18_state.npz"
    script = Path(imagenet_resnet18.__file__)
    subprocess.run([sys.executable, str(script), "to-npz", str(checkpoint), str(npz)], check=True)
    with np.load(npz) as state:
        path = imagenet_resnet18.save_encoder_file(
            dict(state), workdir / "encoder_imagenet.weights.h5"
        )
    return str(path), f"{checkpoint} (mapped in {time.perf_counter() - started:.1f} s)"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", required=True, help="a folder of color photos (PHOTOS)")
    parser.add_argument("--out", required=True, help="the run folder (RESULTS)")
    parser.add_argument("--width", type=float, default=1.0, help="model.width (1.0: ResNet-18)")
    parser.add_argument("--size", type=int, default=256, help="crop side (multiple of 32)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "none"])
    parser.add_argument("--imagenet", default="auto", help="auto | none | a checkpoint path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    encoder_file, imagenet_note = imagenet_encoder(args.imagenet, args.width, out)
    _log(f"ImageNet encoder: {imagenet_note}")
    overrides = [
        "name=gpu-jax", f"data.source={Path(args.photos).resolve()}", f"data.crop_size={args.size}",
        f"data.batch_size={args.batch}", f"model.width={args.width}",
        f"runtime.mixed_precision={args.precision}",
        f"model.encoder_weights={encoder_file or 'none'}", *args.overrides,
    ]  # fmt: skip
    argv = ["--backend", "jax", "--config", "photos", "--workdir", str(out)]
    return train.main(argv + [flag for o in overrides for flag in ("--set", o)])


if __name__ == "__main__":
    sys.exit(main())
