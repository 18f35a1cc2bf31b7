"""Colorize films: decode with PyAV, colorize frames in batches on the serving path, smooth ab
along the motion (``temporal.py``), encode H.264 in MP4 with the audio copied unchanged.

    python -m colorize_tf.colorize film.mkv --out colorized/          # -> colorized/film.mp4
    python -m colorize_tf.colorize reels/ --out colorized/ --temporal-strength 0.6
    python -m colorize_tf.colorize film.mp4 --out colorized/ --no-temporal

One film: ``colorize_video``; the command's many files (photos and films): ``files.py``.

The output has the input's width, height, frame rate and frame count; its first video stream
is H.264 (libx264, ``yuv420p``, BT.709 tags, CRF ``DEFAULT_CRF``) and every audio stream is
remuxed packet for packet. Color input is reduced to its L first, as for photos. Every model
form works: frames go through the ``predict_ab`` of the ``Colorizer`` that
``loader.load_colorizer`` returned (the one the photos use: the model is read once), so that
ab can be smoothed at the network's size before it is joined to the full-size L.

A video is checked before any frame is colorized (``probe``): not a video, truncated, no
frames, odd width or height (``yuv420p`` halves the chroma planes), variable frame rate, or
frames over the photos' pixel limit are each a ``VideoError`` naming the file. The output is
written under a hidden ``.NAME.mp4.partial`` name and renamed only once every frame is in, so
a failed run leaves nothing under the final name.

PyAV and OpenCV are an optional extra: ``pip install 'colorize-tf[video]'``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from colorize_tf.inference import serving, temporal

if TYPE_CHECKING:
    from colorize_tf.inference.loader import Colorizer

VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".wmv",
    ".flv",
    ".ogv",
    ".3gp",
)
OUTPUT_EXTENSION = ".mp4"
DEFAULT_BATCH = 8  # frames per network call: amortizes per-call overhead, bounded memory
DEFAULT_CRF = 18  # x264 constant quality; ~visually lossless
DEFAULT_PRESET = "medium"  # x264 speed / size trade-off
# Frame intervals may wobble by container rounding (Matroska's 1 ms ticks give 33/34 ms at
# 29.97 fps); more than this fraction of the nominal interval (or 2 ticks) is a variable rate.
VFR_TOLERANCE = 0.05


class VideoError(Exception):
    """A video that cannot be colorized; ``reason`` says why, ``str()`` names the file too."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def is_video_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


def load_av():
    try:
        import av
    except ImportError as e:
        raise ImportError(
            "video colorization needs PyAV and OpenCV: pip install 'colorize-tf[video]'"
        ) from e
    return av


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` found in a video's first video stream."""

    width: int
    height: int
    fps: Fraction
    frames: int  # packets of the video stream: one frame each
    audio: tuple[str, ...]  # codec names of the audio streams


def _open(path: str | os.PathLike):
    av = load_av()
    try:
        return av.open(os.fspath(path))
    except av.FFmpegError as e:
        raise VideoError(
            path, f"not a readable video (not a video, or truncated): {e.strerror or e}"
        ) from None


def probe(path: str | os.PathLike, max_pixels: int) -> VideoInfo:
    """Check a video before decoding it (reads packets only, no frame is decoded).

    Raises:
        VideoError: not a video, no video stream, truncated, zero frames, odd or too small
            dimensions, more than ``max_pixels`` pixels per frame, variable frame rate.
    """
    av = load_av()
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(path, "no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise VideoError(
                path,
                f"frames too large: {width}x{height} = {width * height / 1e6:.1f} MP "
                f"exceeds --max-pixels {max_pixels:,}",
            )
        if min(width, height) < serving.MIN_SIDE:
            raise VideoError(path, f"frames too small: {width}x{height}")
        if width % 2 or height % 2:
            raise VideoError(
                path,
                f"odd frame size {width}x{height}: H.264 yuv420p needs an even width and "
                "height (crop or pad one pixel first)",
            )
        stamps = []
        try:
            for packet in container.demux(stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if packet.size and stamp is not None:
                    stamps.append(stamp)
        except av.FFmpegError as e:
            raise VideoError(path, f"truncated or corrupt: {e.strerror or e}") from None
        if not stamps:
            raise VideoError(path, "no video frames")
        fps = stream.average_rate or stream.guessed_rate
        if not fps:
            raise VideoError(path, "no frame rate")
        expected = _declared_frames(container, stream, fps)
        if expected and len(stamps) < expected - 1:  # a cut-off file ends its demux quietly
            raise VideoError(path, f"truncated: {len(stamps)} of {expected} frames present")
        _check_constant_rate(path, np.diff(np.sort(stamps)), stream.time_base, Fraction(fps))
        audio = tuple(s.codec_context.name for s in container.streams.audio)
    return VideoInfo(width, height, Fraction(fps), len(stamps), audio)


def _declared_frames(container, stream, fps) -> int:
    """The frame count the header promises: MP4/MOV store it; otherwise (Matroska) the
    duration says it, but only for a video-only file (audio may outlast the video). 0: none."""
    if stream.frames:
        return int(stream.frames)
    if container.duration and len(container.streams) == 1:
        return round(container.duration / 1e6 * float(fps))
    return 0


def _check_constant_rate(path, intervals: np.ndarray, time_base, fps: Fraction) -> None:
    """VideoError unless every frame interval (in ``time_base`` ticks) is ~1 / fps."""
    if not intervals.size:
        return
    nominal = float(1 / (fps * time_base))  # ticks per frame
    slack = max(2.0, VFR_TOLERANCE * nominal)
    if np.abs(intervals - nominal).max() > slack:
        tick_ms = 1000.0 * float(time_base)
        raise VideoError(
            path,
            f"variable frame rate: frame intervals from {intervals.min() * tick_ms:.1f} to "
            f"{intervals.max() * tick_ms:.1f} ms (nominal {nominal * tick_ms:.1f} ms); "
            "convert it to a constant rate first",
        )


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode the first video stream: uint8 RGB (H, W, 3) frames in display order."""
    av = load_av()
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise VideoError(path, f"truncated or corrupt: {e.strerror or e}") from None


# --- the network -----------------------------------------------------------------------------


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def colorize_frames(
    frames: Iterable[np.ndarray],
    colorizer: Colorizer,
    smoother: temporal.TemporalSmoother | None = None,
    batch: int = DEFAULT_BATCH,
) -> Iterator[np.ndarray]:
    """Colorize frames in order: uint8 (H, W, C) each (C = 1 or 3) -> uint8 RGB (H, W, 3).

    ``batch`` frames share one call of ``colorizer.predict_ab``; ``smoother`` (None: per-frame)
    then sees them one by one, in order, at the network's resolution.
    """
    for chunk in _batches(frames, batch):
        images = tf.constant(np.stack(chunk))  # (B, H, W, C)
        l_norm = serving._luminance_graph(images)  # (B, H, W, 1)
        l_small = serving.model_input(l_norm, colorizer.size)  # (B, S, S, 1)
        ab = np.asarray(colorizer.predict_ab(l_small), np.float32)  # (B, S, S, 2)
        if smoother is not None:
            ab = np.stack([smoother(lum, a) for lum, a in zip(l_small.numpy(), ab, strict=True)])
        yield from serving._compose_graph(l_norm, tf.constant(ab)).numpy()  # (B, H, W, 3)


# --- writing ---------------------------------------------------------------------------------


def _add_h264(container, info: VideoInfo, crf: int):
    from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

    stream = container.add_stream("libx264", rate=info.fps)
    stream.width, stream.height, stream.pix_fmt = info.width, info.height, "yuv420p"
    stream.options = {"crf": str(crf), "preset": DEFAULT_PRESET}
    context = stream.codec_context  # tags matching the conversion in _to_yuv
    context.colorspace, context.color_range = Colorspace.ITU709, ColorRange.MPEG
    context.color_primaries, context.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
    return stream


def _to_yuv(rgb: np.ndarray):
    from av import VideoFrame
    from av.video.reformatter import ColorRange, Colorspace

    frame = VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )


def write_frames(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: Fraction, crf: int = DEFAULT_CRF
) -> int:
    """Encode uint8 RGB frames (H, W, 3), even H and W, as H.264 MP4 at ``fps``; returns
    the frame count. For clips made in memory (the benchmark's); no audio."""
    av = load_av()
    count = 0
    with av.open(os.fspath(path), "w", format="mp4") as out:
        stream = None
        for rgb in frames:
            if stream is None:
                height, width = rgb.shape[:2]
                stream = _add_h264(out, VideoInfo(width, height, Fraction(fps), 0, ()), crf)
            frame = _to_yuv(rgb)
            frame.pts = count
            out.mux(stream.encode(frame))
            count += 1
        if stream is not None:
            out.mux(stream.encode(None))
    return count


def colorize_video(
    source: str | os.PathLike,
    target: str | os.PathLike,
    colorizer: Colorizer,
    *,
    temporal_strength: float | None = temporal.DEFAULT_STRENGTH,
    cut_threshold: float = temporal.DEFAULT_CUT_THRESHOLD,
    max_pixels: int | None = None,
    batch: int = DEFAULT_BATCH,
    crf: int = DEFAULT_CRF,
    verbose: bool = True,
    info: VideoInfo | None = None,
) -> VideoInfo:
    """Colorize one video file into ``target`` (an MP4), replacing it if it exists.

    Args:
        colorizer: ``loader.load_colorizer``'s (its ``predict_ab`` and ``size``).
        temporal_strength: history weight of ``temporal.TemporalSmoother``; None: per-frame.
        cut_threshold: see ``temporal.TemporalSmoother``.
        max_pixels: the largest frame accepted (None: the photos' default limit).
        verbose: a progress bar in frames, with an ETA.
        info: ``probe(source, max_pixels)`` when the caller has it already (it reads every
            packet of the file).

    Raises:
        VideoError: see ``probe``; also a decode that ends early and audio MP4 cannot hold.
    """
    import keras

    av = load_av()
    if max_pixels is None:
        from colorize_tf.config import DEFAULT_MAX_PIXELS as max_pixels
    info = info or probe(source, max_pixels)
    smoother = (
        None
        if temporal_strength is None
        else temporal.TemporalSmoother(temporal_strength, cut_threshold)
    )
    target = Path(target)
    partial = target.with_name(f".{target.name}.partial")
    progress = keras.utils.Progbar(info.frames, unit_name="frame", verbose=1 if verbose else 0)
    written = 0
    try:
        with _open(source) as inp, av.open(os.fspath(partial), "w", format="mp4") as out:
            video_out = _add_h264(out, info, crf)
            audio = {s: out.add_stream_from_template(s) for s in inp.streams.audio}
            frames = _decode_and_remux(source, inp, audio, out)
            for rgb in colorize_frames(frames, colorizer, smoother, batch):
                frame = _to_yuv(rgb)
                frame.pts = written  # time base 1 / fps: a constant rate, as probed
                out.mux(video_out.encode(frame))
                written += 1
                progress.update(written)
            out.mux(video_out.encode(None))
        if written != info.frames:
            raise VideoError(
                source, f"truncated or corrupt: decoded {written} of {info.frames} frames"
            )
        os.replace(partial, target)
    except av.FFmpegError as e:
        raise VideoError(source, f"could not write {target.name}: {e.strerror or e}") from None
    finally:
        if partial.exists():
            partial.unlink()
    return info


def _decode_and_remux(source, inp, audio: dict, out) -> Iterator[np.ndarray]:
    """Decoded RGB frames of the first video stream, muxing the audio packets on the way.

    Read and decode errors are the input's (``VideoError``); mux errors stay ``FFmpegError``.
    """
    av = load_av()
    video = inp.streams.video[0]
    video.thread_type = "AUTO"
    packets = inp.demux(video, *audio)
    while True:
        try:
            packet = next(packets)
            decoded = [] if packet.stream.type == "audio" else packet.decode()
        except StopIteration:
            return
        except av.FFmpegError as e:
            raise VideoError(source, f"truncated or corrupt: {e.strerror or e}") from None
        if packet.stream.type == "audio":
            if packet.dts is not None:  # the demuxer's final empty packet has none
                packet.stream = audio[packet.stream]
                out.mux(packet)
            continue
        for frame in decoded:
            yield frame.to_ndarray(format="rgb24")
