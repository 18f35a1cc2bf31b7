"""``python -m colorize_tf.train``: both phases of the method in one resumable command.

    python -m colorize_tf.train                                   # configs/quickstart.yaml
    python -m colorize_tf.train --config coco_paper --workdir runs/coco
    python -m colorize_tf.train --config my.yaml --set train.gan.epochs=5 --set data.batch_size=32

Writes into ``--workdir`` (default ``runs/<config name>``):
``config.yaml`` (the resolved config), ``checkpoints/`` (every ``train.checkpoint_every`` steps
and each epoch end), ``logs/`` (TensorBoard: losses, validation metrics, sample colorizations),
``history_<phase>.csv``, ``samples/*.png``, ``generator.keras`` (the product) and ``summary.json``
(validation L1 / PSNR / SSIM beside the gray baseline). Rerunning the same command resumes
from the last checkpoint, in the right phase with the step count intact. The workdir may be on
any filesystem ``tf.io.gfile`` reaches (``gs://BUCKET/runs/x`` for Cloud TPU runs, ``ram://``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time

import keras
import tensorflow as tf

from colorize_tf.config import Config, ConfigError, config_from_yaml
from colorize_tf.data import pipeline as data
from colorize_tf.data import sources
from colorize_tf.models import build_models, float32_copy
from colorize_tf.training import callbacks as cb
from colorize_tf.training import checkpoint, distribute, fileio, recipe
from colorize_tf.training.gan import PHASES, ColorizationGAN
from colorize_tf.training.recipe import GENERATOR_FILE, SUMMARY_FILE


class ResumeError(RuntimeError):
    """The workdir holds a run whose model cannot continue under the new config."""


# --- data ---------------------------------------------------------------------------------------


def _datasets(config: Config, strategy: tf.distribute.Strategy, global_batch: int):
    """(distributed training dataset (repeats), validation dataset, train image count or None,
    how the count was had: ``counted`` or ``estimated``)."""
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
    drop = isinstance(strategy, tf.distribute.TPUStrategy)  # TPUs need static batch shapes

    def train_fn(context: tf.distribute.InputContext):
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
            jit_lab=not drop,  # a TPU host has no XLA CPU backend inside tf.data
            scan=scans.get(d.source),
            **common,
        )

    train = strategy.distribute_datasets_from_function(train_fn)
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


def _record_count(config: Config) -> tuple[int | None, str]:
    """Training images of a TFRecord source (counted: one pass over the records, no decoding)
    or of a TFDS source cut by ``max_images`` (estimated: a hashed split keeps about
    ``1 - val_fraction`` of a pooled split). (None, "") when neither applies."""
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


def run(config: Config, workdir: str | os.PathLike) -> dict:
    """Train both phases (resuming if the workdir holds checkpoints); returns the summary.

    ``workdir`` may be anything ``tf.io.gfile`` reaches: a local path, ``gs://...``, ``ram://...``.
    """
    workdir = os.fspath(workdir)
    fileio.makedirs(workdir)
    _check_resume(workdir, config)
    # Checkpoint keys hold Keras' auto-generated names ("adam_2/..."): start them afresh so that a
    # second run in one process (the only way to resume a ram:// workdir) matches the first.
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.train.seed)
    distribute.set_precision(config.runtime.mixed_precision)
    strategy = distribute.get_strategy(config.runtime.strategy, config.runtime.tpu)
    device = distribute.check_accelerator(strategy=strategy, requested=config.runtime.strategy)
    replicas = strategy.num_replicas_in_sync
    # Keras wraps `strategy.run` in the jit_compile function; a TPUStrategy compiles each step
    # with XLA anyway, and Keras itself keeps XLA off under tf.distribute.
    jit_compile = config.runtime.jit_compile and device != "tpu"
    if config.runtime.jit_compile and not jit_compile:
        _log("runtime.jit_compile ignored under TPUStrategy: the TPU compiles every step with XLA")
    if jit_compile:
        tf.config.optimizer.set_jit(True)
    _log(
        f"strategy {type(strategy).__name__} with {replicas} replica(s) on {device}; "
        f"precision {keras.mixed_precision.global_policy().name}"
    )

    global_batch = distribute.global_batch_size(
        config.data.batch_size, config.data.batch_per_replica, replicas
    )
    train_ds, val_ds, train_count, count_how = _datasets(config, strategy, global_batch)
    if device == "cpu":
        _warn_cpu_time(config, train_count, count_how, replicas)
    with strategy.scope():
        generator, discriminator = build_models(config)
        gan = ColorizationGAN(generator, discriminator)
        optimizers = recipe.make_optimizers(config.train)
        for name, optimizer in optimizers.items():
            optimizer.build((discriminator if name == "d_gan" else generator).trainable_variables)
        gan.compile(optimizers["pretrain"], phase="pretrain")  # evaluable even if no phase is left
    _log(
        f"generator {generator.count_params():,} parameters, "
        f"discriminator {discriminator.count_params():,}; "
        f"{train_count if train_count is not None else 'unknown number of'} training images"
    )

    def groups(phase: str) -> dict:  # a checkpoint holds the running phase's state only
        return checkpoint.phase_groups(phase, generator, discriminator, optimizers)

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
    sample_batch = next(iter(val_ds.take(1)))
    sample = [t[: config.train.sample_images] for t in sample_batch]
    writer = tf.summary.create_file_writer(fileio.join(workdir, "logs", "samples"))
    is_chief = _is_chief(strategy)

    # EMA and best-epoch selection share one state across both phases (see GeneratorAverage).
    averaging = config.train.ema_decay > 0 or config.train.select_best
    averages: dict = {}  # GeneratorAverage's state: the running average and the best epoch
    for phase in PHASES:
        phase_cfg = getattr(config.train, phase)
        if PHASES.index(phase) < PHASES.index(progress["phase"]) or phase_cfg.epochs == 0:
            continue
        resuming = phase == progress["phase"]
        first_epoch = progress["epochs_done"] if resuming else 0
        skip_steps = progress["step_in_epoch"] if resuming else 0
        if first_epoch >= phase_cfg.epochs:
            continue
        plan = phase_plan(config, phase, train_count, replicas, count_how, skip_steps)
        steps = plan.steps_per_epoch
        if plan.steps_per_execution != config.runtime.steps_per_execution:
            _log(
                f"steps_per_execution {plan.steps_per_execution} (configured "
                f"{config.runtime.steps_per_execution}): the largest that divides {steps} steps"
                + (f" and the {skip_steps} already done" if skip_steps else "")
            )
        with strategy.scope():
            gan.compile(
                g_optimizer=optimizers["pretrain" if phase == "pretrain" else "g_gan"],
                d_optimizer=optimizers["d_gan"] if phase == "gan" else None,
                l1_weight=config.train.l1_weight,
                phase=phase,
                label_smoothing=config.train.label_smoothing if phase == "gan" else 0.0,
                steps_per_execution=plan.steps_per_execution,
                jit_compile=jit_compile,
                fused_batch_norm=config.runtime.fused_batch_norm,
            )
        callbacks = [
            counter,
            cb.StopOnNonFinite(counter, phase, save_dir),
            cb.PeriodicCheckpoint(
                save_dir,
                groups(phase),
                counter,
                phase,
                steps,
                config.train.checkpoint_every,
                is_chief,
                resumed_epoch=(first_epoch, skip_steps),
                mirror_dir=ckpt_dir if save_dir != ckpt_dir else "",
                mirror_minutes=config.runtime.mirror_minutes,
            ),
            # Before CSVHistory, so the averaged generator's validation lands in the history.
            *(
                [
                    cb.GeneratorAverage(
                        generator,
                        val_ds,
                        config.train.ema_decay,
                        phase,
                        averages,
                        config.train.select_best,
                    )
                ]
                if averaging
                else []
            ),
            cb.CSVHistory(fileio.join(workdir, f"history_{phase}.csv"), append=True),
            cb.SampleColorizations(
                generator,
                *sample,
                fileio.join(workdir, "samples"),
                writer if is_chief else None,
                tag=phase,
            ),
        ]
        if is_chief:
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
        if skip_steps:  # finish the interrupted epoch, then carry on with whole ones
            _fit(
                gan,
                strategy,
                train_ds,
                val_ds,
                first_epoch,
                first_epoch + 1,
                steps - skip_steps,
                callbacks,
            )
            first_epoch += 1
        if first_epoch < phase_cfg.epochs:
            _fit(gan, strategy, train_ds, val_ds, first_epoch, phase_cfg.epochs, steps, callbacks)
        _log(f"phase '{phase}' done in {time.time() - started:.0f} s")
        progress = {
            "phase": phase,
            "epochs_done": phase_cfg.epochs,
            "step_in_epoch": 0,
            "step": counter.step,
        }

    product = None
    if averaging and averages:
        chosen = averages.get("best") if config.train.select_best else None
        generator.set_weights(chosen["weights"] if chosen else averages["average"])
        if chosen:
            _log(
                f"product: the {'averaged ' if chosen['ema'] else ''}generator of phase "
                f"'{chosen['phase']}', epoch {chosen['epoch']} (best validation PSNR "
                f"{chosen['metrics']['psnr']:.2f} dB)"
            )
        product = {k: v for k, v in (chosen or {}).items() if k != "weights"}
        product["ema_decay"] = config.train.ema_decay
    return _finish(gan, val_ds, workdir, config, counter.step, strategy, product)


def _is_chief(strategy) -> bool:
    if not distribute.is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def _fit(gan, strategy, train_ds, val_ds, initial_epoch, epochs, steps, callbacks):
    """``fit()`` on single-host strategies; a custom loop over ``strategy.run`` for multi-worker.

    Keras 3's ``fit()`` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585:
    "Attempt to convert a value (PerReplica...)"); the loop below calls the same ``train_step``.
    """
    if not distribute.is_multi_worker(strategy):
        gan.fit(
            train_ds,
            validation_data=val_ds,
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


def _evaluate(gan, val_ds, multi_worker: bool) -> dict:
    """Validation metrics; under multi-worker each worker scores the whole set locally
    (``evaluate()`` shares ``fit()``'s multi-worker failure)."""
    if not multi_worker:
        return gan.evaluate(val_ds, return_dict=True, verbose=0)
    for metric in gan.eval_trackers.values():
        metric.reset_state()
    step = tf.function(gan.test_step)
    for batch in val_ds:
        results = step(batch)
    return results


def _finish(gan, val_ds, workdir: str, config: Config, step: int, strategy, product=None) -> dict:
    is_chief = _is_chief(strategy)
    results = _evaluate(gan, val_ds, distribute.is_multi_worker(strategy))
    summary = {
        "config": config.name,
        "step": step,
        "val": {k: float(v) for k, v in results.items()},
    }
    if product:
        summary["product"] = product  # which phase / epoch the saved generator comes from
    if is_chief:
        # The product computes in float32 whatever the training precision (TFLite needs it);
        # Keras writes remote paths through gfile.
        float32_copy(gan.generator).save(fileio.join(workdir, GENERATOR_FILE))
        fileio.write_text(fileio.join(workdir, SUMMARY_FILE), json.dumps(summary, indent=2))
    v = summary["val"]
    _log("validation (same crops)     ours     gray (a=b=0)")
    for name, fmt in (("l1", "{:8.4f}"), ("psnr", "{:8.2f}"), ("ssim", "{:8.4f}")):
        _log(f"  {name:<25}{fmt.format(v[name])} {fmt.format(v['gray_' + name])}")
    if not all(math.isfinite(x) for x in v.values()):
        _log("warning: non-finite validation metric")
    if is_chief:
        _log(f"generator written to {fileio.join(workdir, GENERATOR_FILE)}")
    return summary
