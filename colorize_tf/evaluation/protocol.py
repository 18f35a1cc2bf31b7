"""The evaluation protocol: ours vs the gray baseline on the same crops, with a report.

``evaluate`` runs it (its command line: ``colorize_tf.cli.evaluate``).

The protocol (``colorize_tf.core.metrics``): each image's short side is resized to ``--size`` (256)
and center-cropped; the model sees the crop's L and predicts ab; PSNR (peak 255), SSIM (11x11
Gaussian window, sigma 1.5, per RGB channel) and colorfulness (Hasler & Suesstrunk 2003) are
computed on uint8 RGB against the crop. The gray baseline (L kept, a = b = 0) is scored on the
same crops: PSNR rewards dull colors, so a number without it says little.

``--full-res`` also scores the full-resolution output (the original L with the predicted chroma
upsampled, ``colorize_tf.inference.serving``) against the original photo.

Writes into ``--out``: ``metrics.json`` (means, medians, counts, protocol, skipped files),
``per_image.csv``, ``report.md`` (the table) and ``report.png`` (gray | ours | truth for a
sample of images, and PSNR vs colorfulness of ours and the baseline).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from colorize_tf.config import PROTOCOL_SIZE
from colorize_tf.core.metrics import METRIC_NAMES


def _summaries(rows: list[dict], prefix: str) -> dict:
    out = {}
    for name in METRIC_NAMES:
        values = np.array([row[f"{prefix}{name}"] for row in rows], dtype=np.float64)
        out[name] = {
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "std": float(values.std()),
        }
    return out


def score_batches(colorize, dataset, limit: int = 0, full_res: bool = False, progress=None):
    """Score every eval crop of ``dataset`` (``data.build_eval_rgb_dataset``), ours and gray.

    Args:
        colorize: uint8 (H, W, C) -> uint8 (H, W, 3), the serving path
            (``inference.loader.load_colorizer``): our prediction is what a user of that model gets.
        dataset: batches of dicts with ``rgb`` (B, S, S, 3) in [0, 1] and ``path``.
        limit: stop after this many images (0: all).
        full_res: also colorize the original file at full resolution and score it against
            the original (rows whose ``path`` is not a readable file get no ``full_*``).

    Returns:
        (rows, samples, skipped): one dict per image (path, ours_*, gray_*, optional full_*),
        up to 8 (gray, ours, truth) uint8 crops for the report figure, and (path, reason)
        for files the full-resolution pass could not read.
    """
    from colorize_tf.core import metrics
    from colorize_tf.inference import images

    rows, samples, skipped = [], [], []
    for batch in dataset:
        truth = np.round(np.asarray(batch["rgb"]) * 255.0).astype(np.uint8)  # (B, S, S, 3)
        ours_rgb = np.stack([colorize(image) for image in truth])
        gray_rgb = np.round(np.asarray(metrics.gray_baseline_rgb(truth)) * 255.0).astype(np.uint8)
        ours = {k: np.asarray(v) for k, v in metrics.image_metrics(ours_rgb, truth).items()}
        gray = {k: np.asarray(v) for k, v in metrics.image_metrics(gray_rgb, truth).items()}
        for i, path in enumerate(np.asarray(batch["path"])):
            if limit and len(rows) >= limit:
                return rows, samples, skipped
            row = {"path": path.decode() if isinstance(path, bytes) else str(path)}
            row.update({f"ours_{k}": float(ours[k][i]) for k in METRIC_NAMES})
            row.update({f"gray_{k}": float(gray[k][i]) for k in METRIC_NAMES})
            if full_res and os.path.isfile(row["path"]):
                try:
                    original, _ = images.read_image(row["path"])
                except images.SkipImage as e:
                    skipped.append((row["path"], f"full resolution: {e}"))
                else:
                    full_true = images.display_rgb(original)
                    full = metrics.image_metrics(colorize(original)[None], full_true[None])
                    row.update({f"full_{k}": float(np.asarray(full[k])[0]) for k in METRIC_NAMES})
            rows.append(row)
            if len(samples) < 8:
                samples.append((gray_rgb[i], ours_rgb[i], truth[i]))
            if progress is not None:
                progress.add(1)
    return rows, samples, skipped


def write_report(out: Path, rows: list[dict], samples, protocol: dict, skipped: list[str]) -> dict:
    """metrics.json, per_image.csv, report.md and report.png in ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "count": len(rows),
        "protocol": protocol,
        "ours": _summaries(rows, "ours_"),
        "gray": _summaries(rows, "gray_"),
        "skipped": skipped,
    }
    full_rows = [row for row in rows if "full_psnr" in row]
    if full_rows:
        summary["full_res"] = _summaries(full_rows, "full_")
        summary["full_res_count"] = len(full_rows)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    with (out / "per_image.csv").open("w", newline="") as handle:
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    (out / "report.md").write_text(markdown_table(summary))
    _figure(out / "report.png", rows, samples)
    return summary


def markdown_table(summary: dict) -> str:
    """The report's table: means (medians) of ours and the gray baseline."""
    p = summary["protocol"]
    lines = [
        f"# Evaluation: {summary['count']} images of `{p['data']}` ({p['split']})",
        "",
        f"Model `{p['model']}`. Protocol: short side resized to {p['size']}, center crop "
        f"{p['size']}x{p['size']}; PSNR on uint8 RGB (peak 255); SSIM with an 11x11 Gaussian "
        "window (sigma 1.5) per RGB channel; CF = colorfulness (Hasler & Suesstrunk 2003); "
        "delta CF = |CF(prediction) - CF(truth)|. Mean (median).",
        "",
        "| | PSNR (dB) | SSIM | CF | delta CF |",
        "|---|---|---|---|---|",
    ]
    rows = [("ours", summary["ours"]), ("gray (a=b=0)", summary["gray"])]
    if "full_res" in summary:
        rows.append(("ours, full resolution", summary["full_res"]))
    for name, s in rows:
        cells = [
            f"{s[k]['mean']:.{d}f} ({s[k]['median']:.{d}f})"
            for k, d in (("psnr", 2), ("ssim", 4), ("cf_pred", 1), ("delta_cf", 1))
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cf_true = summary["ours"]["cf_true"]
    lines += [
        "",
        f"Colorfulness of the ground truth: {cf_true['mean']:.1f} ({cf_true['median']:.1f}).",
    ]
    if summary["skipped"]:
        lines += ["", f"Skipped {len(summary['skipped'])} file(s):"]
        lines += [f"- `{path}`: {reason}" for path, reason in summary["skipped"]]
    return "\n".join(lines) + "\n"


def _figure(path: Path, rows: list[dict], samples) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(samples)
    fig = plt.figure(figsize=(12, 3 * max(n, 1) / 2 + 4), constrained_layout=True)
    grid = fig.add_gridspec(max(n, 1) + 2, 3)
    for r, images in enumerate(samples):
        for c, (image, title) in enumerate(
            zip(images, ("gray (a=b=0)", "ours", "truth"), strict=True)
        ):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(image)
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    ax = fig.add_subplot(grid[n:, :])
    for prefix, label, marker in (("ours_", "ours", "o"), ("gray_", "gray (a=b=0)", "x")):
        ax.scatter(
            [row[prefix + "cf_pred"] for row in rows],
            [row[prefix + "psnr"] for row in rows],
            label=label,
            marker=marker,
            alpha=0.7,
        )
    ax.axvline(
        float(np.mean([row["ours_cf_true"] for row in rows])),
        color="gray",
        linestyle="--",
        label="mean colorfulness of the truth",
    )
    ax.set_xlabel("colorfulness of the output (Hasler & Suesstrunk)")
    ax.set_ylabel("PSNR vs truth (dB)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluate(
    model: str | None,
    data_source: str,
    out: Path,
    *,
    split: str = "val",
    size: int = PROTOCOL_SIZE,
    limit: int = 0,
    batch_size: int = 8,
    full_res: bool = False,
    val_fraction: float = 0.1,
    max_pixels: int | None = None,
    verbose: bool = True,
    model_size: int | None = None,
) -> dict:
    """Run the protocol and write the report; returns the summary (see ``write_report``).

    ``size`` is the protocol's crop (256, as papers report); the serving path then resizes
    each crop's L to the network's input, ``model_size`` (None: the size the model was
    trained at), exactly as ``colorize`` does for a photo.

    Raises:
        FileNotFoundError: no model (the message says how to get one) or no data there.
        ValueError: an unknown model format, a bad source, or nothing to score.
    """
    import keras

    from colorize_tf.config import DEFAULT_MAX_PIXELS
    from colorize_tf.data import pipeline as data
    from colorize_tf.data import sources
    from colorize_tf.inference.loader import load_colorizer

    colorize = load_colorizer(model, size=model_size)
    description = colorize.description
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    # One pre-scan of a file source: the pipeline reads what it kept, the report names the
    # files it skipped, and the progress bar knows its target. Record sources (TFRecord, TFDS)
    # name neither before reading.
    scan, skipped, target = None, [], limit or None
    spec = sources.parse_source(data_source)
    if spec.kind in ("samples", "folder"):
        scan = sources.scan_source(spec, max_pixels=max_pixels)
        skipped = [(str(path), str(reason)) for path, reason in scan.skipped]
        target = len(sources.select_split(scan, split, val_fraction))
        target = min(target, limit) if limit else target
    dataset = data.build_eval_rgb_dataset(
        data_source,
        split=split,
        batch_size=batch_size,
        crop_size=size,
        val_fraction=val_fraction,
        max_pixels=max_pixels,
        scan=scan,
    )
    progress = keras.utils.Progbar(target, unit_name="image", verbose=1 if verbose else 0)
    rows, samples, full_skipped = score_batches(colorize, dataset, limit, full_res, progress)
    if not rows:
        raise ValueError(f"no image was scored from {data_source!r} (split {split!r})")
    protocol = {
        "model": description,
        "data": data_source,
        "split": split,
        "size": size,
        "crop": f"short side resized to {size}, center crop {size}x{size}",
        "prediction": "the serving path (colorize_tf.inference.serving) on the uint8 crop",
        "psnr": "uint8 RGB, peak 255, per image then averaged; identical images cap at 100 dB",
        "ssim": "11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, per RGB channel then averaged",
        "colorfulness": "Hasler & Suesstrunk 2003 on 0..255 RGB",
        "baseline": "gray: the truth's L with a = b = 0",
    }
    return write_report(out, rows, samples, protocol, skipped + full_skipped)
