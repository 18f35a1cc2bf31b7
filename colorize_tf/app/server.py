"""The web side of the local app: a page to drop photos on and compare before/after.

``python -m colorize_tf.app`` serves it (its command line: ``colorize_tf.cli.app``).

A small ASGI app (Starlette, served by Uvicorn) with one static page. The page uploads each
photo's bytes to ``POST /api/jobs``, polls ``GET /api/jobs/{id}`` for its place in the queue and
its stage, then shows ``before.jpg`` / ``after.jpg`` under a slider and links ``result.png``, the
full-resolution result. Photos go through the same reader and serving path as the
``colorize`` command (EXIF orientation, pixel limit, same-size output); videos, told apart by
their extension as there, through ``colorize_tf.inference.video``, and come back as ``result.mp4``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from importlib import resources
from urllib.parse import unquote

from colorize_tf.app.jobs import JobQueue, QueueFull

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
