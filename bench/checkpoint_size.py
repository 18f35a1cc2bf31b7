"""Checkpoint size and write time of the full model in each phase, as ``train.py`` writes them.

    python bench/checkpoint_size.py                  # width 1.0, batch 16, 256x256: minutes
    python bench/checkpoint_size.py --batch 4        # quicker; sizes do not depend on the batch

Builds ``coco_paper``'s networks (random encoder weights: the sizes are the same), the three
Adam optimizers as ``train.py`` does, and runs ``--steps`` real training steps of each phase on
one random batch so the Adam moments hold real values (zeros would compress unfairly). Then,
per phase, writes the checkpoint ``train.py`` writes (``checkpoint.phase_groups``) with
``np.savez`` and, for comparison, ``np.savez_compressed``, and prints file sizes, write and
restore times, and the old layout (both networks + all three optimizers) beside them. The
median time of the timed steps is printed too (fp32, this machine's CPU): their ratio sets the
pretraining figure in ``colorize_tf.training.distribute.CPU_SECONDS_PER_STEP``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from colorize_tf.config import load_config
from colorize_tf.models import build_models
from colorize_tf.training import checkpoint, recipe
from colorize_tf.training.gan import ColorizationGAN

MB = 1e6


def _arrays(groups: dict) -> dict:
    return {key: np.asarray(v.numpy()) for key, v in checkpoint._named_variables(groups)}


def _timed_write(arrays: dict, compressed: bool) -> tuple[int, float]:
    buffer = io.BytesIO()
    start = time.perf_counter()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return len(buffer.getvalue()), time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2, help="steps per phase (the first traces)")
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args(argv)

    config = load_config("coco_paper", ["model.encoder_weights=none", f"model.width={args.width}"])
    keras.utils.set_random_seed(0)
    generator, discriminator = build_models(config)
    gan = ColorizationGAN(generator, discriminator)
    p, g = config.train.pretrain, config.train.gan
    optimizers = {
        "pretrain": recipe.make_optimizer(p.learning_rate, p.beta_1, p.beta_2),
        "g_gan": recipe.make_optimizer(g.learning_rate, g.beta_1, g.beta_2),
        "d_gan": recipe.make_optimizer(g.learning_rate, g.beta_1, g.beta_2),
    }
    for name, optimizer in optimizers.items():
        optimizer.build((discriminator if name == "d_gan" else generator).trainable_variables)
    rng = np.random.default_rng(0)
    batch = (
        tf.constant(rng.uniform(-1, 1, (args.batch, args.size, args.size, 1)), tf.float32),
        tf.constant(rng.uniform(-0.3, 0.3, (args.batch, args.size, args.size, 2)), tf.float32),
    )
    print(
        f"generator {generator.count_params():,} parameters, discriminator "
        f"{discriminator.count_params():,}; batch {args.batch}, {args.size}x{args.size}, fp32"
    )

    results = {}
    for phase in ("pretrain", "gan"):
        gan.compile(
            optimizers["pretrain" if phase == "pretrain" else "g_gan"],
            optimizers["d_gan"] if phase == "gan" else None,
            phase=phase,
        )
        step = tf.function(gan.train_step)
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            float(step(batch)["g_l1"])
            times.append(time.perf_counter() - start)
        groups = checkpoint.phase_groups(phase, generator, discriminator, optimizers)
        arrays = _arrays(groups)
        size, write_s = _timed_write(arrays, compressed=False)
        zsize, zwrite_s = _timed_write(arrays, compressed=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = checkpoint.save(tmp, 1, groups, {"phase": phase})
            on_disk = os.path.getsize(path)
            start = time.perf_counter()
            checkpoint.restore(path, groups)
            restore_s = time.perf_counter() - start
        timed = times[1:] or times
        results[phase] = {
            "file_mb": on_disk / MB,
            "savez_mb": size / MB,
            "savez_s": write_s,
            "savez_compressed_mb": zsize / MB,
            "savez_compressed_s": zwrite_s,
            "restore_s": restore_s,
            "arrays": len(arrays),
            "step_s_median": statistics.median(timed),
            "steps_timed": len(timed),
        }
        print(
            f"{phase:9s} checkpoint {on_disk / MB:7.1f} MB ({len(arrays)} arrays), np.savez "
            f"{write_s:5.2f} s; savez_compressed {zsize / MB:7.1f} MB "
            f"({100 * (1 - zsize / size):.1f} % smaller) in {zwrite_s:5.2f} s; restore "
            f"{restore_s:5.2f} s; train step {statistics.median(timed):6.2f} s "
            f"(median of {len(timed)})"
        )
    everything = {
        "generator": generator,
        "discriminator": discriminator,
        **{f"optimizer_{k}": v for k, v in optimizers.items()},
    }
    old_size, _ = _timed_write(_arrays(everything), compressed=False)
    results["all_groups_mb"] = old_size / MB
    print(f"before (both networks + all three optimizers): {old_size / MB:7.1f} MB")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
