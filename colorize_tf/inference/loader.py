"""One loader for every model form the project makes, and the colorizer it returns.

    import colorize_tf
    colorizer = colorize_tf.load_colorizer()            # the preset shipped in the package
    rgb = colorizer(gray_uint8)                         # any size in, same size RGB out

``load_colorizer(model)`` takes a generator ``.keras`` file, a preset folder (or the name of a
shipped one), a JAX-trained weights folder (``generator.json`` + weights), an exported
SavedModel folder or a ``.tflite`` file of either contract. Every form goes through
``colorize_tf.inference.serving``: L at full resolution, the network fed at its own input size
(the size it was trained at, unless ``size`` says otherwise), ab upsampled and joined to the full
L.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from colorize_tf.models import presets, weights

MODEL_HELP = (
    "generator .keras, preset folder, JAX weights folder, SavedModel folder or .tflite "
    "(default: the model shipped in the package)"
)  # every command's --model
KERAS_MODEL_HELP = (
    "generator .keras, preset folder or JAX weights folder (default: the model "
    "shipped in the package)"
)  # --model of commands that need the Keras network


def default_model() -> str:
    """The model every command uses without ``--model``: the shipped preset's folder."""
    return str(presets.preset_path(presets.DEFAULT_PRESET))


def model_form(path: str | os.PathLike) -> str:
    """``keras`` | ``preset`` | ``jax`` | ``savedmodel`` | ``tflite`` for an existing path.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: something there, but none of the forms (the message lists them).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    if path.is_dir():
        if presets.is_preset(path):
            return "preset"
        if weights.is_weights_folder(path):
            return "jax"
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
    elif path.suffix == ".keras":
        return "keras"
    elif path.suffix == ".tflite":
        return "tflite"
    raise ValueError(
        f"{path} is not a model: expected a generator .keras file, a preset folder "
        f"({presets.CONFIG_FILE} + {presets.WEIGHTS_FILE}), a JAX weights folder "
        f"({weights.SPEC_FILE}), a SavedModel folder (saved_model.pb) or a .tflite file"
    )


def resolve_model(model: str | os.PathLike | None) -> str:
    """None -> the shipped preset's folder; a shipped preset's name -> its folder; else the path."""
    if model is None:
        return default_model()
    model = os.fspath(model)
    if not os.path.exists(model) and os.sep not in model and model in presets.available_presets():
        return str(presets.preset_path(model))
    return model


def load_keras_file(path: str | os.PathLike):
    """A generator ``.keras`` file -> the model (normalized L -> normalized ab), computing in
    float32 whatever precision it was trained in."""
    import keras

    import colorize_tf.models  # noqa: F401  (registers the custom classes for loading)

    path = os.fspath(path)
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise FileNotFoundError(f"expected a generator .keras file, got {path!r}")
    model = keras.saving.load_model(path, compile=False)
    in_channels, out_channels = model.input_shape[-1], model.output_shape[-1]
    if (in_channels, out_channels) != (1, 2):
        raise ValueError(
            f"{path} maps {in_channels} to {out_channels} channels; a generator maps L (1) to "
            "ab (2). (Saved the GAN wrapper instead of its generator?)"
        )
    return colorize_tf.models.float32_copy(
        model
    )  # a mixed-precision run's file: compute in float32


def load_generator(path: str | os.PathLike | None = None):
    """A Keras generator (normalized L -> normalized ab, float32) from a ``.keras`` file, a
    preset folder or name, or a JAX weights folder; None: the shipped preset."""
    path = resolve_model(path)
    form = model_form(path)
    if form == "preset":
        return presets.load_preset(path)
    if form == "jax":
        return weights.load_weights_folder(path)
    if form == "keras":
        return load_keras_file(path)
    raise ValueError(
        f"{path} is a {form}, not a Keras generator (export needs .keras, a preset "
        "or a JAX weights folder)"
    )


class Colorizer:
    """A loaded model as a function: uint8 image (H, W[, C]) -> uint8 RGB (H, W, 3).

    ``C`` may be 1 (gray), 2 (gray + alpha), 3 (RGB: reduced to its L first) or 4 (RGBA).

    Attributes:
        size: the square input the network is fed.
        form: ``keras`` | ``preset`` | ``jax`` | ``savedmodel`` | ``tflite``.
        description: what was loaded, for logs.
        generator: the Keras generator, for the Keras-based forms (else None).
    """

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        size: int | None,
        form: str,
        description: str,
        generator=None,
    ):
        self._run, self.size, self.form = run, size, form
        self.description, self.generator = description, generator

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(image))

    def __repr__(self) -> str:
        return f"Colorizer({self.description})"

    @classmethod
    def from_preset(cls, name_or_path: str | None = None, size: int | None = None) -> Colorizer:
        """The shipped preset (or another preset folder) as a colorizer."""
        return load_colorizer(str(presets.preset_path(name_or_path)), size=size)


def load_colorizer(
    model: str | os.PathLike | None = None, size: int | None = None, threads: int | None = None
) -> Colorizer:
    """Any model form -> a ``Colorizer``.

    Args:
        model: see the module docstring; None: the shipped preset.
        size: network input size for the Keras-based forms (None: the size the model records,
            i.e. its training crop size). SavedModel and TFLite files carry their own.
        threads: TFLite interpreter threads (None: one per CPU core).

    Raises:
        FileNotFoundError, ValueError: no model there, or not one of the forms.
    """
    from colorize_tf.inference import serving

    model = resolve_model(model)
    form = model_form(model)
    if form == "savedmodel":
        import tensorflow as tf

        signature = tf.saved_model.load(model).signatures["serving_default"]

        def run_savedmodel(image: np.ndarray) -> np.ndarray:
            serving.check_image(image)
            return signature(image=tf.constant(image))["rgb"].numpy()

        return Colorizer(run_savedmodel, None, form, f"SavedModel {model}")
    if form == "tflite":
        predictor = serving.TFLitePredictAB(model, num_threads=threads or os.cpu_count())
        return Colorizer(
            lambda image: serving.colorize_image(predictor, image, predictor.size),
            predictor.size,
            form,
            f"TFLite {model} ({predictor.contract}, {predictor.size}x{predictor.size})",
        )
    generator = load_generator(model)
    size = serving.model_size(generator, size)
    return Colorizer(
        lambda image: serving.colorize_image(generator, image, size),
        size,
        form,
        f"{form} {model} (input {size}x{size})",
        generator,
    )
