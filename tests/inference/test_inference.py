"""The network's input size belongs to the model; one loader serves every model form.

A tiny generator recording ``input_size=64`` (as ``train.py`` records the crop size it trains
at) must be fed 64 x 64 by default everywhere: in process, in the SavedModel, in TFLite files,
in ``colorize`` and in ``evaluate`` (whose protocol crop stays 256); an explicit size wins.
``load_colorizer`` takes each form the project writes (``.keras``, preset folder, JAX weights
folder, SavedModel, ``.tflite``) and gives the same colors from each.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    TINY_GENERATOR,
    count_model_reads,
    reads_of_one,
    run_colorize,
    sample_photos,
    trained_tiny_generator,
)
from PIL import Image

import colorize_tf
from colorize_tf.cli import colorize
from colorize_tf.core import metrics
from colorize_tf.evaluation import protocol as evaluate
from colorize_tf.export import export_lib as export
from colorize_tf.inference import loader as inference
from colorize_tf.inference import serving
from colorize_tf.models import build_generator, presets, weights

TRAINED_AT = 64


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> keras.Model:
    """The session's tiny trained generator, rebuilt as if trained at 64 px (same weights)."""
    trained = trained_tiny_generator(tmp_path_factory.getbasetemp())
    sized = build_generator(**TINY_GENERATOR, input_size=TRAINED_AT)
    sized.set_weights(trained.get_weights())
    return sized


@pytest.fixture(scope="module")
def forms(generator, tmp_path_factory) -> dict[str, Path]:
    """The generator written in every form, once for the module."""
    root = tmp_path_factory.mktemp("forms")
    paths = {"keras": root / "g.keras", "preset": root / "preset", "jax": root / "jax"}
    generator.save(paths["keras"])
    presets.save_preset(generator, paths["preset"], {"note": "test"})
    spec = {**TINY_GENERATOR, "input_size": TRAINED_AT}
    weights.save_weights_folder(generator, spec, paths["jax"])
    export.export(
        generator, root / "export", contracts=("colorize_rgb",), precisions=("fp32",), check=False
    )
    paths["savedmodel"] = root / "export" / export.SAVEDMODEL_DIR
    paths["tflite"] = root / "export" / "colorize_rgb_fp32.tflite"
    return paths


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return sample_photos()[1]  # coffee, 400 x 600


def test_recorded_size_survives_save_and_load(generator, forms):
    assert generator.input_size == TRAINED_AT
    assert keras.saving.load_model(forms["keras"], compile=False).input_size == TRAINED_AT
    assert presets.load_preset(forms["preset"]).input_size == TRAINED_AT
    assert presets.load_metadata(forms["preset"])["input_size"] == TRAINED_AT
    assert serving.model_size(generator) == TRAINED_AT
    assert serving.model_size(generator, 128) == 128  # an explicit size wins
    assert serving.model_size(build_generator(**TINY_GENERATOR)) == serving.DEFAULT_SIZE
    with pytest.raises(ValueError, match="input_size=50"):
        build_generator(**TINY_GENERATOR, input_size=50)


def test_serving_feeds_the_recorded_size_by_default(generator, photo):
    fed = []

    def spy(l_norm):
        fed.append(tuple(l_norm.shape))
        return generator(l_norm, training=False)

    spy.input_size = TRAINED_AT
    out = serving.colorize_image(spy, photo)
    assert out.shape == photo.shape and fed == [(1, TRAINED_AT, TRAINED_AT, 1)]
    assert serving.ServingModule(generator).size == TRAINED_AT
    assert serving.ServingModule(generator, size=128).size == 128
    # The cached graph at 64 gives what the eager path at 64 gives, and not what 256 gives.
    at_own = serving.colorize_image(generator, photo)
    eager = serving.colorize_image(spy, photo)
    at_256 = serving.colorize_image(generator, photo, 256)
    assert np.abs(at_own.astype(int) - eager.astype(int)).max() <= 1
    assert np.abs(at_own.astype(int) - at_256.astype(int)).max() > 5


def test_exports_carry_the_recorded_size(forms):
    sidecar = json.loads((forms["savedmodel"].parent / export.SIDECAR_FILE).read_text())
    assert sidecar["size"] == TRAINED_AT
    loaded = tf.saved_model.load(str(forms["savedmodel"]))
    spec = loaded.signatures["predict_ab"].structured_input_signature[1]["l_norm"]
    assert spec.shape.as_list() == [None, TRAINED_AT, TRAINED_AT, 1]
    predictor = serving.TFLitePredictAB(str(forms["tflite"]))
    assert predictor.size == TRAINED_AT


def test_every_form_loads_and_gives_the_same_colors(generator, forms, photo):
    reference = serving.colorize_image(generator, photo)
    for form, path in forms.items():
        colorizer = colorize_tf.load_colorizer(path)
        assert colorizer.form == form and colorizer.size in (TRAINED_AT, None), form
        out = colorizer(photo)
        assert out.shape == photo.shape and out.dtype == np.uint8, form
        # preset: float16 weights; TFLite: its own kernels. All far above visible differences.
        psnr = float(metrics.psnr(out[None] / 255.0, reference[None] / 255.0)[0])
        assert psnr > (40.0 if form in ("preset", "tflite") else 60.0), (form, psnr)
    assert colorize_tf.load_colorizer(forms["keras"], size=128).size == 128


@pytest.mark.parametrize("form", ["keras", "preset", "jax", "savedmodel", "tflite"])
def test_colorizing_a_photo_and_a_film_reads_the_model_file_once(
    form, forms, tmp_path, monkeypatch, capsys
):
    """``colorize --model`` on a folder with a photo and a film: the model's file is read
    once, and the film's frames go through the same loaded model as the photo."""
    pytest.importorskip("av", reason="the video extra is not installed")
    pytest.importorskip("cv2", reason="the video extra is not installed")
    from fractions import Fraction

    from colorize_tf.inference import video

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    Image.fromarray(sample_photos()[0]).save(inputs / "photo.png")
    video.write_frames(inputs / "film.mp4", np.stack(sample_photos(64)[:4]), Fraction(25))
    reads = count_model_reads(monkeypatch)
    code, _, err = run_colorize(
        [str(inputs), "--out", str(out), "--model", str(forms[form])], capsys
    )
    assert code == 0, err
    assert reads == reads_of_one(form), reads
    assert np.asarray(Image.open(out / "photo.png")).shape == sample_photos()[0].shape
    assert np.stack(list(video.read_frames(out / "film.mp4"))).shape == (4, 64, 64, 3)


def test_a_colorizer_of_every_form_predicts_ab_at_its_size(generator, forms):
    """``predict_ab``, what films and the app's videos use: the network alone at ``size``."""
    l_norm = np.asarray(serving.luminance(sample_photos(TRAINED_AT)[:2]))  # (2, 64, 64, 1)
    expected = generator(l_norm, training=False).numpy()  # (2, 64, 64, 2)
    for form, path in forms.items():
        colorizer = inference.load_colorizer(path)
        assert colorizer.size == TRAINED_AT, form
        ab = np.asarray(colorizer.predict_ab(tf.constant(l_norm)), np.float32)
        assert ab.shape == expected.shape, form
        error = np.abs(ab - expected)
        print(f"{form}: predict_ab error mean {error.mean():.5f} max {error.max():.5f}")
        # float16 preset weights differ in the last digits; the colorize_rgb TFLite contract
        # reads ab back from 8-bit RGB (measured: mean 0.0019, max 0.10, on a [-1, 1] scale).
        mean_bound, max_bound = {"preset": (1e-3, 0.01), "tflite": (0.005, 0.2)}.get(
            form, (1e-5, 1e-4)
        )
        assert error.mean() < mean_bound and error.max() < max_bound, form


def test_loader_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at .*missing.keras"):
        inference.load_colorizer(tmp_path / "missing.keras")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="folder is not a model"):
        inference.load_colorizer(tmp_path / "folder")
    with pytest.raises(presets.PresetError, match="nope"):
        presets.preset_path("nope")


def test_preset_files_refuse_to_destroy_and_name_the_damaged_file(generator, forms, tmp_path):
    import shutil

    # A damaged weights file: the error names it (colorize, evaluate, export, app report it).
    broken = tmp_path / "broken"
    shutil.copytree(forms["preset"], broken)
    (broken / presets.WEIGHTS_FILE).write_bytes(b"not hdf5")
    with pytest.raises(presets.PresetError, match="broken/model.weights.h5: unreadable"):
        inference.load_colorizer(broken)
    # overwrite replaces a preset, never a folder of something else.
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a preset folder"):
        presets.save_preset(generator, project, {}, overwrite=True)
    assert (project / "notes.txt").read_text() == "mine"
    replaced = presets.save_preset(generator, broken, {"note": "again"}, overwrite=True)
    assert inference.load_colorizer(replaced).size == TRAINED_AT
    # A run without a trained model is named as such; a preset never replaces its own run.
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="no trained model"):
        presets.preset_from_run(run, tmp_path / "out")
    shutil.copytree(forms["preset"], run / "model")
    with pytest.raises(FileExistsError, match="would replace the run"):
        presets.preset_from_run(run, run, overwrite=True)
    with pytest.raises(FileExistsError, match="would replace the run"):
        presets.preset_from_run(run, tmp_path, overwrite=True)
    assert presets.is_preset(run / "model")


def _array_bytes(path: Path) -> tuple[int, set]:
    import h5py

    found = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _, item: found.append(item) if isinstance(item, h5py.Dataset) else None)
        return sum(d.nbytes for d in found), {d.dtype.name for d in found}


def test_float16_preset_is_half_the_bytes(generator, forms, tmp_path):
    full = tmp_path / "full.weights.h5"
    generator.save_weights(str(full))
    half_bytes, half_types = _array_bytes(forms["preset"] / presets.WEIGHTS_FILE)
    full_bytes, full_types = _array_bytes(full)
    assert half_types == {"float16"} and full_types == {"float32"}
    assert half_bytes * 2 == full_bytes


def test_colorize_and_evaluate_use_the_recorded_size(generator, forms, tmp_path, capsys):
    photo_path = tmp_path / "in" / "p.png"
    photo_path.parent.mkdir()
    Image.fromarray(sample_photos()[0]).save(photo_path)
    out = tmp_path / "out"
    assert colorize.main([str(photo_path), "--out", str(out), "--model", str(forms["keras"])]) == 0
    assert f"input {TRAINED_AT}x{TRAINED_AT}" in capsys.readouterr().out
    expected = serving.colorize_image(generator, sample_photos()[0])
    written = np.asarray(Image.open(out / "p.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1

    summary = evaluate.evaluate(
        str(forms["keras"]), "samples", tmp_path / "eval", split="all", limit=2, verbose=False
    )
    assert summary["protocol"]["size"] == 256  # the protocol's crop stays the papers'
    assert f"input {TRAINED_AT}x{TRAINED_AT}" in summary["protocol"]["model"]


@pytest.mark.integration
def test_colorize_evaluate_and_export_take_a_jax_weights_folder(generator, forms, tmp_path):
    """A weights folder (what the project's former JAX-only loop wrote; made here with
    ``save_weights_folder``) still loads: the three commands take it as ``--model``, through
    the one loader, and get the same network."""
    from colorize_tf.cli import evaluate as evaluate_cli
    from colorize_tf.cli import export as export_cli

    model = str(forms["jax"])
    photo_path = tmp_path / "p.png"
    Image.fromarray(sample_photos()[0]).save(photo_path)
    out = tmp_path / "colorized"
    assert colorize.main([str(photo_path), "--out", str(out), "--model", model, "--quiet"]) == 0
    expected = serving.colorize_image(generator, sample_photos()[0])
    written = np.asarray(Image.open(out / "p.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1

    report = tmp_path / "eval"
    argv = ["--model", model, "--data", "samples", "--split", "all", "--limit", "2"]
    assert evaluate_cli.main([*argv, "--size", "64", "--out", str(report)]) == 0
    assert json.loads((report / "metrics.json").read_text())["protocol"]["model"].startswith("jax")

    exported = tmp_path / "export"
    argv = ["--model", model, "--out", str(exported), "--formats", "tflite"]
    assert export_cli.main([*argv, "--contracts", "colorize_rgb", "--precisions", "fp32"]) == 0
    sidecar = json.loads((exported / export.SIDECAR_FILE).read_text())
    assert sidecar["size"] == TRAINED_AT and sidecar["model"]["path"] == model


def test_the_shipped_preset_is_the_default_and_colorizes(photo):
    assert presets.DEFAULT_PRESET in presets.available_presets()
    folder = presets.preset_path()
    size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    assert size_mb <= 20.0
    metadata = presets.load_metadata()
    for key in ("input_size", "recipe", "training", "evaluation", "versions"):
        assert key in metadata, key
    colorizer = colorize_tf.load_colorizer()
    assert colorizer.form == "preset" and colorizer.size == metadata["input_size"]
    # named, not by where the package is installed; by its name, too
    size = metadata["input_size"]
    shipped = f"shipped preset {presets.DEFAULT_PRESET} (input {size}x{size})"
    assert colorizer.description == shipped
    assert colorize_tf.load_colorizer(presets.DEFAULT_PRESET).description == shipped
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    out = colorizer(gray)
    assert out.shape == gray.shape + (3,)
    chroma = np.asarray(tf.image.rgb_to_yuv(out / 255.0))[..., 1:]
    assert float(np.abs(chroma).mean()) > 0.01  # it adds color to a gray photo


def test_training_records_its_crop_size():
    from colorize_tf.config import load_config
    from colorize_tf.models import build_models, generator_spec

    config = load_config(None, ["model.width=0.0625", "data.crop_size=96"])
    assert generator_spec(config)["input_size"] == 96
    generator, _ = build_models(config)
    assert generator.input_size == 96 and serving.model_size(generator) == 96
