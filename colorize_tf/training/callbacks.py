"""Training callbacks: step-count checkpoints, a NaN stop that names where, sample colorizations,
the epoch selection (the best generator by a configurable score, kept on disk).

They work under ``fit()`` with either Keras backend and under the TensorFlow multi-worker loop
(``colorize_tf.training.loop`` drives them through a ``keras.callbacks.CallbackList`` there), so
every path writes the same artifacts.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time

import keras
import numpy as np

from colorize_tf.core import color
from colorize_tf.models import presets
from colorize_tf.training import checkpoint, fileio
from colorize_tf.training.recipe import NonFiniteLossError, selection_score


class StepCounter(keras.callbacks.Callback):
    """Counts optimizer steps across phases, fits and resumes (``steps_per_execution`` aware)."""

    def __init__(self, start: int = 0):
        super().__init__()
        self.step = start
        self._seen_in_epoch = 0
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._seen_in_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last step index of this execution within the epoch.
        self.step += batch + 1 - self._seen_in_epoch
        self._seen_in_epoch = batch + 1


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop at once when any logged loss is NaN/inf, before a checkpoint could save it."""

    def __init__(self, counter: StepCounter, phase: str, checkpoint_dir: str | os.PathLike):
        super().__init__()
        self.counter, self.phase, self.checkpoint_dir = counter, phase, os.fspath(checkpoint_dir)

    def on_train_batch_end(self, batch, logs=None):
        bad = {k: v for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            self.model.stop_training = True
            last = checkpoint.latest(self.checkpoint_dir)
            where = f"{last[0]} (step {last[1]['step']})" if last else "none was written yet"
            raise NonFiniteLossError(
                f"{', '.join(f'{k}={v}' for k, v in bad.items())} in phase '{self.phase}', epoch "
                f"{self.counter.epoch + 1}, step {self.counter.step}. Stopped; the last good "
                f"checkpoint is {where}. Lower the learning rate, or use mixed_precision=bf16/none "
                "instead of fp16."
            )


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Save the phase's training state every ``every`` steps and at the end of each epoch.

    ``groups`` maps names to models/optimizers (see ``checkpoint.save``); ``progress`` adds the
    phase and epoch bookkeeping that ``train.py`` needs to resume in the right place.
    ``resumed_epoch`` = (epoch, steps already done in it) when a fit finishes an interrupted
    epoch, so that epoch's saves record where it really stands. With ``mirror_dir``, each save is
    also copied there (``checkpoint.mirror``: newest only), at most once per ``mirror_minutes``,
    and the newest one always at the end of each fit.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        groups: dict,
        counter: StepCounter,
        phase: str,
        steps_per_epoch: int,
        every: int,
        enabled: bool = True,
        resumed_epoch: tuple[int, int] = (0, 0),
        mirror_dir: str | os.PathLike = "",
        mirror_minutes: float = 0.0,
    ):
        super().__init__()
        self.directory, self.groups, self.counter = os.fspath(directory), groups, counter
        self.phase, self.steps_per_epoch, self.every, self.enabled = (
            phase,
            steps_per_epoch,
            every,
            enabled,
        )
        self.resumed_epoch = resumed_epoch
        self.mirror_dir, self.mirror_s = os.fspath(mirror_dir), 60.0 * mirror_minutes
        self._last_saved = counter.step
        self._unmirrored: str | None = None
        self._mirrored_at = -math.inf

    def _save(self, epochs_done: int, step_in_epoch: int):
        if not self.enabled or self.counter.step == self._last_saved:
            return
        if hasattr(self.model, "jax_state_sync"):  # JAX: the step's state back into variables
            self.model.jax_state_sync()
        progress = {"phase": self.phase, "epochs_done": epochs_done, "step_in_epoch": step_in_epoch}
        self._unmirrored = checkpoint.save(self.directory, self.counter.step, self.groups, progress)
        self._last_saved = self.counter.step
        if self.mirror_dir and time.monotonic() - self._mirrored_at >= self.mirror_s:
            self._mirror()

    def _mirror(self):
        checkpoint.mirror(self._unmirrored, self.mirror_dir)
        self._unmirrored, self._mirrored_at = None, time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.counter.step - self._last_saved >= self.every:
            done_in_epoch = self.counter._seen_in_epoch
            if self.counter.epoch == self.resumed_epoch[0]:
                done_in_epoch += self.resumed_epoch[1]
            if done_in_epoch >= self.steps_per_epoch:  # the epoch-end save takes it
                return
            self._save(self.counter.epoch, done_in_epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        if self.mirror_dir and self._unmirrored:
            self._mirror()


class CSVHistory(keras.callbacks.CSVLogger):
    """Keras' ``CSVLogger`` (same file, byte for byte), also on gfile paths (``gs://``, ``ram://``).

    Keras opens remote paths as ``tf.io.gfile.GFile`` but then asks the file for ``.closed``,
    which a GFile lacks (an AttributeError at train end); here the file is closed without asking.
    """

    def _close(self) -> None:
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None

    def on_train_begin(self, logs=None):
        self._close()
        super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        self._close()
        self.writer = None


def colorization_grid(generator, l_norm, ab_true) -> np.ndarray:
    """Rows of gray | prediction | truth, as one float RGB image (rows*H, 3*W, 3) in [0, 1]."""
    ab_pred = generator(l_norm, training=False)
    gray = color.l_ab_to_rgb(l_norm, np.zeros_like(np.asarray(ab_true)))
    pred = color.l_ab_to_rgb(l_norm, ab_pred)
    true = color.l_ab_to_rgb(l_norm, ab_true)
    rows = [
        np.concatenate([np.asarray(g), np.asarray(p), np.asarray(t)], axis=1)
        for g, p, t in zip(gray, pred, true, strict=True)
    ]
    return np.concatenate(rows, axis=0)


class SampleColorizations(keras.callbacks.Callback):
    """Each epoch, colorize a fixed validation batch: a TensorBoard image and
    ``<out_dir>/<tag>-epoch-NNN.png`` (the training loop: ``samples/<phase>-epoch-NNN.png``)."""

    def __init__(
        self,
        generator,
        l_norm,
        ab_true,
        out_dir: str | os.PathLike,
        summary_writer=None,
        tag: str = "samples",
    ):
        super().__init__()
        self.generator, self.l_norm, self.ab_true = generator, l_norm, ab_true
        self.out_dir, self.writer, self.tag = os.fspath(out_dir), summary_writer, tag

    def on_epoch_end(self, epoch, logs=None):
        grid = colorization_grid(self.generator, self.l_norm, self.ab_true)
        png = io.BytesIO()
        keras.utils.save_img(png, grid, file_format="png", scale=True)
        fileio.makedirs(self.out_dir)
        fileio.write_bytes(
            fileio.join(self.out_dir, f"{self.tag}-epoch-{epoch + 1:03d}.png"), png.getvalue()
        )
        if self.writer is not None:
            import tensorflow as tf  # TensorBoard images are TF's; kept out of the math above

            with self.writer.as_default():
                tf.summary.image(self.tag, grid[None], step=epoch + 1)
            self.writer.flush()


def write_preset(generator, folder: str, metadata: dict) -> None:
    """``generator`` as a preset folder (``models.presets``) at ``folder``, local or remote: a
    remote one (``gs://``) is written locally first, then copied file by file."""
    if not fileio.is_remote(folder):
        presets.save_preset(generator, folder, metadata, overwrite=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = presets.save_preset(generator, os.path.join(tmp, "preset"), metadata)
        fileio.makedirs(folder)
        for name in sorted(os.listdir(local)):
            with open(os.path.join(local, name), "rb") as handle:
                fileio.write_bytes(fileio.join(folder, name), handle.read())


class EpochSelection(keras.callbacks.Callback):
    """Each epoch end: score the generator that would ship, and keep the best one on disk.

    The generator that would ship is the moving average when the model keeps one
    (``ColorizationGAN(ema_decay > 0)``; its numbers are logged as ``ema_*``), else the raw
    one (the epoch's own ``val_*`` numbers). Its score is ``recipe.selection_score(criterion)``
    (logged as ``selection_score``). With ``best_dir``, a better score than any before writes
    that generator there as a preset folder whose metadata records phase, epoch, score and
    metrics, so the choice survives a restart; ``best()`` returns it with its weights.

    Args:
        gan: the ``ColorizationGAN`` being trained.
        evaluate: ``() -> results`` of the generator as it is on the validation data
            (``colorize_tf.training.loop.evaluate``: ``gan.validate``, or the TensorFlow
            multi-worker loop's own, as Keras' ``evaluate()`` fails there).
        criterion: ``train.select_metric``.
        best_dir: where the best generator goes ("": no selection).
        enabled: this process writes files (the chief).
        metadata: written into the best preset's metadata beside the selection record.
    """

    def __init__(self, gan, evaluate, criterion: str, best_dir: str = "", enabled: bool = True,
                 metadata: dict | None = None):  # fmt: skip
        super().__init__()
        self.gan, self.evaluate, self.criterion = gan, evaluate, criterion
        self.best_dir, self.enabled = best_dir, enabled
        self.metadata = metadata or {}
        self.phase = ""
        self._best_score = self._stored_score()

    def _stored_score(self) -> float:
        """The stored best's score by this run's criterion (a resumed run may change it)."""
        record = self._stored_record()
        if not record:
            return -math.inf
        try:
            return selection_score(self.criterion, record["metrics"])
        except KeyError:  # a record without the numbers the new criterion reads
            return record["score"] if record.get("criterion") == self.criterion else -math.inf

    def _stored_record(self) -> dict | None:
        path = fileio.join(self.best_dir, presets.METADATA_FILE) if self.best_dir else ""
        if not path or not fileio.isfile(path):
            return None
        return json.loads(fileio.read_text(path)).get("selection")

    def _evaluate(self) -> dict:
        with self.gan.averaged_generator():
            return {k: float(v) for k, v in self.evaluate().items()}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.gan.ema_weights:
            results = self._evaluate()
            logs.update({f"ema_{k}": v for k, v in results.items() if not k.startswith("gray_")})
        else:
            results = {k[len("val_") :]: float(v) for k, v in logs.items() if k.startswith("val_")}
            if "psnr" not in results:  # no validation ran (the TF multi-worker loop)
                if not self.best_dir:
                    return  # nothing to average, nothing to select: no score to make
                results = self._evaluate()
        score = selection_score(self.criterion, results)
        logs["selection_score"] = score
        if self.best_dir and score > self._best_score:
            self._best_score = score
            record = {
                "phase": self.phase,
                "epoch": epoch + 1,
                "ema": bool(self.gan.ema_weights),
                "criterion": self.criterion,
                "score": score,
                "metrics": results,
            }
            if self.enabled:
                with self.gan.averaged_generator() as generator:
                    write_preset(generator, self.best_dir, {**self.metadata, "selection": record})

    def best(self) -> dict | None:
        """The best generator so far: its selection record and ``weights`` (in
        ``ColorizationGAN._generator_variables`` order), or None."""
        record = self._stored_record()
        if record is None:
            return None
        generator = presets.load_preset(self.best_dir)
        order = list(generator.trainable_variables) + list(generator.non_trainable_variables)
        weights = [keras.ops.convert_to_numpy(v) for v in order]
        # Its score by this run's criterion (the record's may be an earlier run's).
        return {
            **record,
            "criterion": self.criterion,
            "score": self._stored_score(),
            "weights": weights,
        }
