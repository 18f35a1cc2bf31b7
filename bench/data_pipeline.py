"""Input pipeline throughput: ours vs. the reference tutorial's PyTorch loader vs. bare decode.

    pip install torch==2.13.0        # the [bench] extra; CPU build
    python bench/data_pipeline.py --photos PHOTOS --epochs 3

All read the same JPEG files (recursively under ``--photos``). Each makes one warm-up pass
(which also warms the OS page cache), then ``--epochs`` timed passes, taking turns pass by pass
so that other load on the machine hits all alike.
Printed: images per second (wall) and CPU milliseconds per image (all threads and worker
processes, from /proc: Linux only), which a busy machine disturbs far less:

* ``torch WwxTt``: a ``DataLoader`` doing per image what the reference tutorial does: PIL open,
  resize to 256x256 (bicubic), random horizontal flip, ``skimage.color.rgb2lab``,
  L / 50 - 1 and ab / 110, to tensor; ``num_workers`` W, and T BLAS/OpenMP threads in each
  process that does the work (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
  ``MKL_NUM_THREADS`` set before NumPy loads; ``torch.set_num_threads``). Every configuration of
  ``--torch-configs`` runs in its own process (its workers forked from it, before TensorFlow
  starts), and the ratios are to the fastest one: the tutorial's loader at its best here. With
  more threads than cores per worker, workers x threads oversubscribe the cores.
* ``ours``: ``colorize_tf.data.pipeline.build_dataset(training=True)``: random 256 crops with scale
  jitter and flips, Lab in-graph via ``colorize_tf.core.color``. Steady state: the warm-up pass
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
# Tutorial loader configurations measured by default: DataLoader workers x BLAS/OpenMP threads
# per process (its main process when there are no workers).
DEFAULT_TORCH_CONFIGS = "0x1,0x2,1x1,1x2,2x1,2x2"


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


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _torch_worker_init(threads: int):
    def init(_worker_id: int) -> None:
        import torch

        torch.set_num_threads(threads)  # DataLoader sets 1; the BLAS limit came from the env

    return init


def torch_worker(photos: str, workers: int, threads: int, batch: int) -> int:
    """One tutorial-loader configuration in its own process, one pass per ``pass`` on stdin.

    The BLAS/OpenMP thread limits are set in the environment by the parent before this process
    imports NumPy, so the loader's processes (this one with 0 workers, else the forked workers)
    each run ``threads`` threads. Replies one JSON line per pass: images, wall s, CPU s.
    """
    import json

    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(threads)
    loader = DataLoader(
        TutorialDataset(_jpegs(photos)),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        worker_init_fn=_torch_worker_init(threads) if workers else None,
        persistent_workers=workers > 0,  # no worker start-up cost inside the timed passes
    )
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() != "pass":
            break
        count, wall, cpu = _timed(lambda: sum(int(b["L"].shape[0]) for b in loader))
        print(json.dumps([count, wall, cpu]), flush=True)
    return 0


class TorchConfig:
    """The parent's handle on one ``torch_worker`` process; ``run_pass`` is a pass function."""

    def __init__(self, photos: str, workers: int, threads: int, batch: int):
        import subprocess

        env = dict(os.environ, **{name: str(threads) for name in _THREAD_VARIABLES})
        self.name = f"torch {workers}w x {threads}t"
        self.workers, self.threads = workers, threads
        command = [sys.executable, os.path.abspath(__file__), "--photos", photos, "--batch",
                   str(batch), "--torch-worker", f"{workers}x{threads}"]  # fmt: skip
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError(f"{self.name}: the loader process did not start")
        self.cpu = 0.0  # CPU seconds of the last pass, as measured inside that process

    def run_pass(self) -> int:
        import json

        self.proc.stdin.write("pass\n")
        self.proc.stdin.flush()
        count, _, self.cpu = json.loads(self.proc.stdout.readline())
        return count

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _parse_configs(text: str) -> list[tuple[int, int]]:
    """'0x1,2x1' -> [(0, 1), (2, 1)]: DataLoader workers x BLAS/OpenMP threads per process."""
    configs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        workers, _, threads = item.partition("x")
        configs.append((int(workers), int(threads or 1)))
    return configs


def _jpegs(root: str) -> list[str]:
    return sorted(glob.glob(os.path.join(root, "**", "*.jpg"), recursive=True))


def decode_pass(paths: list[str]):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: tf.shape(tf.io.decode_jpeg(tf.io.read_file(p), channels=3))[0],
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return lambda: sum(1 for _ in ds)


def ours_pass(root: str, batch: int):
    from colorize_tf.data import pipeline as data

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
    """(images, wall seconds, CPU seconds) of one pass.

    A ``TorchConfig.run_pass`` runs in another process: its CPU time is the one that process
    measured (it and its loader workers), not this one's.
    """
    start, cpu = time.perf_counter(), _cpu_seconds()
    count = run_pass()
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    owner = getattr(run_pass, "__self__", None)
    return count, wall, (owner.cpu if isinstance(owner, TorchConfig) else cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", required=True, help="a photo folder (JPEGs)")
    parser.add_argument("--epochs", type=int, default=3, help="timed passes after warm-up")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--torch-configs",
        default=DEFAULT_TORCH_CONFIGS,
        help="tutorial loader configurations to measure, WORKERSxTHREADS comma-separated "
        "(DataLoader num_workers x BLAS/OpenMP threads per process); the fastest is the peer",
    )
    parser.add_argument("--torch-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_worker:
        ((workers, threads),) = _parse_configs(args.torch_worker)
        return torch_worker(args.photos, workers, threads, args.batch)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    paths = _jpegs(args.photos)
    if not paths:
        print(f"no .jpg files under {args.photos}", file=sys.stderr)
        return 2
    configs = _parse_configs(args.torch_configs)
    print(f"{len(paths)} JPEGs under {args.photos}; {os.cpu_count()} cores; batch {args.batch}; "
          f"{CROP}x{CROP} outputs; 1 warm-up + {args.epochs} timed passes; tutorial loader "
          f"configurations (workers x BLAS/OpenMP threads each): "
          f"{', '.join(f'{w}x{t}' for w, t in configs)}")  # fmt: skip
    # The PyTorch loaders are processes of their own, started before TensorFlow's thread pools.
    torch_configs = [TorchConfig(args.photos, w, t, args.batch) for w, t in configs]
    passes = {config.name: config.run_pass for config in torch_configs}
    passes["decode"] = decode_pass(paths)
    passes["ours"] = ours_pass(args.photos, args.batch)
    warm = {}
    for name, run_pass in passes.items():
        count, seconds, _ = _timed(run_pass)
        warm[name] = count / seconds
    # Timed passes take turns, so load from other processes on the machine hits all alike.
    totals = {name: np.zeros(3) for name in passes}
    for _ in range(args.epochs):
        for name, run_pass in passes.items():
            totals[name] += _timed(run_pass)
    for config in torch_configs:
        config.close()
    steady = {name: count / wall for name, (count, wall, _) in totals.items()}
    cpu_ms = {name: 1000 * cpu / count for name, (count, _, cpu) in totals.items()}
    load = os.getloadavg()[0]
    best = max((c.name for c in torch_configs), key=steady.get)

    print(f"{'pipeline':<46}{'warm-up img/s':>14}{'steady img/s':>14}{'CPU ms/img':>12}")
    labels = {c.name: f"{c.name} (tutorial's per-image work)" for c in torch_configs}
    labels["decode"] = "bare tf.io.decode_jpeg (ceiling)"
    labels["ours"] = "ours, build_dataset(training=True)"
    for name, label in labels.items():
        mark = "  <- fastest peer" if name == best else ""
        print(f"{label:<46}{warm[name]:>14.1f}{steady[name]:>14.1f}{cpu_ms[name]:>12.2f}{mark}")
    for other, goal in ((best, "goal >= 3x"), ("decode", "goal >= 0.8x")):
        print(
            f"ours / {other}: {steady['ours'] / steady[other]:.2f}x images/s, "
            f"{cpu_ms[other] / cpu_ms['ours']:.2f}x images per CPU second ({goal})"
        )
    print(f"ours warm-up (incl. XLA compile, decode, resize, cache fill) / decode warm-up: "
          f"{warm['ours'] / warm['decode']:.2f}x")  # fmt: skip
    print(
        f"1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores "
        "(other processes share them: wall figures vary, CPU ms/img much less)"
    )
    print("ours caches (in memory): Lab planes (float16) of the decoded images resized to short "
          "side 320; every pass redoes random crop + flip + resampling to 256 + "
          "batching")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
