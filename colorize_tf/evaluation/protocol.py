"""The evaluation protocol: ours vs the gray baseline on the same crops, with a report.

``evaluate`` runs it (its command line: ``colorize_tf.cli.evaluate``).

The protocol (``colorize_tf.core.metrics``): each image's short side is resized to ``--size`` (256)
and center-cropped; the model sees the crop's L and predicts ab; PSNR (peak 255), SSIM (11x11
Gaussian window, sigma 1.5, per RGB channel) and colorfulness (Hasler & Suesstrunk 2003) are
computed on uint8 RGB against the crop. The gray baseline (L kept, a = b = 0) is scored on the
same crops: PSNR rewards dull colors, so a number without it says little.

Stripes (``core.metrics.stripes``): the RMS amplitude, in ab units, of the part of the output's
chroma that repeats every 4 network pixels (periods 2 and 4: what stride-2 transposed convs
paint into flat areas), on each crop, on the truth's crop (texture there has some of that energy
too: the floor to compare with), and on a few smooth synthetic gray gradients (where any amount
is the decoder's; see ``gradient_images``).

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
from colorize_tf.core.metrics import (
    METRIC_NAMES,
    STRIPE_MARGIN_PERIODS,
    STRIPE_PERIOD,
    STRIPE_TILE_PERIODS,
)

# Per crop, beside METRIC_NAMES: stripes of the prediction and of the truth (not full-res rows).
STRIPE_NAMES = ("stripes", "stripes_true")
REPORT_NAMES = METRIC_NAMES + STRIPE_NAMES


def _summaries(rows: list[dict], prefix: str, names=REPORT_NAMES) -> dict:
    """Mean, median and std of each of ``names`` the rows hold (stripes may be absent)."""
    out = {}
    for name in names:
        if f"{prefix}{name}" not in rows[0]:
            continue
        values = np.array([row[f"{prefix}{name}"] for row in rows], dtype=np.float64)
        out[name] = {
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "std": float(values.std()),
        }
    return out


def stripe_period(size: int, model_size: int | None) -> int | None:
    """The network's stripe period (``STRIPE_PERIOD`` network pixels) in pixels of a ``size``
    crop whose L was resized to ``model_size`` (None: unknown, taken as ``size``); None where
    that is not a whole number of at least 2 pixels (no stripe measure then)."""
    model_size = model_size or size
    period, rest = divmod(STRIPE_PERIOD * size, model_size)
    return None if rest or period < 2 else period


def stripe_margin(size: int, period: int) -> int | None:
    """Border pixels dropped before measuring stripes on a ``size`` crop: ``STRIPE_MARGIN_PERIODS``
    periods, fewer where the crop is small; None where not even one tile fits (no measure)."""
    room = (size - STRIPE_TILE_PERIODS * period - period) // 2
    return None if room < 0 else min(STRIPE_MARGIN_PERIODS * period, room)


def _rgb_stripes(rgb: np.ndarray, period: int | None) -> np.ndarray:
    """``metrics.rgb_stripes`` of (B, S, S, 3) crops with the protocol's margin; NaN when small."""
    from colorize_tf.core import metrics

    margin = None if period is None else stripe_margin(rgb.shape[-2], period)
    if margin is None:
        return np.full(rgb.shape[:-3], np.nan)
    return np.asarray(metrics.rgb_stripes(rgb, period, margin), dtype=np.float64)


def gradient_images(size: int) -> np.ndarray:
    """Smooth gray test images, uint8 (4, size, size, 3): where a clean decoder paints no stripes.

    A vertical ramp (like a clear sky, brighter at the horizon), a horizontal ramp, a diagonal
    one, and a soft round blob; levels 40..220.
    """
    y, x = np.mgrid[0:size, 0:size] / (size - 1.0)  # (size, size) each, in [0, 1]
    blob = np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.18)
    ramps = np.stack([y, x, (x + y) / 2, blob])  # (4, size, size), each in [0, 1]
    levels = np.round(40 + 180 * ramps).astype(np.uint8)
    return np.repeat(levels[..., None], 3, axis=-1)


def gradient_stripes(colorize, size: int, period: int | None) -> dict:
    """Stripes of ``colorize`` on ``gradient_images(size)``: mean, max and one per image."""
    outputs = np.stack([colorize(image) for image in gradient_images(size)])
    values = _rgb_stripes(outputs, period)
    return {"mean": float(values.mean()), "max": float(values.max()), "each": values.tolist()}


def score_batches(
    colorize,
    dataset,
    limit: int = 0,
    full_res: bool = False,
    progress=None,
    period: int | None = STRIPE_PERIOD,
):
    """Score every eval crop of ``dataset`` (``data.build_eval_rgb_dataset``), ours and gray.

    Args:
        colorize: uint8 (H, W, C) -> uint8 (H, W, 3), the serving path
            (``inference.loader.load_colorizer``): our prediction is what a user of that model gets.
        dataset: batches of dicts with ``rgb`` (B, S, S, 3) in [0, 1] and ``path``.
        limit: stop after this many images (0: all).
        full_res: also colorize the original file at full resolution and score it against
            the original (rows whose ``path`` is not a readable file get no ``full_*``).
        period: the stripe period in crop pixels (``stripe_period``).

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
        measured = period is not None and stripe_margin(truth.shape[-2], period) is not None
        if measured:  # else no stripe figure at all (not a NaN in the report)
            true_stripes = _rgb_stripes(truth, period)  # (B,)
            for scores, rgb in ((ours, ours_rgb), (gray, gray_rgb)):
                scores["stripes"] = _rgb_stripes(rgb, period)
                scores["stripes_true"] = true_stripes
        for i, path in enumerate(np.asarray(batch["path"])):
            if limit and len(rows) >= limit:
                return rows, samples, skipped
            row = {"path": path.decode() if isinstance(path, bytes) else str(path)}
            row.update({f"ours_{k}": float(ours[k][i]) for k in REPORT_NAMES if k in ours})
            row.update({f"gray_{k}": float(gray[k][i]) for k in REPORT_NAMES if k in gray})
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


def write_report(
    out: Path,
    rows: list[dict],
    samples,
    protocol: dict,
    skipped: list[str],
    gradients: dict | None = None,
) -> dict:
    """metrics.json, per_image.csv, report.md and report.png in ``out``; returns the summary.

    ``gradients``: ``gradient_stripes`` of the model, reported beside the crops' figures.
    """
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "count": len(rows),
        "protocol": protocol,
        "ours": _summaries(rows, "ours_"),
        "gray": _summaries(rows, "gray_"),
        "skipped": skipped,
    }
    if gradients is not None:
        summary["smooth_gradients"] = gradients
    full_rows = [row for row in rows if "full_psnr" in row]
    if full_rows:
        summary["full_res"] = _summaries(full_rows, "full_", METRIC_NAMES)
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
        "delta CF = |CF(prediction) - CF(truth)|; stripes = RMS amplitude (ab units) of the "
        "chroma pattern that repeats every 4 network pixels (periods 2 and 4). Mean (median).",
        "",
        "| | PSNR (dB) | SSIM | CF | delta CF | stripes |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("ours", summary["ours"]), ("gray (a=b=0)", summary["gray"])]
    if "full_res" in summary:
        rows.append(("ours, full resolution", summary["full_res"]))
    columns = (("psnr", 2), ("ssim", 4), ("cf_pred", 1), ("delta_cf", 1), ("stripes", 2))
    for name, s in rows:
        cells = [
            f"{s[k]['mean']:.{d}f} ({s[k]['median']:.{d}f})" if k in s else "-" for k, d in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cf_true = summary["ours"]["cf_true"]
    lines += [
        "",
        f"Colorfulness of the ground truth: {cf_true['mean']:.1f} ({cf_true['median']:.1f}).",
    ]
    if "stripes_true" in summary["ours"]:
        floor = summary["ours"]["stripes_true"]
        lines.append(
            f"Stripes of the ground truth (its own texture at those periods): "
            f"{floor['mean']:.2f} ({floor['median']:.2f})."
        )
    if "smooth_gradients" in summary:
        g = summary["smooth_gradients"]
        lines.append(
            f"Stripes of ours on {len(g['each'])} smooth gray gradients (0 for a clean decoder): "
            f"mean {g['mean']:.2f}, max {g['max']:.2f}."
        )
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
    period = stripe_period(size, colorize.size)
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
    rows, samples, full_skipped = score_batches(
        colorize, dataset, limit, full_res, progress, period
    )
    if not rows:
        raise ValueError(f"no image was scored from {data_source!r} (split {split!r})")
    measured = period is not None and stripe_margin(size, period) is not None
    gradients = gradient_stripes(colorize, size, period) if measured else None
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
        "stripes": "not measured: the crop holds no whole tile of the network's period"
        if not measured
        else f"RMS amplitude (ab units) of the chroma pattern of period {STRIPE_PERIOD} "
        f"network pixels = {period} crop pixels, per {STRIPE_TILE_PERIODS * period}-pixel tile, "
        f"{stripe_margin(size, period)} border pixels dropped "
        "(colorize_tf.core.metrics.stripes); also on smooth gray gradients",
    }
    return write_report(out, rows, samples, protocol, skipped + full_skipped, gradients)
