"""Export: SavedModel and TFLite files against the Keras generator, on the real sample photos.

One export (SavedModel + TFLite fp32, fp16 and int8 of both contracts) is shared by the
session (``exported_once``); the generator is the tiny one trained a few L1 steps
(``helpers.trained_tiny_generator``) so that int8 PSNR means something. Tolerances:

* SavedModel reloaded in a fresh process vs ``serving.colorize_image`` in process, full-size
  photos: max |difference| <= 1 uint8 level (measured 0).
* TFLite fp32, RGB contract vs Keras through the same serving graph, 256 x 256: PSNR >= 60 dB
  and max |difference| <= 2 levels (measured >= 91 dB); L -> ab contract: |ab_norm| difference
  <= 1e-4 (measured ~2e-6).
* fp16 and int8, PSNR of their RGB against fp32 on every photo: fp16 >= 50 dB (measured
  >= 63 dB); int8 >= 27 dB (measured 29-37 dB per photo, depending on the calibration crops).
  The ~35 dB int8 target is for the full-size generator (``bench/inference.py``): layers 4 to
  8 channels wide quantize much more coarsely than 64 to 512 wide ones. A broken int8 file
  scores far lower: quantizing the Lab math too gave ~10 dB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import exported_once, sample_photos, trained_tiny_generator

from colorize_tf.cli import export as export_cli
from colorize_tf.core import metrics
from colorize_tf.export import export_lib as export
from colorize_tf.export import tflite
from colorize_tf.inference import serving

SIZE = 256


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> keras.Model:
    return trained_tiny_generator(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def exported(generator, tmp_path_factory) -> Path:
    return exported_once(tmp_path_factory.getbasetemp(), generator)


@pytest.fixture(scope="module")
def squares() -> list[np.ndarray]:
    """The 7 sample photos squeezed to (1, 256, 256, 3) uint8: the TFLite parity set."""
    return [p[np.newaxis] for p in sample_photos(SIZE)]


@pytest.fixture(scope="module")
def keras_rgb(generator, squares) -> list[np.ndarray]:
    """The Keras generator's RGB through the same serving graph the TFLite files contain."""
    predict = serving.keras_predict_ab(generator)
    return [serving.colorize_batch(s, predict, SIZE, xla=False).numpy() for s in squares]


def tflite_rgb(path: Path, squares: list[np.ndarray]) -> list[np.ndarray]:
    """A TFLite file's RGB for each square photo, whatever its contract."""
    runner = serving.TFLitePredictAB(str(path))
    if runner.contract == "colorize_rgb":
        return [runner.invoke(s) for s in squares]
    return [serving.colorize_batch(s, runner, SIZE, xla=False).numpy() for s in squares]


def psnrs(outputs: list[np.ndarray], references: list[np.ndarray]) -> np.ndarray:
    return np.array(
        [float(metrics.psnr(o, r)[0]) for o, r in zip(outputs, references, strict=True)]
    )


# --- SavedModel --------------------------------------------------------------------------------


@pytest.mark.integration
def test_savedmodel_in_a_fresh_process_matches_keras(generator, exported, tmp_path):
    photos = sample_photos()[:3]  # full size: 512x512, 600x400, 451x300
    gray = photos[1][..., :1].copy()  # a 1-channel input through the same signature
    rgba = np.concatenate([photos[2], np.full(photos[2].shape[:2] + (1,), 200, np.uint8)], -1)
    inputs = photos + [gray, rgba]
    np.savez(tmp_path / "inputs.npz", *inputs)
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(exported / export.SAVEDMODEL_DIR)!r})
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        outputs = [model.signatures["serving_default"](image=tf.constant(inputs[k]))["rgb"].numpy()
                   for k in sorted(inputs.files, key=lambda k: int(k.split("_")[1]))]
        np.savez({str(tmp_path / "outputs.npz")!r}, *outputs)
        assert not any(m.startswith("colorize_tf") for m in sys.modules), "colorize_tf imported"
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=300)
    outputs = np.load(tmp_path / "outputs.npz")
    for index, image in enumerate(inputs):
        actual = outputs[f"arr_{index}"]
        expected = serving.colorize_image(generator, image)
        assert actual.shape == image.shape[:2] + (3,)
        assert np.abs(actual.astype(int) - expected).max() <= 1, index


@pytest.mark.integration
def test_savedmodel_batch_and_network_signatures(generator, exported):
    model = tf.saved_model.load(str(exported / export.SAVEDMODEL_DIR))
    images = np.stack([p[:64, :96] for p in sample_photos()[:2]])  # (2, 64, 96, 3)
    batch = model.signatures["colorize_batch"](images=tf.constant(images))["rgb"].numpy()
    assert batch.shape == (2, 64, 96, 3) and batch.dtype == np.uint8
    expected = serving.colorize_image(generator, images[1])
    assert np.abs(batch[1].astype(int) - expected).max() <= 1
    l_norm = tf.random.uniform([2, SIZE, SIZE, 1], -1.0, 1.0, seed=0)
    ab = model.signatures["predict_ab"](l_norm=l_norm)["ab_norm"].numpy()
    np.testing.assert_allclose(ab, generator(l_norm, training=False).numpy(), atol=1e-5)


# --- TFLite ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_tflite_fp32_rgb_contract_matches_keras(exported, squares, keras_rgb):
    outputs = tflite_rgb(exported / "colorize_rgb_fp32.tflite", squares)
    values = psnrs(outputs, keras_rgb)
    worst = max(np.abs(o.astype(int) - r).max() for o, r in zip(outputs, keras_rgb, strict=True))
    print(f"fp32 colorize_rgb PSNR vs Keras: min {values.min():.2f} dB, max diff {worst}")
    assert values.min() >= 60.0 and worst <= 2


@pytest.mark.integration
def test_tflite_fp32_predict_ab_matches_keras(generator, exported, squares):
    runner = serving.TFLitePredictAB(str(exported / "predict_ab_fp32.tflite"))
    assert (runner.contract, runner.size) == ("predict_ab", SIZE)
    for square in squares:
        l_norm = serving.luminance(square, xla=False).numpy()
        expected = generator(l_norm, training=False).numpy()
        actual = runner.invoke(l_norm)
        assert np.isfinite(actual).all()
        np.testing.assert_allclose(actual, expected, atol=1e-4)


@pytest.mark.integration
def test_tflite_int8_psnr_against_fp32(exported, squares, keras_rgb):
    for contract in tflite.CONTRACTS:
        values = psnrs(tflite_rgb(exported / f"{contract}_int8.tflite", squares), keras_rgb)
        print(f"int8 {contract} PSNR vs fp32: min {values.min():.2f}, mean {values.mean():.2f} dB")
        assert values.min() >= 27.0, (contract, values)


@pytest.mark.integration
def test_tflite_fp16_psnr_against_fp32(exported, squares, keras_rgb):
    for contract in tflite.CONTRACTS:
        values = psnrs(tflite_rgb(exported / f"{contract}_fp16.tflite", squares), keras_rgb)
        print(f"fp16 {contract} PSNR vs fp32: min {values.min():.2f}, mean {values.mean():.2f} dB")
        assert values.min() >= 50.0, (contract, values)


@pytest.mark.integration
def test_int8_files_are_integer_inside_and_float_at_the_edges(exported):
    from ai_edge_litert.interpreter import Interpreter

    sizes = {p.name: p.stat().st_size for p in exported.glob("*.tflite")}
    for contract in tflite.CONTRACTS:
        # int8 weights: about a quarter of the float32 file (measured 0.36 with the tiny model,
        # whose fixed overhead weighs more than a full model's; 0.25 on the full generator).
        assert sizes[f"{contract}_int8.tflite"] < 0.45 * sizes[f"{contract}_fp32.tflite"]
        interpreter = Interpreter(model_path=str(exported / f"{contract}_int8.tflite"))
        convs = [
            interpreter._get_tensor_details(op["outputs"][0], 0)["dtype"]
            for op in interpreter._get_ops_details()
            if op["op_name"] in ("CONV_2D", "TRANSPOSE_CONV")
        ]
        assert convs and all(dtype == np.int8 for dtype in convs), contract
        pows = [op for op in interpreter._get_ops_details() if op["op_name"] == "POW"]
        for op in pows:  # the Lab transfer curves stay float in the RGB contract
            assert interpreter._get_tensor_details(op["outputs"][0], 0)["dtype"] == np.float32
        assert bool(pows) == (contract == "colorize_rgb")


@pytest.mark.integration
def test_the_known_nan_trap_is_caught(generator, squares):
    """``tf.saved_model.save`` of a Keras 3 model converts to a file without weights (NaN)."""
    module = tf.Module()
    module.generator = generator
    fn = tf.function(
        lambda x: {"ab_norm": generator(x, training=False)},
        input_signature=[tf.TensorSpec([1, SIZE, SIZE, 1], tf.float32)],
    )
    with tempfile.TemporaryDirectory() as saved_model:
        tf.saved_model.save(module, saved_model, signatures={"serving_default": fn})
        broken = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
    psnr = tflite.check_tflite(broken, generator, [s[0] for s in squares[:2]], SIZE)
    assert not psnr["min"] >= export.MIN_PSNR_DB["fp32"]  # NaN or far below
    with pytest.raises(export.ExportError, match="conversion is broken"):
        export._require("broken.tflite", "fp32", psnr)


# --- sidecar and command line ------------------------------------------------------------------


@pytest.mark.integration
def test_sidecar_states_each_files_contract(exported):
    sidecar = json.loads((exported / export.SIDECAR_FILE).read_text())
    assert sidecar["size"] == SIZE
    expected_files = {export.SAVEDMODEL_DIR} | {
        tflite.tflite_name(c, p) for c in tflite.CONTRACTS for p in tflite.TFLITE_PRECISIONS
    }
    assert set(sidecar["files"]) == expected_files
    rgb = sidecar["files"]["colorize_rgb_int8.tflite"]
    assert rgb["signature"] == "colorize_rgb"
    assert rgb["inputs"] == {"image": {"dtype": "uint8", "shape": [1, SIZE, SIZE, 3]}}
    assert rgb["outputs"] == {"rgb": {"dtype": "uint8", "shape": [1, SIZE, SIZE, 3]}}
    ab = sidecar["files"]["predict_ab_int8.tflite"]
    assert ab["inputs"] == {"l_norm": {"dtype": "float32", "shape": [1, SIZE, SIZE, 1]}}
    assert ab["outputs"] == {"ab_norm": {"dtype": "float32", "shape": [1, SIZE, SIZE, 2]}}
    assert ab["calibration"] == {
        "source": "samples",
        "images": 16,
        "percentile": tflite.CALIBRATION_PERCENTILE,
    }
    for name, entry in sidecar["files"].items():
        if entry["format"] == "tflite":
            assert entry["bytes"] == (exported / name).stat().st_size
            assert entry["sha256"] == export._sha256((exported / name).read_bytes())


@pytest.mark.integration
def test_existing_files_are_never_overwritten(generator, exported, capsys):
    before = {p: p.stat().st_mtime_ns for p in exported.iterdir()}
    with pytest.raises(export.ExportError, match="--overwrite.*export.json"):
        export.export(generator, exported, formats=("tflite",), precisions=("fp32",))
    with pytest.raises(export.ExportError, match="saved_model"):
        export.export(generator, exported, formats=("savedmodel",))
    model_path = Path(tempfile.mkdtemp()) / "g.keras"
    generator.save(model_path)
    code = export_cli.main(["--model", str(model_path), "--out", str(exported)])
    assert code == 2 and "refusing to overwrite" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in exported.iterdir()} == before


def test_cli_rejects_unknown_choices_and_missing_models(tmp_path, capsys, monkeypatch):
    assert (
        export_cli.main(["--out", str(tmp_path / "x"), "--model", str(tmp_path / "no.keras")]) == 2
    )
    assert "no model at" in capsys.readouterr().err
    with pytest.raises(ValueError, match="precisions must be.*int4"):
        export.export(None, tmp_path / "y", precisions=("int4",))
