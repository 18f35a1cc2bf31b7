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

import argparse
import json
import math
import os
import sys
import time

import keras
import tensorflow as tf

from colorize_tf import callbacks as cb
from colorize_tf import checkpoint, data, distribute, fileio, sources
from colorize_tf.config import Config, ConfigError, config_from_yaml, load_config
from colorize_tf.gan import PHASES, ColorizationGAN
from colorize_tf.models import build_models, float32_copy

GENERATOR_FILE = "generator.keras"


class ResumeError(RuntimeError):
    """The workdir holds a run whose model cannot continue under the new config."""


# --- data ---------------------------------------------------------------------------------------


def _datasets(config: Config, strategy: tf.distribute.Strategy):
    """(distributed training dataset (repeats), validation dataset, train image count or None)."""
    d = config.data
    common = dict(crop_size=d.crop_size, val_fraction=d.val_fraction, max_pixels=d.max_pixels,
                  max_images=d.max_images)
    drop = isinstance(strategy, tf.distribute.TPUStrategy)  # TPUs need static batch shapes

    def train_fn(context: tf.distribute.InputContext):
        return data.build_dataset(
            d.source, split="train", training=True, batch_size=d.batch_size, input_context=context,
            drop_remainder=True, cache=d.cache, shuffle_buffer=d.shuffle_buffer,
            seed=config.train.seed, repeat=True, **common,
        )

    train = strategy.distribute_datasets_from_function(train_fn)
    val_source, val_split = (d.val_source, "all") if d.val_source else (d.source, "val")
    val = data.build_dataset(val_source, split=val_split, training=False, batch_size=d.val_batch_size,
                             drop_remainder=drop, cache=d.cache, **common)
    scans: dict[str, sources.Scan] = {}  # one pre-scan per file source, not one per split
    counts = []
    for source, split in ((d.source, "train"), (val_source, val_split)):
        try:
            if source not in scans:
                scans[source] = sources.scan_source(source, max_pixels=d.max_pixels, max_images=d.max_images)
            counts.append(len(sources.select_split(scans[source], split, d.val_fraction)))
        except (ValueError, TypeError, NotImplementedError):
            counts.append(None)  # TFRecord / TFDS: the config must give steps_per_epoch
    if counts[1]:
        # A known length spares Keras' "input ran out of data" warning at each validation.
        batches = counts[1] // d.val_batch_size if drop else -(-counts[1] // d.val_batch_size)
        val = val.apply(tf.data.experimental.assert_cardinality(batches))
    return train, val, counts[0]


def _steps_per_epoch(phase_cfg, train_count: int | None, batch_size: int, phase: str) -> int:
    if phase_cfg.steps_per_epoch:
        return phase_cfg.steps_per_epoch
    if train_count is None:
        raise ConfigError(f"train.{phase}.steps_per_epoch is needed: this source's size is not known up front")
    return max(1, train_count // batch_size)


# --- the run ------------------------------------------------------------------------------------


def _check_resume(workdir: str, config: Config) -> None:
    """Refuse to continue a run whose model differs from the new config's; otherwise dump config."""
    old_path = fileio.join(workdir, "config.yaml")
    if fileio.isfile(old_path) and checkpoint.latest(fileio.join(workdir, "checkpoints")):
        old = config_from_yaml(fileio.read_text(old_path), old_path)
        if old.model != config.model:
            raise ResumeError(
                f"{workdir} holds a run with model {old.model}, but this config asks for {config.model}; "
                "resuming would not fit the saved weights. Use another --workdir, or the old config."
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
    if config.runtime.jit_compile:
        tf.config.optimizer.set_jit(True)
    distribute.set_precision(config.runtime.mixed_precision)
    strategy = distribute.get_strategy(config.runtime.strategy, config.runtime.tpu)
    _log(f"strategy {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s); "
         f"precision {keras.mixed_precision.global_policy().name}")

    train_ds, val_ds, train_count = _datasets(config, strategy)
    with strategy.scope():
        generator, discriminator = build_models(config)
        gan = ColorizationGAN(generator, discriminator)
        phases = config.train
        optimizers = {
            "pretrain": distribute.make_optimizer(phases.pretrain.learning_rate, phases.pretrain.beta_1, phases.pretrain.beta_2),
            "g_gan": distribute.make_optimizer(phases.gan.learning_rate, phases.gan.beta_1, phases.gan.beta_2),
            "d_gan": distribute.make_optimizer(phases.gan.learning_rate, phases.gan.beta_1, phases.gan.beta_2),
        }
        for name, optimizer in optimizers.items():
            optimizer.build((discriminator if name == "d_gan" else generator).trainable_variables)
        gan.compile(optimizers["pretrain"], phase="pretrain")  # evaluable even if no phase is left
    _log(f"generator {generator.count_params():,} parameters, discriminator {discriminator.count_params():,}; "
         f"{train_count if train_count is not None else 'unknown number of'} training images")

    groups = {"generator": generator, "discriminator": discriminator,
              **{f"optimizer_{k}": v for k, v in optimizers.items()}}
    ckpt_dir = fileio.join(workdir, "checkpoints")
    progress = {"phase": PHASES[0], "epochs_done": 0, "step_in_epoch": 0, "step": 0}
    found = checkpoint.latest(ckpt_dir)
    if found:
        checkpoint.restore(found[0], groups)
        progress = found[1]
        _log(f"resumed from {fileio.basename(found[0])}: phase '{progress['phase']}', {progress['epochs_done']} epoch(s) "
             f"+ {progress['step_in_epoch']} step(s) done, global step {progress['step']}")

    counter = cb.StepCounter(start=progress["step"])
    sample_batch = next(iter(val_ds.take(1)))
    sample = [t[: config.train.sample_images] for t in sample_batch]
    writer = tf.summary.create_file_writer(fileio.join(workdir, "logs", "samples"))
    is_chief = _is_chief(strategy)

    for phase in PHASES:
        phase_cfg = getattr(config.train, phase)
        if PHASES.index(phase) < PHASES.index(progress["phase"]) or phase_cfg.epochs == 0:
            continue
        resuming = phase == progress["phase"]
        first_epoch = progress["epochs_done"] if resuming else 0
        skip_steps = progress["step_in_epoch"] if resuming else 0
        if first_epoch >= phase_cfg.epochs:
            continue
        steps = _steps_per_epoch(phase_cfg, train_count, config.data.batch_size, phase)
        with strategy.scope():
            gan.compile(
                g_optimizer=optimizers["pretrain" if phase == "pretrain" else "g_gan"],
                d_optimizer=optimizers["d_gan"] if phase == "gan" else None,
                l1_weight=config.train.l1_weight, phase=phase,
                steps_per_execution=config.runtime.steps_per_execution,
                jit_compile=config.runtime.jit_compile,
            )
        callbacks = [
            counter,
            cb.StopOnNonFinite(counter, phase, ckpt_dir),
            cb.PeriodicCheckpoint(ckpt_dir, groups, counter, phase, steps, config.train.checkpoint_every, is_chief),
            cb.CSVHistory(fileio.join(workdir, f"history_{phase}.csv"), append=True),
            cb.SampleColorizations(generator, *sample, fileio.join(workdir, "samples"), writer if is_chief else None,
                                   tag=phase),
        ]
        if is_chief:
            callbacks.append(keras.callbacks.TensorBoard(fileio.join(workdir, "logs", phase), update_freq="epoch"))
        _log(f"phase '{phase}': epochs {first_epoch + 1}..{phase_cfg.epochs}, {steps} steps each"
             + (f" (first epoch resumes after step {skip_steps})" if skip_steps else ""))
        started = time.time()
        if skip_steps:  # finish the interrupted epoch, then carry on with whole ones
            _fit(gan, strategy, train_ds, val_ds, first_epoch, first_epoch + 1, steps - skip_steps, callbacks)
            first_epoch += 1
        if first_epoch < phase_cfg.epochs:
            _fit(gan, strategy, train_ds, val_ds, first_epoch, phase_cfg.epochs, steps, callbacks)
        _log(f"phase '{phase}' done in {time.time() - started:.0f} s")
        progress = {"phase": phase, "epochs_done": phase_cfg.epochs, "step_in_epoch": 0, "step": counter.step}

    return _finish(gan, val_ds, workdir, config, counter.step, strategy)


def _is_chief(strategy) -> bool:
    if not distribute.is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (resolver.task_type == "worker" and resolver.task_id == 0
                                                     and "chief" not in resolver.cluster_spec().as_dict())


def _fit(gan, strategy, train_ds, val_ds, initial_epoch, epochs, steps, callbacks):
    """``fit()`` on single-host strategies; a custom loop over ``strategy.run`` for multi-worker.

    Keras 3's ``fit()`` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585:
    "Attempt to convert a value (PerReplica...)"); the loop below calls the same ``train_step``.
    """
    if not distribute.is_multi_worker(strategy):
        gan.fit(train_ds, validation_data=val_ds, initial_epoch=initial_epoch, epochs=epochs,
                steps_per_epoch=steps, callbacks=callbacks, shuffle=False,
                # One line per epoch where a progress bar would flood (CI, Colab, pipes, logs).
                verbose=2 if (os.environ.get("CI") or os.environ.get("COLAB_RELEASE_TAG")
                              or not sys.stdout.isatty()) else "auto")
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


def _finish(gan, val_ds, workdir: str, config: Config, step: int, strategy) -> dict:
    is_chief = _is_chief(strategy)
    results = _evaluate(gan, val_ds, distribute.is_multi_worker(strategy))
    summary = {"config": config.name, "step": step, "val": {k: float(v) for k, v in results.items()}}
    if is_chief:
        # The product computes in float32 whatever the training precision (TFLite needs it);
        # Keras writes remote paths through gfile.
        float32_copy(gan.generator).save(fileio.join(workdir, GENERATOR_FILE))
        fileio.write_text(fileio.join(workdir, "summary.json"), json.dumps(summary, indent=2))
    v = summary["val"]
    _log("validation (same crops)     ours     gray (a=b=0)")
    for name, fmt in (("l1", "{:8.4f}"), ("psnr", "{:8.2f}"), ("ssim", "{:8.4f}")):
        _log(f"  {name:<25}{fmt.format(v[name])} {fmt.format(v['gray_' + name])}")
    if not all(math.isfinite(x) for x in v.values()):
        _log("warning: non-finite validation metric")
    if is_chief:
        _log(f"generator written to {fileio.join(workdir, GENERATOR_FILE)}")
    return summary


# --- command line -------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m colorize_tf.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help="a YAML file or a packaged config name (default: quickstart)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.gan.epochs=5 (repeatable)")
    parser.add_argument("--workdir", default=None, help="where outputs go (default: runs/<config name>)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        run(config, args.workdir or os.path.join("runs", config.name))
    except (ConfigError, ResumeError, distribute.StrategyError, cb.NonFiniteLossError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
