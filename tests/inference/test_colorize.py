"""``python -m colorize_tf.colorize``: inputs, formats, EXIF, safety rules and exit codes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import exported_once, sample_photos
from helpers import run_colorize as run
from PIL import Image

import colorize_tf
from colorize_tf.core import metrics
from colorize_tf.export import export_lib as export
from colorize_tf.inference import files as colorize
from colorize_tf.inference import images, serving


@pytest.fixture
def photos_dir(tmp_path) -> Path:
    """A folder of awkward inputs: gray, EXIF-rotated JPEG, RGBA in a subfolder, broken files."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    photo = sample_photos()[2]  # chelsea, 451 x 300 (W x H)
    Image.fromarray(photo).convert("L").save(root / "gray.png")
    rotated = Image.fromarray(photo[:100, :160])  # stored 160 wide, 100 high
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": upright it is 100 x 160
    rotated.save(root / "rotated.jpg", exif=exif, quality=95)
    rgba = np.concatenate([photo[:50, :70], np.full((50, 70, 1), 128, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(root / "sub" / "rgba.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a JPEG")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "tiny.png")
    (root / "notes.txt").write_text("not an image, not picked up")
    return root


def test_folder_in_same_size_out_failures_reported(photos_dir, model_path, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run([str(photos_dir), "--model", model_path, "--out", str(out)], capsys)
    assert code == 1  # two inputs failed
    assert "3 written, 0 kept, 2 failed" in stdout
    assert "broken.jpg: unreadable" in stderr or "broken.jpg: not an image" in stderr
    assert "tiny.png: image too small to colorize: 4x4" in stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["gray.png", "rotated.jpg", os.path.join("sub", "rgba.png")]
    assert Image.open(out / "gray.png").size == (451, 300)
    assert Image.open(out / "rotated.jpg").size == (100, 160)  # EXIF applied: W x H upright
    assert Image.open(out / "sub" / "rgba.png").size == (70, 50)
    assert Image.open(out / "gray.png").mode == "RGB"


def test_output_equals_the_serving_function(photos_dir, model_path, generator, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, _ = run(
        [str(photos_dir / "gray.png"), "--model", model_path, "--out", str(out)], capsys
    )
    assert code == 0
    gray = np.asarray(Image.open(photos_dir / "gray.png"))
    expected = serving.colorize_image(generator, gray)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "gray.png")), expected)  # PNG


def test_oversized_files_are_skipped_with_the_reason(photos_dir, model_path, tmp_path, capsys):
    code, stdout, stderr = run(
        [str(photos_dir / "gray.png"), "--model", model_path, "--out", str(tmp_path / "o"),
         "--max-pixels", "10000"],
        capsys,
    )  # fmt: skip
    assert code == 1 and "0 written" in stdout
    assert "too large: 451x300 = 0.1 MP exceeds --max-pixels 10,000" in stderr


def test_never_overwrites_an_input(photos_dir, model_path, capsys):
    before = (photos_dir / "gray.png").read_bytes()
    code, _, stderr = run(
        [str(photos_dir / "gray.png"), "--model", model_path, "--out", str(photos_dir)], capsys
    )
    assert code == 1 and "would overwrite an input" in stderr
    assert (photos_dir / "gray.png").read_bytes() == before


def test_never_writes_outside_out(photos_dir, model_path, tmp_path, capsys):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "sub")  # out/sub/rgba.png would land in `elsewhere`
    code, _, stderr = run([str(photos_dir), "--model", model_path, "--out", str(out)], capsys)
    assert code == 1 and "outside --out" in stderr
    assert list(elsewhere.iterdir()) == []


def test_existing_outputs_are_kept_unless_overwrite(photos_dir, model_path, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(photos_dir / "gray.png"), "--model", model_path, "--out", str(out)]
    assert run(args, capsys)[0] == 0
    (out / "gray.png").write_bytes(b"old")
    code, stdout, _ = run(args, capsys)
    assert code == 0 and "0 written, 1 kept" in stdout
    assert (out / "gray.png").read_bytes() == b"old"
    code, stdout, _ = run([*args, "--overwrite"], capsys)
    assert code == 0 and "1 written" in stdout
    assert Image.open(out / "gray.png").size == (451, 300)


def test_globs_formats_and_comparison(photos_dir, model_path, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, _ = run(
        [str(photos_dir / "**" / "*.png"), "--model", model_path, "--out", str(out),
         "--format", "jpeg", "--compare"],
        capsys,
    )  # fmt: skip
    assert code == 1  # tiny.png matches the glob and fails
    assert sorted(p.name for p in out.iterdir()) == [
        "gray.jpg",
        "gray_compare.jpg",
        "rgba.jpg",
        "rgba_compare.jpg",
    ]
    assert Image.open(out / "gray_compare.jpg").size == (2 * 451 + 8, 300)
    assert Image.open(out / "rgba.jpg").format == "JPEG"


def test_same_names_from_two_inputs_do_not_collide(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.png", "x.png", "x.jpg"):
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / name)
    jobs, problems = colorize.find_inputs(
        [str(tmp_path / "x.png"), str(tmp_path / "x.jpg"), str(tmp_path / "a" / "x.png")],
        tmp_path / "out",
    )
    assert problems == []
    assert [str(j.name) for j in jobs] == ["x", "x_jpg", "x_png"]


@pytest.mark.parametrize(
    "name, min_psnr",
    [
        (export.SAVEDMODEL_DIR, 60.0),  # the same graph: measured 100 dB (identical)
        ("predict_ab_fp32.tflite", 60.0),
        ("colorize_rgb_fp32.tflite", 45.0),  # also quantizes L to a uint8 gray image
        ("predict_ab_int8.tflite", 27.0),  # see test_export.py on the tiny model's int8
    ],
)
@pytest.mark.integration
def test_every_model_format_colorizes_at_full_size(
    name, min_psnr, generator, model_path, photos_dir, tmp_path_factory
):
    exported = exported_once(tmp_path_factory.getbasetemp(), generator)
    image, _ = images.read_image(photos_dir / "rotated.jpg")  # 100 x 160 upright
    expected = colorize_tf.load_colorizer(model_path)(image)
    out = colorize_tf.load_colorizer(str(exported / name))(image)
    assert out.shape == (160, 100, 3)
    psnr = float(metrics.psnr(out, expected))
    print(f"{name} vs .keras at full size: {psnr:.2f} dB")
    assert psnr >= min_psnr, psnr


def test_a_missing_model_is_named(photos_dir, tmp_path, capsys):
    code, _, stderr = run(
        [str(photos_dir), "--out", str(tmp_path / "out"), "--model", str(tmp_path / "no.keras")],
        capsys,
    )
    assert code == 2 and "no model at" in stderr and "no.keras" in stderr


def test_default_model_is_the_shipped_preset(photos_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no run directory here: the package's own model is used
    code, stdout, _ = run([str(photos_dir / "gray.png"), "--out", "out"], capsys)
    assert code == 0 and "1 written" in stdout
    written = np.asarray(Image.open(tmp_path / "out" / "gray.png"))
    image, _ = images.read_image(photos_dir / "gray.png")
    expected = colorize_tf.load_colorizer()(image)  # the shipped preset, in Python
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_nothing_to_do_is_an_error(tmp_path, capsys):
    code, _, stderr = run([str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "missing.jpg: no such file or folder" in stderr


def test_sixteen_bit_and_palette_images_are_read(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image, _ = images.read_image(tmp_path / "deep.png")
    assert image.shape == (64, 64, 1) and image.max() >= 250  # full range, not clipped at 255
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).convert("P").save(tmp_path / "pal.gif")
    image, image_format = images.read_image(tmp_path / "pal.gif")
    assert image.shape == (20, 20, 3) and image_format == "GIF"


def test_dotted_names_keep_their_dots_and_errors_do_not_stop_a_batch(tmp_path):
    for name in ("scan.v2.png", "zz.png"):
        Image.fromarray(np.full((16, 24), 100, np.uint8)).save(tmp_path / name)
    jobs, _ = colorize.find_inputs([str(tmp_path)], tmp_path / "out")
    calls = []

    def flaky(image: np.ndarray) -> np.ndarray:  # fails on the first image only
        calls.append(image.shape)
        if len(calls) == 1:
            raise tf.errors.InvalidArgumentError(None, None, "broken graph")
        return images.display_rgb(image)

    summary = colorize.colorize_files(jobs, flaky, tmp_path / "out", verbose=False)
    assert summary.written == 1 and len(summary.failed) == 1
    assert "colorization failed (InvalidArgumentError: broken graph)" in summary.failed[0][1]
    summary = colorize.colorize_files(jobs, flaky, tmp_path / "out", verbose=False)
    assert (summary.written, summary.kept) == (1, 1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scan.v2.png", "zz.png"]
