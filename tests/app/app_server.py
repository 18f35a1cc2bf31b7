"""The web app as a separate process on loopback, for ``test_app`` and ``test_app_browser``:
``AppServer`` (the real ``python -m colorize_tf.app`` with ``--port 0`` and a ``TMPDIR`` of its
own) and the HTTP helpers that talk to it."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import numpy as np
from helpers import TRAINED_FILE, trained_tiny_generator
from PIL import Image

from colorize_tf.core import color
from colorize_tf.data.samples import sample_photo_paths

START_TIMEOUT_S = 240  # TensorFlow import, model load and the warm-up call, on a busy CPU
JOB_TIMEOUT_S = 300
MIN_CHROMA = 5.0  # mean Lab chroma; a gray image has 0, the tiny model gives 12-17 on samples


def tiny_model_file(tmp_path_factory) -> Path:
    """The ``.keras`` file of ``test_serving``'s tiny trained generator (trained once a run)."""
    base = tmp_path_factory.getbasetemp()
    trained_tiny_generator(base)
    return base / TRAINED_FILE


class AppServer:
    """``python -m colorize_tf.app --port 0 ...`` in a subprocess, with its own TMPDIR."""

    def __init__(self, model: Path, folder: Path, *flags: str):
        self.tmp = folder / "tmp"
        self.tmp.mkdir(parents=True)
        self.log = folder / "server.log"
        env = {**os.environ, "TMPDIR": str(self.tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "colorize_tf.app", "--model", str(model), "--port", "0",
                 *flags], stdout=subprocess.PIPE, stderr=log, text=True, env=env,
            )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.url = self._wait_for_url()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith("colorize-tf app: http://"):
                return line.split()[2].rstrip("/")
        self.process.kill()
        raise AssertionError(
            f"the app did not start:\n{''.join(self.stdout)}\n{self.log.read_text()[-3000:]}"
        )

    def rss_mb(self) -> float:
        """The server's resident memory (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def files(self) -> list[Path]:
        """Every file the server has written (its TMPDIR)."""
        return sorted(p for p in self.tmp.rglob("*") if p.is_file())

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        """Ctrl+C (or ``sig``), as a person would stop it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.reader.join(10)  # the last lines it printed
        return code


def post(url: str, data: bytes, name: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/api/jobs", data=data, method="POST",
        headers={"X-File-Name": quote(name), "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def wait_for(url: str, job_id: str, timeout: float = JOB_TIMEOUT_S) -> dict:
    """Poll a job until it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body, _ = get(f"{url}/api/jobs/{job_id}")
        assert status == 200, body
        job = json.loads(body)
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {job}")


def colorize_upload(url: str, data: bytes, name: str) -> tuple[dict, np.ndarray | None]:
    """Upload, wait, download the full-resolution result (None if the job failed)."""
    status, job = post(url, data, name)
    assert status == 202, job
    job = wait_for(url, job["id"])
    if job["state"] != "done":
        return job, None
    status, body, headers = get(f"{url}/api/jobs/{job['id']}/result.png")
    assert status == 200 and headers["content-type"] == "image/png"
    return job, np.asarray(Image.open(io.BytesIO(body)))


def mean_chroma(rgb: np.ndarray) -> float:
    lab = np.asarray(color.rgb_to_lab(rgb.astype(np.float32) / 255.0))
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def encode(image: np.ndarray, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.squeeze(image)).save(buffer, format=image_format)
    return buffer.getvalue()


def photo_path(name: str) -> Path:
    return next(Path(p) for p in sample_photo_paths() if Path(p).name == name)
