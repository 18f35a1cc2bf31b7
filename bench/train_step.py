"""GAN training-step time: ``ColorizationGAN.train_step`` (fp32 / bf16, with and without XLA)
against the same architecture's step in PyTorch, on this machine's CPU.

    pip install torch==2.13.0        # the [bench] extra; CPU build
    python bench/train_step.py                            # batch 16, 256x256: ~12+ min on 2 cores
    python bench/train_step.py --size 128 --batch 4       # a quick look
    python bench/train_step.py --variants torch,bf16 --steps 5 --warmup 2

What one step is, in every variant: one discriminator update (BCE-with-logits on real and on
detached fake pairs, halved) then one generator update (adversarial BCE + 100 * L1), Adam 2e-4,
betas (0.5, 0.999), the generator's forward pass shared by both, on one in-memory batch of
random normalized L (batch, S, S, 1) and ab (batch, S, S, 2) in [-1, 1].

* ``fp32``, ``bf16``, ``fp32-xla``, ``bf16-xla``: our ``build_generator`` / ``build_discriminator``
  in ``ColorizationGAN.compile(..., jit_compile=False|True)`` under the float32 or
  ``mixed_bfloat16`` global policy (``colorize_tf.distribute.set_precision``), run by Keras'
  own ``fit`` on a repeated ``tf.data`` batch. A callback times each step from
  ``on_train_batch_begin`` to ``on_train_batch_end`` (after reading a loss back, so the step
  has finished); TF's default thread pools (inter/intra = number of cores).
* ``torch``: ``bench/torch_reference.py``, a layer-for-layer PyTorch twin of the two networks
  (NCHW, fp32) trained as the reference tutorial's ``MainModel.optimize`` does;
  ``torch.set_num_threads(--torch-threads)``, all cores by default. ``torch-1t``: the same
  with one thread (not run by default); OpenMP's two threads can lose to one when other
  processes hold a core, so on a busy machine it is the fairer yardstick.

Each variant runs in its own fresh subprocess (the Keras dtype policy is global, and no
variant should inherit another's memory or thread pools). Each makes ``--warmup`` untimed
steps (the first one traces and, with XLA, compiles) and then ``--steps`` timed ones.
``--schedule sequential`` (default) runs one variant to the end before starting the next.
``--schedule turns`` keeps all variants alive and has them take turns step by step, so load
from other processes that comes and goes hits every variant alike; only one steps at a time,
but each idle process keeps its memory: at batch 16, 256x256 about 5 GB per TF variant and
1.4 GB for torch (measured), so use it at small sizes or on a machine with room to spare.

Printed: parameter counts of both twins (they must match), then per variant the median and
min step time, images/s at the median, the ratio of median and min to the ``torch`` row, and
whether the best Keras variant reaches the goal ``median <= 0.7 x torch``. The 1-minute load
average during the timed steps is printed too: above the core count, other work was running.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# name -> (precision for set_precision, jit_compile) for Keras, ("torch", threads) for PyTorch;
# threads None means --torch-threads.
VARIANTS = {
    "torch": ("torch", None),
    "fp32": ("none", False),
    "bf16": ("bf16", False),
    "fp32-xla": ("none", True),
    "bf16-xla": ("bf16", True),
    "torch-1t": ("torch", 1),
}
DEFAULT_VARIANTS = ("torch", "fp32", "bf16", "fp32-xla", "bf16-xla")
REFERENCE = "torch"
GOAL_RATIO = 0.7
LEARNING_RATE, BETA_1, BETA_2, L1_WEIGHT = 2e-4, 0.5, 0.999, 100.0
_READY, _STEP, _RESULT = "READY ", "STEP ", "RESULT "


# --- worker side: one variant, driven one step at a time through stdin ------------------------


def random_batch(batch: int, size: int, seed: int = 0):
    """Normalized L (batch, size, size, 1) and ab (batch, size, size, 2), uniform in [-1, 1]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    l_norm = rng.uniform(-1, 1, (batch, size, size, 1)).astype("float32")
    ab = rng.uniform(-1, 1, (batch, size, size, 2)).astype("float32")
    return l_norm, ab


def _send(tag: str, payload) -> None:
    print(tag + json.dumps(payload), flush=True)


def _wait_for_turn() -> None:
    """Block until the parent says ``step``; end quietly if it has gone."""
    if sys.stdin.readline().strip() != "step":
        sys.exit(0)


def _step_done(start: float) -> None:
    _send(_STEP, {"seconds": time.perf_counter() - start, "load": os.getloadavg()[0]})


def _finish(losses: dict) -> None:
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    _send(_RESULT, {"losses": losses, "peak_rss_mib": peak_mib})


def run_keras(variant: str, args: argparse.Namespace) -> None:
    """Build our GAN and ``fit`` it for warmup + steps steps, one step per turn."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from colorize_tf.distribute import make_optimizer, set_precision
    from colorize_tf.gan import ColorizationGAN
    from colorize_tf.models import build_discriminator, build_generator, count_params

    precision, xla = VARIANTS[variant]
    keras.utils.set_random_seed(0)
    policy = set_precision(precision)
    generator = build_generator(args.size)
    discriminator = build_discriminator(args.size)
    gan = ColorizationGAN(generator, discriminator)
    gan.compile(
        make_optimizer(LEARNING_RATE, BETA_1, BETA_2),
        make_optimizer(LEARNING_RATE, BETA_1, BETA_2),
        l1_weight=L1_WEIGHT,
        phase="gan",
        jit_compile=xla,  # explicit: "auto" means no XLA on a CPU-only machine
        steps_per_execution=1,
    )
    threads = tf.config.threading
    ready = {
        "params": {
            "generator": list(count_params(generator)),
            "discriminator": list(count_params(discriminator)),
        },
        "detail": f"policy {policy}, jit_compile={gan.jit_compile}, TF inter/intra threads "
        f"{threads.get_inter_op_parallelism_threads()}/"
        f"{threads.get_intra_op_parallelism_threads()} (0 = all cores)",
    }

    class TurnTimer(keras.callbacks.Callback):
        """Waits for its turn before each batch, then reports the batch's wall time."""

        def __init__(self):
            super().__init__()
            self.losses: dict = {}
            self._start = 0.0

        def on_train_begin(self, logs=None):
            _send(_READY, ready)

        def on_train_batch_begin(self, batch, logs=None):
            _wait_for_turn()
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            # float() waits for the values: the step has finished when the clock stops.
            self.losses = {k: float(v) for k, v in logs.items() if k in ("d_loss", "g_loss")}
            _step_done(self._start)

    dataset = tf.data.Dataset.from_tensors(random_batch(args.batch, args.size)).repeat()
    timer = TurnTimer()
    gan.fit(
        dataset,
        epochs=1,
        steps_per_epoch=args.warmup + args.steps,
        callbacks=[timer],
        shuffle=False,  # one repeated batch; nothing to shuffle
        verbose=0,
    )
    _finish(timer.losses)


def run_torch(variant: str, args: argparse.Namespace) -> None:
    """Build the PyTorch twin and run the tutorial's step warmup + steps times, one per turn."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_reference import PatchDiscriminator, TutorialGAN, UNetGenerator, count_params

    torch.manual_seed(0)
    torch.set_num_threads(VARIANTS[variant][1] or args.torch_threads)
    generator, discriminator = UNetGenerator(), PatchDiscriminator()
    params = {
        "generator": list(count_params(generator)),
        "discriminator": list(count_params(discriminator)),
    }
    gan = TutorialGAN(generator, discriminator, l1_weight=L1_WEIGHT)
    l_norm, ab = (
        torch.from_numpy(x.transpose(0, 3, 1, 2).copy())  # NHWC -> NCHW
        for x in random_batch(args.batch, args.size)
    )
    detail = f"torch {torch.__version__}, {torch.get_num_threads()} threads, NCHW fp32"
    _send(_READY, {"params": params, "detail": detail})
    losses = {}
    for _ in range(args.warmup + args.steps):
        _wait_for_turn()
        start = time.perf_counter()
        losses = gan.step(l_norm, ab)  # returns Python floats: the step has finished
        _step_done(start)
    _finish(losses)


# --- parent side: start the workers, hand out turns, print the table ---------------------------


class Worker:
    """One variant's subprocess; ``step()`` runs one training step in it and returns seconds."""

    def __init__(self, variant: str, args: argparse.Namespace):
        self.variant, self.failed = variant, False
        self.seconds: list[float] = []
        self.load: list[float] = []
        self.result: dict = {}
        command = [sys.executable, os.path.abspath(__file__), "--worker", variant]
        for flag in ("steps", "warmup", "batch", "size", "torch_threads"):
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.info = self._read(_READY) or {}

    def _read(self, tag: str) -> dict | None:
        """The payload of the next ``tag`` line (other stdout lines pass through to stderr)."""
        for line in self.proc.stdout:
            if line.startswith(tag):
                return json.loads(line[len(tag) :])
            print(f"[{self.variant}] {line.rstrip()}", file=sys.stderr)
        self.failed = True
        _log(self.variant, f"FAILED: the process ended (exit code {self.proc.wait()})")
        return None

    def step(self, warmup: bool) -> None:
        if self.failed:
            return
        try:
            self.proc.stdin.write("step\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the process has ended; _read says so
        reply = self._read(_STEP)
        if reply is None:
            return
        if not warmup:
            self.seconds.append(reply["seconds"])
            self.load.append(reply["load"])
        kind = "warm-up" if warmup else "timed"
        _log(self.variant, f"step ({kind}): {reply['seconds']:.2f} s, load avg {reply['load']:.1f}")
        if warmup and not self.result.get("first"):
            self.result["first"] = reply["seconds"]

    def finish(self) -> None:
        if not self.failed:
            self.result.update(self._read(_RESULT) or {})
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait()
        self.result["wall"] = time.perf_counter() - self.started


def _log(variant: str, message: str) -> None:
    print(f"[{variant}] {message}", file=sys.stderr, flush=True)


def run_all(args: argparse.Namespace) -> list[Worker]:
    """Run every variant: in turns (all alive, one step each per round) or one after another."""
    done: list[Worker] = []
    if args.schedule == "turns":
        workers = []
        for variant in args.variants:  # built one at a time, so builds do not overlap either
            _log(variant, "starting a fresh process")
            workers.append(Worker(variant, args))
        for index in range(args.warmup + args.steps):
            for worker in workers:
                worker.step(warmup=index < args.warmup)
        for worker in workers:
            worker.finish()
        return workers
    for variant in args.variants:
        _log(variant, "starting a fresh process")
        worker = Worker(variant, args)
        for index in range(args.warmup + args.steps):
            worker.step(warmup=index < args.warmup)
        worker.finish()
        done.append(worker)
    return done


def _format_params(params: dict) -> str:
    g, d = params["generator"], params["discriminator"]
    return f"G {g[0]:,} + {g[1]:,} BN stats, D {d[0]:,} + {d[1]:,} BN stats"


def report(workers: list[Worker], args: argparse.Namespace) -> None:
    """Print parameter counts, the setup of each variant, the timing table and the verdict."""
    ok = {w.variant: w for w in workers if not w.failed and w.seconds}
    print(
        f"\nbatch {args.batch}, {args.size}x{args.size}, {args.warmup} warm-up + {args.steps} "
        f"timed steps per variant, schedule {args.schedule}, {os.cpu_count()} CPU cores\n"
    )
    print("Parameter counts (trainable + BN moving statistics):")
    reference = ok[REFERENCE].info["params"] if REFERENCE in ok else None
    for name, w in ok.items():
        same = (
            ""
            if reference is None
            else ("  (= torch)" if w.info["params"] == reference else "  MISMATCH")
        )
        print(f"  {name:9s} {_format_params(w.info['params'])}{same}")

    print("\nSetup (load avg: mean of the 1-minute load average over the timed steps):")
    for name, w in ok.items():
        losses = ", ".join(f"{k} {v:.3f}" for k, v in sorted(w.result.get("losses", {}).items()))
        print(
            f"  {name:9s} {w.info['detail']}; load avg {statistics.mean(w.load):.1f}; first step "
            f"{w.result.get('first', float('nan')):.1f} s; peak RSS "
            f"{w.result.get('peak_rss_mib', float('nan')):.0f} MiB; last losses {losses}"
        )

    ref = ok.get(REFERENCE)
    ref_median = statistics.median(ref.seconds) if ref else float("nan")
    ref_min = min(ref.seconds) if ref else float("nan")
    header = (
        f"{'variant':9s} {'median s':>9s} {'min s':>8s} {'img/s':>7s} "
        f"{'median/torch':>13s} {'min/torch':>10s}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    best = None
    for name, w in ok.items():
        median, fastest = statistics.median(w.seconds), min(w.seconds)
        print(
            f"{name:9s} {median:9.2f} {fastest:8.2f} {args.batch / median:7.2f} "
            f"{median / ref_median:12.2f}x {fastest / ref_min:9.2f}x"
        )
        if VARIANTS[name][0] != "torch" and (best is None or median < best[1]):
            best = (name, median)
    if best is None or ref is None:
        return
    for name, w in ok.items():
        if VARIANTS[name][0] != "torch":
            continue
        ratio = best[1] / statistics.median(w.seconds)
        verdict = "MET" if ratio <= GOAL_RATIO else "NOT met"
        print(
            f"\nGoal: best Keras variant <= {GOAL_RATIO}x the {name} step time: {verdict} "
            f"({best[0]} {best[1]:.2f} s = {ratio:.2f}x {name}'s {statistics.median(w.seconds):.2f} s)"
        )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="image side, a multiple of 32")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from {list(VARIANTS)}; ratios are to 'torch'",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=os.cpu_count(),
        help="torch.set_num_threads for 'torch' (default: all cores, as TF uses)",
    )
    parser.add_argument(
        "--schedule",
        choices=("sequential", "turns"),
        default="sequential",
        help="one variant after another, or all alive taking turns step by step (more memory)",
    )
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variants = list(dict.fromkeys(v.strip() for v in args.variants.split(",") if v.strip()))
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.warmup < 1 or args.steps < 1:
        parser.error(f"--warmup and --steps must be >= 1; got {args.warmup}, {args.steps}")
    if args.size % 32 or args.size < 32:
        parser.error(f"--size must be a multiple of 32 (the encoder's stride); got {args.size}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        (run_torch if VARIANTS[args.worker][0] == "torch" else run_keras)(args.worker, args)
        return 0
    workers = run_all(args)
    report(workers, args)
    return 1 if any(w.failed for w in workers) else 0


if __name__ == "__main__":
    sys.exit(main())
