"""The web app's page in a real headless Chromium, driven by Playwright.

Uses the system's Chromium (``apt-get install chromium``; ``.ci/run`` installs it), never a
browser that Playwright downloads. The screenshot of the finished page is written to
``$COLORIZE_TF_TEST_ARTIFACTS`` (default: pytest's temporary folder, printed with ``-s``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from app_server import (
    JOB_TIMEOUT_S,
    MIN_CHROMA,
    AppServer,
    mean_chroma,
    photo_path,
    tiny_model_file,
)
from helpers import chromium_or_skip, headless_chromium
from PIL import Image

from colorize_tf.inference.images import read_image

# The marked tier: a real browser against the app's command (see conftest.py).
pytestmark = pytest.mark.integration

sync_api = chromium_or_skip()
MAX_UPLOAD_MB = 2


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory)


@pytest.fixture(scope="module")
def app(model_file, tmp_path_factory):
    app = AppServer(
        model_file, tmp_path_factory.mktemp("app_browser"), "--max-upload-mb", str(MAX_UPLOAD_MB)
    )
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser():
    with headless_chromium(sync_api) as browser:
        yield browser


@pytest.fixture
def page(browser, app):
    """The app's page, ready; fails the test on any script error or console error (CSP)."""
    context = browser.new_context(viewport={"width": 1000, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(app.url)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()
    assert errors == []


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(
        os.environ.get("COLORIZE_TF_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until_finished(page, count: int) -> None:
    # A locator, not wait_for_function: the page's CSP forbids the eval that one needs.
    finished = page.locator(".card[data-state=done], .card[data-state=failed]")
    sync_api.expect(finished).to_have_count(count, timeout=JOB_TIMEOUT_S * 1000)


def test_photos_picked_in_the_page_come_back_full_size_in_color(
    page, app, tmp_path, artifacts, model_file
):
    gray = tmp_path / "coffee_gray.png"
    Image.open(photo_path("coffee.png")).convert("L").save(gray)
    photos = [gray, photo_path("astronaut.png")]

    assert page.text_content("#model") == f"keras {model_file} (input 256x256)"
    assert page.text_content("#size").startswith("256 × 256 px")
    assert page.text_content("#limits") == (
        f"Limits: 100,000,000 pixels and {MAX_UPLOAD_MB} MB per photo; one photo at a time."
    )
    page.set_input_files("#files", [str(p) for p in photos])
    wait_until_finished(page, len(photos))
    assert page.text_content("#progress-text") == "2 of 2 finished"

    for photo in photos:
        card = page.locator(".card", has_text=photo.name)
        assert card.get_attribute("data-state") == "done", card.text_content()
        height, width = read_image(photo)[0].shape[:2]
        assert card.locator(".status").text_content().startswith(f"done: {width} × {height} px")
        for kind in ("before", "after"):
            assert (
                card.locator(f"img.{kind}").evaluate("i => i.complete && i.naturalWidth") == width
            )
        with page.expect_download() as download:
            card.locator("a.download").click()
        assert download.value.suggested_filename == f"{photo.stem}_colorized.png"
        result = np.asarray(Image.open(io.BytesIO(Path(download.value.path()).read_bytes())))
        assert result.shape == (height, width, 3)
        assert mean_chroma(result) > MIN_CHROMA, photo.name
    assert mean_chroma(np.asarray(Image.open(gray).convert("RGB"))) < 0.01  # gray went in

    slider = page.locator(".card", has_text="astronaut.png").locator("input.slider")
    slider.fill("20")
    clip = page.locator(".card", has_text="astronaut.png").locator("img.after")
    assert "20%" in clip.evaluate("i => i.style.clipPath")
    page.screenshot(path=str(artifacts / "app_browser.png"), full_page=True)
    print(f"\nscreenshot: {artifacts / 'app_browser.png'}")


def test_a_dropped_non_image_and_an_oversized_file_get_clear_messages(page, app, tmp_path):
    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, {type: "text/plain"}));
            return transfer;
        }""",
        ["notes.txt", list(b"these are notes, not a photo\n" * 10)],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    big = tmp_path / "scan.tif"
    big.write_bytes(np.random.default_rng(0).bytes(2_500_000))
    page.set_input_files("#files", str(big))
    wait_until_finished(page, 2)

    notes = page.locator(".card", has_text="notes.txt")
    assert notes.get_attribute("data-state") == "failed"
    assert notes.locator(".status").text_content() == (
        "notes.txt: not an image (unrecognised content)"
    )
    scan = page.locator(".card", has_text="scan.tif")
    assert scan.get_attribute("data-state") == "failed"
    assert scan.locator(".status").text_content() == (
        f"scan.tif: too large to upload: 2.5 MB exceeds the {MAX_UPLOAD_MB} MB limit "
        "(--max-upload-mb)"
    )
    assert not page.locator(".card .compare:visible").count()
    assert not page.locator(".card a.download:visible").count()


def test_a_video_plays_back_colorized_in_the_page(page, app, tmp_path):
    pytest.importorskip("av", reason="the video extra is not installed")
    pytest.importorskip("cv2", reason="the video extra is not installed")
    from test_video import write_clip

    from colorize_tf.app.server import download_name

    gray = np.asarray(Image.open(photo_path("chelsea.png")).convert("L"))[:200, :300]
    frames = np.stack([gray[:, 4 * t : 4 * t + 240] for t in range(10)])  # a pan, (10, 200, 240)
    clip = tmp_path / "cat_1950.mp4"
    write_clip(clip, np.repeat(frames[..., np.newaxis], 3, axis=-1))
    page.set_input_files("#files", str(clip))
    wait_until_finished(page, 1)
    card = page.locator(".card", has_text=clip.name)
    assert card.get_attribute("data-state") == "done", card.text_content()
    assert card.locator(".status").text_content().startswith("done: 240 × 200 px, 10 frames")
    # The MP4 the server wrote plays in the browser: its metadata loads, at the input's size.
    size = card.locator("video.film").evaluate(
        """v => new Promise(done => {
            const report = () =>
                done(v.error ? `error ${v.error.code}` : [v.videoWidth, v.videoHeight]);
            if (v.readyState >= 1 || v.error) report();
            v.addEventListener("loadedmetadata", report);
            v.addEventListener("error", report);
        })"""
    )
    assert size == [240, 200]
    with page.expect_download() as download:
        card.locator("a.download").click()
    assert download.value.suggested_filename == download_name(clip.name, "mp4")
