"""The in-browser colorizer's on-device time, beside the Python LiteRT interpreter, same file.

    python bench/web_tflite.py                           # the shipped preset, fp16 and fp32
    python bench/web_tflite.py --model g.keras --precisions fp16 --photo my.jpg --work web_bench

For each precision, ``export --web`` writes the folder (kept in ``--work`` and reused), which
is served from 127.0.0.1 to headless Chromium (the system's; no GPU, so LiteRT.js runs on
wasm, one thread). A photo (``--photo``, default scikit-image's astronaut) with film grain
added is saved as JPEG at 12 MP (4000 x 3000) and 1 MP (1152 x 864) in a temporary folder;
the page colorizes each twice and the second, warm, run is reported:

* page network: the ``predict_ab`` call alone;
* page whole photo: decode, the three signatures in chunks, both resamplings, PNG encode.

Python rows run the same ``colorize_web.tflite`` with ``ai_edge_litert``: the network (median
of 10 calls) and ``serving.colorize_image`` on the decoded photo (TensorFlow's pixel math
around the file's ``predict_ab``: no decode or encode; median of 3), on 1 thread (as wasm)
and on every core.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SIZES = {"12MP": (4000, 3000), "1MP": (1152, 864)}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def make_photos(source: str | None, folder: Path) -> dict[str, Path]:
    """The photo at each of SIZES, with grain so that JPEG and resampling see texture."""
    import skimage.data

    image = Image.open(source).convert("RGB") if source else Image.fromarray(
        skimage.data.astronaut()
    )  # fmt: skip
    rng = np.random.default_rng(0)
    photos = {}
    for name, size in SIZES.items():
        pixels = np.asarray(image.resize(size, Image.BICUBIC), np.float32)
        pixels += rng.normal(0, 6, pixels.shape[:2] + (1,))
        path = folder / f"photo_{name}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        photos[name] = path
    return photos


def page_times(site: Path, photos: dict[str, Path], tmp: Path) -> dict[str, dict]:
    """{size name: {"network_ms", "total_ms", "backend"}} of the page's second run."""
    from playwright.sync_api import expect, sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runs = []
    for attempt in ("a", "b"):
        for name, path in photos.items():
            copy = tmp / f"{path.stem}_{attempt}{path.suffix}"
            shutil.copyfile(path, copy)
            runs.append((name, copy))
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    results: dict[str, dict] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_port}/?backend=wasm")
        page.wait_for_selector("body[data-ready=true]", timeout=120_000)
        backend = page.text_content("#backend")
        page.set_input_files("#files", [str(p) for _, p in runs])
        done = page.locator(".card[data-state=done], .card[data-state=failed]")
        expect(done).to_have_count(len(runs), timeout=1_800_000)
        for name, path in runs[len(photos) :]:
            card = page.locator(".card", has_text=path.name)
            if card.get_attribute("data-state") != "done":
                raise RuntimeError(card.text_content())
            results[name] = {
                "network_ms": float(card.get_attribute("data-network-ms")),
                "total_ms": float(card.get_attribute("data-total-ms")),
                "stages": card.get_attribute("data-stages"),
                "backend": backend,
            }
        browser.close()
    server.shutdown()
    return results


def python_times(model_file: Path, photos: dict[str, Path], threads: int) -> dict[str, dict]:
    from colorize_tf.inference import serving
    from colorize_tf.inference.images import read_image

    predictor = serving.TFLitePredictAB(str(model_file), num_threads=threads)
    l_norm = np.zeros((1, predictor.size, predictor.size, 1), np.float32)
    predictor(l_norm)
    network = []
    for _ in range(10):
        start = time.perf_counter()
        predictor(l_norm)
        network.append(time.perf_counter() - start)
    results = {}
    for name, path in photos.items():
        image = read_image(path)[0]
        serving.colorize_image(predictor, image)  # warm-up: graph tracing
        totals = []
        for _ in range(3):
            start = time.perf_counter()
            serving.colorize_image(predictor, image)
            totals.append(time.perf_counter() - start)
        results[name] = {
            "network_ms": 1000 * statistics.median(network),
            "total_ms": 1000 * statistics.median(totals),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="generator (default: the shipped preset)")
    parser.add_argument("--precisions", default="fp16,fp32", help="web precisions to time")
    parser.add_argument("--photo", default=None, help="photo to scale (default: astronaut)")
    parser.add_argument("--work", default=None, help="keep the exported folders here")
    args = parser.parse_args(argv)

    from colorize_tf.export import web
    from colorize_tf.inference import loader

    model_path = args.model or loader.default_model()
    work = Path(args.work or tempfile.mkdtemp(prefix="web_tflite_"))
    generator = None
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(args.photo, Path(tmp))
        for precision in args.precisions.split(","):
            site = work / f"site_{precision}"
            if not (site / web.CONFIG_FILE).exists():
                generator = generator or loader.load_generator(model_path)
                web.write_web(generator, site, precision=precision, check=False, overwrite=True)
            file = site / web.WEB_FILE
            print(f"# {precision}: {file} ({file.stat().st_size / 1e6:.1f} MB)", flush=True)
            for label, times in [
                ("page, Chromium wasm", page_times(site, photos, Path(tmp))),
                ("Python LiteRT, 1 thread", python_times(file, photos, 1)),
                (f"Python LiteRT, {os.cpu_count()} threads", python_times(file, photos, None)),
            ]:
                for name in SIZES:
                    network, total = times[name]["network_ms"], times[name]["total_ms"] / 1000
                    print(
                        f"  {label:32} {name:5} network {network:7.1f} ms  "
                        f"whole photo {total:6.2f} s  {times[name].get('stages', '')}",
                        flush=True,
                    )
    print(f"\nmachine: {os.cpu_count()} cores; {sys.version.split()[0]}; folders in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
