"""Input pipeline throughput: ours vs. the reference tutorial's PyTorch loader vs. bare decode.

    pip install torch==2.13.0        # the [bench] extra; CPU build
    python bench/data_pipeline.py --photos PHOTOS --epochs 3

All three read the same JPEG files (recursively under ``--photos``) with as many workers as
cores. Each makes one warm-up pass (which also warms the OS page cache), then ``--epochs``
timed passes, taking turns pass by pass so that other load on the machine hits all three.
Printed: images per second (wall) and CPU milliseconds per image (all threads and worker
processes, from /proc: Linux only), which a busy machine disturbs far less:

* ``torch``: a ``DataLoader`` doing per image what the reference tutorial does: PIL open,
  resize to 256x256 (bicubic), random horizontal flip, ``skimage.color.rgb2lab``,
  L / 50 - 1 and ab / 110, to tensor; ``num_workers`` = cores.
* ``ours``: ``colorize_tf.data.build_dataset(training=True)``: random 256 crops with scale
  jitter and flips, Lab in-graph via ``colorize_tf.color``. Steady state: the warm-up pass
  decoded each image, resized it to short side 320 and cached its Lab planes (float16) in
  memory; every pass then redoes the random crop, flip, resampling to 256 and batching. The
  warm-up pass itself (decode, resize, Lab of the whole image, cache fill) is printed too.
* ``decode``: ``tf.io.read_file`` + ``tf.io.decode_jpeg`` per file in a parallel ``tf.data``
  map, nothing else: the ceiling for any pipeline that decodes every epoch.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import sys
import time

import numpy as np

CROP = 256


class TutorialDataset:
    """The reference tutorial's ``ColorizationDataset`` (train transforms), without torchvision."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        import torch
        from PIL import Image, ImageOps
        from skimage.color import rgb2lab

        image = Image.open(self.paths[index]).convert("RGB")
        image = image.resize((CROP, CROP), Image.BICUBIC)
        if random.random() < 0.5:  # transforms.RandomHorizontalFlip()
            image = ImageOps.mirror(image)
        lab = rgb2lab(np.array(image)).astype("float32")  # (256, 256, 3)
        lab = torch.from_numpy(lab.transpose(2, 0, 1).copy())  # transforms.ToTensor(): CHW
        return {"L": lab[[0]] / 50.0 - 1.0, "ab": lab[[1, 2]] / 110.0}


def torch_pass(paths: list[str], workers: int, batch: int):
    """A function running one pass of the tutorial's loader; returns the images it yielded."""
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    loader = DataLoader(
        TutorialDataset(paths),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=True,  # no worker start-up cost inside the timed passes
    )
    return lambda: sum(int(b["L"].shape[0]) for b in loader)


def decode_pass(paths: list[str]):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: tf.shape(tf.io.decode_jpeg(tf.io.read_file(p), channels=3))[0],
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return lambda: sum(1 for _ in ds)


def ours_pass(root: str, batch: int):
    from colorize_tf import data

    ds = data.build_dataset(
        root, split="all", training=True, batch_size=batch, crop_size=CROP, cache=True
    )
    return lambda: sum(int(l_norm.shape[0]) for l_norm, _ in ds)


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its live children (the torch workers).

    Read from /proc (Linux): a busy shared machine slows wall time, not CPU time per image.
    """
    total = sum(os.times()[:2])
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == me:  # fields: state, ppid, ..., utime (12), stime (13)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _timed(run_pass) -> tuple[int, float, float]:
    """(images, wall seconds, CPU seconds) of one pass."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    count = run_pass()
    return count, time.perf_counter() - start, _cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", required=True, help="a photo folder (JPEGs)")
    parser.add_argument("--epochs", type=int, default=3, help="timed passes after warm-up")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    paths = sorted(glob.glob(os.path.join(args.photos, "**", "*.jpg"), recursive=True))
    if not paths:
        print(f"no .jpg files under {args.photos}", file=sys.stderr)
        return 2
    print(f"{len(paths)} JPEGs under {args.photos}; {args.workers} workers / cores; batch "
          f"{args.batch}; {CROP}x{CROP} outputs; 1 warm-up + {args.epochs} timed passes")  # fmt: skip
    # PyTorch first: its workers fork before TensorFlow starts its thread pools.
    passes = {
        "torch": torch_pass(paths, args.workers, args.batch),
        "decode": decode_pass(paths),
        "ours": ours_pass(args.photos, args.batch),
    }
    warm = {}
    for name, run_pass in passes.items():
        count, seconds, _ = _timed(run_pass)
        warm[name] = count / seconds
    # Timed passes take turns, so load from other processes on the machine hits all three alike.
    totals = {name: np.zeros(3) for name in passes}
    for _ in range(args.epochs):
        for name, run_pass in passes.items():
            totals[name] += _timed(run_pass)
    steady = {name: count / wall for name, (count, wall, _) in totals.items()}
    cpu_ms = {name: 1000 * cpu / count for name, (count, _, cpu) in totals.items()}
    load = os.getloadavg()[0]

    print(f"{'pipeline':<44}{'warm-up img/s':>14}{'steady img/s':>14}{'CPU ms/img':>12}")
    labels = {
        "torch": "torch DataLoader (tutorial per-image work)",
        "decode": "bare tf.io.decode_jpeg (ceiling)",
        "ours": "ours, build_dataset(training=True)",
    }
    for name, label in labels.items():
        print(f"{label:<44}{warm[name]:>14.1f}{steady[name]:>14.1f}{cpu_ms[name]:>12.2f}")
    for other, goal in (("torch", "goal >= 3x"), ("decode", "goal >= 0.8x")):
        print(
            f"ours / {other:<6}: {steady['ours'] / steady[other]:.2f}x images/s, "
            f"{cpu_ms[other] / cpu_ms['ours']:.2f}x images per CPU second ({goal})"
        )
    print(f"ours warm-up (incl. XLA compile, decode, resize, cache fill) / decode warm-up: "
          f"{warm['ours'] / warm['decode']:.2f}x")  # fmt: skip
    print(
        f"1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores "
        "(other processes share them: wall figures vary, CPU ms/img much less)"
    )
    print("ours caches (in memory): Lab planes (float16) of the decoded images resized to short "
          "side 320; every pass redoes random crop + flip + resampling to 256 + batching")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
