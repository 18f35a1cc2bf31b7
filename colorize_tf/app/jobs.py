"""The web app's work queue: uploads in, colorized files out, a set number of workers.

Framework-free so that it can be tested and reasoned about on its own. Every file lives in one
working folder that the caller owns (the server makes it a temporary folder and removes it on
exit)::

    WORKDIR/uploads/<job id>             the uploaded bytes, deleted once decoded
    WORKDIR/results/<job id>/result.png  the full-resolution result (the download)
    WORKDIR/results/<job id>/result.mp4  ... for a video (``colorize_tf.inference.video``)
    WORKDIR/results/<job id>/before.jpg  the input as decoded (EXIF applied), shrunk for display;
                                         a video's first frame
    WORKDIR/results/<job id>/after.jpg   the result shrunk the same way

Job ids are random hex; an upload's own name is kept only as text for the page and never
becomes part of a path.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.inference.images import SkipImage, display_rgb, read_image, write_image
from colorize_tf.inference.video import VideoError, is_video_name

RESULT_FILES = {
    "photo": ("result.png", "before.jpg", "after.jpg"),
    "video": ("result.mp4", "before.jpg", "after.jpg"),
}
PREVIEW_SIDE = 1600  # longest side of the page's before/after images; the download is full size
PREVIEW_QUALITY = 90
DEFAULT_MAX_QUEUED = 64  # waiting jobs; more uploads are refused until some are done
DEFAULT_KEEP_DONE = 64  # finished jobs whose files are kept; older ones are deleted


class QueueFull(Exception):
    """More jobs are waiting than the queue holds; the message is shown to the user."""


@dataclass
class Job:
    """One upload and what became of it (the page reads ``as_dict``)."""

    id: str
    name: str  # the upload's file name, for display only
    kind: str = "photo"  # photo | video, by the name's extension as in the colorize command
    state: str = "queued"  # queued | running | done | failed
    stage: str = ""  # while running: decoding | colorizing | saving
    message: str = ""  # why it failed
    width: int = 0
    height: int = 0
    frames: int = 0  # a video's
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None

    def as_dict(self, position: int) -> dict:
        now = time.monotonic()
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "state": self.state,
            "stage": self.stage, "message": self.message, "width": self.width,
            "height": self.height, "frames": self.frames,
            "position": position,  # 1: next to run; 0: running or finished
            "waited_s": round((self.started or now) - self.created, 2),
            "seconds": round((self.finished or now) - self.started, 2) if self.started else 0.0,
        }  # fmt: skip


class JobQueue:
    """Colorize uploads with ``workers`` threads, one job per worker at a time.

    Args:
        colorize: uint8 (H, W, C) -> uint8 (H, W, 3): the ``Colorizer`` of
            ``inference.loader.load_colorizer`` (any callable, for photos only).
        workdir: a folder for this queue alone (created if missing; it must hold no
            ``uploads/`` or ``results/`` yet).
        workers: jobs processed at once; each holds one decoded image and its result.
        max_pixels: the CLI's pixel limit, applied before any pixel is decoded.
        max_queued: waiting jobs beyond which ``submit`` raises ``QueueFull``.
        keep_done: finished jobs whose files are kept; the oldest beyond are deleted.
        serialize_model: call ``colorize`` from one worker at a time (a TFLite interpreter is
            not thread-safe), while decoding and saving still overlap.
        videos: colorize video uploads too, through ``colorize``'s ``predict_ab`` (the same
            loaded model as the photos); False: videos are refused.
    """

    def __init__(
        self,
        colorize: Callable[[np.ndarray], np.ndarray],
        workdir: str | os.PathLike,
        *,
        workers: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        keep_done: int = DEFAULT_KEEP_DONE,
        serialize_model: bool = False,
        videos: bool = False,
    ):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._colorize, self.max_pixels = colorize, max_pixels
        self.workers, self.max_queued, self.keep_done = workers, max_queued, keep_done
        self.workdir = Path(workdir)
        self.uploads, self.results = self.workdir / "uploads", self.workdir / "results"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir()
        self.results.mkdir()
        self._jobs: dict[str, Job] = {}
        self._waiting: collections.deque[str] = collections.deque()
        self._finished: collections.deque[str] = collections.deque()
        self._lock = threading.Condition()
        self._model_lock = threading.Lock() if serialize_model else None
        self.videos = videos
        self._closing = False
        self._threads = [
            threading.Thread(target=self._work, name=f"colorize-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # --- the server's side -----------------------------------------------------------------

    def new_upload_path(self) -> Path:
        """A fresh path under ``uploads/`` for one upload's bytes (random name)."""
        return self.uploads / secrets.token_hex(16)

    def submit(self, upload: Path, name: str) -> Job:
        """Queue an upload written to a path from ``new_upload_path``; the queue owns it now.

        Raises:
            QueueFull: ``max_queued`` jobs are already waiting (the upload is deleted).
        """
        with self._lock:
            if len(self._waiting) >= self.max_queued or self._closing:
                upload.unlink(missing_ok=True)
                raise QueueFull(
                    f"{name}: the queue is full ({self.max_queued} photos waiting); "
                    "try again when some are done"
                )
            job = Job(id=upload.name, name=name, kind="video" if is_video_name(name) else "photo")
            self._jobs[job.id] = job
            self._waiting.append(job.id)
            self._lock.notify()
            return job

    def status(self, job_id: str) -> dict | None:
        """The job's state for the page, or None for an unknown (or deleted) id."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            position = self._waiting.index(job_id) + 1 if job.state == "queued" else 0
            return job.as_dict(position)

    def result_file(self, job_id: str, kind: str) -> Path | None:
        """One of ``RESULT_FILES`` of a finished job, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state != "done" or kind not in RESULT_FILES[job.kind]:
                return None
            return self.results / job.id / kind

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state (for the page's header and for tests)."""
        with self._lock:
            counts = dict.fromkeys(("queued", "running", "done", "failed"), 0)
            for job in self._jobs.values():
                counts[job.state] += 1
            return counts

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new jobs, drop the waiting ones, wait up to ``timeout`` s for running ones."""
        with self._lock:
            self._closing = True
            for job_id in self._waiting:
                job = self._jobs[job_id]
                job.state, job.message = "failed", "the server stopped before this photo's turn"
                (self.uploads / job_id).unlink(missing_ok=True)
            self._waiting.clear()
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- the workers' side -----------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                job = self._jobs[self._waiting.popleft()]
                job.state, job.stage, job.started = "running", "decoding", time.monotonic()
            try:
                self._run_video(job) if job.kind == "video" else self._run(job)
                state, message = "done", ""
            except SkipImage as e:
                state, message = "failed", f"{job.name}: {e}"
            except VideoError as e:  # its message names the upload's random path: not shown
                state, message = "failed", f"{job.name}: {e.reason}"
            except ImportError as e:  # a video without the [video] extra
                state, message = "failed", f"{job.name}: {e}"
            except Exception as e:  # one bad photo must not stop the worker
                traceback.print_exc(file=sys.stderr)
                reason = f"colorization failed ({type(e).__name__}: {e})"
                state, message = "failed", f"{job.name}: {reason}"
            finally:
                (self.uploads / job.id).unlink(missing_ok=True)
            with self._lock:
                job.state, job.stage, job.message = state, "", message
                job.finished = time.monotonic()
                self._finished.append(job.id)
                self._forget_old()

    def _run(self, job: Job) -> None:
        from colorize_tf.inference import serving

        upload = self.uploads / job.id
        image, _ = read_image(upload, self.max_pixels)  # SkipImage: not an image, too large
        upload.unlink()
        job.height, job.width = image.shape[:2]
        try:
            serving.check_image(image)
        except ValueError as e:  # e.g. too small to colorize
            raise SkipImage(str(e)) from None
        job.stage = "colorizing"
        with self._model_lock or contextlib.nullcontext():
            rgb = self._colorize(image)
        job.stage = "saving"
        folder = self.results / job.id
        folder.mkdir()
        write_image(folder / "result.png", rgb, "PNG", PREVIEW_QUALITY)
        _write_preview(folder / "before.jpg", display_rgb(image))
        _write_preview(folder / "after.jpg", rgb)

    def _run_video(self, job: Job) -> None:
        from colorize_tf.inference import video

        if not self.videos:
            raise SkipImage("videos are not enabled in this app")
        upload, folder = self.uploads / job.id, self.results / job.id
        info = video.probe(upload, self.max_pixels)  # VideoError: not a video, odd size, ...
        job.width, job.height, job.frames = info.width, info.height, info.frames
        job.stage = "colorizing"
        folder.mkdir()
        with self._model_lock or contextlib.nullcontext():
            video.colorize_video(
                upload,
                folder / "result.mp4",
                self._colorize,
                max_pixels=self.max_pixels,
                verbose=False,
                info=info,
            )
        job.stage = "saving"
        _write_preview(folder / "before.jpg", _first_frame(upload))
        _write_preview(folder / "after.jpg", _first_frame(folder / "result.mp4"))

    def _forget_old(self) -> None:
        """Delete the files of finished jobs beyond ``keep_done`` (lock held)."""
        while len(self._finished) > self.keep_done:
            job_id = self._finished.popleft()
            del self._jobs[job_id]
            shutil.rmtree(self.results / job_id, ignore_errors=True)


def _first_frame(path: Path) -> np.ndarray:
    from colorize_tf.inference import video

    frames = video.read_frames(path)
    try:
        return next(frames)
    finally:
        frames.close()


def _write_preview(path: Path, rgb: np.ndarray) -> None:
    """uint8 RGB shrunk to ``PREVIEW_SIDE`` on its longest side, as JPEG."""
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.LANCZOS)
    image.save(path, format="JPEG", quality=PREVIEW_QUALITY)
