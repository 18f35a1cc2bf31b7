"""One loader for every model form the project makes, and the ``Colorizer`` it returns.

    import colorize_tf
    colorizer = colorize_tf.load_colorizer()            # the preset shipped in the package
    rgb = colorizer(gray_uint8)                         # any size in, same size RGB out

``load_colorizer(model)`` takes a generator ``.keras`` file, a preset folder (or the name of a
shipped one), a JAX-trained weights folder (``generator.json`` + weights), an exported
SavedModel folder or a ``.tflite`` file of either contract. It resolves the name, tells the
form, and reads the file once, through the form's owner: ``colorize_tf.models`` for the Keras
forms, TensorFlow's SavedModel loader, the LiteRT interpreter. Photos, films
(``video.py``), the web app and ``evaluate`` all use the one ``Colorizer`` it returns.

Every form goes through ``colorize_tf.inference.serving``: L at full resolution, the network fed
at its own input size (the size it was trained at, unless ``size`` says otherwise), ab
upsampled and joined to the full L.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from colorize_tf.inference import serving
from colorize_tf.models import files, presets, weights

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
    elif path.suffix == files.KERAS_SUFFIX:
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


def _read_generator(path: str, form: str):
    """The Keras generator of a Keras form, read by its owner in ``colorize_tf.models``."""
    if form == "preset":
        return presets.load_preset(path)
    if form == "jax":
        return weights.load_weights_folder(path)
    if form == "keras":
        return files.load_keras_file(path)
    raise ValueError(
        f"{path} is a {form}, not a Keras generator (export needs .keras, a preset "
        "or a JAX weights folder)"
    )


def load_generator(path: str | os.PathLike | None = None):
    """A Keras generator (normalized L -> normalized ab, float32) from a ``.keras`` file, a
    preset folder or name, or a JAX weights folder; None: the shipped preset. For what needs
    the network itself (``export``); colorizing goes through ``load_colorizer``."""
    path = resolve_model(path)
    return _read_generator(path, model_form(path))


class Colorizer:
    """A loaded model, whatever its form, as the two calls its users need.

    ``colorizer(image)``: uint8 (H, W[, C]) -> uint8 RGB (H, W, 3), the same size. ``C`` may be
    1 (gray), 2 (gray + alpha), 3 (RGB: reduced to its L first) or 4 (RGBA).

    ``colorizer.predict_ab(l_norm)``: normalized L (B, size, size, 1) -> normalized ab
    (B, size, size, 2), the network alone at its own input size (films smooth ab between the
    two, ``video.colorize_frames``).

    Attributes:
        size: the square input the network is fed.
        form: ``keras`` | ``preset`` | ``jax`` | ``savedmodel`` | ``tflite``.
        description: what was loaded, for logs.
        generator: the Keras generator, for the Keras forms (else None).
    """

    def __init__(
        self,
        colorize: Callable[[np.ndarray], np.ndarray],
        predict_ab: serving.PredictAB,
        size: int,
        form: str,
        description: str,
        generator=None,
    ):
        self._colorize, self.predict_ab = colorize, predict_ab
        self.size, self.form, self.description, self.generator = size, form, description, generator

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self._colorize(np.asarray(image))

    def __repr__(self) -> str:
        return f"Colorizer({self.description})"

    @classmethod
    def from_generator(
        cls, generator, size: int | None = None, form: str = "keras", description: str = ""
    ) -> Colorizer:
        """A Keras generator already in memory, served through ``serving.ServingModule``."""
        module = serving.serving_module_for(generator, size)  # checks size, traces lazily
        return cls(
            lambda image: serving.colorize_image(generator, image, module.size),
            module.predict_ab,
            module.size,
            form,
            description or f"{form} generator (input {module.size}x{module.size})",
            generator,
        )


def _savedmodel_colorizer(path: str) -> Colorizer:
    """An exported SavedModel: ``serving_default`` for images, ``predict_ab`` for the network."""
    import tensorflow as tf

    signatures = tf.saved_model.load(path).signatures
    missing = {"serving_default", "predict_ab"} - set(signatures)
    if missing:
        raise ValueError(
            f"{path} is not a SavedModel colorize_tf exported: it has no "
            f"{' or '.join(sorted(missing))} signature (signatures: {sorted(signatures)})"
        )
    colorize, predict = signatures["serving_default"], signatures["predict_ab"]
    size = int(predict.structured_input_signature[1]["l_norm"].shape[1])

    def run(image: np.ndarray) -> np.ndarray:
        serving.check_image(image)
        image = image[..., np.newaxis] if image.ndim == 2 else image
        return colorize(image=tf.constant(image))["rgb"].numpy()

    return Colorizer(
        run,
        lambda l_norm: predict(l_norm=l_norm)["ab_norm"],
        size,
        "savedmodel",
        f"SavedModel {path} (input {size}x{size})",
    )


def _tflite_colorizer(path: str, threads: int | None) -> Colorizer:
    """A ``.tflite`` file of either contract; one interpreter serves images and films."""
    predictor = serving.TFLitePredictAB(path, num_threads=threads or os.cpu_count())
    return Colorizer(
        lambda image: serving.colorize_image(predictor, image, predictor.size),
        predictor,
        predictor.size,
        "tflite",
        f"TFLite {path} ({predictor.contract}, {predictor.size}x{predictor.size})",
    )


def load_colorizer(
    model: str | os.PathLike | None = None, size: int | None = None, threads: int | None = None
) -> Colorizer:
    """Any model form -> a ``Colorizer``, its file read once.

    Args:
        model: see the module docstring; None: the shipped preset.
        size: network input size for the Keras forms (None: the size the model records,
            i.e. its training crop size). SavedModel and TFLite files carry their own.
        threads: TFLite interpreter threads (None: one per CPU core).

    Raises:
        FileNotFoundError, ValueError: no model there, or not one of the forms.
    """
    path = resolve_model(model)
    form = model_form(path)
    if form == "savedmodel":
        return _savedmodel_colorizer(path)
    if form == "tflite":
        return _tflite_colorizer(path, threads)
    generator = _read_generator(path, form)
    size = serving.model_size(generator, size)
    label = f"{_label(path, form)} (input {size}x{size})"
    return Colorizer.from_generator(generator, size, form, label)


def _label(path: str, form: str) -> str:
    """How logs, reports and the app name a model: a shipped preset by its name, not by where
    the package happens to be installed; anything else by the path the user gave."""
    folder = Path(path).resolve()
    shipped = folder.parent == presets.PRESET_DIR and folder.name in presets.available_presets()
    if form == "preset" and shipped:
        return f"shipped preset {folder.name}"
    return f"{form} {path}"
