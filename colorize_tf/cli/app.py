"""``python -m colorize_tf.app``: a local web page to drop photos on and compare before/after.

    python -m colorize_tf.app                          # the shipped model, http://127.0.0.1:8000/
    python -m colorize_tf.app --model runs/quickstart/model --port 8080

The process around the web app (``colorize_tf.app.server``, ``colorize_tf.app.jobs``): flags, the
listening socket (bound before the URL is printed, so ``--port 0`` shows the port it got), the
model loaded and warmed up once, a private temporary folder removed at exit, and Ctrl+C or
SIGTERM stopping it cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence

from colorize_tf.app import jobs, server
from colorize_tf.cli import common
from colorize_tf.config import DEFAULT_MAX_PIXELS

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize-tf-app",
        description="A local web page: drop photos, compare before and after, download results.",
    )
    common.add_model_flag(parser)
    common.add_runtime_flags(parser)
    parser.add_argument(
        "--host",
        default=server.DEFAULT_HOST,
        help=f"address to listen on (default: {server.DEFAULT_HOST}, this machine only). WARNING: "
        "any other address, e.g. 0.0.0.0, lets every machine that can reach this one use the "
        "app: there is no login, and each visitor can make it colorize photos",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=server.DEFAULT_PORT,
        help=f"port (default: {server.DEFAULT_PORT}; 0: any free port, printed at start)",
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
        default=server.DEFAULT_MAX_UPLOAD_MB,
        help=f"refuse larger uploads, in MB (default: {server.DEFAULT_MAX_UPLOAD_MB:g})",
    )
    parser.add_argument(
        "--max-queued",
        type=int,
        default=jobs.DEFAULT_MAX_QUEUED,
        help=f"photos that may wait in the queue (default: {jobs.DEFAULT_MAX_QUEUED})",
    )
    parser.add_argument(
        "--keep",
        type=int,
        default=jobs.DEFAULT_KEEP_DONE,
        help="finished photos kept for viewing; older ones are deleted "
        f"(default: {jobs.DEFAULT_KEEP_DONE})",
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


@common.command()
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise common.CommandError(
            f"{e.name} is missing; install the app extra: pip install 'colorize-tf[app]'"
        ) from e
    try:
        sock = _listen(args.host, args.port)
    except OSError as e:
        raise common.CommandError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from e
    if not server.is_loopback(args.host):
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

    with common.user_errors(FileNotFoundError, ValueError, ImportError):
        colorizer = _load(args)
    info = {
        "model": colorizer.description, "input_size": colorizer.size,
        "max_pixels": args.max_pixels, "workers": args.workers,
    }  # fmt: skip
    queue = jobs.JobQueue(
        colorizer, os.path.join(tmp, "jobs"), workers=args.workers,
        max_pixels=args.max_pixels, max_queued=args.max_queued, keep_done=args.keep,
        serialize_model=colorizer.form == "tflite", videos=True,
    )  # fmt: skip
    app = server.build_app(queue, info, int(args.max_upload_mb * 1e6))
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
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
        web.run(sockets=[sock])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        queue.close()
    return 0
