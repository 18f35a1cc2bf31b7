"""Flicker and accuracy of video colorization, per-frame vs temporal, on a film with ground truth.

    python bench/video.py --photos PHOTOS                      # the shipped preset
    python bench/video.py --photos PHOTOS --model runs/x/model --strip docs/x.png

The film (``temporal.synthetic_clip``) is made from four color photos of ``--photos`` (the
largest, in name order among those at least twice the frame size): a slow pan, a slow zoom, a
moving and widening crop and another pan, ``--frames-per-shot`` frames each, hard cuts
between them. The camera path is known, so every frame has its ground truth and the flow
between frames is exact, not estimated (the smoother estimates its own from L only).

Rows: per-frame (``--no-temporal``), temporal at ``--strength`` (default the CLI's) and at each
``--sweep`` strength, the gray baseline (a = b = 0: no flicker, no color) and the truth itself
(the floor of the measure: bilinear warping of 8-bit frames). Columns: warping error (Lai et al.
2018: mean |ab_t - warp(ab_{t-1})| over pixels visible in both frames, CIE a/b units, on the
8-bit output frames), mean PSNR and SSIM against the truth (``metrics.py``), and frames/s of the
whole file-to-file command (decode, network, smoothing, H.264 encode) on this CPU, after a
warm-up run. ``--strip`` writes a PNG of frames: truth, per-frame, its flicker map |ab_t -
warp(ab_{t-1})|, temporal, its flicker map.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from colorize_tf.core import color, metrics
from colorize_tf.inference import files as colorize  # noqa: E402
from colorize_tf.inference import images, loader, temporal, video

FPS = Fraction(24)


def pick_photos(folder: str, count: int, min_side: int) -> list[np.ndarray]:
    """``count`` landscape photos of ``folder`` with a short side >= ``min_side``: the
    largest ones (ties by name), returned in name order."""
    jobs, _ = colorize.find_inputs([folder], Path(tempfile.gettempdir()) / "no-such-output")
    found = []
    for job in jobs:
        if video.is_video_name(job.source):
            continue
        try:
            image, _ = images.read_image(job.source)
        except images.SkipImage:
            continue
        height, width = image.shape[:2]
        if image.shape[-1] >= 3 and min(height, width) >= min_side and width >= height:
            found.append((-height * width, str(job.source), image[..., :3]))
    if len(found) < count:
        sys.exit(
            f"error: {folder} has {len(found)} color landscape photos with a short side "
            f">= {min_side} px; {count} needed"
        )
    chosen = sorted(found)[:count]
    return [image for _, _, image in sorted(chosen, key=lambda item: item[1])]


def ab_of(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) -> ab (T, H, W, 2) in CIE units, through ``color.py``."""
    return np.asarray(color.rgb_to_l_ab(frames / 255.0)[1]) * color.AB_SCALE


def quality(frames: np.ndarray, clip: temporal.SyntheticClip) -> dict[str, float]:
    return {
        "warping_error": temporal.clip_warping_error(ab_of(frames), clip),
        "psnr": float(np.mean(metrics.psnr(frames, clip.frames))),
        "ssim": float(np.mean(metrics.ssim(frames, clip.frames))),
    }


def file_fps(source: Path, colorizer: loader.Colorizer, strength: float | None) -> float:
    target = source.with_name(f"out-{strength}.mp4")
    start = time.perf_counter()
    info = video.colorize_video(
        source, target, colorizer, temporal_strength=strength, verbose=False
    )
    return info.frames / (time.perf_counter() - start)


def flicker_map(frames: np.ndarray, clip: temporal.SyntheticClip, t: int) -> np.ndarray:
    """uint8 (H, W, 3) gray map of |ab_t - warp(ab_{t-1})| (mean of a, b), 0..8 CIE -> 0..255."""
    if t in clip.cuts:
        return np.zeros(frames.shape[1:], np.uint8)
    ab = ab_of(frames[t - 1 : t + 1])
    warped, _ = temporal.warp(ab[0], clip.flows[t])
    error = np.abs(ab[1] - warped).mean(-1) * clip.valid[t]
    gray = np.clip(error / 8.0 * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, -1)


def write_strip(
    path: Path, clip, per_frame, smoothed, columns: list[int], tile_width: int = 160
) -> None:
    """Rows of frames at ``columns``, each tile ``tile_width`` wide, as a 256-color PNG."""
    from PIL import Image, ImageDraw

    rows = [
        ("truth", lambda t: clip.frames[t]),
        ("per-frame", lambda t: per_frame[t]),
        ("flicker", lambda t: flicker_map(per_frame, clip, t)),
        ("temporal", lambda t: smoothed[t]),
        ("flicker", lambda t: flicker_map(smoothed, clip, t)),
    ]
    height, width = clip.frames.shape[1:3]
    tile = (tile_width, round(height * tile_width / width))
    label, top, gap = 78, 14, 2
    canvas = Image.new(
        "RGB", (label + len(columns) * (tile[0] + gap), top + len(rows) * (tile[1] + gap)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for c, t in enumerate(columns):
        draw.text((label + c * (tile[0] + gap) + 3, 1), f"frame {t}", fill="black")
    for r, (name, frame_at) in enumerate(rows):
        y = top + r * (tile[1] + gap)
        draw.text((4, y + tile[1] // 2 - 6), name, fill="black")
        for c, t in enumerate(columns):
            image = Image.fromarray(frame_at(t)).resize(tile, Image.BILINEAR)
            canvas.paste(image, (label + c * (tile[0] + gap), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    print(f"strip: {path} ({path.stat().st_size / 1024:.0f} KB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", required=True, help="a folder of color photos")
    parser.add_argument("--model", default=None, help="any model form (default: the preset)")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--frames-per-shot", type=int, default=24)
    parser.add_argument("--strength", type=float, default=temporal.DEFAULT_STRENGTH)
    parser.add_argument(
        "--sweep",
        type=float,
        nargs="*",
        default=[],
        help="more strengths, as extra rows (no frames/s)",
    )
    parser.add_argument("--strip", type=Path, default=None, help="write the frame strip PNG here")
    args = parser.parse_args(argv)

    photos = pick_photos(args.photos, 4, 2 * max(args.height, args.width))
    clip = temporal.synthetic_clip(photos, args.height, args.width, args.frames_per_shot)
    colorizer = loader.load_colorizer(args.model)
    print(
        f"{colorizer.description}; film {len(clip.frames)} frames of "
        f"{args.width}x{args.height}, cuts at {list(clip.cuts)}"
    )

    per_frame = np.stack(list(video.colorize_frames(clip.frames, colorizer)))
    smoother = temporal.TemporalSmoother(args.strength)
    smoothed = np.stack(list(video.colorize_frames(clip.frames, colorizer, smoother)))
    if smoother.cuts != list(clip.cuts):
        print(f"warning: cuts found at {smoother.cuts}, the film has {list(clip.cuts)}")
    gray = np.round(np.asarray(metrics.gray_baseline_rgb(clip.frames)) * 255).astype(np.uint8)

    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "film.mp4"
        video.write_frames(source, clip.frames, FPS, crf=0)
        video.colorize_video(source, Path(work) / "warm.mp4", colorizer, verbose=False)
        speed = {
            "per-frame": file_fps(source, colorizer, None),
            "temporal": file_fps(source, colorizer, args.strength),
        }

    results = {"per-frame": quality(per_frame, clip), "temporal": quality(smoothed, clip)}
    for strength in args.sweep:
        frames = video.colorize_frames(clip.frames, colorizer, temporal.TemporalSmoother(strength))
        results[f"temporal (strength {strength})"] = quality(np.stack(list(frames)), clip)
    results |= {"gray (a = b = 0)": quality(gray, clip), "truth": quality(clip.frames, clip)}
    print("\n| run | warping error | PSNR (dB) | SSIM | frames/s |\n|---|---|---|---|---|")
    for name, row in results.items():
        fps = f"{speed[name]:.1f}" if name in speed else "–"
        label = f"temporal (strength {args.strength})" if name == "temporal" else name
        print(
            f"| {label} | {row['warping_error']:.3f} | {row['psnr']:.2f} | {row['ssim']:.4f} | "
            f"{fps} |"
        )
    base, ours = results["per-frame"], results["temporal"]
    ratio = ours["warping_error"] / base["warping_error"]
    gain = ours["psnr"] - base["psnr"]
    print(
        f"\nwarping error temporal / per-frame: {ratio:.2f}x (goal <= 0.5x); "
        f"PSNR {gain:+.2f} dB (goal >= -0.1 dB)"
    )
    if args.strip:
        shot = args.frames_per_shot
        columns = [1, shot // 3, 2 * shot // 3, shot - 1, shot, shot + 1]
        write_strip(args.strip, clip, per_frame, smoothed, columns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
