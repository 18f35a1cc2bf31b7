"""``export --web``: the web contract against ``serving``, the folder, the vendored runtime.

The browser itself is driven in ``test_web_browser.py``. Here ``WebModel`` runs the folder's
``colorize_web.tflite`` signature by signature as the page does (resampling with ``serving``'s
own ops), and must give the pixels of ``serving.colorize_image`` run on the same file's
``predict_ab``: max |difference| <= 1 level (measured 0 for fp32 on the sample photos).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import exported_web_once, sample_photos, trained_tiny_generator
from PIL import Image

from colorize_tf.cli import export as export_cli
from colorize_tf.export import web
from colorize_tf.inference import serving


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return trained_tiny_generator(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def folder(generator, tmp_path_factory):
    return exported_web_once(tmp_path_factory.getbasetemp(), generator)


def test_the_folder_holds_the_page_the_model_and_the_runtime_with_its_license(folder):
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    manifest = json.loads((folder / "litertjs/MANIFEST.json").read_text())
    assert names == {
        "index.html", "web.js", "web.css", "style.css", "colorize_web.tflite", "web.json",
        "litertjs/LICENSE", "litertjs/NOTICE", "litertjs/MANIFEST.json",
        *(f"litertjs/{name}" for name in manifest["files"]),
    }  # fmt: skip
    assert "Apache License" in (folder / "litertjs/LICENSE").read_text()
    assert manifest["packages"]["@litertjs/core"]["version"] == "2.5.3"
    config = json.loads((folder / "web.json").read_text())
    assert config["size"] == 256  # the tiny generator records no size: serving's default
    assert config["chunk_pixels"] == web.WEB_CHUNK_PIXELS
    assert config["max_pixels"] == 4096 * 4096
    assert config["bytes"] == (folder / "colorize_web.tflite").stat().st_size
    # The page's look is the local app's, copied from its one home.
    assert (folder / "style.css").read_bytes() == web.APP_STYLE.read_bytes()


def test_the_web_file_has_the_three_signatures_of_its_contract(folder):
    model = web.WebModel(str(folder / "colorize_web.tflite"))
    details = {
        name: (
            {k: (list(v["shape"]), v["dtype"].__name__) for k, v in r.get_input_details().items()},
            {k: (list(v["shape"]), v["dtype"].__name__) for k, v in r.get_output_details().items()},
        )
        for name, r in model.runners.items()
    }
    n = web.WEB_CHUNK_PIXELS
    assert details == {
        "luminance": ({"rgba": ([n, 4], "uint8")}, {"l_norm": ([n, 1], "float32")}),
        "predict_ab": (
            {"l_norm": ([1, 256, 256, 1], "float32")},
            {"ab_norm": ([1, 256, 256, 2], "float32")},
        ),
        "compose": (
            {"l_norm": ([n, 1], "float32"), "ab_norm": ([n, 2], "float32")},
            {"rgba": ([n, 4], "uint8")},
        ),
    }


def _rgba(photo: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    if alpha is None:
        alpha = np.full(photo.shape[:2], 255, np.uint8)
    return np.concatenate([photo, alpha[..., np.newaxis]], axis=-1)


def test_the_web_contract_gives_the_pixels_of_serving_with_the_same_file(folder):
    """Photos larger than the network (bilinear ab), smaller on a side (antialiased ab), with
    an alpha channel (composited over white in ``luminance``), and several chunks long."""
    path = str(folder / "colorize_web.tflite")
    model = web.WebModel(path)
    python = serving.TFLitePredictAB(path)
    photos = sample_photos()
    rng = np.random.default_rng(0)
    big = np.asarray(Image.fromarray(photos[0]).resize((700, 420)))  # 294k px: two chunks
    alpha = rng.integers(0, 256, big.shape[:2], dtype=np.uint8)
    cases = [
        (_rgba(photos[1]), photos[1]),
        (_rgba(photos[2][:200, :300]), photos[2][:200, :300]),  # a side below 256
        (_rgba(big, alpha), _rgba(big, alpha)),
    ]
    for rgba, image in cases:
        actual = model.colorize(rgba)
        expected = serving.colorize_image(python, image)
        assert actual.shape == image.shape[:2] + (3,)
        assert np.abs(actual.astype(int) - expected).max() <= 1


def test_the_runtime_is_checked_against_its_manifest(tmp_path, monkeypatch):
    files = web.runtime_files()
    assert set(files) == {
        "core.js", "wasm-utils.js", "litert_wasm_internal.js", "litert_wasm_internal.wasm",
        "litert_wasm_compat_internal.js", "litert_wasm_compat_internal.wasm",
    }  # fmt: skip
    damaged = tmp_path / "web_static"
    shutil.copytree(web.STATIC, damaged)
    (damaged / "litertjs/core.js").write_text("// not LiteRT.js\n")
    monkeypatch.setattr(web, "STATIC", damaged)
    with pytest.raises(web.WebExportError, match=r"litertjs/core\.js: missing or not the file"):
        web.runtime_files()


def test_the_command_refuses_a_folder_that_holds_files(tmp_path, model_path, capsys):
    (tmp_path / "site").mkdir()
    (tmp_path / "site/notes.txt").write_text("mine\n")
    code = export_cli.main(["--model", model_path, "--web", str(tmp_path / "site")])
    assert code == 2
    assert "refusing to write into" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["notes.txt"]
    (tmp_path / "page.html").write_text("mine\n")  # a file where the folder would go
    for extra in ([], ["--overwrite"]):
        code = export_cli.main(
            ["--model", model_path, "--web", str(tmp_path / "page.html")] + extra
        )
        assert code == 2 and "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "page.html").read_text() == "mine\n"
    with pytest.raises(SystemExit):  # --out and --web are two different exports
        export_cli.parse_args(["--out", "a", "--web", "b"])
