"""``python -m colorize_tf.evaluate``: the report's files, its numbers, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import sample_photos, trained_tiny_generator
from PIL import Image

from colorize_tf.cli import evaluate as evaluate_cli
from colorize_tf.core import metrics
from colorize_tf.evaluation import protocol as evaluate

SIZE = 64  # protocol crop for the tests: small and fast, a multiple of the U-Net stride


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    generator = trained_tiny_generator(tmp_path_factory.getbasetemp())
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    generator.save(path)
    return str(path)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """Five small real photos (the embedded samples, shrunk), one broken file, one gray photo."""
    root = tmp_path_factory.mktemp("photos")
    for i, photo in enumerate(sample_photos()[:5]):
        image = Image.fromarray(photo)
        image.thumbnail((120, 120))
        image.save(root / f"photo{i}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    return root


def test_report_files_and_numbers(model_path, photo_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = evaluate_cli.main(
        [
            "--model",
            model_path,
            "--data",
            str(photo_dir),
            "--split",
            "all",
            "--out",
            str(out),
            "--size",
            str(SIZE),
            "--full-res",
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert {p.name for p in out.iterdir()} == {
        "metrics.json",
        "per_image.csv",
        "report.md",
        "report.png",
    }
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["count"] == 5
    assert summary["full_res_count"] == 5
    assert [Path(p).name for p, _ in summary["skipped"]] == ["broken.jpg"]

    with (out / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    for name in metrics.METRIC_NAMES:
        for who in ("ours", "gray"):
            values = np.array([float(r[f"{who}_{name}"]) for r in rows])
            assert np.isclose(summary[who][name]["mean"], values.mean(), rtol=1e-6)
            assert np.isclose(summary[who][name]["median"], np.median(values), rtol=1e-6)
    # The baseline keeps L and drops the color: almost no colorfulness, SSIM high, PSNR finite.
    gray_cf = np.array([float(r["gray_cf_pred"]) for r in rows])
    assert gray_cf.max() < 1.0
    true_cf = np.array([float(r["ours_cf_true"]) for r in rows])
    assert np.allclose(true_cf, [float(r["gray_cf_true"]) for r in rows])  # the same crops
    assert np.allclose(
        np.array([float(r["gray_delta_cf"]) for r in rows]), np.abs(gray_cf - true_cf), atol=1e-3
    )
    assert 10 < summary["gray"]["psnr"]["mean"] < 60
    assert 10 < summary["ours"]["psnr"]["mean"] < 60
    # The table names both rows and the figure is a real image.
    table = (out / "report.md").read_text()
    assert "| ours |" in table and "| gray (a=b=0) |" in table and "full resolution" in table
    assert "broken.jpg" in table
    assert table.splitlines()[0] in stdout
    with Image.open(out / "report.png") as figure:
        assert figure.size[0] > 300 and figure.size[1] > 300


def test_gray_baseline_row_matches_an_independent_computation(model_path, photo_dir, tmp_path):
    """Rebuild the protocol for one photo by hand (PIL resize + center crop, the metrics module
    on the gray image): the gray row of the report must match it."""
    summary = evaluate.evaluate(
        model_path, str(photo_dir), tmp_path / "r", split="all", size=SIZE, limit=5, verbose=False
    )
    with (tmp_path / "r" / "per_image.csv").open() as handle:
        row = next(r for r in csv.DictReader(handle) if r["path"].endswith("photo0.png"))
    with Image.open(photo_dir / "photo0.png") as image:
        w, h = image.size
        scale = SIZE / min(w, h)
        resized = np.asarray(
            image.convert("RGB").resize((round(w * scale), round(h * scale)), Image.BILINEAR)
        )
    top, left = (resized.shape[0] - SIZE) // 2, (resized.shape[1] - SIZE) // 2
    crop = resized[top : top + SIZE, left : left + SIZE]
    gray = np.round(np.asarray(metrics.gray_baseline_rgb(crop)) * 255).astype(np.uint8)
    expected = metrics.image_metrics(gray[None], crop[None])
    # Resampling differs slightly between PIL and tf.image (antialiasing, rounding): stated bounds.
    assert abs(float(row["gray_cf_true"]) - float(np.asarray(expected["cf_true"])[0])) < 1.5
    assert abs(float(row["gray_psnr"]) - float(np.asarray(expected["psnr"])[0])) < 1.0
    assert summary["count"] == 5


def test_limit_and_missing_model_and_bad_data(model_path, photo_dir, tmp_path, capsys):
    summary = evaluate.evaluate(
        model_path, str(photo_dir), tmp_path / "two", split="all", size=SIZE, limit=2, verbose=False
    )
    assert summary["count"] == 2

    code = evaluate_cli.main(
        [
            "--model",
            str(tmp_path / "nope.keras"),
            "--data",
            str(photo_dir),
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 2
    assert "nope.keras" in capsys.readouterr().err

    code = evaluate_cli.main(
        [
            "--model",
            model_path,
            "--data",
            str(tmp_path / "no-such-folder"),
            "--out",
            str(tmp_path / "y"),
            "--size",
            str(SIZE),
        ]
    )
    assert code == 2
    assert "no-such-folder" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()  # nothing written for a failed run
