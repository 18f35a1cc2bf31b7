"""The generator ``.keras`` file, and the names of the files a training run leaves.

A ``.keras`` file is what training runs wrote as their product before runs wrote preset folders
(``LEGACY_GENERATOR_FILE``; it still loads), and one of the forms every command's ``--model``
takes.
The other two forms ``models`` owns are the preset folder (``presets.py``) and the weights
folder (``weights.py``); ``colorize_tf.inference.loader`` tells the forms apart and loads each
through its owner here.

The run's file names live here, not in ``training``: ``presets.preset_from_run`` reads them and
``models`` may not import ``training`` (``colorize_tf.training.recipe`` re-uses them).
"""

from __future__ import annotations

import os

# --- what a training run writes into its folder ----------------------------------------------

PRODUCT_DIR = "model"  # the trained generator, a preset folder (``presets.py``), either backend
BEST_DIR = "best"  # the best epoch so far under ``train.select_best`` (a preset folder too)
LEGACY_GENERATOR_FILE = "generator.keras"  # the product of runs before preset folders
SUMMARY_FILE = "summary.json"  # the run's step, product and validation numbers
RUN_CONFIG_FILE = "config.yaml"  # the run's resolved config
EVALUATION_FILE = "metrics.json"  # the numbers of an ``evaluate --out`` report folder

KERAS_SUFFIX = ".keras"


def is_keras_file(path: str | os.PathLike) -> bool:
    """A file named ``*.keras``."""
    return os.fspath(path).endswith(KERAS_SUFFIX) and os.path.isfile(path)


def load_keras_file(path: str | os.PathLike):
    """A generator ``.keras`` file -> the model (normalized L -> normalized ab), computing in
    float32 whatever precision it was trained in.

    Raises:
        FileNotFoundError: no ``.keras`` file at ``path``.
        ValueError: the file holds another network than a generator (e.g. the GAN wrapper).
    """
    import keras

    import colorize_tf.models  # noqa: F401  (registers the custom classes for loading)
    from colorize_tf.models.builders import float32_copy

    path = os.fspath(path)
    if not is_keras_file(path):
        raise FileNotFoundError(f"expected a generator .keras file, got {path!r}")
    model = keras.saving.load_model(path, compile=False)
    in_channels, out_channels = model.input_shape[-1], model.output_shape[-1]
    if (in_channels, out_channels) != (1, 2):
        raise ValueError(
            f"{path} maps {in_channels} to {out_channels} channels; a generator maps L (1) to "
            "ab (2). (Saved the GAN wrapper instead of its generator?)"
        )
    return float32_copy(model)  # a mixed-precision run's file: compute in float32
