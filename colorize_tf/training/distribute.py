"""The one place a strategy is chosen: a name -> a ``tf.distribute.Strategy`` under TensorFlow
(``get_strategy``) or a ``keras.distribution`` under JAX (``get_jax_distribution``, beside it),
plus precision, the accelerator check and each epoch's step plan.

Models and optimizers must be built inside ``strategy.scope()`` (``colorize_tf.training.loop``
does so).

``auto``: a TPU when the environment names one or the machine has TPU device files, else all
GPUs mirrored (one GPU: the default strategy, which already places ops on it), else the default
strategy (CPU). ``check_accelerator`` then refuses a run that would fall back to the CPU while a
GPU or TPU sits unused, and ``epoch_plan`` turns the data size and the global batch into whole
epochs with a ``steps_per_execution`` that divides them.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import math
import os
import re
import shutil
import subprocess
import threading

import keras

try:
    import tensorflow as tf
except ImportError:  # Keras on JAX without TensorFlow: only the JAX half below applies
    tf = None

from colorize_tf.training import recipe

STRATEGIES = ("auto", "cpu", "mirrored", "multi_worker", "tpu")
TPU_CONNECT_TIMEOUT_S = 120.0
# Variables a TPU host or Colab sets; `auto` only asks a resolver when one is present, because
# a resolver with nothing to find may query the cloud metadata server or wait on gRPC.
_TPU_ENV = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS")
# The TPU build of TensorFlow: plain `tensorflow` has no TPU kernels ("No OpKernel was registered
# to support Op 'ConfigureDistributedTPU'", tensorflow/tensorflow#96203).
TPU_INSTALL_HINT = (
    "On a TPU VM (Colab's TPU runtimes are TPU VMs) TensorFlow needs its TPU build: "
    "pip install tensorflow-tpu==<the TensorFlow version> -f "
    "https://storage.googleapis.com/libtpu-tf-releases/index.html, restart the runtime, then "
    "train with --set runtime.strategy=tpu --set runtime.tpu=local"
)

log = logging.getLogger(__name__)


class StrategyError(RuntimeError):
    """The requested strategy cannot be had here; the message says why and what to do."""


def _tpu_address(tpu: str) -> str:
    if tpu:
        return tpu
    if os.environ.get("COLAB_TPU_ADDR"):
        return "grpc://" + os.environ["COLAB_TPU_ADDR"]
    if os.environ.get("TPU_NAME"):
        return os.environ["TPU_NAME"]
    # A TPU VM exposes its chips locally.
    return "local" if _tpu_device_files() or os.environ.get("TPU_ACCELERATOR_TYPE") else ""


def _run_with_timeout(fn, timeout_s: float, what: str):
    """Run ``fn`` in a daemon thread; give up with a StrategyError after ``timeout_s`` seconds.

    TPU connection calls block without a deadline when the address does not answer (measured:
    ``grpc://127.0.0.1:8470`` with nothing listening hung for over 5 minutes), so bound them.
    """
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except Exception as err:  # noqa: BLE001 - re-raised below in the caller's thread
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True, name=what)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise StrategyError(f"{what}: no answer within {timeout_s:.0f} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def tpu_strategy(tpu: str = "", timeout_s: float = TPU_CONNECT_TIMEOUT_S) -> tf.distribute.Strategy:
    """Connect to a TPU (name, ``grpc://`` address or ``local``) and return a TPUStrategy."""
    address = _tpu_address(tpu)
    if not address:
        raise StrategyError(
            "strategy 'tpu' asked for, but no TPU is named: pass "
            "--set runtime.tpu=NAME|grpc://HOST:PORT|local, "
            "or set TPU_NAME / COLAB_TPU_ADDR (a Colab TPU runtime sets it). For GPUs or CPU use "
            "runtime.strategy=auto."
        )

    def connect():
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)

    try:
        return _run_with_timeout(connect, timeout_s, f"connecting to TPU {address!r}")
    except StrategyError:
        raise
    except Exception as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StrategyError(
            f"no TPU at {address!r}: {first_line[:300]}\n{TPU_INSTALL_HINT}"
        ) from None


def get_strategy(name: str = "auto", tpu: str = "") -> tf.distribute.Strategy:
    """Strategy by name: ``auto``, ``cpu``, ``mirrored``, ``multi_worker`` (TF_CONFIG) or
    ``tpu``."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    if name == "tpu" or (name == "auto" and (tpu or _tpu_env() or _tpu_device_files())):
        return tpu_strategy(tpu)
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        try:
            cluster = json.loads(os.environ.get("TF_CONFIG", ""))["cluster"]
        except (ValueError, KeyError, TypeError):
            raise StrategyError(
                "strategy 'multi_worker' needs TF_CONFIG with a 'cluster' and a 'task', e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}'
            ) from None
        if not cluster.get("worker"):
            raise StrategyError(f"TF_CONFIG's cluster has no 'worker' list: {cluster}")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()  # default: one GPU if there is one, else the CPU


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


# The same ``runtime.strategy`` names under JAX: which local devices one data-parallel step spans.
JAX_STRATEGY_DEVICES = {"auto": None, "cpu": "cpu", "mirrored": "gpu", "tpu": "tpu"}


@dataclasses.dataclass(frozen=True)
class JaxRuntime:
    """Where JAX steps run: ``distribution`` (a ``keras.distribution.DataParallel`` over
    ``devices``, or None for one device), the device platform and the replica count."""

    distribution: object
    platform: str
    replicas: int


def get_jax_distribution(name: str = "auto") -> JaxRuntime:
    """``runtime.strategy`` under the JAX backend: data parallelism over all local devices of one
    kind (``auto``: the default platform's, TPU chips or GPUs; ``mirrored``: GPUs; ``tpu``: TPU
    chips; ``cpu``: one CPU). ``multi_worker`` is TensorFlow's; it is refused here by name.

    Call before any model or optimizer is built: Keras lays variables out when they are made.
    """
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    if name not in JAX_STRATEGY_DEVICES:
        raise StrategyError(
            f"runtime.strategy={name!r} is a TensorFlow strategy, and the Keras backend is 'jax'; "
            f"under JAX choose one of {sorted(JAX_STRATEGY_DEVICES)} (data parallelism over the "
            "local devices), or train with KERAS_BACKEND=tensorflow"
        )
    import jax

    wanted = JAX_STRATEGY_DEVICES[name]
    try:
        devices = jax.devices(wanted) if wanted else jax.devices()
    except RuntimeError:
        devices = []
    if not devices:
        raise StrategyError(
            f"runtime.strategy={name!r} under JAX needs {wanted.upper()} devices; JAX sees "
            f"{sorted({d.platform for d in jax.devices()})}"
        )
    if name == "cpu":
        devices = devices[:1]
    elif devices[0].platform == "cpu":
        evidence = _nvidia_evidence() + _tpu_device_files() + _tpu_env()
        if evidence:  # never fall back to the CPU silently (as check_accelerator under TF)
            raise StrategyError(
                f"an accelerator is present ({', '.join(evidence)}) but JAX runs on the CPU: "
                "install the JAX build for it (pip install 'jax[cuda12]' for NVIDIA GPUs, "
                "'jax[tpu]' for TPUs). To train on the CPU on purpose: --set runtime.strategy=cpu."
            )
    distribution = None
    if len(devices) > 1:
        distribution = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(distribution)
    return JaxRuntime(distribution, devices[0].platform, len(devices))


def set_precision(precision: str) -> str:
    """Set Keras' global dtype policy: ``none`` (float32), ``bf16`` (TPU, CPU) or ``fp16`` (GPU).

    Returns the policy name. With ``fp16`` the optimizers must be wrapped in
    ``keras.optimizers.LossScaleOptimizer`` (``recipe.make_optimizer`` does it).
    """
    policies = recipe.MIXED_PRECISION_POLICIES
    if precision not in policies:
        raise StrategyError(
            f"unknown mixed precision {precision!r}; choose one of {list(policies)}"
        )
    keras.mixed_precision.set_global_policy(policies[precision])
    return policies[precision]


# --- accelerator check: never fall back to the CPU silently ----------------------------------


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What the machine has (found without TensorFlow) and what TensorFlow runs on.

    ``probe_hardware`` fills it in; tests pass the facts directly.
    """

    gpu_evidence: tuple[str, ...] = ()  # e.g. ("nvidia-smi lists 1 GPU", "/dev/nvidia0")
    tpu_evidence: tuple[str, ...] = ()  # e.g. ("/dev/accel0", "TPU_ACCELERATOR_TYPE=v5litepod-1")
    tf_gpus: int = 0  # GPUs TensorFlow lists
    tf_tpu_cores: int = 0  # TPU cores the strategy runs on (0 unless it is a TPUStrategy)


def _tpu_env() -> list[str]:
    return [f"{k}={os.environ[k]}" for k in _TPU_ENV if os.environ.get(k)]


def _tpu_device_files(dev: str = "/dev") -> list[str]:
    """TPU chips as a TPU VM exposes them: ``/dev/accelN`` (v2-v4) or numbered VFIO groups
    ``/dev/vfio/N`` (v5e and later; ``/dev/vfio/vfio`` alone is only the VFIO control file).
    Linux's own accelerator class (Intel NPUs, Gaudi) lives in a folder, ``/dev/accel/accelN``:
    not a TPU."""
    accel = sorted(
        p
        for p in glob.glob(os.path.join(dev, "accel*"))
        if re.fullmatch(r"accel\d+", os.path.basename(p))
    )
    vfio = sorted(
        p for p in glob.glob(os.path.join(dev, "vfio", "*")) if os.path.basename(p).isdigit()
    )
    if _nvidia_device_files(dev):  # VFIO groups also appear beside passed-through GPUs
        vfio = []
    return accel + vfio


def _nvidia_device_files(dev: str = "/dev") -> list[str]:
    names = glob.glob(os.path.join(dev, "nvidia*"))
    return sorted(p for p in names if re.fullmatch(r"nvidia\d+", os.path.basename(p)))


def _nvidia_evidence(dev: str = "/dev") -> list[str]:
    found = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
            gpus = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
            if gpus:
                found.append(f"nvidia-smi lists {len(gpus)} GPU(s): {gpus[0][:80]}")
        except (OSError, subprocess.SubprocessError):
            pass
    return found + _nvidia_device_files(dev)


def probe_hardware(strategy: tf.distribute.Strategy | None = None, dev: str = "/dev") -> Hardware:
    """Look at the machine: NVIDIA GPUs (``nvidia-smi -L``, ``/dev/nvidiaN``), TPUs (device
    files, TPU environment variables), and what TensorFlow sees (its GPUs; the TPU cores of
    ``strategy`` when it is a TPUStrategy)."""
    tpu_cores = 0
    if isinstance(strategy, tf.distribute.TPUStrategy):
        tpu_cores = strategy.num_replicas_in_sync
    return Hardware(
        gpu_evidence=tuple(_nvidia_evidence(dev)),
        tpu_evidence=tuple(_tpu_device_files(dev) + _tpu_env()),
        tf_gpus=len(tf.config.list_physical_devices("GPU")),
        tf_tpu_cores=tpu_cores,
    )


def check_accelerator(
    hardware: Hardware | None = None,
    *,
    strategy: tf.distribute.Strategy | None = None,
    requested: str = "auto",
) -> str:
    """``"tpu"``, ``"gpu"`` or ``"cpu"``: what the run computes on. Raises StrategyError, saying
    what to do, when a TPU or GPU is present but TensorFlow does not use it.

    ``requested="cpu"`` (``runtime.strategy=cpu``) is a deliberate choice and never refused.
    ``hardware`` defaults to ``probe_hardware(strategy)``.
    """
    hardware = hardware or probe_hardware(strategy)
    if requested == "cpu":
        return "cpu"
    on_purpose = "To train on the CPU on purpose: --set runtime.strategy=cpu."
    if hardware.tf_tpu_cores:
        return "tpu"
    if hardware.tpu_evidence:
        raise StrategyError(
            f"a TPU is present ({', '.join(hardware.tpu_evidence)}) but TensorFlow does not run on "
            f"it (runtime.strategy={requested}). {TPU_INSTALL_HINT}. {on_purpose}"
        )
    if hardware.tf_gpus:
        return "gpu"
    if hardware.gpu_evidence:
        raise StrategyError(
            f"an NVIDIA GPU is present ({', '.join(hardware.gpu_evidence)}) but TensorFlow lists "
            "no GPU: this TensorFlow cannot load CUDA. On Linux install the CUDA build "
            "(pip install 'tensorflow[and-cuda]' of the same version), check `nvidia-smi` shows "
            f"the driver, restart the runtime. {on_purpose}"
        )
    return "cpu"


# Seconds per optimizer step of the full networks (width 1.0), batch 16, 256x256, float32, on a
# 2-core x86 CPU: the GAN step measured by bench/train_step.py; pretraining (generator only) at
# 0.55 of it, the ratio bench/checkpoint_size.py measured for the two steps side by side.
CPU_SECONDS_PER_STEP = {"pretrain": 15.7, "gan": 28.6}
_CPU_REFERENCE = {"batch": 16, "crop": 256, "width": 1.0}


def cpu_time_estimate(steps: dict[str, int], batch: int, crop: int, width: float) -> float:
    """Expected seconds for ``steps`` (phase -> optimizer steps) on a CPU like the one measured:
    the reference figures scaled by pixels per step and by width squared (convolution cost)."""
    scale = (batch * crop * crop) / (_CPU_REFERENCE["batch"] * _CPU_REFERENCE["crop"] ** 2)
    scale *= (width / _CPU_REFERENCE["width"]) ** 2
    return sum(CPU_SECONDS_PER_STEP[phase] * n * scale for phase, n in steps.items())


# --- the step plan: whole epochs, steps per execution that divide them -----------------------


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """How one phase's epochs are cut into steps.

    ``leftover`` training images do not fill a last batch; the training stream repeats before
    batching, so they are not dropped but open the next epoch's first batch (an epoch is
    ``steps_per_epoch * global_batch`` images of an endless shuffled stream).
    """

    global_batch: int
    steps_per_epoch: int
    steps_per_execution: int
    leftover: int  # training images beyond steps_per_epoch * global_batch (0 when configured)
    how: str  # where steps_per_epoch came from: configured | counted | estimated


def global_batch_size(batch_size: int, batch_per_replica: int, replicas: int) -> int:
    """``batch_per_replica * replicas`` when ``batch_per_replica`` > 0, else ``batch_size``
    (already global), which must split evenly across the replicas."""
    if batch_per_replica > 0:
        return batch_per_replica * replicas
    if batch_size % replicas:
        raise StrategyError(
            f"data.batch_size={batch_size} does not split across {replicas} replicas: use a "
            f"multiple of {replicas}, or data.batch_per_replica"
        )
    return batch_size


def largest_divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is <= ``limit`` (1 at least): 62, 50 -> 31."""
    if n < 1 or limit < 1:
        raise ValueError(f"need n >= 1 and limit >= 1, got {n}, {limit}")
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def epoch_plan(
    train_images: int | None,
    global_batch: int,
    steps_per_execution: int,
    configured_steps: int = 0,
    resume_offset: int = 0,
    how: str = "counted",
) -> EpochPlan:
    """Steps per epoch from the data size (or the config) and a ``steps_per_execution`` that
    divides both the epoch and, when resuming mid-epoch, the steps already done in it.

    Keras runs whole executions: 62 steps at 50 per execution would be 100 steps, so the
    configured value becomes the largest divisor at or below it (50 -> 31 for 62 steps).
    """
    steps = recipe.steps_per_epoch(configured_steps, train_images, global_batch)
    leftover = 0 if configured_steps else train_images - steps * global_batch
    how = "configured" if configured_steps else how
    # A resumed epoch runs `steps - resume_offset` more steps: executions must divide that too.
    span = math.gcd(steps, resume_offset) if resume_offset else steps
    return EpochPlan(
        global_batch, steps, largest_divisor_at_most(span, steps_per_execution), leftover, how
    )
