"""``python -m colorize_tf.app``: a local web page to drop photos on and compare before/after.

    python -m colorize_tf.app                          # the shipped model, http://127.0.0.1:8000/
    python -m colorize_tf.app --model runs/quickstart/generator.keras --port 8080

A small ASGI app (Starlette, served by Uvicorn) with one static page. The page uploads each
photo's bytes to ``POST /api/jobs``, polls ``GET /api/jobs/{id}`` for its place in the queue and
its stage, then shows ``before.jpg`` / ``after.jpg`` under a slider and links ``result.png``, the
full-resolution result. Photos go through the same reader and serving path as the
``colorize`` command (EXIF orientation, pixel limit, same-size output); videos, told apart by
their extension as there, through ``colorize_tf.inference.video``, and come back as ``result.mp4``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import signal
import socket
import sys
import tempfile
import unicodedata
from collections.abc import Sequence
from importlib import resources
from urllib.parse import unquote

from colorize_tf.app.jobs import DEFAULT_KEEP_DONE, DEFAULT_MAX_QUEUED, JobQueue, QueueFull
from colorize_tf.inference.files import DEFAULT_MAX_PIXELS
from colorize_tf.inference.loader import MODEL_HELP

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 64.0
DRAIN_FACTOR = 4  # an upload over the limit is read (and dropped) up to this many times it
# The page runs only its own script: uploads are shown as images, never run or rendered as HTML.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
    "object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}


def display_name(raw: str | None) -> str:
    """An upload's name as the page shows it: the last path part, printable, 100 chars."""
    name = unquote(raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:100] or "upload"


def download_name(name: str, extension: str = "png") -> str:
    """ASCII file name offered for the result: ``STEM_colorized.png`` (or ``.mp4``)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:80] or "photo"
    return f"{stem}_colorized.{extension}"


def upload_too_large(name: str, size: int | None, limit: int) -> str:
    """The message for an upload over the byte limit (the page builds the same one); ``size``
    None: cut off unread at ``DRAIN_FACTOR`` times the limit."""
    size_text = "over" if size is None else f"{size / 1e6:.1f} MB exceeds"
    return (
        f"{name}: too large to upload: {size_text} the {limit / 1e6:g} MB limit (--max-upload-mb)"
    )


def build_app(queue: JobQueue, info: dict, max_upload_bytes: int):
    """The Starlette app over ``queue``; ``info`` is shown on the page (model, limits)."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    static = resources.files("colorize_tf.app") / "static"
    pages = {name: (static / name).read_bytes() for name in STATIC_FILES}
    info = {**info, "max_upload_bytes": max_upload_bytes}

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status, headers=SECURITY_HEADERS)

    async def page(request):
        name = request.path_params.get("name", "index.html")
        if name not in pages:
            return error(404, "not found")
        return Response(pages[name], media_type=STATIC_FILES[name], headers=SECURITY_HEADERS)

    async def get_info(request):
        return JSONResponse({**info, "jobs": queue.counts()}, headers=SECURITY_HEADERS)

    async def create_job(request):
        name = display_name(request.headers.get("x-file-name"))
        path, size, too_large, job = queue.new_upload_path(), 0, False, None
        try:
            with open(path, "xb") as file:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        # Read on without keeping it, so the client hears the answer instead of
                        # a reset; a body far beyond the limit is cut off.
                        too_large = True
                        if size > DRAIN_FACTOR * max_upload_bytes:
                            break
                    else:
                        file.write(chunk)
            if too_large:
                known = size <= DRAIN_FACTOR * max_upload_bytes
                return error(413, upload_too_large(name, size if known else None, max_upload_bytes))
            if size == 0:
                return error(400, f"{name}: empty file")
            job = queue.submit(path, name)
        except QueueFull as e:
            return error(503, str(e))
        finally:
            if job is None:  # refused, or the client went away mid-upload
                path.unlink(missing_ok=True)
        return JSONResponse(queue.status(job.id), 202, headers=SECURITY_HEADERS)

    async def get_job(request):
        status = queue.status(request.path_params["job_id"])
        if status is None:
            return error(404, "no such job (finished long ago, or the server restarted)")
        return JSONResponse(status, headers=SECURITY_HEADERS)

    async def get_file(request):
        job_id, kind = request.path_params["job_id"], request.path_params["kind"]
        path = queue.result_file(job_id, kind)
        if path is None or not path.is_file():
            return error(404, "no such file")
        headers = dict(SECURITY_HEADERS)
        if kind.startswith("result."):
            name = download_name(queue.status(job_id)["name"], kind.rsplit(".", 1)[1])
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        media = {"png": "image/png", "jpg": "image/jpeg", "mp4": "video/mp4"}[kind.rsplit(".")[1]]
        return FileResponse(path, media_type=media, headers=headers)

    routes = [
        Route("/", page),
        Route("/static/{name}", page),
        Route("/api/info", get_info),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs/{job_id:str}", get_job),
        Route("/api/jobs/{job_id:str}/{kind:str}", get_file),
    ]
    return Starlette(routes=routes)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize-tf-app",
        description="A local web page: drop photos, compare before and after, download results.",
    )
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="network input size for Keras-based models (default: the size it was trained at)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="TFLite interpreter threads (default: cores)"
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only). WARNING: "
        "any other address, e.g. 0.0.0.0, lets every machine that can reach this one use the "
        "app: there is no login, and each visitor can make it colorize photos",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default: {DEFAULT_PORT}; 0: any free port, printed at start)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="photos colorized at once (default: 1; each holds one photo's tensors in memory)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="refuse larger images, as the colorize command does "
        f"(default: {DEFAULT_MAX_PIXELS:,})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"refuse larger uploads, in MB (default: {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    parser.add_argument(
        "--max-queued",
        type=int,
        default=DEFAULT_MAX_QUEUED,
        help=f"photos that may wait in the queue (default: {DEFAULT_MAX_QUEUED})",
    )
    parser.add_argument(
        "--keep",
        type=int,
        default=DEFAULT_KEEP_DONE,
        help="finished photos kept for viewing; older ones are deleted "
        f"(default: {DEFAULT_KEEP_DONE})",
    )
    args = parser.parse_args(argv)
    for flag in ("workers", "max_pixels", "max_queued", "keep"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.max_upload_mb <= 0:
        parser.error(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    return args


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket, so that port 0 resolves before the URL is printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _load(args: argparse.Namespace):
    """The colorizer, called once on a small image so the first photo does not pay for tracing."""
    import numpy as np

    from colorize_tf.inference.loader import load_colorizer

    colorizer = load_colorizer(args.model, size=args.size, threads=args.threads)
    print(f"{colorizer.description}: warming up", flush=True)
    colorizer(np.zeros((64, 64, 1), np.uint8))
    return colorizer


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        print(
            f"error: {e.name} is missing; install the app extra: pip install 'colorize-tf[app]'",
            file=sys.stderr,
        )
        return 2
    try:
        sock = _listen(args.host, args.port)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(
            f"WARNING: listening on {args.host}: any machine that can reach this one can use "
            "the app (no login). Use --host 127.0.0.1 to keep it to this machine.",
            file=sys.stderr,
        )
    with (
        sock,
        tempfile.TemporaryDirectory(prefix="colorize-tf-app-", ignore_cleanup_errors=True) as tmp,
    ):
        # TensorFlow writes traced functions' sources to the temporary folder: keep them in ours.
        system_tempdir, tempfile.tempdir = tempfile.tempdir, os.path.join(tmp, "scratch")
        os.mkdir(tempfile.tempdir)
        try:
            code = _serve(args, sock, tmp)
        finally:
            tempfile.tempdir = system_tempdir
    if code == 0:
        print("stopped; temporary files removed", flush=True)
    return code


def _serve(args: argparse.Namespace, sock: socket.socket, tmp: str) -> int:
    import uvicorn

    from colorize_tf.inference import video

    try:
        colorizer = _load(args)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = {
        "model": colorizer.description, "input_size": colorizer.size,
        "max_pixels": args.max_pixels, "workers": args.workers,
    }  # fmt: skip
    queue = JobQueue(
        colorizer, os.path.join(tmp, "jobs"), workers=args.workers,
        max_pixels=args.max_pixels, max_queued=args.max_queued, keep_done=args.keep,
        serialize_model=colorizer.form == "tflite",
        video_predictor=lambda: video.load_predictor(args.model, colorizer, args.size,
                                                     args.threads),
    )  # fmt: skip
    app = build_app(queue, info, int(args.max_upload_mb * 1e6))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    sock.listen(128)  # from now on connections wait in the backlog until Uvicorn takes them
    print(
        f"colorize-tf app: http://{shown_host}:{sock.getsockname()[1]}/  (Ctrl+C stops it)",
        flush=True,
    )
    # Uvicorn shuts down gracefully on Ctrl+C or SIGTERM, then raises the signal again for
    # the handler it found: let that one do nothing, so that this function returns and cleans up.
    handlers = {sig: signal.signal(sig, lambda *_: None) for sig in STOP_SIGNALS}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
