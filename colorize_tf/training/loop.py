"""``python -m colorize_tf.train``: both phases of the method in one resumable command, under
whichever Keras backend runs (``KERAS_BACKEND=tensorflow`` or ``jax``).

    python -m colorize_tf.train                                   # configs/quickstart.yaml
    python -m colorize_tf.train --config coco_paper --workdir runs/coco
    KERAS_BACKEND=jax python -m colorize_tf.train --config photos --set data.source=photos/

One loop for both backends: ``ColorizationGAN.fit`` with the same callbacks, data, recipe and
files. Under TensorFlow a ``tf.distribute`` strategy spreads the steps (TPUStrategy, Mirrored,
MultiWorkerMirrored); under JAX a ``keras.distribution.DataParallel`` over the local devices.
The input is the ``tf.data`` pipeline wherever TensorFlow is installed (under JAX too, on the
host, as keras-hub trains); only where it is absent, the numpy pipeline.

Writes into ``--workdir`` (default ``runs/<config name>``):
``config.yaml`` (the resolved config), ``checkpoints/`` (every ``train.checkpoint_every`` steps
and each epoch end: numpy + JSON, the same under both backends), ``logs/`` (TensorBoard, where
TensorFlow is installed), ``history_<phase>.csv``, ``samples/*.png``, ``best/`` (with
``train.select_best``: the best epoch so far), ``model/`` (the product, a preset folder that
every command loads) and ``summary.json`` (validation numbers beside the gray baseline).
Rerunning the same command resumes from the last checkpoint, in the right phase with the step
count intact. With TensorFlow installed the workdir may be on any filesystem ``tf.io.gfile``
reaches (``gs://BUCKET/runs/x`` for Cloud TPU runs, ``ram://``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import time

import keras
import numpy as np

from colorize_tf.config import Config, ConfigError, config_from_yaml
from colorize_tf.core import losses
from colorize_tf.models import build_models
from colorize_tf.training import callbacks as cb
from colorize_tf.training import checkpoint, distribute, fileio, recipe
from colorize_tf.training.gan import PHASES, ColorizationGAN
from colorize_tf.training.recipe import PRODUCT_DIR, SUMMARY_FILE

try:
    import tensorflow as tf
except ImportError:  # Keras on JAX without TensorFlow: the numpy input pipeline
    tf = None


class ResumeError(RuntimeError):
    """The workdir holds a run whose model cannot continue under the new config."""


# --- data ---------------------------------------------------------------------------------------


def _datasets(config: Config, strategy, global_batch: int, drop: bool):
    """(training dataset (repeats; distributed when ``strategy`` is a ``tf.distribute`` one),
    validation dataset, train image count or None, how the count was had: ``counted`` or
    ``estimated``). ``drop``: whole batches only (TPUs and JAX device meshes need static
    shapes)."""
    from colorize_tf.data import pipeline as data
    from colorize_tf.data import sources

    d = config.data
    val_source, val_split = (d.val_source, "all") if d.val_source else (d.source, "val")
    # The file pre-scan runs once per file source here; both datasets and the counts reuse it.
    scans = {
        source: sources.scan_source(source, max_pixels=d.max_pixels, max_images=d.max_images)
        for source in dict.fromkeys((d.source, val_source))
        if sources.parse_source(source).kind in ("samples", "folder")
    }
    common = dict(
        crop_size=d.crop_size,
        val_fraction=d.val_fraction,
        max_pixels=d.max_pixels,
        max_images=d.max_images,
    )
    tpu = isinstance(strategy, tf.distribute.TPUStrategy)

    def train_fn(context=None):
        return data.build_dataset(
            d.source,
            split="train",
            training=True,
            batch_size=global_batch,
            input_context=context,
            drop_remainder=True,
            cache=d.cache,
            shuffle_buffer=d.shuffle_buffer,
            seed=config.train.seed,
            repeat=True,
            max_zoom=d.max_zoom,
            jit_lab=not tpu,  # a TPU host has no XLA CPU backend inside tf.data
            scan=scans.get(d.source),
            **common,
        )

    train = strategy.distribute_datasets_from_function(train_fn) if strategy else train_fn()
    val = data.build_dataset(
        val_source,
        split=val_split,
        training=False,
        batch_size=d.val_batch_size,
        drop_remainder=drop,
        cache=d.cache,
        scan=scans.get(val_source),
        **common,
    )
    counts = [
        len(sources.select_split(scans[source], split, d.val_fraction)) if source in scans else None
        for source, split in ((d.source, "train"), (val_source, val_split))
    ]  # None: TFRecord / TFDS, where the config must give steps_per_epoch
    if counts[1]:
        # A known length spares Keras' "input ran out of data" warning at each validation.
        batches = counts[1] // d.val_batch_size if drop else -(-counts[1] // d.val_batch_size)
        val = val.apply(tf.data.experimental.assert_cardinality(batches))
    if counts[0] is not None:
        return train, val, counts[0], "counted"
    return (train, val, *_record_count(config))


def _numpy_datasets(config: Config, global_batch: int):
    """The ``_datasets`` of a machine without TensorFlow (Keras on JAX): an endless generator of
    uint8 RGB crops (the step turns them into L and ab on the device) and the validation crops
    as (L, ab) arrays; folders and the sample photos only."""
    from colorize_tf.core import color
    from colorize_tf.data import numpy_pipeline as npd

    d = config.data
    if not d.cache:
        raise ConfigError(
            "data.cache=false: without TensorFlow the numpy pipeline holds every decoded image "
            "in memory (install tensorflow for the streaming tf.data pipeline)"
        )
    train_split, val_split = ("all", "all") if d.val_source else ("train", "val")
    train_paths = npd.split_files(d.source, train_split, d.val_fraction, d.max_images)
    val_paths = npd.split_files(d.val_source or d.source, val_split, d.val_fraction, d.max_images)
    images = npd.decode_photos(
        train_paths, math.ceil(d.crop_size * d.max_zoom), max_pixels=d.max_pixels
    )
    crops = npd.eval_crops(
        npd.decode_photos(val_paths, d.crop_size, max_pixels=d.max_pixels), d.crop_size
    )
    batches = npd.TrainBatches(
        images, global_batch, d.crop_size, config.train.seed, max_zoom=d.max_zoom
    )
    l_norm, ab = color.rgb_to_l_ab(crops.astype("float32") / 255.0)
    val = (keras.ops.convert_to_numpy(l_norm), keras.ops.convert_to_numpy(ab))

    def stream():
        yield from ((batch,) for batch in batches)  # Keras wants (inputs,)

    return stream(), val, len(images), "counted"


# The rebalanced L1's ab histogram reads the protocol crops of at most this many training images.
HISTOGRAM_IMAGES = 2048


def _l1_bin_weights(config: Config) -> np.ndarray | None:
    """The class-rebalanced L1's per-bin weights (``train.l1_rebalance`` > 0), or None.

    The ab histogram is taken over the center crops (the evaluation protocol: deterministic,
    so a resumed run gets the same weights) of the first ``HISTOGRAM_IMAGES`` training images.
    """
    if config.train.l1_rebalance == 0:
        return None
    d = config.data
    batch = 64
    if tf is None:
        from colorize_tf.core import color
        from colorize_tf.data import numpy_pipeline as npd

        split = "all" if d.val_source else "train"
        paths = npd.split_files(d.source, split, d.val_fraction, d.max_images)[:HISTOGRAM_IMAGES]
        crops = npd.eval_crops(
            npd.decode_photos(paths, d.crop_size, max_pixels=d.max_pixels), d.crop_size
        )
        batches = (
            color.rgb_to_l_ab(crops[i : i + batch].astype("float32") / 255.0)
            for i in range(0, len(crops), batch)
        )
    else:
        from colorize_tf.data import pipeline as data

        batches = data.build_dataset(
            d.source, split="train", training=False, batch_size=batch, crop_size=d.crop_size,
            val_fraction=d.val_fraction, max_pixels=d.max_pixels, max_images=d.max_images,
            cache=False,
        ).take(math.ceil(HISTOGRAM_IMAGES / batch))  # fmt: skip
    counts = np.zeros(losses.AB_BINS**2, np.float64)
    for _, ab in batches:
        counts += keras.ops.convert_to_numpy(losses.ab_bin_counts(np.asarray(ab)))
    if not counts.sum():
        raise ConfigError(f"train.l1_rebalance: no training images in {d.source!r}")
    weights = keras.ops.convert_to_numpy(
        losses.rebalance_weights(counts, config.train.l1_rebalance)
    )
    reached = counts > 0
    _log(
        f"rebalanced L1 (strength {config.train.l1_rebalance}): {int(counts.sum()):,} training "
        f"pixels reach {int(reached.sum())} ab bins; weights {weights[reached].min():.2f} "
        f"(commonest) to {weights[reached].max():.2f} (rarest)"
    )
    return weights


def _record_count(config: Config) -> tuple[int | None, str]:
    """Training images of a TFRecord source (counted: one pass over the records, no decoding)
    or of a TFDS source cut by ``max_images`` (estimated: a hashed split keeps about
    ``1 - val_fraction`` of a pooled split). (None, "") when neither applies."""
    from colorize_tf.data import sources

    d = config.data
    spec = sources.parse_source(d.source)
    if spec.kind == "tfrecord":
        records, _ = sources.tfrecord_records(
            spec.location, "train", d.val_fraction, None, False, None, d.max_images
        )
        return int(records.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)), "counted"
    if spec.kind == "tfds" and d.max_images:
        share = 1.0 - d.val_fraction if spec.tfds_split is not None else 1.0
        return int(d.max_images * share), "estimated"
    return None, ""


def phase_plan(
    config: Config,
    phase: str,
    train_images: int | None,
    replicas: int,
    how: str = "counted",
    resume_offset: int = 0,
) -> distribute.EpochPlan:
    """One phase's steps per epoch and per execution for ``train_images`` on ``replicas``
    (pure: no TensorFlow). A configured ``steps_per_epoch`` wins; else the data size decides."""
    phase_cfg = getattr(config.train, phase)
    d = config.data
    global_batch = distribute.global_batch_size(d.batch_size, d.batch_per_replica, replicas)
    try:
        return distribute.epoch_plan(
            train_images,
            global_batch,
            config.runtime.steps_per_execution,
            phase_cfg.steps_per_epoch,
            resume_offset,
            how,
        )
    except ValueError as err:
        raise ConfigError(f"train.{phase}: {err} (data.source={d.source})") from None


def _local_checkpoint_dir(config: Config, workdir: str) -> str:
    """Where checkpoints are written when ``runtime.local_checkpoints`` is set: a folder per
    workdir under it (named by the workdir's hash), so two runs never share one."""
    if not config.runtime.local_checkpoints:
        return ""
    where = workdir if fileio.is_remote(workdir) else os.path.abspath(workdir)
    tag = hashlib.sha1(where.encode("utf-8")).hexdigest()[:10]
    return fileio.join(config.runtime.local_checkpoints, f"{fileio.basename(where)}-{tag}")


def _warn_cpu_time(config: Config, train_count: int | None, how: str, replicas: int) -> None:
    """On a CPU, say how long the configured schedule takes when that is over an hour."""
    try:
        steps = {
            p: getattr(config.train, p).epochs
            * phase_plan(config, p, train_count, replicas, how).steps_per_epoch
            for p in PHASES
        }
    except ConfigError:
        return  # the phase loop reports it
    global_batch = distribute.global_batch_size(
        config.data.batch_size, config.data.batch_per_replica, replicas
    )
    seconds = distribute.cpu_time_estimate(
        steps, global_batch, config.data.crop_size, config.model.width
    )
    if seconds > 3600:
        _log(
            f"warning: no GPU or TPU; {sum(steps.values()):,} steps of this config take about "
            f"{seconds / 3600:,.0f} h on a CPU (estimated from "
            f"{distribute.CPU_SECONDS_PER_STEP['gan']:.1f} s per GAN step and "
            f"{distribute.CPU_SECONDS_PER_STEP['pretrain']:.1f} s per pretraining step of the full "
            "model at batch 16, 256x256, measured on a 2-core CPU). Use a GPU/TPU runtime, or a "
            "smaller run (--config quickstart, model.width, data.crop_size)."
        )


# --- the run ------------------------------------------------------------------------------------


def _check_resume(workdir: str, config: Config) -> None:
    """Refuse to continue a run whose model differs from the new config's; otherwise dump config."""
    old_path = fileio.join(workdir, "config.yaml")
    ckpt_dirs = (fileio.join(workdir, "checkpoints"), _local_checkpoint_dir(config, workdir))
    if fileio.isfile(old_path) and checkpoint.latest(*filter(None, ckpt_dirs)):
        old = config_from_yaml(fileio.read_text(old_path), old_path)
        if old.model != config.model:
            raise ResumeError(
                f"{workdir} holds a run with model {old.model}, but this config asks for "
                f"{config.model}; resuming would not fit the saved weights. Use another "
                "--workdir, or the old config."
            )
    fileio.write_text(old_path, config.to_yaml())


def _log(message: str) -> None:
    print(f"[colorize_tf.train] {message}", flush=True)


@dataclasses.dataclass
class _Runtime:
    """Where the steps run: the backend, a ``tf.distribute`` strategy (TensorFlow) or a JAX
    device layout, the device kind and the replica count."""

    backend: str
    device: str
    replicas: int
    strategy: object = None  # tf.distribute.Strategy under TensorFlow

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def multi_worker(self) -> bool:
        return self.strategy is not None and distribute.is_multi_worker(self.strategy)

    @property
    def is_chief(self) -> bool:
        return self.strategy is None or _is_chief(self.strategy)


def _runtime(config: Config) -> _Runtime:
    """The strategy of ``runtime.strategy`` for the running backend (made before any model)."""
    backend = keras.backend.backend()
    if backend == "jax":
        jax_runtime = distribute.get_jax_distribution(config.runtime.strategy)
        return _Runtime(backend, jax_runtime.platform, jax_runtime.replicas)
    strategy = distribute.get_strategy(config.runtime.strategy, config.runtime.tpu)
    device = distribute.check_accelerator(strategy=strategy, requested=config.runtime.strategy)
    return _Runtime(backend, device, strategy.num_replicas_in_sync, strategy)


def run(config: Config, workdir: str | os.PathLike) -> dict:
    """Train both phases (resuming if the workdir holds checkpoints); returns the summary.

    ``workdir`` may be anything ``tf.io.gfile`` reaches: a local path, ``gs://...``, ``ram://...``
    (local only without TensorFlow).
    """
    backend = keras.backend.backend()
    if backend not in recipe.BACKENDS:
        raise ConfigError(
            f"the Keras backend is {backend!r}; training runs under {recipe.BACKENDS}"
        )
    recipe.check_backend(config, backend)
    workdir = os.fspath(workdir)
    fileio.makedirs(workdir)
    _check_resume(workdir, config)
    # Checkpoint keys hold Keras' auto-generated names ("adam_2/..."): start them afresh so that a
    # second run in one process (the only way to resume a ram:// workdir) matches the first.
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.train.seed)
    distribute.set_precision(config.runtime.mixed_precision)
    rt = _runtime(config)
    # Keras wraps `strategy.run` in the jit_compile function; a TPUStrategy compiles each step
    # with XLA anyway, and Keras itself keeps XLA off under tf.distribute. JAX always compiles.
    jit_compile = rt.backend == "jax" or (config.runtime.jit_compile and rt.device != "tpu")
    if config.runtime.jit_compile and rt.device == "tpu":
        _log("runtime.jit_compile ignored under TPUStrategy: the TPU compiles every step with XLA")
    if jit_compile and rt.backend == "tensorflow":
        tf.config.optimizer.set_jit(True)
    _log(
        f"keras {keras.__version__} on {rt.backend}: strategy "
        + (
            type(rt.strategy).__name__
            if rt.strategy
            else "DataParallel"
            if rt.replicas > 1
            else "one device"
        )
        + f" with {rt.replicas} replica(s) on {rt.device}; "
        f"precision {keras.mixed_precision.global_policy().name}"
    )

    global_batch = distribute.global_batch_size(
        config.data.batch_size, config.data.batch_per_replica, rt.replicas
    )
    if tf is None:
        _log("TensorFlow is not installed: the numpy input pipeline feeds the steps")
        train_ds, val_ds, train_count, count_how = _numpy_datasets(config, global_batch)
        sample = [t[: config.train.sample_images] for t in val_ds]
    else:
        drop = rt.device == "tpu" or rt.replicas > 1 and rt.backend == "jax"
        train_ds, val_ds, train_count, count_how = _datasets(
            config, rt.strategy, global_batch, drop
        )
        sample_batch = next(iter(val_ds.take(1)))
        sample = [np.asarray(t)[: config.train.sample_images] for t in sample_batch]
    if rt.device == "cpu":
        _warn_cpu_time(config, train_count, count_how, rt.replicas)
    l1_bin_weights = _l1_bin_weights(config)
    with rt.scope():
        generator, discriminator = build_models(config)
        gan = ColorizationGAN(generator, discriminator, ema_decay=config.train.ema_decay)
        optimizers = recipe.make_optimizers(config.train)
        for name, optimizer in optimizers.items():
            optimizer.build((discriminator if name == "d_gan" else generator).trainable_variables)
        gan.compile(optimizers["pretrain"], phase="pretrain", jit_compile=jit_compile)
    _log(
        f"generator {generator.count_params():,} parameters, "
        f"discriminator {discriminator.count_params():,}; "
        f"{train_count if train_count is not None else 'unknown number of'} training images"
    )

    def groups(phase: str) -> dict:  # a checkpoint holds the running phase's state only
        return checkpoint.phase_groups(phase, generator, discriminator, optimizers, gan)

    ckpt_dir = fileio.join(workdir, "checkpoints")
    # With runtime.local_checkpoints, saves go to local disk and the workdir keeps a mirror of
    # the newest only (a Drive workdir's trash keeps every file deleted from it).
    save_dir = _local_checkpoint_dir(config, workdir) or ckpt_dir
    progress = {"phase": PHASES[0], "epochs_done": 0, "step_in_epoch": 0, "step": 0}
    found = checkpoint.latest(save_dir, ckpt_dir)
    if found:
        checkpoint.restore(found[0], groups(found[1]["phase"]))
        progress = found[1]
        _log(
            f"resumed from {fileio.basename(found[0])}: phase '{progress['phase']}', "
            f"{progress['epochs_done']} epoch(s) "
            f"+ {progress['step_in_epoch']} step(s) done, global step {progress['step']}"
        )

    counter = cb.StepCounter(start=progress["step"])
    writer = None
    if tf is not None and rt.is_chief:
        writer = tf.summary.create_file_writer(fileio.join(workdir, "logs", "samples"))
    best_dir = fileio.join(workdir, recipe.BEST_DIR)
    selection = cb.EpochSelection(
        gan, lambda: evaluate(gan, val_ds, config.data.val_batch_size, rt.multi_worker),
        config.train.select_metric, best_dir if config.train.select_best else "",
        rt.is_chief, metadata=_metadata(config, rt),
    )  # fmt: skip
    for phase in PHASES:
        phase_cfg = getattr(config.train, phase)
        if PHASES.index(phase) < PHASES.index(progress["phase"]) or phase_cfg.epochs == 0:
            continue
        resuming = phase == progress["phase"]
        first_epoch = progress["epochs_done"] if resuming else 0
        skip_steps = progress["step_in_epoch"] if resuming else 0
        if first_epoch >= phase_cfg.epochs:
            continue
        plan = phase_plan(config, phase, train_count, rt.replicas, count_how, skip_steps)
        steps = plan.steps_per_epoch
        if plan.steps_per_execution != config.runtime.steps_per_execution:
            _log(
                f"steps_per_execution {plan.steps_per_execution} (configured "
                f"{config.runtime.steps_per_execution}): the largest that divides {steps} steps"
                + (f" and the {skip_steps} already done" if skip_steps else "")
            )
        with rt.scope():
            gan.compile(
                g_optimizer=optimizers["pretrain" if phase == "pretrain" else "g_gan"],
                d_optimizer=optimizers["d_gan"] if phase == "gan" else None,
                l1_weight=config.train.l1_weight,
                phase=phase,
                label_smoothing=config.train.label_smoothing if phase == "gan" else 0.0,
                l1_bin_weights=l1_bin_weights,
                steps_per_execution=plan.steps_per_execution,
                jit_compile=jit_compile,
                fused_batch_norm=config.runtime.fused_batch_norm,
            )
        selection.phase = phase
        callbacks = [
            counter,
            cb.StopOnNonFinite(counter, phase, save_dir),
            # Before the checkpoint and the history: its scores land in both.
            selection,
            cb.PeriodicCheckpoint(
                save_dir,
                groups(phase),
                counter,
                phase,
                steps,
                config.train.checkpoint_every,
                rt.is_chief,
                resumed_epoch=(first_epoch, skip_steps),
                mirror_dir=ckpt_dir if save_dir != ckpt_dir else "",
                mirror_minutes=config.runtime.mirror_minutes,
            ),
            cb.CSVHistory(fileio.join(workdir, f"history_{phase}.csv"), append=True),
            cb.SampleColorizations(
                generator, *sample, fileio.join(workdir, "samples"), writer, tag=phase
            ),
        ]
        if rt.is_chief and tf is not None:  # TensorBoard writes through TensorFlow
            callbacks.append(
                keras.callbacks.TensorBoard(
                    fileio.join(workdir, "logs", phase), update_freq="epoch"
                )
            )
        _log(
            f"phase '{phase}': epochs {first_epoch + 1}..{phase_cfg.epochs}, {steps} steps each "
            f"({plan.how}; global batch {plan.global_batch}, "
            f"{plan.steps_per_execution} per execution)"
            + (f" (first epoch resumes after step {skip_steps})" if skip_steps else "")
        )
        started = time.time()
        fit = dict(rt=rt, train_ds=train_ds, val_ds=val_ds, callbacks=callbacks)
        fit["val_batch"] = config.data.val_batch_size
        if skip_steps:  # finish the interrupted epoch, then carry on with whole ones
            _fit(gan, first_epoch, first_epoch + 1, steps - skip_steps, **fit)
            first_epoch += 1
        if first_epoch < phase_cfg.epochs:
            _fit(gan, first_epoch, phase_cfg.epochs, steps, **fit)
        _log(f"phase '{phase}' done in {time.time() - started:.0f} s")
        progress = {
            "phase": phase,
            "epochs_done": phase_cfg.epochs,
            "step_in_epoch": 0,
            "step": counter.step,
        }

    chosen = selection.best() if config.train.select_best else None
    if chosen:
        gan.set_generator_weights(chosen.pop("weights"))
        _log(
            f"product: the {'averaged ' if chosen['ema'] else ''}generator of phase "
            f"'{chosen['phase']}', epoch {chosen['epoch']} (best validation "
            f"{config.train.select_metric} {chosen['score']:.2f})"
        )
        product = chosen
    else:
        gan.set_generator_weights(gan.averaged_generator_weights())  # raw ones without EMA
        product = {"phase": progress["phase"], "epoch": "last", "ema": bool(gan.ema_weights)}
    product["ema_decay"] = config.train.ema_decay
    product["select_metric"] = config.train.select_metric if config.train.select_best else ""
    return _finish(gan, val_ds, workdir, config, counter.step, rt, product)


def _metadata(config: Config, rt: _Runtime) -> dict:
    """What a preset this run writes says of itself (``models.presets``' metadata.json)."""
    return {
        "config": config.name,
        "recipe": config.to_dict(),
        "backend": f"keras {keras.__version__} on {rt.backend}, {rt.replicas} {rt.device}",
    }


def _is_chief(strategy) -> bool:
    if not distribute.is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def _fit(gan, initial_epoch, epochs, steps, *, rt, train_ds, val_ds, callbacks, val_batch):
    """``fit()`` under both backends; a custom loop over ``strategy.run`` for TF multi-worker.

    Keras 3's ``fit()`` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585:
    "Attempt to convert a value (PerReplica...)"); the loop below calls the same ``train_step``.
    """
    if not rt.multi_worker:
        arrays = isinstance(val_ds, tuple)  # the numpy pipeline's (L, ab) validation arrays
        gan.fit(
            train_ds,
            validation_data=val_ds,
            validation_batch_size=val_batch if arrays else None,
            initial_epoch=initial_epoch,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,
            # One line per epoch where a progress bar would flood (CI, Colab, pipes, logs).
            verbose=2
            if (
                os.environ.get("CI")
                or os.environ.get("COLAB_RELEASE_TAG")
                or not sys.stdout.isatty()
            )
            else "auto",
        )
        return
    strategy = rt.strategy
    callback_list = keras.callbacks.CallbackList(callbacks, model=gan)
    iterator = iter(train_ds)

    @tf.function
    def one_step(it):
        strategy.run(gan.train_step, args=(next(it),))

    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        for metric in gan.metrics:
            metric.reset_state()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps):
            one_step(iterator)
            logs = {m.name: float(m.result()) for m in gan.metrics if m.name in gan.trackers}
            callback_list.on_train_batch_end(step, logs)
        _log(f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
        callback_list.on_epoch_end(epoch, logs)
    callback_list.on_train_end()


def evaluate(gan, val_ds, batch_size: int, multi_worker: bool = False) -> dict:
    """Validation numbers of the generator as it is (``ColorizationGAN.test_step``); under
    multi-worker each worker scores the whole set locally (``evaluate()`` shares ``fit()``'s
    multi-worker failure)."""
    if not multi_worker:
        return gan.validate(val_ds, batch_size)
    for metric in gan.eval_trackers.values():
        metric.reset_state()
    step = tf.function(gan.test_step)
    for batch in val_ds:
        results = step(batch)
    return results


def _finish(gan, val_ds, workdir: str, config: Config, step: int, rt: _Runtime, product) -> dict:
    results = evaluate(gan, val_ds, config.data.val_batch_size, rt.multi_worker)
    summary = {
        "config": config.name,
        "step": step,
        "val": {k: float(v) for k, v in results.items()},
        "product": product,  # which phase / epoch the saved generator comes from
    }
    product_dir = fileio.join(workdir, PRODUCT_DIR)
    if rt.is_chief:
        metadata = {
            **_metadata(config, rt),
            "step": step,
            "val": summary["val"],
            "product": product,
        }
        cb.write_preset(gan.generator, product_dir, metadata)
        fileio.write_text(fileio.join(workdir, SUMMARY_FILE), json.dumps(summary, indent=2))
    v = summary["val"]
    _log("validation (same crops)     ours     gray (a=b=0)")
    for name, fmt in (
        ("l1", "{:8.4f}"),
        ("psnr", "{:8.2f}"),
        ("ssim", "{:8.4f}"),
        ("dcf", "{:8.2f}"),
    ):
        _log(f"  {name:<25}{fmt.format(v[name])} {fmt.format(v['gray_' + name])}")
    if not all(math.isfinite(x) for x in v.values()):
        _log("warning: non-finite validation metric")
    if rt.is_chief:
        _log(f"generator written to {product_dir} (a preset folder: --model {product_dir})")
    return summary
