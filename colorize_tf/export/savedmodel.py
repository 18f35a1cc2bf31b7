"""The exported graphs, and the serving SavedModel built from them.

``serving_default``: uint8 ``image`` (H, W, C), C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4
(RGBA), any H, W >= 8 -> uint8 ``rgb`` (H, W, 3), same size: the whole of ``serving.py`` in the
graph. ``colorize_batch``: the same for (B, H, W, C). ``predict_ab``: float32 ``l_norm``
(B, S, S, 1) -> float32 ``ab_norm`` (B, S, S, 2), the bare network. Reloads with plain
``tf.saved_model.load`` (no colorize_tf import).

Every graph is written through ``keras.export.ExportArchive``, which captures the Keras 3
weights; ``colorize_tf.export.tflite`` converts its fixed-size graphs from such an archive too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorize_tf.core import metrics
from colorize_tf.inference import serving


def endpoint_functions(generator: keras.Model, size: int, xla: bool) -> dict[str, tuple]:
    """name -> (function returning a dict, input signature) for every exported endpoint."""
    predict = serving.keras_predict_ab(generator)

    def colorize(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"rgb": serving.colorize_batch(image[tf.newaxis], predict, size, xla)[0]}

    def colorize_batch(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"rgb": serving.colorize_batch(images, predict, size, xla)}

    def colorize_rgb(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"rgb": serving.colorize_batch(image, predict, size, xla)}

    def predict_ab(l_norm: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"ab_norm": predict(l_norm)}

    return {
        "colorize": (colorize, tf.TensorSpec([None, None, None], tf.uint8, name="image")),
        "colorize_batch": (
            colorize_batch,
            tf.TensorSpec([None, None, None, None], tf.uint8, name="images"),
        ),
        "predict_ab": (predict_ab, tf.TensorSpec([None, size, size, 1], tf.float32, "l_norm")),
        # The fixed-shape TFLite graphs.
        "colorize_rgb_fixed": (colorize_rgb, tf.TensorSpec([1, size, size, 3], tf.uint8, "image")),
        "predict_ab_fixed": (predict_ab, tf.TensorSpec([1, size, size, 1], tf.float32, "l_norm")),
    }


def write_archive(generator: keras.Model, path: str, endpoints: dict[str, tuple]) -> None:
    """SavedModel with ``endpoints`` {signature name: (fn, spec)}; the first is the default."""
    archive = keras.export.ExportArchive()
    archive.track(generator)
    for name, (fn, spec) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=[spec])
    archive.write_out(path, verbose=False)


def export_savedmodel(
    generator: keras.Model, path: str | Path, size: int | None = None, xla: bool = True
) -> None:
    """Write the serving SavedModel (signatures in the module docstring) to ``path``.

    Args:
        generator: normalized L -> normalized ab.
        path: the SavedModel directory to create.
        size: the network's square input size (None: the generator's own, ``serving.model_size``).
        xla: XLA kernels for the full-resolution pixel math (False for runtimes without XLA).
    """
    fns = endpoint_functions(generator, serving.model_size(generator, size), xla)
    write_archive(
        generator,
        str(path),
        {
            "serving_default": fns["colorize"],
            "colorize_batch": fns["colorize_batch"],
            "predict_ab": fns["predict_ab"],
        },
    )


def psnr_summary(values: Sequence[float]) -> dict[str, float]:
    """PSNR values (dB) over the check photos -> {"min", "mean"}, rounded to 0.01 dB."""
    return {"min": round(float(np.min(values)), 2), "mean": round(float(np.mean(values)), 2)}


def check_savedmodel(
    path: str | Path, generator: keras.Model, photos: Sequence[np.ndarray], size: int
) -> dict[str, float]:
    """Reload the SavedModel and compare its full-size output with ``serving.colorize_image``.

    Returns {"min", "mean"} PSNR (dB) and "max_abs_diff" in uint8 levels, over the photos.
    """
    loaded = tf.saved_model.load(str(path))
    values, worst = [], 0
    for photo in photos:
        actual = loaded.signatures["serving_default"](image=tf.constant(photo))["rgb"].numpy()
        expected = serving.colorize_image(generator, photo, size)
        values.append(float(metrics.psnr(actual, expected)))
        worst = max(worst, int(np.abs(actual.astype(np.int16) - expected).max()))
    return {**psnr_summary(values), "max_abs_diff": worst}
