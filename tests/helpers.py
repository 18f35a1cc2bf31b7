"""What several test modules share (imported as ``helpers``; fixtures live in conftest.py):
synthetic photos, the embedded sample photos, the tiny generator trained once per session
with its exported files, and the headless browser of the browser tests."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from colorize_tf.core import color
from colorize_tf.data.samples import sample_photo_paths
from colorize_tf.models import build_generator


def smooth_photo(rng: np.random.Generator, index: int, height: int, width: int) -> np.ndarray:
    """A smooth, colorful uint8 RGB (height, width, 3) image: a learnable signal, not noise.

    Three sinusoids with frequencies drawn from ``rng`` and a phase set by ``index``.
    """
    yy, xx = np.mgrid[0:height, 0:width] / float(height - 1)
    f = rng.uniform(0.5, 2.0, 3)
    img = np.stack(
        [np.sin(f[0] * xx * 3 + index), np.cos(f[1] * yy * 3), np.sin(f[2] * (xx + yy))], -1
    )
    return ((img + 1) * 127.5).astype(np.uint8)


TINY_GENERATOR = dict(encoder_filters=4, decoder_filters=[8, 8, 8, 8, 8])
TRAIN_SIZE = 64  # fully convolutional: trained on 64 px squares, served at 256
TRAIN_STEPS = 100  # batch = the 14 squares (7 photos + mirrors): L1 0.52 -> ~0.12
TRAINED_FILE = "tiny_generator.keras"


def sample_photos(size: int | None = None) -> list[np.ndarray]:
    """The embedded sample photos, uint8 RGB; squeezed to ``size`` x ``size`` if given."""
    photos = []
    for path in sample_photo_paths():
        with Image.open(path) as image:
            image = image.convert("RGB")
            if size:
                image = image.resize((size, size), Image.BILINEAR)
            photos.append(np.asarray(image))
    return photos


def trained_tiny_generator(cache_dir: Path) -> keras.Model:
    """A tiny generator after a few L1 steps on the sample photos, trained once per session.

    The ``.keras`` file is kept in ``cache_dir`` (pytest's session base temp), so every test
    module of one run loads the same weights instead of training again.
    """
    path = cache_dir / TRAINED_FILE
    if path.exists():
        import colorize_tf.models  # noqa: F401  (registers the classes)

        return keras.saving.load_model(path, compile=False)
    keras.utils.set_random_seed(0)
    photos = sample_photos(TRAIN_SIZE)
    rgb = np.stack(photos + [p[:, ::-1] for p in photos]).astype(np.float32) / 255.0
    l_norm, ab_norm = (np.asarray(t) for t in color.rgb_to_l_ab(rgb))
    generator = build_generator(**TINY_GENERATOR)
    generator.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mae")
    repeat = (TRAIN_STEPS, 1, 1, 1)  # one epoch of TRAIN_STEPS steps: no per-epoch overhead
    generator.fit(
        np.tile(l_norm, repeat), np.tile(ab_norm, repeat), batch_size=len(rgb), shuffle=False,
        verbose=0,
    )  # fmt: skip
    generator.save(path)
    return generator


def exported_once(cache_dir: Path, generator: keras.Model) -> Path:
    """Every file ``export`` writes for ``generator``, exported once per session into
    ``cache_dir`` (test_export, test_colorize and test_video share them)."""
    from colorize_tf.export import export_lib as export

    out = cache_dir / "export"
    if not (out / export.SIDECAR_FILE).exists():
        export.export(
            generator,
            out,
            calibration_count=16,
            check=False,  # the tests check, independently of export's own check
            overwrite=True,  # a half-written folder of an interrupted run
        )
    return out


def run_colorize(args: list[str], capsys) -> tuple[int, str, str]:
    """``python -m colorize_tf.colorize ARGS --quiet`` in process: (exit code, stdout, stderr)."""
    from colorize_tf.cli import colorize

    code = colorize.main([*args, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def exported_web_once(cache_dir: Path, generator: keras.Model) -> Path:
    """The static folder of ``export --web`` for ``generator`` (fp32), written once per session
    into ``cache_dir`` (test_web and test_web_browser share it)."""
    from colorize_tf.export import web

    out = cache_dir / "web"
    if not (out / web.CONFIG_FILE).exists():
        web.write_web(generator, out, precision="fp32", check=False, overwrite=True)
    return out


# The one low-level read of each model form, and the forms that go through it.
MODEL_READS = {
    "keras_file": ("keras",),  # keras.saving.load_model
    "weights_file": ("preset", "jax"),  # keras.Model.load_weights
    "savedmodel": ("savedmodel",),  # tf.saved_model.load
    "tflite_file": ("tflite",),  # serving.litert_interpreter
}


def count_model_reads(monkeypatch) -> dict[str, int]:
    """Count, from now on, the reads of model files: each low-level reader (``MODEL_READS``)
    is wrapped in a counter that calls the real one, so the model still loads and runs."""
    import tensorflow as tf

    from colorize_tf.inference import serving

    counts = dict.fromkeys(MODEL_READS, 0)

    def counting(name: str, real):
        def read(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return read

    monkeypatch.setattr(keras.saving, "load_model", counting("keras_file", keras.saving.load_model))
    monkeypatch.setattr(
        keras.Model, "load_weights", counting("weights_file", keras.Model.load_weights)
    )
    monkeypatch.setattr(tf.saved_model, "load", counting("savedmodel", tf.saved_model.load))
    monkeypatch.setattr(
        serving, "litert_interpreter", counting("tflite_file", serving.litert_interpreter)
    )
    return counts


def reads_of_one(form: str) -> dict[str, int]:
    """What ``count_model_reads`` must show once a model of ``form`` is loaded: one read."""
    return {name: int(form in forms) for name, forms in MODEL_READS.items()}


def randomize_batch_norm(model: keras.Model, seed: int = 0) -> None:
    """Non-trivial BN statistics, so that inference-mode outputs depend on every BN weight."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = (w.shape for w in layer.weights)
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma),
                    rng.normal(0, 0.1, beta),
                    rng.normal(0, 0.1, mean),
                    rng.uniform(0.5, 1.5, var),
                ]
            )


# Headless, and nothing that reaches beyond loopback (updates, sync, field trials).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def chromium_or_skip():
    """The browser tests' Playwright module, or skip the calling module where Playwright or a
    Chromium binary is missing."""
    import pytest

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not os.path.exists(shutil.which("chromium") or "/usr/bin/chromium"):
        pytest.skip(
            "no chromium on this machine (apt-get install chromium)", allow_module_level=True
        )
    return sync_api


@contextlib.contextmanager
def headless_chromium(sync_api):
    """A headless Chromium (the system's binary) for one test; closed after it."""
    with sync_api.sync_playwright() as playwright:
        path = shutil.which("chromium") or "/usr/bin/chromium"
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
