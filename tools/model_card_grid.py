"""The model card's picture: gray | ours | truth at full resolution, on photos of one split.

    python tools/model_card_grid.py --data PHOTOS --split report --out docs/model_card_grid.jpg

The photos are taken evenly from the split in name order (none chosen by eye); each is
colorized at its full resolution by ``load_colorizer`` (the path ``colorize`` takes), then the
three panels are scaled to one height for the page. Each row is labeled with the photo's name
and its full-resolution PSNR, ours and gray.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from colorize_tf.core import metrics
from colorize_tf.data import sources
from colorize_tf.inference import images
from colorize_tf.inference.loader import load_colorizer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a photo folder")
    parser.add_argument("--split", default="report", choices=sources.SPLITS)
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--height", type=int, default=220, help="panel height in the picture")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    colorize = load_colorizer(args.model)
    chosen = sources.select_split(sources.scan_source(args.data), args.split, 0.1)
    picks = np.linspace(0, len(chosen) - 1, min(args.count, len(chosen))).round().astype(int)
    rows = []
    for index in picks:
        path = chosen[index].path
        original, _ = images.read_image(path)
        truth = images.display_rgb(original)
        ours = colorize(original)
        gray = np.round(np.asarray(metrics.gray_baseline_rgb(truth)) * 255).astype(np.uint8)
        psnr = [float(np.asarray(metrics.psnr(x[None], truth[None]))[0]) for x in (ours, gray)]
        width = round(truth.shape[1] * args.height / truth.shape[0])
        panels = [Image.fromarray(x).resize((width, args.height), Image.LANCZOS)
                  for x in (gray, ours, truth)]  # fmt: skip
        row = Image.new("RGB", (3 * width + 16, args.height + 18), "white")
        for i, panel in enumerate(panels):
            row.paste(panel, (i * (width + 8), 18))
        label = (f"{Path(path).name[-40:]}  {truth.shape[1]}x{truth.shape[0]}  "
                 f"PSNR ours {psnr[0]:.2f} dB, gray {psnr[1]:.2f} dB")  # fmt: skip
        ImageDraw.Draw(row).text((2, 3), label, fill="black")
        rows.append(row)
        print(label, flush=True)
    width = max(r.width for r in rows)
    grid = Image.new("RGB", (width, sum(r.height for r in rows) + 6 * len(rows)), "white")
    top = 0
    for row in rows:
        grid.paste(row, (0, top))
        top += row.height + 6
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, quality=85)
    print(f"wrote {args.out} ({grid.width}x{grid.height}; columns: gray | ours | truth)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
