"""GAN training-step time: ``ColorizationGAN.train_step`` (fp32 / bf16, XLA, fused BN, threads)
against the same architecture's step in PyTorch at its best, on this machine's CPU.

    pip install torch==2.13.0        # the [bench] extra; CPU build
    python bench/train_step.py                            # batch 16, 256x256: ~12+ min on 2 cores
    python bench/train_step.py --size 128 --batch 4       # a quick look
    python bench/train_step.py --variants torch-cl-bf16,fp32,fp32-fbn --schedule turns
    python bench/train_step.py --variants bf16 --steps 1 --warmup 1 --profile /tmp/prof

What one step is, in every variant: one discriminator update (BCE-with-logits on real and on
detached fake pairs, halved) then one generator update (adversarial BCE + 100 * L1), Adam 2e-4,
betas (0.5, 0.999), the generator's forward pass shared by both, on one in-memory batch of
random normalized L (batch, S, S, 1) and ab (batch, S, S, 2) in [-1, 1].

* ``fp32``, ``bf16``, ``fp32-xla``, ``bf16-xla``: our ``build_generator`` /
  ``build_discriminator`` in ``ColorizationGAN.compile(..., jit_compile=False|True)`` under the
  float32 or ``mixed_bfloat16`` global policy (``colorize_tf.training.distribute.set_precision``),
  run by Keras' own ``fit`` on a repeated ``tf.data`` batch. A callback times each step from
  ``on_train_batch_begin`` to ``on_train_batch_end`` (after reading a loss back, so the step
  has finished); TF's default thread pools (inter/intra = number of cores).
  ``fp32-fbn``, ``bf16-fbn``: the same with ``compile(fused_batch_norm=True)`` (config
  ``runtime.fused_batch_norm``: one fused BatchNormalization kernel per layer, same maths);
  ``*-inter1``: one inter-op thread (ops one at a time, each on all cores).
* ``jax-fp32``, ``jax-bf16`` (not run by default): the same ``ColorizationGAN`` under Keras'
  JAX backend, run by ``fit`` through its stateless JAX ``train_step`` (jitted by Keras: XLA on
  the CPU), timed by the same kind of callback; it is fed uint8 RGB, as the training loop's
  numpy pipeline feeds it, and converts to Lab inside the step (a little more work).
* ``torch``, ``torch-bf16``, ``torch-cl-bf16``: ``bench/torch_reference.py``, a layer-for-layer
  PyTorch twin of the two networks trained as the reference tutorial's ``MainModel.optimize``
  does, in fp32 (NCHW), under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (NCHW), and
  channels-last + bf16 autocast: the ways a PyTorch user trains on a CPU. Threads: PyTorch's
  own default (one per physical core; printed) unless ``--torch-threads``; ``torch-cl``
  (channels-last fp32) and ``torch-cl-bf16-1t`` (one thread) are not run by default. Ratios
  are to the FASTEST PyTorch variant of the run, so the peer is measured at its best.

Each variant runs in its own fresh subprocess (the Keras dtype policy is global, and no
variant should inherit another's memory or thread pools). Each makes ``--warmup`` untimed
steps (the first one traces and, with XLA, compiles) and then ``--steps`` timed ones.
``--schedule sequential`` (default) runs one variant to the end before starting the next.
``--schedule turns`` keeps all variants alive and has them take turns step by step, so load
from other processes that comes and goes hits every variant alike; only one steps at a time,
but each idle process keeps its memory: at batch 16, 256x256 about 5 GB per TF variant and
1.4 GB for torch (measured), so use it at small sizes or on a machine with room to spare.

Printed: parameter counts of both twins (they must match), then per variant the median and
min step time, images/s at the median, the ratio of median and min to the fastest PyTorch
variant, and whether the best Keras variant reaches the goal ``median <= 0.7 x`` that one.
``--profile DIR`` traces the first timed step of each TF variant and prints its op types.
The 1-minute load average during the timed steps is printed too: above the core count, other
work was running.
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

# name -> (precision for set_precision, jit_compile) for Keras;
# ("torch", threads, autocast dtype name or None, channels_last) for PyTorch, threads None
# meaning --torch-threads (default: PyTorch's own choice, one per physical core).
VARIANTS = {
    "torch": ("torch", None, None, False),
    "torch-bf16": ("torch", None, "bfloat16", False),
    "torch-cl-bf16": ("torch", None, "bfloat16", True),
    "fp32": ("none", False),
    "bf16": ("bf16", False),
    "fp32-xla": ("none", True),
    "bf16-xla": ("bf16", True),
    "torch-cl": ("torch", None, None, True),
    "torch-cl-bf16-1t": ("torch", 1, "bfloat16", True),
    # Keras under its JAX backend: ColorizationGAN's stateless JAX train_step (XLA on the CPU).
    "jax-fp32": ("jax", "float32"),
    "jax-bf16": ("jax", "mixed_bfloat16"),
    # Keras options: (precision, jit_compile, inter-op threads, intra-op threads, fused BN);
    # threads 0: TF's default (all cores).
    "fp32-fbn": ("none", False, 0, 0, True),
    "bf16-fbn": ("bf16", False, 0, 0, True),
    "fp32-inter1": ("none", False, 1, 0, False),
    "bf16-inter1": ("bf16", False, 1, 0, False),
    "fp32-fbn-inter1": ("none", False, 1, 0, True),
}
DEFAULT_VARIANTS = ("torch", "torch-bf16", "torch-cl-bf16", "fp32", "bf16", "fp32-xla", "bf16-xla")
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


def _top_ops(logdir: str, count: int = 25) -> list[tuple[str, float, int]]:
    """(op type, total ms, calls) of the TF ops in the trace under ``logdir``, biggest first.

    Reads the host plane of the profiler's ``.xplane.pb``: each TF op executed is an event named
    ``name:Type``; nested events of the same op are not double counted (only those lines).
    """
    import glob

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: dict[str, list] = {}
    for path in glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            names = {key: meta.name for key, meta in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    if ":" not in name or name.startswith(("tf.", "__")):
                        continue
                    kind = name.rsplit(":", 1)[1]
                    if kind in ("Process", "Run") or kind.startswith("__"):
                        continue  # the executor's and the function's spans around the ops
                    entry = totals.setdefault(kind, [0.0, 0])
                    entry[0] += event.duration_ps / 1e9
                    entry[1] += 1
    ranked = sorted(totals.items(), key=lambda item: -item[1][0])
    return [(kind, ms, calls) for kind, (ms, calls) in ranked[:count]]


def _finish(losses: dict) -> None:
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    _send(_RESULT, {"losses": losses, "peak_rss_mib": peak_mib})


def _turn_timer(keras, ready: dict, before=None, after=None):
    """A Keras callback that waits for its turn before each batch and reports the batch's wall
    time; ``before(batch)`` and ``after(batch, start)`` run inside the timed span (profiling)."""

    class TurnTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses: dict = {}
            self._start = 0.0

        def on_train_begin(self, logs=None):
            _send(_READY, ready)

        def on_train_batch_begin(self, batch, logs=None):
            _wait_for_turn()
            if before:
                before(batch)
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            # float() waits for the values: the step has finished when the clock stops.
            self.losses = {k: float(v) for k, v in logs.items() if k in ("d_loss", "g_loss")}
            if after:
                after(batch, self._start)
            _step_done(self._start)

    return TurnTimer()


def run_keras(variant: str, args: argparse.Namespace) -> None:
    """Build our GAN and ``fit`` it for warmup + steps steps, one step per turn."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from colorize_tf.models import build_discriminator, build_generator, count_params
    from colorize_tf.training.distribute import set_precision
    from colorize_tf.training.gan import ColorizationGAN
    from colorize_tf.training.recipe import make_optimizer

    precision, xla, inter, intra, fused = (VARIANTS[variant] + (0, 0, False))[:5]
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    tf.config.threading.set_intra_op_parallelism_threads(intra)
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
        fused_batch_norm=fused,
    )
    threads = tf.config.threading
    ready = {
        "params": {
            "generator": list(count_params(generator)),
            "discriminator": list(count_params(discriminator)),
        },
        "detail": f"policy {policy}, jit_compile={gan.jit_compile}, fused_batch_norm={fused}, "
        "TF inter/intra threads "
        f"{threads.get_inter_op_parallelism_threads()}/"
        f"{threads.get_intra_op_parallelism_threads()} (0 = all cores)",
    }

    def profile_start(batch):
        if args.profile and batch == args.warmup:  # the first timed step
            tf.profiler.experimental.start(args.profile)

    def profile_stop(batch, start):
        if args.profile and batch == args.warmup:
            tf.profiler.experimental.stop()
            seconds = time.perf_counter() - start
            ops_ms = _top_ops(args.profile)
            total = sum(ms for _, ms, _ in _top_ops(args.profile, 10**6))
            print(f"profiled step {seconds:.2f} s (with tracing); op time {total / 1e3:.2f} s "
                  "summed over the ops (each op's wall time; ops overlap when inter-op "
                  "threads run them side by side); top op types (ms, share, "
                  "calls):")  # fmt: skip
            for kind, ms, calls in ops_ms:
                print(f"  {kind:40s} {ms:10.1f} {ms / total:6.1%} {calls:6d}")

    dataset = tf.data.Dataset.from_tensors(random_batch(args.batch, args.size)).repeat()
    timer = _turn_timer(keras, ready, before=profile_start, after=profile_stop)
    gan.fit(
        dataset,
        epochs=1,
        steps_per_epoch=args.warmup + args.steps,
        callbacks=[timer],
        shuffle=False,  # one repeated batch; nothing to shuffle
        verbose=0,
    )
    _finish(timer.losses)


def run_jax(variant: str, args: argparse.Namespace) -> None:
    """Keras under JAX: ``ColorizationGAN.fit`` (its stateless JAX ``train_step``, jitted by
    Keras) for warmup + steps steps, one step per turn."""
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras
    import numpy as np

    from colorize_tf.models import build_discriminator, build_generator, count_params
    from colorize_tf.training.gan import ColorizationGAN

    policy = VARIANTS[variant][1]
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    generator = build_generator(args.size)
    discriminator = build_discriminator(args.size)
    gan = ColorizationGAN(generator, discriminator)
    gan.compile(
        keras.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1, beta_2=BETA_2),
        keras.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1, beta_2=BETA_2),
        l1_weight=L1_WEIGHT,
        phase="gan",
        steps_per_execution=1,
    )
    # uint8 RGB crops, as the numpy pipeline gives them: the step makes (L, ab) itself, a
    # little more work than the TensorFlow variants' ready (L, ab) batch.
    rgb = np.random.default_rng(0).integers(0, 256, (args.batch, args.size, args.size, 3))
    rgb = jax.device_put(rgb.astype("uint8"))
    ready = {
        "params": {
            "generator": list(count_params(generator)),
            "discriminator": list(count_params(discriminator)),
        },
        "detail": f"Keras JAX backend, jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"policy {policy}, ColorizationGAN.fit (XLA), uint8 RGB in (Lab inside the step)",
    }

    def batches():
        while True:
            yield (rgb,)  # a one-element tuple: Keras' generator adapter wants (inputs,)

    timer = _turn_timer(keras, ready)
    gan.fit(
        batches(),
        epochs=1,
        steps_per_epoch=args.warmup + args.steps,
        callbacks=[timer],
        shuffle=False,
        verbose=0,
    )
    _finish(timer.losses)


def run_torch(variant: str, args: argparse.Namespace) -> None:
    """Build the PyTorch twin and run the tutorial's step warmup + steps times, one per turn."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_reference import PatchDiscriminator, TutorialGAN, UNetGenerator, count_params

    _, threads, autocast, channels_last = VARIANTS[variant]
    torch.manual_seed(0)
    default_threads = torch.get_num_threads()  # PyTorch's choice: one per physical core
    threads = threads or args.torch_threads or default_threads
    torch.set_num_threads(threads)
    generator, discriminator = UNetGenerator(), PatchDiscriminator()
    params = {
        "generator": list(count_params(generator)),
        "discriminator": list(count_params(discriminator)),
    }
    layout = torch.channels_last if channels_last else torch.contiguous_format
    generator, discriminator = (m.to(memory_format=layout) for m in (generator, discriminator))
    gan = TutorialGAN(
        generator,
        discriminator,
        l1_weight=L1_WEIGHT,
        autocast=getattr(torch, autocast) if autocast else None,
    )
    l_norm, ab = (
        torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=layout)
        for x in random_batch(args.batch, args.size)  # NHWC -> NCHW (channels-last: strides)
    )
    detail = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads (its default here: "
        f"{default_threads}), {'channels-last' if channels_last else 'NCHW'}, "
        f"{'bf16 autocast' if autocast else 'fp32'}, oneDNN "
        f"{'on' if torch.backends.mkldnn.is_available() else 'off'}"
    )
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
        if args.profile:
            command += ["--profile", os.path.join(args.profile, variant)]
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


def _is_torch(name: str) -> bool:
    return VARIANTS[name][0] == "torch"


def report(workers: list[Worker], args: argparse.Namespace) -> None:
    """Print parameter counts, the setup of each variant, the timing table and the verdict.

    Ratios are to the fastest PyTorch variant by median step time (the peer at its best).
    """
    ok = {w.variant: w for w in workers if not w.failed and w.seconds}
    print(
        f"\nbatch {args.batch}, {args.size}x{args.size}, {args.warmup} warm-up + {args.steps} "
        f"timed steps per variant, schedule {args.schedule}, {os.cpu_count()} CPU cores\n"
    )
    medians = {name: statistics.median(w.seconds) for name, w in ok.items()}
    peers = [name for name in ok if _is_torch(name)]
    ref = min(peers, key=medians.get) if peers else None
    print("Parameter counts (trainable + BN moving statistics):")
    reference = ok[ref].info["params"] if ref else None
    for name, w in ok.items():
        same = ""
        if reference is not None:
            same = "  (= torch)" if w.info["params"] == reference else "  MISMATCH"
        print(f"  {name:16s} {_format_params(w.info['params'])}{same}")

    print("\nSetup (load avg: mean of the 1-minute load average over the timed steps):")
    for name, w in ok.items():
        losses = ", ".join(f"{k} {v:.3f}" for k, v in sorted(w.result.get("losses", {}).items()))
        print(
            f"  {name:16s} {w.info['detail']}; load avg {statistics.mean(w.load):.1f}; first "
            f"step {w.result.get('first', float('nan')):.1f} s; peak RSS "
            f"{w.result.get('peak_rss_mib', float('nan')):.0f} MiB; last losses {losses}"
        )

    ref_median = medians[ref] if ref else float("nan")
    ref_min = min(ok[ref].seconds) if ref else float("nan")
    print(f"\nRatios are to the fastest PyTorch variant: {ref or 'none run'}")
    header = (
        f"{'variant':16s} {'median s':>9s} {'min s':>8s} {'img/s':>7s} "
        f"{'median/best peer':>17s} {'min/best peer':>14s}"
    )
    print(header + "\n" + "-" * len(header))
    for name, w in ok.items():
        print(
            f"{name:16s} {medians[name]:9.2f} {min(w.seconds):8.2f} "
            f"{args.batch / medians[name]:7.2f} {medians[name] / ref_median:16.2f}x "
            f"{min(w.seconds) / ref_min:13.2f}x"
        )
    ours = [name for name in ok if not _is_torch(name)]
    if not ours or ref is None:
        return
    best = min(ours, key=medians.get)
    ratio = medians[best] / ref_median
    verdict = "MET" if ratio <= GOAL_RATIO else "NOT met"
    print(
        f"\nGoal: best Keras variant <= {GOAL_RATIO}x the fastest peer's step time: {verdict} "
        f"({best} {medians[best]:.2f} s = {ratio:.2f}x {ref}'s {ref_median:.2f} s)"
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
        help=f"comma-separated, from {list(VARIANTS)}; ratios are to the fastest torch one",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch.set_num_threads for the torch variants (default 0: PyTorch's own default, "
        "one thread per physical core, which is what a PyTorch user runs with)",
    )
    parser.add_argument(
        "--schedule",
        choices=("sequential", "turns"),
        default="sequential",
        help="one variant after another, or all alive taking turns step by step (more memory)",
    )
    parser.add_argument(
        "--profile",
        help="folder: trace the first timed step of each Keras (TF) variant with TensorFlow's "
        "profiler into FOLDER/VARIANT and print its op types by time",
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
        kind = VARIANTS[args.worker][0]
        run = {"torch": run_torch, "jax": run_jax}.get(kind, run_keras)
        run(args.worker, args)
        return 0
    workers = run_all(args)
    report(workers, args)
    return 1 if any(w.failed for w in workers) else 0


if __name__ == "__main__":
    sys.exit(main())
