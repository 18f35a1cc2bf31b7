"""The web app (``python -m colorize_tf.app``) as a separate process on loopback.

Each server here is the real command, started with ``--port 0`` on the tiny trained generator
of ``test_serving`` and a ``TMPDIR`` of its own, so that the tests can see every file it
writes and check that none is left once it stops (``app_server.AppServer``).
"""

from __future__ import annotations

import concurrent.futures
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
from helpers import count_model_reads, reads_of_one, smooth_photo
from PIL import Image

pytest.importorskip("starlette", reason="the app extra is not installed")
pytest.importorskip("uvicorn", reason="the app extra is not installed")

from app_server import (  # noqa: E402
    MIN_CHROMA,
    AppServer,
    colorize_upload,
    encode,
    get,
    mean_chroma,
    photo_path,
    post,
    wait_for,
)

from colorize_tf.app import jobs, server  # noqa: E402
from colorize_tf.inference.images import read_image  # noqa: E402
from colorize_tf.inference.loader import load_colorizer  # noqa: E402

# The load test's bounds; measured +35 MB over warm-up, +1 MB round to round (docs/app.md).
MAX_RSS_GROWTH_MB = 200
MAX_RSS_GROWTH_PER_ROUND_MB = 32
LOAD_ROUNDS = 2


@pytest.fixture(scope="module")
def app(model_file, tmp_path_factory):
    """One server for the API tests, with small limits to reach them cheaply."""
    app = AppServer(
        model_file,
        tmp_path_factory.mktemp("app"),
        "--max-pixels",
        "1000000",
        "--max-upload-mb",
        "1",
    )
    yield app
    assert app.stop(signal.SIGTERM) == 0  # as a service manager stops it
    assert list(app.tmp.iterdir()) == []


# --- the API ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_info_names_the_model_its_input_size_and_the_limits(app, model_file):
    status, body, headers = get(f"{app.url}/api/info")
    info = json.loads(body)
    assert status == 200
    assert str(model_file) in info["model"] and info["input_size"] == 256
    assert info["max_pixels"] == 1_000_000 and info["max_upload_bytes"] == 1_000_000
    assert info["workers"] == 1
    status, page, headers = get(f"{app.url}/")
    assert status == 200 and b'<input id="files" type="file" multiple' in page
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]


@pytest.mark.integration
def test_a_photo_comes_back_full_size_in_color_as_the_cli_makes_it(app, model_file):
    path = photo_path("astronaut.png")
    job, result = colorize_upload(app.url, path.read_bytes(), path.name)
    image, _ = read_image(path)
    assert job["state"] == "done", job
    assert (job["width"], job["height"]) == (512, 512)
    assert result.shape == image.shape[:2] + (3,)
    assert mean_chroma(result) > MIN_CHROMA
    # The same serving path as the colorize command: the same pixels.
    expected = load_colorizer(model_file)(image)
    assert np.abs(result.astype(int) - expected).max() <= 1
    for kind in ("before.jpg", "after.jpg"):
        status, body, headers = get(f"{app.url}/api/jobs/{job['id']}/{kind}")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(body)).size == (512, 512)


def _truncated_png() -> bytes:
    data = encode(smooth_photo(np.random.default_rng(0), 0, 200, 300))
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"just text, not pixels\n" * 20, "notes.txt",
         "notes.txt: not an image (unrecognised content)"),
        (_truncated_png(), "broken.png", "broken.png: unreadable ("),
        (encode(np.full((1000, 1001), 128, np.uint8)), "huge.png",
         "huge.png: too large: 1001x1000 = 1.0 MP exceeds --max-pixels 1,000,000"),
        (encode(np.full((4, 40), 128, np.uint8)), "sliver.png",
         "sliver.png: image too small to colorize: 4x40 pixels"),
    ],
    ids=["not-an-image", "broken", "too-many-pixels", "too-small"],
)  # fmt: skip
@pytest.mark.integration
def test_bad_photos_fail_with_a_clear_message(app, data, name, message):
    job, result = colorize_upload(app.url, data, name)
    assert job["state"] == "failed" and result is None
    assert job["message"].startswith(message), job["message"]


@pytest.mark.integration
def test_uploads_over_the_byte_limit_are_refused_whatever_their_header_says(app):
    data = np.random.default_rng(1).bytes(1_500_000)
    status, body = post(app.url, data, "scan.tif")
    assert status == 413
    assert (
        body["error"] == "scan.tif: too large to upload: 1.5 MB exceeds the 1 MB limit "
        "(--max-upload-mb)"
    )
    # Chunked: no Content-Length, the same answer from counting while reading.
    host = urlsplit(app.url)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    connection.request(
        "POST", "/api/jobs", body=chunks, encode_chunked=True, headers={"X-File-Name": "stream.bin"}
    )
    response = connection.getresponse()
    assert response.status == 413
    assert (
        json.load(response)["error"] == "stream.bin: too large to upload: 1.5 MB exceeds "
        "the 1 MB limit (--max-upload-mb)"
    )
    connection.close()
    status, body = post(app.url, b"", "empty.png")
    assert (status, body["error"]) == (400, "empty.png: empty file")
    assert not [p for p in app.files() if p.parent.name == "uploads"]


@pytest.mark.integration
def test_an_uploads_name_is_only_text_never_a_path(app):
    data = encode(smooth_photo(np.random.default_rng(2), 0, 60, 80))
    job, result = colorize_upload(app.url, data, "../..\\<img src=x onerror=alert(1)>évil.html")
    assert job["state"] == "done" and result.shape == (60, 80, 3)
    assert job["name"] == "<img src=x onerror=alert(1)>évil.html"  # shown as text, not HTML
    names = {p.name for p in app.files()}
    assert not any("vil" in name or name.endswith(".html") for name in names), names
    status, _, headers = get(f"{app.url}/api/jobs/{job['id']}/result.png")
    assert headers["content-disposition"] == (
        'attachment; filename="img_src_x_onerror_alert_1_vil_colorized.png"'
    )
    for path in (
        f"/api/jobs/{job['id']}/..%2F..%2Fuploads",
        f"/api/jobs/{job['id']}/x.png",
        "/api/jobs/0123",
        "/static/../jobs.py",
        "/static/server.py",
    ):
        assert get(f"{app.url}{path}")[0] == 404, path


@pytest.mark.integration
def test_a_video_comes_back_as_an_mp4_with_every_frame_in_color(app, tmp_path):
    pytest.importorskip("av", reason="the video extra is not installed")
    pytest.importorskip("cv2", reason="the video extra is not installed")
    from test_video import write_clip

    from colorize_tf.inference import video

    rgb = smooth_photo(np.random.default_rng(4), 0, 64, 160)
    frames = np.stack([rgb[:, 4 * t : 4 * t + 96] for t in range(12)])  # a pan, (12, 64, 96, 3)
    clip = tmp_path / "film.mp4"
    write_clip(clip, frames.mean(-1, keepdims=True).repeat(3, -1).astype(np.uint8))
    status, job = post(app.url, clip.read_bytes(), "Film 1950.mp4")
    assert status == 202 and job["kind"] == "video"
    job = wait_for(app.url, job["id"])
    assert job["state"] == "done", job
    assert (job["width"], job["height"], job["frames"]) == (96, 64, 12)
    status, body, headers = get(f"{app.url}/api/jobs/{job['id']}/result.mp4")
    assert status == 200 and headers["content-type"] == "video/mp4"
    assert headers["content-disposition"] == 'attachment; filename="Film_1950_colorized.mp4"'
    result = tmp_path / "result.mp4"
    result.write_bytes(body)
    colorized = np.stack(list(video.read_frames(result)))
    assert colorized.shape == (12, 64, 96, 3)
    assert min(mean_chroma(frame) for frame in colorized) > MIN_CHROMA
    assert get(f"{app.url}/api/jobs/{job['id']}/result.png")[0] == 404
    status, body, _ = get(f"{app.url}/api/jobs/{job['id']}/after.jpg")
    assert Image.open(io.BytesIO(body)).size == (96, 64)

    job, _ = colorize_upload(app.url, b"\x00\x01 not a film" * 100, "reel.mkv")
    assert job["state"] == "failed"
    assert job["message"].startswith("reel.mkv: not a readable video"), job["message"]
    assert str(app.tmp) not in job["message"]  # never the upload's path on the server


@pytest.mark.integration
def test_the_help_warns_about_binding_beyond_localhost():
    assert server.is_loopback("127.0.0.1") and server.is_loopback("localhost")
    assert server.is_loopback("::1") and server.is_loopback("127.0.0.2")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("192.168.1.20")
    assert not server.is_loopback("myhost.example")
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.app", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = " ".join(result.stdout.split())
    assert result.returncode == 0 and "default: 127.0.0.1, this machine only" in text
    assert "WARNING: any other address, e.g. 0.0.0.0, lets every machine" in text


@pytest.mark.integration
def test_a_missing_model_is_an_error_before_serving(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.app", "--model", str(tmp_path / "nope.keras"),
         "--port", "0"], capture_output=True, text=True, timeout=240,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2
    assert f"error: no model at {tmp_path / 'nope.keras'}" in result.stderr
    assert "http://" not in result.stdout and list(tmp_path.iterdir()) == []


# --- the queue -------------------------------------------------------------------------------


def test_the_queue_runs_one_job_at_a_time_refuses_overflow_and_forgets_old_results(tmp_path):
    gate, running = threading.Event(), []

    def colorize(image):  # the queue's mechanics, not a model: holds the worker until told
        running.append(len(running))
        gate.wait(60)
        return np.repeat(image[..., :1], 3, axis=-1)

    work = jobs.JobQueue(colorize, tmp_path / "work", max_queued=2, keep_done=2)
    ids = []
    for index in range(3):
        upload = work.new_upload_path()
        upload.write_bytes(encode(smooth_photo(np.random.default_rng(index), index, 20, 30)))
        ids.append(work.submit(upload, f"photo{index}.png").id)
        if index == 0:
            while work.status(ids[0])["stage"] != "colorizing":
                time.sleep(0.01)
    assert [work.status(i)["position"] for i in ids] == [0, 1, 2]
    assert work.status(ids[0])["state"] == "running" and running == [0]
    overflow = work.new_upload_path()
    overflow.write_bytes(b"x")
    with pytest.raises(jobs.QueueFull, match="late.png: the queue is full"):
        work.submit(overflow, "late.png")
    assert not overflow.exists()
    gate.set()
    deadline = time.monotonic() + 60
    while work.counts()["done"] < 2 or work.counts()["running"] + work.counts()["queued"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # keep_done=2: the first job's record and files are gone, the last two remain.
    assert work.status(ids[0]) is None and not (work.results / ids[0]).exists()
    assert all(work.result_file(i, "result.png").is_file() for i in ids[1:])
    assert not list(work.uploads.iterdir())
    work.close()


@pytest.mark.parametrize("form", ["keras", "savedmodel"])
def test_the_app_reads_its_model_once_for_photos_and_films(
    form, generator, model_file, tmp_path, monkeypatch
):
    """What ``python -m colorize_tf.app`` does with its ``--model``: one ``load_colorizer``, and
    the queue colorizes photos and films with that one loaded model (a SavedModel was read a
    second time for the first video before)."""
    pytest.importorskip("av", reason="the video extra is not installed")
    pytest.importorskip("cv2", reason="the video extra is not installed")
    from fractions import Fraction

    from colorize_tf.export.savedmodel import export_savedmodel
    from colorize_tf.inference import video

    model = model_file
    if form == "savedmodel":
        model = tmp_path / "saved_model"
        export_savedmodel(generator, model)
    reads = count_model_reads(monkeypatch)
    colorizer = load_colorizer(model)
    work = jobs.JobQueue(colorizer, tmp_path / "work", videos=True)
    photo = work.new_upload_path()
    photo.write_bytes(encode(smooth_photo(np.random.default_rng(0), 0, 40, 60)))
    film = work.new_upload_path()
    frames = np.stack([smooth_photo(np.random.default_rng(t), t, 48, 64) for t in range(3)])
    video.write_frames(film, frames, Fraction(25))
    ids = [work.submit(photo, "photo.png").id, work.submit(film, "film.mp4").id]
    deadline = time.monotonic() + 300
    while work.counts()["done"] + work.counts()["failed"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    work.close()
    assert [work.status(i)["state"] for i in ids] == ["done", "done"], [
        work.status(i)["message"] for i in ids
    ]
    assert reads == reads_of_one(form), reads
    assert np.stack(list(video.read_frames(work.result_file(ids[1], "result.mp4")))).shape == (
        3, 48, 64, 3,
    )  # fmt: skip


# --- load ------------------------------------------------------------------------------------

LOAD_SIZES = [(48, 64), (300, 200), (480, 640), (768, 1024), (457, 123)]  # (height, width)


@pytest.mark.integration
def test_twenty_concurrent_uploads_twice_all_come_back_right_and_it_stops_clean(
    model_file, tmp_path
):
    app = AppServer(model_file, tmp_path, "--max-queued", "32")
    reference = load_colorizer(model_file)
    rng = np.random.default_rng(7)
    uploads = []
    for index in range(20):
        height, width = LOAD_SIZES[index % len(LOAD_SIZES)]
        rgb = smooth_photo(rng, index, height, width)
        image = rgb if index % 2 else rgb.mean(-1, keepdims=True).astype(np.uint8)
        data = encode(image, "JPEG" if index % 4 == 3 else "PNG")
        decoded, _ = read_image(io.BytesIO(data))
        uploads.append(
            (f"load{index:02d}.{'jpg' if index % 4 == 3 else 'png'}", data, reference(decoded))
        )
    try:
        colorize_upload(app.url, uploads[0][1], "warm-up.png")  # first request's one-off costs
        rss = [app.rss_mb()]  # after warm-up, then after each round
        rss_peak, sampling = [0.0], threading.Event()

        def sample():
            while not sampling.wait(0.05):
                rss_peak[0] = max(rss_peak[0], app.rss_mb())

        sampler = threading.Thread(target=sample)
        sampler.start()
        seconds = []
        for _ in range(LOAD_ROUNDS):
            start = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(len(uploads)) as pool:
                answers = list(pool.map(lambda u: colorize_upload(app.url, u[1], u[0]), uploads))
            seconds.append(time.monotonic() - start)
            rss.append(app.rss_mb())
            for (name, _, expected), (job, result) in zip(uploads, answers, strict=True):
                assert job["state"] == "done" and job["name"] == name, job
                assert result.shape == expected.shape, name
                assert np.abs(result.astype(int) - expected).max() <= 1, name
        sampling.set()
        sampler.join()
        _, body, _ = get(f"{app.url}/api/info")
        done = 1 + LOAD_ROUNDS * len(uploads)
        assert json.loads(body)["jobs"] == {"queued": 0, "running": 0, "done": done, "failed": 0}
        rounds = ", ".join(f"{s:.1f}" for s in seconds)
        print(
            f"\n{LOAD_ROUNDS} x 20 concurrent uploads in {rounds} "
            f"s; RSS {' -> '.join(f'{r:.0f}' for r in rss)} MB, peak {rss_peak[0]:.0f} MB"
        )
        assert rss_peak[0] - rss[0] < MAX_RSS_GROWTH_MB
        assert rss[-1] - rss[1] < MAX_RSS_GROWTH_PER_ROUND_MB * (LOAD_ROUNDS - 1)  # no leak
    finally:
        code = app.stop()
    assert code == 0
    assert app.stdout[-1].strip() == "stopped; temporary files removed"
    assert list(app.tmp.iterdir()) == []  # its temporary folder, TensorFlow's scratch included
