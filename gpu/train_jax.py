"""Train the generator under Keras' JAX backend on a GPU machine that has JAX but no TensorFlow.

    KERAS_BACKEND=jax python gpu/train_jax.py --photos PHOTOS --out RESULTS --minutes 8
    KERAS_BACKEND=jax python gpu/train_jax.py --photos PHOTOS --out RESULTS \\
        --minutes 0.2 --width 0.0625 --size 64 --batch 4 --imagenet none        # CPU smoke

1. Looks for a ResNet-18 ImageNet checkpoint in the machine's torch / timm caches
   (``imagenet_resnet18.find_checkpoint``, a bounded walk of seconds); if one is found and the
   width is 1.0, converts it to numpy in a separate process (torch and JAX never share a
   process, nor their CUDA libraries) and maps it onto our encoder (``.weights.h5``).
2. Trains with ``colorize_tf.training.jax_loop.run`` on the photos' training split (the project's
   deterministic split holds out the validation tenth), under ``mixed_bfloat16``, for
   ``--minutes`` of wall clock split between the phases, with the paper's optimizers
   (quickstart config: Adam 1e-4 / 0.9 pretraining, Adam 2e-4 / 0.5 GAN, lambda 100).
3. Writes into ``--out``: the generator's weights (float32, and a float16 copy half the size),
   ``generator.json`` (how to rebuild it) and ``train_log.json``. Every command of the package
   (``colorize``, ``evaluate``, ``export``) takes that folder as ``--model``, under any backend.
"""

from __future__ import annotations

import argparse
import json
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

from colorize_tf.config import load_config  # noqa: E402
from colorize_tf.training import jax_loop as jax_train  # noqa: E402


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
    parser.add_argument("--out", required=True, help="the results folder (RESULTS)")
    parser.add_argument("--minutes", type=float, default=8.0, help="wall clock of both phases")
    parser.add_argument("--pretrain-share", type=float, default=0.5)
    parser.add_argument("--width", type=float, default=1.0, help="model.width (1.0: ResNet-18)")
    parser.add_argument("--size", type=int, default=256, help="crop side (multiple of 32)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "none"])
    parser.add_argument("--imagenet", default="auto", help="auto | none | a checkpoint path")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--eval-every", type=float, default=60.0)
    parser.add_argument(
        "--loader-bench", type=float, default=3.0, help="seconds timing the loader alone"
    )
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
        f"data.batch_size={args.batch}", "data.val_batch_size=8", f"model.width={args.width}",
        f"runtime.mixed_precision={args.precision}",
        f"model.encoder_weights={encoder_file or 'none'}", *args.overrides,
    ]  # fmt: skip
    config = load_config("quickstart", overrides)
    log = jax_train.run(config, out, minutes=args.minutes, pretrain_share=args.pretrain_share,
                        log_every=args.log_every, eval_every_s=args.eval_every, float16=True,
                        loader_bench_s=args.loader_bench)  # fmt: skip
    log["imagenet_encoder"] = imagenet_note
    (out / jax_train.LOG_FILE).write_text(json.dumps(log, indent=2))
    _log(f"{', '.join(log['files'])} and {jax_train.LOG_FILE} written to {out}")
    return 3 if log["stopped"] else 0


if __name__ == "__main__":
    sys.exit(main())
