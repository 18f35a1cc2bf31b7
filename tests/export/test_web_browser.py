"""The ``export --web`` folder in a real headless Chromium, served from 127.0.0.1, offline.

Uses the system's Chromium (``apt-get install chromium``; ``.ci/run`` installs it), never a
browser that Playwright downloads; no GPU, so LiteRT.js runs on wasm. Any request that leaves
the local server fails the test: the page must compute here and upload nothing. Screenshots go
to ``$COLORIZE_TF_TEST_ARTIFACTS`` (default: pytest's temporary folder, printed with ``-s``).

The page's result against Python's ``colorize`` with the same ``.tflite`` file: mean |difference|
<= 2 levels, as the task states (measured 0.02 to 0.05, max 1: float32 rounding in the
resampling; JPEG decoding is the same libjpeg-turbo in Chromium and PIL).
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from helpers import chromium_or_skip, exported_web_once, headless_chromium, trained_tiny_generator
from PIL import Image

from colorize_tf.cli import export as export_cli
from colorize_tf.core import color
from colorize_tf.inference import serving
from colorize_tf.inference.images import read_image

pytestmark = pytest.mark.integration  # a real browser: the marked tier

sync_api = chromium_or_skip()
PHOTO_TIMEOUT_S = 300
MAX_MAD = 2.0  # levels, mean over pixels and channels


class StaticServer:
    """``http.server`` serving ``folder`` on 127.0.0.1 in a thread; it logs every path asked."""

    def __init__(self, folder: Path):
        self.paths: list[str] = []
        served = self.paths

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                served.append(self.path)

        handler = functools.partial(Handler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    generator = trained_tiny_generator(tmp_path_factory.getbasetemp())
    return exported_web_once(tmp_path_factory.getbasetemp(), generator)


@pytest.fixture(scope="module")
def browser():
    with headless_chromium(sync_api) as browser:
        yield browser


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(
        os.environ.get("COLORIZE_TF_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser, folder: Path):
    """(page, server, errors) for ``folder``; ``errors`` collects script errors and requests
    that leave the local server."""
    server = StaticServer(folder)
    context = browser.new_context(viewport={"width": 1000, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((server.url, "blob:", "data:"))
            else errors.append(f"request beyond the local server: {r.url}")
        ),
    )
    page.goto(server.url)
    page.wait_for_selector("body[data-ready]", timeout=120_000)
    assert page.get_attribute("body", "data-ready") == "true", page.text_content("#backend")
    return page, server, errors


def colorize_in_page(page, photos: list[Path]) -> list:
    """Pick ``photos`` in the page; wait until each card is finished; their locators."""
    page.set_input_files("#files", [str(p) for p in photos])
    finished = page.locator(".card[data-state=done], .card[data-state=failed]")
    sync_api.expect(finished).to_have_count(len(photos), timeout=PHOTO_TIMEOUT_S * 1000)
    return [page.locator(".card", has_text=p.name) for p in photos]


def downloaded(page, card) -> tuple[str, np.ndarray]:
    with page.expect_download() as download:
        card.locator("a.download").click()
    data = Path(download.value.path()).read_bytes()
    return download.value.suggested_filename, np.asarray(Image.open(io.BytesIO(data)))


def mean_chroma(rgb: np.ndarray) -> float:
    lab = np.asarray(color.rgb_to_lab(rgb.astype(np.float32) / 255.0))
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def check_against_python(page, card, photo: Path, model_file: Path) -> dict:
    """The card's download has the photo's size and Python's pixels; returns the figures."""
    assert card.get_attribute("data-state") == "done", card.text_content()
    image = read_image(photo)[0]  # EXIF orientation applied
    height, width = image.shape[:2]
    name, result = downloaded(page, card)
    assert name == f"{photo.stem}_colorized.png"
    assert result.shape == (height, width, 4) or result.shape == (height, width, 3)
    result = result[..., :3]
    expected = serving.colorize_image(serving.TFLitePredictAB(str(model_file)), image)
    difference = np.abs(result.astype(int) - expected)
    figures = {
        "photo": photo.name,
        "size": f"{width}x{height}",
        "mad": round(float(difference.mean()), 4),
        "max": int(difference.max()),
        "network_ms": float(card.get_attribute("data-network-ms")),
        "total_ms": float(card.get_attribute("data-total-ms")),
    }
    print(f"\n{json.dumps(figures)}")
    assert difference.mean() <= MAX_MAD, figures
    assert card.locator(".status").text_content().startswith(f"done: {width} × {height} px")
    for kind in ("before", "after"):
        assert card.locator(f"img.{kind}").evaluate("i => i.complete && i.naturalWidth") == width
    return figures


def test_photos_come_back_full_size_with_the_pixels_of_python(
    browser, tiny_folder, tmp_path, artifacts
):
    """A JPEG with EXIF orientation (rotated on read), larger than the network: bilinear ab;
    a small PNG, a side below the network's 256: antialiased ab."""
    cat = Image.fromarray(skimage.data.chelsea())  # 451 x 300
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to show
    rotated = tmp_path / "cat_rotated.jpg"
    cat.save(rotated, quality=90, exif=exif)
    small = tmp_path / "coffee_small.png"
    Image.fromarray(skimage.data.coffee()).resize((320, 200)).save(small)

    page, server, errors = open_page(browser, tiny_folder)
    assert page.text_content("#backend").startswith("wasm")
    assert page.text_content("#limits") == (
        "Limits: 16.8 megapixels (16,777,216 pixels) and 64 MB per photo (a phone's memory)."
    )
    cards = colorize_in_page(page, [rotated, small])
    figures = [
        check_against_python(page, card, photo, tiny_folder / "colorize_web.tflite")
        for card, photo in zip(cards, [rotated, small], strict=True)
    ]
    assert figures[0]["size"] == "300x451"  # upright, as the EXIF tag says
    slider = cards[0].locator("input.slider")
    slider.fill("30")
    assert "30%" in cards[0].locator("img.after").evaluate("i => i.style.clipPath")
    page.screenshot(path=str(artifacts / "web_browser.png"), full_page=True)
    print(f"\nscreenshot: {artifacts / 'web_browser.png'}")
    server.stop()
    assert errors == []
    # The page asked the server for nothing but the folder's own files.
    assert set(server.paths) <= {
        "/", "/web.js", "/web.css", "/style.css", "/web.json", "/colorize_web.tflite",
        "/litertjs/core.js", "/litertjs/wasm-utils.js", "/litertjs/litert_wasm_internal.js",
        "/litertjs/litert_wasm_internal.wasm",
    }, server.paths  # fmt: skip


def test_a_non_image_and_a_too_large_photo_get_clear_messages(browser, tiny_folder, tmp_path):
    notes = tmp_path / "notes.jpg"  # the name says JPEG; the content does not
    notes.write_text("these are notes, not a photo\n" * 10)
    huge = tmp_path / "huge.png"  # 4097 x 4096: one column over the limit, 20 kB of PNG
    Image.new("L", (4097, 4096), 128).save(huge)

    page, server, errors = open_page(browser, tiny_folder)
    cards = colorize_in_page(page, [notes, huge])
    server.stop()
    for card in cards:
        assert card.get_attribute("data-state") == "failed"
    assert cards[0].locator(".status").text_content() == (
        "notes.jpg: not an image this browser can read"
    )
    assert cards[1].locator(".status").text_content() == (
        "huge.png: too large: 4097 × 4096 px is 16,781,312 pixels, more than the 16,777,216 "
        "this page takes (a phone's memory); shrink it first"
    )
    assert not page.locator(".card .compare:visible").count()
    assert not page.locator(".card a.download:visible").count()
    assert errors == []


def test_the_shipped_preset_colorizes_a_photo_in_the_browser(browser, tmp_path, artifacts, capsys):
    """The command as a user runs it (no --model: the shipped preset, fp16), then a photo."""
    site = tmp_path / "site"
    start = time.perf_counter()
    assert export_cli.main(["--web", str(site)]) == 0
    export_s = time.perf_counter() - start
    config = json.loads((site / "web.json").read_text())
    assert config["precision"] == "fp16" and config["size"] == 128
    assert config["psnr_db"]["min"] >= 50.0  # the export's own check against Keras
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)

    page, server, errors = open_page(browser, site)
    assert page.text_content("#model").startswith("photos_unet_small (fp16, ")
    (card,) = colorize_in_page(page, [photo])
    figures = check_against_python(page, card, photo, site / "colorize_web.tflite")
    page.screenshot(path=str(artifacts / "web_browser_preset.png"), full_page=True)
    server.stop()
    assert errors == []
    _, result = downloaded(page, card)
    assert mean_chroma(result[..., :3]) > 3.0  # color came in (gray has 0; measured 5.5)
    with capsys.disabled():
        print(f"\nexport --web of the preset: {export_s:.0f} s; {json.dumps(figures)}")
