"""``python -m colorize_tf.jax_train``: the method's two phases under Keras' JAX backend.

    python -m colorize_tf.jax_train --set data.source=photos/ --out runs/jax --minutes 8
    python -m colorize_tf.jax_train --config quickstart --out runs/jax-quick   # config's steps

For machines with JAX but no TensorFlow (a GPU box). The recipe is ``gan.py``'s: the same
generator and discriminator (``colorize_tf.models``), Lab math (``color``), losses (``losses``)
and, per phase, the same update order (pretrain: L1 only; gan: one discriminator update on real
and generated pairs, then one generator update on adversarial + ``l1_weight`` * L1, judged by the
freshly updated discriminator, the generator's forward pass shared by both). Only the update
mechanics differ: ``stateless_call`` + the optimizers' ``stateless_apply`` under ``jax.jit``,
following Keras' guide "Writing a training loop from scratch in JAX". Batches arrive as uint8 RGB
crops (``jax_data``) and become (L, ab) inside the jitted step, on the device.

Schedule: with ``--minutes M`` the phases share M minutes of wall clock (compilation and
periodic validation included; ``--pretrain-share`` of it goes to pretraining), so the longest
schedule that fits is run; without it, each phase runs the config's ``epochs *
steps_per_epoch`` steps. ``runtime.mixed_precision=bf16`` trains under ``mixed_bfloat16``.

Writes into ``--out`` a weights folder (``colorize_tf.models.weights``: ``generator.json``, the
``build_generator`` arguments that rebuild the network under any backend, beside
``generator.weights.h5``, float32, and with ``float16`` its float16 copy
``generator.fp16.weights.h5``) and ``train_log.json`` (config, throughput, losses, validation
L1 / PSNR beside the gray baseline). It keeps no checkpoints: a run that stops starts again.
The optimizers, steps per phase and the non-finite-loss error are the TensorFlow loop's
(``colorize_tf.training.recipe``).

Importing this module under the TensorFlow backend is fine; ``jax`` is imported only by the
functions that train.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from colorize_tf.config import Config, ConfigError
from colorize_tf.core import color, losses, metrics
from colorize_tf.data import numpy_pipeline as jax_data
from colorize_tf.models import build_models, count_params, generator_spec
from colorize_tf.models.weights import WEIGHTS_FILE, save_weights_folder
from colorize_tf.training import recipe
from colorize_tf.training.recipe import LOG_FILE, NonFiniteLossError

# ``runtime.mixed_precision`` -> dtype policy, as in the TensorFlow loop less ``fp16``: float16
# needs loss scaling, which these steps do not do.
JAX_MIXED_PRECISION_POLICIES = {
    k: v for k, v in recipe.MIXED_PRECISION_POLICIES.items() if k != "fp16"
}


class BackendError(RuntimeError):
    """Keras runs another backend: ``KERAS_BACKEND=jax`` must be set before keras is imported."""


# --- jitted steps ----------------------------------------------------------------------------


def _to_l_ab(rgb_uint8):
    """uint8 RGB (B, S, S, 3) -> (L_norm (B, S, S, 1), ab_norm (B, S, S, 2)), on the device."""
    return color.rgb_to_l_ab(ops.cast(rgb_uint8, "float32") / 255.0)


def make_pretrain_step(generator: keras.Model, optimizer: keras.optimizers.Optimizer) -> Callable:
    """Jitted ``step(state, rgb) -> (state, logs)`` on L1; state: ``g``, ``g_nt``, ``g_opt``."""
    import jax

    def loss_fn(g_vars, g_nt, l_norm, ab_true):
        ab_pred, g_nt = generator.stateless_call(g_vars, g_nt, l_norm, training=True)
        return ops.mean(losses.l1_loss(ab_pred, ab_true)), g_nt

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: dict, rgb):
        l_norm, ab_true = _to_l_ab(rgb)
        (l1, g_nt), grads = grad_fn(state["g"], state["g_nt"], l_norm, ab_true)
        g_vars, g_opt = optimizer.stateless_apply(state["g_opt"], grads, state["g"])
        return {"g": g_vars, "g_nt": g_nt, "g_opt": g_opt}, {"g_l1": l1}

    return jax.jit(step)


def make_gan_step(
    generator: keras.Model,
    discriminator: keras.Model,
    g_optimizer: keras.optimizers.Optimizer,
    d_optimizer: keras.optimizers.Optimizer,
    l1_weight: float,
) -> Callable:
    """Jitted ``step(state, rgb) -> (state, logs)`` of the GAN phase (``gan.py``'s order).

    state: ``g``, ``g_nt``, ``g_opt``, ``d``, ``d_nt``, ``d_opt`` (lists of arrays: trainable,
    non-trainable and optimizer variables of each network).
    """
    import jax

    def d_loss_fn(d_vars, d_nt, l_norm, ab_true, ab_fake):
        real, d_nt = discriminator.stateless_call(
            d_vars, d_nt, ops.concatenate([l_norm, ab_true], -1), training=True
        )
        fake, d_nt = discriminator.stateless_call(
            d_vars, d_nt, ops.concatenate([l_norm, ab_fake], -1), training=True
        )
        parts = losses.discriminator_loss(real, fake)
        return ops.mean(parts["total"]), (d_nt, parts)

    def step(state: dict, rgb):
        l_norm, ab_true = _to_l_ab(rgb)  # (B, S, S, 1), (B, S, S, 2)

        def g_forward(g_vars):
            return generator.stateless_call(g_vars, state["g_nt"], l_norm, training=True)

        # One generator forward pass, shared: its output feeds D's update as a constant and its
        # pullback turns dLoss/dab into the generator's gradients afterwards.
        ab_fake, g_pullback, g_nt = jax.vjp(g_forward, state["g"], has_aux=True)
        (_, (d_nt, d_parts)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            state["d"], state["d_nt"], l_norm, ab_true, jax.lax.stop_gradient(ab_fake)
        )
        d_vars, d_opt = d_optimizer.stateless_apply(state["d_opt"], d_grads, state["d"])

        def g_loss_fn(ab):
            # The generator is judged by the discriminator it just made stronger.
            logits, nt = discriminator.stateless_call(
                d_vars, d_nt, ops.concatenate([l_norm, ab], -1), training=True
            )
            parts = losses.generator_loss(logits, ab, ab_true, l1_weight)
            return ops.mean(parts["total"]), (nt, parts)

        (_, (d_nt, g_parts)), ab_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(ab_fake)
        (g_grads,) = g_pullback(ab_grads)
        g_vars, g_opt = g_optimizer.stateless_apply(state["g_opt"], g_grads, state["g"])
        logs = {f"g_{k}" if k != "total" else "g_loss": ops.mean(v) for k, v in g_parts.items()}
        logs.update(
            {f"d_{k}" if k != "total" else "d_loss": ops.mean(v) for k, v in d_parts.items()}
        )
        new = {"g": g_vars, "g_nt": g_nt, "g_opt": g_opt, "d": d_vars, "d_nt": d_nt, "d_opt": d_opt}
        return new, logs

    return jax.jit(step)


def make_eval_step(generator: keras.Model) -> Callable:
    """Jitted ``(g, g_nt, rgb) -> per-image l1, psnr and their gray (a = b = 0) baselines``.

    The truth is the Lab round trip of the crop, as in ``ColorizationGAN.test_step``.
    """
    import jax

    def step(g_vars, g_nt, rgb):
        l_norm, ab_true = _to_l_ab(rgb)
        ab_pred, _ = generator.stateless_call(g_vars, g_nt, l_norm, training=False)
        gray = ops.zeros_like(ab_true)
        true_rgb = color.l_ab_to_rgb(l_norm, ab_true)
        out = {}
        for prefix, ab in (("", ab_pred), ("gray_", gray)):
            out[prefix + "l1"] = losses.l1_loss(ab, ab_true)
            out[prefix + "psnr"] = metrics.psnr(color.l_ab_to_rgb(l_norm, ab), true_rgb)
        return out

    return jax.jit(step)


def evaluate(
    eval_step: Callable, state: dict, crops: np.ndarray, batch_size: int
) -> dict[str, float]:
    """Mean validation metrics over ``crops`` (uint8 (n, S, S, 3)), in fixed-size batches."""
    results: dict[str, list] = {}
    for start in range(0, len(crops), batch_size):
        batch = crops[start : start + batch_size]
        count = len(batch)
        if count < batch_size:  # pad to the compiled shape; padded rows are dropped below
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - count, axis=0)])
        for key, value in eval_step(state["g"], state["g_nt"], batch).items():
            results.setdefault(key, []).append(np.asarray(value)[:count])
    return {key: float(np.mean(np.concatenate(values))) for key, values in results.items()}


# --- the run -------------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[colorize_tf.jax_train] {message}", flush=True)


def _values(variables) -> list:
    return [variable.value for variable in variables]


def _format(values: dict) -> str:
    return ", ".join(f"{key} {value:.4f}" for key, value in values.items())


def train_phase(
    phase: str,
    step: Callable,
    state: dict,
    stream: Iterator[np.ndarray],
    *,
    steps: float,
    deadline: float | None,
    log_every: int,
    eval_every_s: float,
    validate: Callable[[str, int, dict], dict],
) -> tuple[dict, dict]:
    """Run ``step`` until ``steps`` are done or ``deadline`` (``time.perf_counter``) passes
    (one step at least).

    Every ``log_every`` steps the host waits for the device, averages the window's losses,
    stops on a non-finite one (``NonFiniteLossError``) and logs images/s; every
    ``eval_every_s`` seconds, and at the end, ``validate(phase, step, state)`` runs.
    Returns the new state and the phase's record (steps, seconds, compile_s: the first step's
    time, images_per_s after it, validation_s, loader_wait_s: time the loop waited for a
    batch, history).
    """
    import jax

    history: list[dict] = []
    window: list[dict] = []
    done, images, wait, validated, eval_s = 0, 0, 0.0, 0, 0.0
    start = time.perf_counter()
    compiled_at = next_eval = None
    # At least one step, even past the deadline: a phase that ran is a phase that compiled.
    while done < steps and (deadline is None or not done or time.perf_counter() < deadline):
        fetch = time.perf_counter()
        batch = next(stream)  # (B, S, S, 3) uint8
        wait += time.perf_counter() - fetch
        state, logs = step(state, batch)
        if window:
            # Keep at most one step queued behind the running one: the device stays busy, and
            # the deadline holds to a step (dispatch alone would run log_every steps ahead).
            jax.block_until_ready(window[-1])
        window.append(logs)
        done += 1
        if compiled_at is None:  # the first call compiles: time it apart from the throughput
            jax.block_until_ready(logs)
            compiled_at = window_start = time.perf_counter()
            next_eval = compiled_at + eval_every_s
            compile_s, images, window_images = compiled_at - start, 0, 0
            continue
        images += len(batch)
        window_images += len(batch)
        if done % log_every == 0 or done >= steps:
            means = {k: float(np.mean([w[k] for w in jax.device_get(window)])) for k in window[0]}
            bad = [k for k, v in means.items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteLossError(
                    f"phase '{phase}', step {done}: non-finite {bad} ({_format(means)})"
                )
            now = time.perf_counter()
            rate = window_images / (now - window_start)
            history.append(
                {"step": done, "t": round(now - start, 2), "images_per_s": round(rate, 1), **means}
            )
            _log(
                f"{phase} step {done} ({now - start:.0f} s): {_format(means)} | {rate:.0f} img/s, "
                f"waited {wait:.1f} s on the loader"
            )
            window, window_start, window_images = [], now, 0
            if now >= next_eval:
                validate(phase, done, state)
                validated, window_start = done, time.perf_counter()
                eval_s += window_start - now  # kept out of the images/s figures
                next_eval = window_start + eval_every_s
    jax.block_until_ready(state)
    end = time.perf_counter()
    if done and validated != done:
        validate(phase, done, state)
    record = {
        "steps": done,
        "seconds": round(end - start, 2),
        "compile_s": round(compile_s, 2) if done else None,
        "images_per_s": round(images / (end - compiled_at - eval_s), 1) if images else None,
        "validation_s": round(eval_s, 2),
        "loader_wait_s": round(wait, 2),
        "history": history,
    }
    return state, record


@contextlib.contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    """Set Keras' global dtype policy for a block; the caller's comes back afterwards."""
    caller = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(caller)


def _load_data(config: Config, workers: int, loader_bench_s: float):
    """(training batch stream, validation crops uint8 (n, S, S, 3), the log's data record)."""
    d = config.data
    started = time.perf_counter()
    train_paths = jax_data.split_files(
        d.source, "all" if d.val_source else "train", d.val_fraction, d.max_images
    )
    val_paths = jax_data.split_files(
        d.val_source or d.source, "all" if d.val_source else "val", d.val_fraction, d.max_images
    )
    images = jax_data.decode_photos(
        train_paths, math.ceil(d.crop_size * jax_data.MAX_ZOOM), workers, max_pixels=d.max_pixels
    )
    val_crops = jax_data.eval_crops(
        jax_data.decode_photos(val_paths, d.crop_size, workers, max_pixels=d.max_pixels),
        d.crop_size,
    )
    batches = jax_data.TrainBatches(images, d.batch_size, d.crop_size, config.train.seed, workers)
    record = {
        "train_images": len(images),
        "val_images": len(val_crops),
        "decode_s": round(time.perf_counter() - started, 2),
        "loader_threads": batches.workers,
    }
    _log(
        f"{len(images)} training / {len(val_crops)} validation images decoded in "
        f"{record['decode_s']} s"
    )
    if loader_bench_s:
        record["loader_crops_per_s"] = round(
            jax_data.measure_throughput(batches, loader_bench_s), 1
        )
        _log(
            f"loader alone: {record['loader_crops_per_s']:.0f} crops/s with "
            f"{batches.workers} threads"
        )
    return batches, val_crops, record


def run(
    config: Config,
    out_dir: str | Path,
    *,
    minutes: float | None = None,
    pretrain_share: float = 0.5,
    log_every: int = 50,
    eval_every_s: float = 60.0,
    float16: bool = False,
    workers: int = 0,
    loader_bench_s: float = 0.0,
) -> dict:
    """Train both phases under the JAX backend and write the outputs (module docstring).

    Args:
        config: the run's config (data, model, optimizers, ``l1_weight``, precision, seed).
        out_dir: where the outputs go.
        minutes: wall-clock budget of both phases together (None: the config's step counts).
        pretrain_share: the budget's share given to L1 pretraining; the GAN phase gets the rest.
        log_every: steps between loss / throughput lines (the host waits for the device there).
        eval_every_s: seconds between validation passes (each phase also ends with one).
        float16: also write the float16 copy of the weights (half the bytes).
        workers: crop-cutting threads (0: the CPU count).
        loader_bench_s: first measure the loader alone for this many seconds (0: skip).

    Returns the log written to ``train_log.json``; its ``stopped`` is None unless a loss went
    non-finite, in which case the weights written are those of the last finite validation.
    """
    import jax

    if keras.backend.backend() != "jax":
        raise BackendError(
            f"colorize_tf.jax_train needs KERAS_BACKEND=jax, got {keras.backend.backend()!r}"
        )
    policies = JAX_MIXED_PRECISION_POLICIES
    if config.runtime.mixed_precision not in policies:
        raise ConfigError(
            f"runtime.mixed_precision={config.runtime.mixed_precision!r} is not supported under "
            f"JAX (float16 needs loss scaling); use one of {sorted(policies)}"
        )
    if minutes is not None and (minutes <= 0 or not 0.0 <= pretrain_share <= 1.0):
        raise ValueError(
            f"need minutes > 0 and 0 <= pretrain_share <= 1, got {minutes}, {pretrain_share}"
        )
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.train.seed)
    batches, val_crops, data_record = _load_data(config, workers, loader_bench_s)
    with _dtype_policy(policies[config.runtime.mixed_precision]):
        generator, discriminator = build_models(config)
        phases = config.train
        optimizers = recipe.make_optimizers(phases)
        for name, optimizer in optimizers.items():
            optimizer.build((discriminator if name == "d_gan" else generator).trainable_variables)
        log: dict[str, Any] = {
            "config": config.to_dict(),
            "backend": f"jax {jax.__version__}, keras {keras.__version__}",
            "devices": [str(device) for device in jax.devices()],
            "precision": keras.mixed_precision.global_policy().name,
            "generator": generator_spec(config),
            "params": {
                "generator": str(count_params(generator)),
                "discriminator": str(count_params(discriminator)),
            },
            "data": data_record,
            "budget_minutes": minutes,
            "phases": {},
            "val": [],
            "stopped": None,
        }
    _log(f"{log['devices']}; precision {log['precision']}; generator {log['params']['generator']}")

    eval_step = make_eval_step(generator)
    last_good: dict[str, Any] = {}

    def validate(phase: str, step: int, state: dict) -> dict:
        values = evaluate(eval_step, state, val_crops, config.data.val_batch_size)
        log["val"].append({"phase": phase, "step": step, **values})
        _log(
            f"validation after {phase} step {step}: l1 {values['l1']:.4f} "
            f"(gray {values['gray_l1']:.4f}), "
            f"psnr {values['psnr']:.2f} (gray {values['gray_psnr']:.2f})"
        )
        if all(math.isfinite(v) for v in values.values()):
            last_good.update(g=state["g"], g_nt=state["g_nt"], phase=phase, step=step)
        return values

    state = {
        "g": _values(generator.trainable_variables),
        "g_nt": _values(generator.non_trainable_variables),
        "d": _values(discriminator.trainable_variables),
        "d_nt": _values(discriminator.non_trainable_variables),
    }
    stream = iter(batches)
    clock = time.perf_counter()
    if minutes is None:  # the config's schedule
        deadlines = {"pretrain": None, "gan": None}
        try:
            steps_of = {
                p: recipe.phase_steps(
                    getattr(phases, p), len(batches.images), config.data.batch_size
                )
                for p in deadlines
            }
        except ValueError as err:
            raise ConfigError(f"train: {err} (data.source={config.data.source})") from None
    else:  # a wall-clock budget: steps until each phase's deadline
        deadlines = {
            "pretrain": clock + 60.0 * minutes * pretrain_share,
            "gan": clock + 60.0 * minutes,
        }
        steps_of = {"pretrain": math.inf, "gan": math.inf}
    try:
        for phase in ("pretrain", "gan"):
            if phase == "pretrain":
                step = make_pretrain_step(generator, optimizers["pretrain"])
                phase_state = {
                    "g": state["g"],
                    "g_nt": state["g_nt"],
                    "g_opt": _values(optimizers["pretrain"].variables),
                }
            else:
                step = make_gan_step(
                    generator,
                    discriminator,
                    optimizers["g_gan"],
                    optimizers["d_gan"],
                    phases.l1_weight,
                )
                phase_state = {
                    **state,
                    "g_opt": _values(optimizers["g_gan"].variables),
                    "d_opt": _values(optimizers["d_gan"].variables),
                }
            _log(
                f"phase '{phase}': "
                + (
                    f"{steps_of[phase]} steps"
                    if minutes is None
                    else f"until {(deadlines[phase] - clock) / 60:.2f} min"
                )
            )
            phase_state, record = train_phase(
                phase,
                step,
                phase_state,
                stream,
                steps=steps_of[phase],
                deadline=deadlines[phase],
                log_every=log_every,
                eval_every_s=eval_every_s,
                validate=validate,
            )
            state.update({k: v for k, v in phase_state.items() if k in state})
            log["phases"][phase] = record
            _log(
                f"phase '{phase}' done: {record['steps']} steps in {record['seconds']:.0f} s "
                f"(first step incl. compile {record['compile_s']} s; "
                f"{record['images_per_s']} img/s)"
            )
    except NonFiniteLossError as error:
        log["stopped"] = str(error)
        _log(
            f"stopped: {error}; writing the weights of the last finite validation "
            f"({last_good.get('phase')} step {last_good.get('step')})"
        )
        state.update({k: last_good[k] for k in ("g", "g_nt") if k in last_good})
    finally:
        stream.close()

    for variables, values in (
        (generator.trainable_variables, state["g"]),
        (generator.non_trainable_variables, state["g_nt"]),
    ):
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
    written = save_weights_folder(generator, generator_spec(config), out_dir, float16=float16)
    log["files"] = [p.name for p in written]
    log["total_s"] = round(time.perf_counter() - started, 2)
    (out_dir / LOG_FILE).write_text(json.dumps(log, indent=2))
    _log(f"generator written to {out_dir / WEIGHTS_FILE}; log in {out_dir / LOG_FILE}")
    return log
