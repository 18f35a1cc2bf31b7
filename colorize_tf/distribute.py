"""The one place a strategy is chosen: a name -> a ``tf.distribute.Strategy``, plus precision.

Models and optimizers must be built inside ``strategy.scope()`` (``train.py`` does so).

``auto``: a TPU when the environment names one, else all GPUs mirrored (one GPU: the default
strategy, which already places ops on it), else the default strategy (CPU).
"""

from __future__ import annotations

import json
import os
import threading

import keras
import tensorflow as tf

STRATEGIES = ("auto", "cpu", "mirrored", "multi_worker", "tpu")
PRECISIONS = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
TPU_CONNECT_TIMEOUT_S = 120.0
# Variables a TPU host or Colab sets; `auto` only asks a resolver when one is present, because
# a resolver with nothing to find may query the cloud metadata server or wait on gRPC.
_TPU_ENV = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS")


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
    return "local" if os.path.exists("/dev/accel0") or os.environ.get("TPU_ACCELERATOR_TYPE") else ""


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
            "strategy 'tpu' asked for, but no TPU is named: pass --set runtime.tpu=NAME|grpc://HOST:PORT|local, "
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
        raise StrategyError(f"no TPU at {address!r}: {first_line[:300]}") from None


def get_strategy(name: str = "auto", tpu: str = "") -> tf.distribute.Strategy:
    """Strategy by name: ``auto``, ``cpu``, ``mirrored``, ``multi_worker`` (TF_CONFIG) or ``tpu``."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    if name == "tpu" or (name == "auto" and (tpu or any(os.environ.get(k) for k in _TPU_ENV))):
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
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
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


def set_precision(precision: str) -> str:
    """Set Keras' global dtype policy: ``none`` (float32), ``bf16`` (TPU, CPU) or ``fp16`` (GPU).

    Returns the policy name. With ``fp16`` the optimizers must be wrapped in
    ``keras.optimizers.LossScaleOptimizer`` (``make_optimizer`` does it).
    """
    if precision not in PRECISIONS:
        raise StrategyError(f"unknown mixed precision {precision!r}; choose one of {list(PRECISIONS)}")
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    return PRECISIONS[precision]


def make_optimizer(learning_rate: float, beta_1: float, beta_2: float) -> keras.optimizers.Optimizer:
    """Adam, wrapped for loss scaling when the global policy computes in float16."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)
    if keras.mixed_precision.global_policy().compute_dtype == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
