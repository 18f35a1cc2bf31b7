"""Video: size, frame rate, frame count and audio kept; cuts reset the history; bad inputs fail
cleanly; the temporal pass lowers the warping error on a synthetic clip with known motion."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers import run_colorize as run

av = pytest.importorskip("av")
pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from colorize_tf.core import color, metrics  # noqa: E402
from colorize_tf.inference import loader, serving, temporal, video  # noqa: E402
from colorize_tf.inference.loader import Colorizer  # noqa: E402

FPS = Fraction(30000, 1001)  # NTSC: a rate that is not a whole number
AUDIO_RATE = 16000


@pytest.fixture(scope="module")
def colorizer(generator) -> Colorizer:
    """The session's tiny generator as ``load_colorizer`` returns a Keras form."""
    return Colorizer.from_generator(generator)


def photos() -> list[np.ndarray]:
    return [
        skimage_data.astronaut(),
        skimage_data.coffee(),
        skimage_data.chelsea(),
        skimage_data.rocket(),
    ]


def write_clip(
    path: Path,
    frames: np.ndarray,
    fps=FPS,
    audio: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    stamps=None,
) -> None:
    """Encode uint8 RGB frames (T, H, W, 3), with a 1-second AAC tone unless ``audio`` is off;
    ``stamps``: explicit frame times in ms (a variable rate)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if stamps is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        sound = out.add_stream("aac", rate=AUDIO_RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
            tone = np.sin(2 * np.pi * 440 * np.arange(AUDIO_RATE) / AUDIO_RATE)
            frame = av.AudioFrame.from_ndarray(
                (0.3 * tone).astype(np.float32)[None], format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = AUDIO_RATE, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index if stamps is None else stamps[index]
            if stamps is not None:
                frame.time_base = Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def read_back(path: Path) -> tuple[np.ndarray, dict]:
    """Decoded RGB frames and what a player sees of the file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        container.seek(0)
        audio = [bytes(p) for p in container.demux(container.streams.audio) if p.size]
        facts = {
            "codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.width, stream.height), "fps": stream.average_rate,
            "audio": [s.codec_context.name for s in container.streams.audio],
        }  # fmt: skip
    return frames, facts | {"audio_packets": audio}


@pytest.fixture(scope="module")
def clip() -> temporal.SyntheticClip:
    return temporal.synthetic_clip(
        photos(), 64, 96, frames_per_shot=10, motions=("pan", "zoom", "crop")
    )


def test_size_fps_frame_count_and_audio_are_kept(clip, model_path, tmp_path, capsys):
    source = tmp_path / "film.mov"
    write_clip(source, clip.frames[:12])
    code, _, err = run([str(source), "--out", str(tmp_path / "out"), "--model", model_path], capsys)
    assert code == 0, err
    frames, facts = read_back(tmp_path / "out" / "film.mp4")
    _, original = read_back(source)
    assert frames.shape == (12, 64, 96, 3)
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    assert facts["size"] == (96, 64) and facts["fps"] == FPS
    assert facts["audio"] == ["aac"]
    assert facts["audio_packets"] == original["audio_packets"]  # copied, not re-encoded
    assert len(facts["audio_packets"]) > 10


def test_color_input_is_reduced_to_its_l_and_gray_input_works(clip, colorizer, generator):
    frames = clip.frames[:8]
    out = np.stack(list(video.colorize_frames(frames, colorizer, batch=3)))
    expected = np.stack([serving.colorize_image(generator, f) for f in frames])
    np.testing.assert_allclose(out, expected, atol=1)  # batches and the photo path agree
    gray = np.round(np.asarray(metrics.gray_baseline_rgb(frames)) * 255).astype(np.uint8)
    from_gray = np.stack(list(video.colorize_frames(gray[..., :1], colorizer)))
    assert from_gray.shape == frames.shape
    lightness = np.asarray(color.rgb_to_lab(from_gray / 255.0))[..., 0]
    true_lightness = np.asarray(color.rgb_to_lab(gray / 255.0))[..., 0]
    assert np.abs(lightness - true_lightness).mean() < 1.0  # L kept: only chroma is predicted
    assert metrics.colorfulness(from_gray).numpy().mean() > 5.0  # and chroma was added


def test_a_cut_resets_the_history(clip):
    """Shot ab constant +0.3 then -0.3: after a detected cut, nothing of +0.3 is left."""
    l_norm = np.asarray(color.rgb_to_l_ab(clip.frames / 255.0)[0])[..., 0]  # (T, H, W)
    shot = np.searchsorted(clip.cuts, np.arange(len(l_norm)), side="right") - 1
    predicted = [
        np.full(l_norm.shape[1:] + (2,), 0.3 if s % 2 == 0 else -0.3, np.float32) for s in shot
    ]

    smoother = temporal.TemporalSmoother()
    out = [smoother(lum, ab) for lum, ab in zip(l_norm, predicted, strict=True)]
    assert tuple(smoother.cuts) == clip.cuts == (0, 10, 20)
    np.testing.assert_array_equal(out[10], predicted[10])  # the cut frame: its own colors
    for t in (11, 15, 20, 21):  # and no +0.3 (or -0.3) from the shot before
        np.testing.assert_allclose(out[t], predicted[t], atol=1e-6)

    # Without the histogram, the tracking test alone finds the same cuts.
    tracking = temporal.TemporalSmoother(cut_threshold=1.0)
    [tracking(lum, ab) for lum, ab in zip(l_norm, predicted, strict=True)]
    assert tuple(tracking.cuts) == clip.cuts

    # Never cutting, only the per-pixel confidence (low across unrelated photos) holds the old
    # shot back: a little of it still bleeds into the new one.
    blind = temporal.TemporalSmoother(cut_threshold=1.0, min_tracked=0.0)
    bled = [blind(lum, ab) for lum, ab in zip(l_norm, predicted, strict=True)]
    assert blind.cuts == [0]
    assert np.abs(bled[10] - predicted[10]).max() > 0.05


def test_temporal_pass_lowers_the_warping_error(clip, colorizer):
    def ab(frames):  # CIE units, from the 8-bit output as a viewer gets it
        return np.asarray(color.rgb_to_l_ab(np.asarray(frames) / 255.0)[1]) * color.AB_SCALE

    per_frame = np.stack(list(video.colorize_frames(clip.frames, colorizer)))
    smoother = temporal.TemporalSmoother()
    smoothed = np.stack(list(video.colorize_frames(clip.frames, colorizer, smoother)))
    error_per_frame = temporal.clip_warping_error(ab(per_frame), clip)
    error_smoothed = temporal.clip_warping_error(ab(smoothed), clip)
    psnr_per_frame = float(np.mean(metrics.psnr(per_frame, clip.frames)))
    psnr_smoothed = float(np.mean(metrics.psnr(smoothed, clip.frames)))
    print(
        f"warping error {error_per_frame:.3f} -> {error_smoothed:.3f}, "
        f"PSNR {psnr_per_frame:.2f} -> {psnr_smoothed:.2f} dB"
    )
    assert smoother.cuts == list(clip.cuts)
    assert error_smoothed < 0.6 * error_per_frame
    assert psnr_smoothed > psnr_per_frame - 0.1
    truth = temporal.clip_warping_error(ab(clip.frames), clip)
    assert truth < 0.5 * error_per_frame  # the exact flow itself is right


def test_warping_error_is_zero_for_colors_that_follow_the_motion(clip):
    ab = np.asarray(color.rgb_to_l_ab(clip.frames / 255.0)[1])  # (T, H, W, 2)
    frozen = np.repeat(ab[:1], len(ab), axis=0)  # every frame the first frame's colors
    moving = temporal.clip_warping_error(ab * color.AB_SCALE, clip)
    assert temporal.clip_warping_error(frozen * 0.0, clip) == 0.0
    assert temporal.clip_warping_error(frozen * color.AB_SCALE, clip) > moving


def bad_inputs(folder: Path, frames: np.ndarray) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected words of the error)."""
    folder.mkdir()
    cases = {}
    (folder / "text.mp4").write_text("not a video")
    cases["not a video"] = (folder / "text.mp4", "not a readable video")
    write_clip(folder / "truncated.mkv", frames, audio=False)
    data = (folder / "truncated.mkv").read_bytes()
    (folder / "truncated.mkv").write_bytes(data[: len(data) * 6 // 10])
    cases["truncated"] = (folder / "truncated.mkv", "truncated")
    write_clip(folder / "silent.mkv", frames[:0], codec="ffv1", pix_fmt="yuv444p")
    cases["zero frames"] = (folder / "silent.mkv", "no video frames")
    write_clip(
        folder / "odd.mkv", frames[:, :63, :95], codec="ffv1", pix_fmt="yuv444p", audio=False
    )
    cases["odd size"] = (folder / "odd.mkv", "odd frame size 95x63")
    stamps = np.cumsum([0] + [33 if i % 4 else 100 for i in range(len(frames) - 1)])
    write_clip(folder / "vfr.mp4", frames, audio=False, stamps=stamps)
    cases["variable rate"] = (folder / "vfr.mp4", "variable frame rate")
    return cases


def test_every_bad_input_fails_alone_with_its_reason_and_no_output(
    clip, model_path, tmp_path, capsys
):
    cases = bad_inputs(tmp_path / "in", clip.frames[:10])
    out = tmp_path / "out"
    for name, (source, words) in cases.items():
        code, _, err = run([str(source), "--out", str(out), "--model", model_path], capsys)
        assert code == 1, name
        assert f"failed {source}: " in err and words in err, (name, err)
        assert list(out.iterdir()) == [], name  # nothing under the final name, no partial file
    write_clip(tmp_path / "big.mp4", clip.frames[:4], audio=False)
    code, _, err = run([str(tmp_path / "big.mp4"), "--out", str(out), "--model", model_path,
                        "--max-pixels", "5000"], capsys)  # fmt: skip
    assert code == 1 and "frames too large: 96x64" in err and "--max-pixels 5,000" in err
    assert list(out.iterdir()) == []


def test_existing_outputs_and_inputs_are_never_overwritten(clip, model_path, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    write_clip(out / "film.mp4", clip.frames[:4])  # an input inside --out, named like its output
    before = (out / "film.mp4").read_bytes()
    code, _, err = run([str(out / "film.mp4"), "--out", str(out), "--model", model_path,
                        "--overwrite"], capsys)  # fmt: skip
    assert code == 1 and "would overwrite an input" in err
    assert (out / "film.mp4").read_bytes() == before

    source = tmp_path / "film.mkv"
    write_clip(source, clip.frames[:4])
    (out / "film.mp4").unlink()
    (out / "film.mp4").write_bytes(b"earlier result")
    code, _, _ = run([str(source), "--out", str(out), "--model", model_path], capsys)
    assert code == 0 and (out / "film.mp4").read_bytes() == b"earlier result"
    code, _, _ = run([str(source), "--out", str(out), "--model", model_path, "--overwrite"], capsys)
    assert code == 0 and read_back(out / "film.mp4")[0].shape == (4, 64, 96, 3)


def test_a_folder_of_photos_and_videos(clip, model_path, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "in"
    (folder / "reel").mkdir(parents=True)
    Image.fromarray(clip.frames[0]).save(folder / "still.png")
    write_clip(folder / "reel" / "a.mp4", clip.frames[:5], audio=False)
    code, stdout, err = run([str(folder), "--out", str(tmp_path / "out"), "--model", model_path,
                             "--no-temporal"], capsys)  # fmt: skip
    assert code == 0, err
    assert "2 written" in stdout
    assert (tmp_path / "out" / "still.png").is_file()
    assert read_back(tmp_path / "out" / "reel" / "a.mp4")[0].shape == (5, 64, 96, 3)


def test_bad_strength_is_refused(clip, model_path, tmp_path, capsys):
    write_clip(tmp_path / "a.mp4", clip.frames[:2], audio=False)
    code, _, err = run([str(tmp_path / "a.mp4"), "--out", str(tmp_path / "out"), "--model",
                        model_path, "--temporal-strength", "1.5"], capsys)  # fmt: skip
    assert code == 1 and "strength must be in [0, 1), got 1.5" in err


@pytest.mark.parametrize(
    "name, min_psnr",
    [
        ("saved_model", 60.0),
        ("predict_ab_fp32.tflite", 60.0),
        # ab read back from 8-bit RGB at the network's size, then smoothed: measured 34.0 dB
        ("colorize_rgb_fp32.tflite", 30.0),
    ],
)
@pytest.mark.integration
def test_every_model_form_colorizes_frames(
    name, min_psnr, generator, colorizer, clip, tmp_path_factory
):
    from helpers import exported_once

    from colorize_tf.export import export_lib as export

    folder = exported_once(tmp_path_factory.getbasetemp(), generator)
    path = folder / (export.SAVEDMODEL_DIR if name == "saved_model" else name)
    loaded = loader.load_colorizer(str(path), threads=2)
    assert loaded.size == colorizer.size
    frames = clip.frames[8:12]  # across the first cut
    expected = np.stack(list(video.colorize_frames(frames, colorizer, temporal.TemporalSmoother())))
    out = np.stack(list(video.colorize_frames(frames, loaded, temporal.TemporalSmoother())))
    psnr = float(np.mean(metrics.psnr(out, expected)))
    print(f"{name} vs .keras on frames: {psnr:.1f} dB")
    assert psnr >= min_psnr


def test_a_gray_film(clip, model_path, tmp_path, capsys):
    """A film stored as 8-bit gray (no chroma planes at all) comes out in color."""
    source = tmp_path / "gray.mkv"
    write_clip(source, clip.frames[:6], codec="ffv1", pix_fmt="gray", audio=False)
    assert read_back(source)[1]["pix_fmt"] == "gray"
    code, _, err = run([str(source), "--out", str(tmp_path / "out"), "--model", model_path], capsys)
    assert code == 0, err
    frames, facts = read_back(tmp_path / "out" / "gray.mp4")
    assert frames.shape == (6, 64, 96, 3) and facts["pix_fmt"] == "yuv420p"
    assert metrics.colorfulness(frames).numpy().mean() > 5.0
