"""Temporal consistency for video: each frame's predicted ab blended with the history carried
along the motion, reset at scene cuts, and the flicker measure that proves it.

The network predicts only chroma and every frame keeps its own L, so smoothing touches ab alone:
lightness detail (and the film's own grain and exposure) is never averaged away. All of it runs
at the network's square resolution ``S x S`` (the squeezed frame the network saw), where ab is
predicted; ``serving.compose`` then upsamples the smoothed ab and joins it to the full-size L.

Per frame ``t`` of a shot (``TemporalSmoother``):

1. Cut test: the L histogram (``HISTOGRAM_BINS`` bins) against frame ``t - 1``'s; half the L1
   distance (0: same distribution, 1: disjoint) above ``cut_threshold`` starts a new shot
   and drops the history, so no color bleeds across a cut. So does a frame the flow cannot
   track (mean confidence of step 3 below ``min_tracked``): a cut between two shots of
   similar lightness (coffee and chelsea of scikit-image differ by only 0.29).
2. Optical flow on L, both ways (OpenCV DIS): backward ``t -> t-1`` to fetch the history,
   forward ``t-1 -> t`` to check it.
3. Confidence per pixel, in [0, 1]: the forward-backward check of Sundaram et al. (2010), as
   Ruder et al. (2016) use it for video style transfer (a pixel whose round trip does not come
   back is occluded or mis-tracked), times an L-constancy term (the warped L must match), times
   zero where the flow points outside the previous frame.
4. ``ab_t = pred_t + strength * confidence * (warp(ab_{t-1}) - pred_t)``: a recursive average
   along the motion. ``strength`` 0 is per-frame; near 1 the history dominates (an effective
   memory of ``1 / (1 - strength)`` frames where tracking is reliable).

Flicker is measured by the warping error of Lai et al. (ECCV 2018), on ab: the mean of
``|ab_t - warp(ab_{t-1})|`` (CIE a, b units) over non-occluded pixels. ``synthetic_clip`` makes a
test film from color photos with a known camera path, so the exact flow (and every frame's
ground truth) is known rather than estimated.

Shapes: L planes are float32 ``(S, S)`` normalized to [-1, 1] (``color.normalize_l``); ab is
float32 ``(S, S, 2)`` normalized (``color.normalize_ab``); flows are ``(H, W, 2)`` float32 in
pixels, ``flow[y, x] = (dx, dy)``: pixel ``(x, y)`` of the later frame came from
``(x + dx, y + dy)`` of the earlier one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from keras import ops

DEFAULT_STRENGTH = 0.8  # history weight where tracking is reliable (0: per-frame)
DEFAULT_CUT_THRESHOLD = 0.35  # half-L1 distance of L histograms that starts a new shot
HISTOGRAM_BINS = 32
# Forward-backward check (Ruder et al. 2016): |w + w'|^2 <= 0.01 (|w|^2 + |w'|^2) + 0.5 px^2.
FB_RELATIVE = 0.01
FB_ABSOLUTE = 0.5
L_TOLERANCE = 0.2  # normalized L (10 L* units): warped L this far off cuts trust to 1/e
# Mean confidence measured on the test clip: 0.72-0.93 inside its shots, 0.00-0.03 at its cuts.
DEFAULT_MIN_TRACKED = 0.2


def load_cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError(
            "video colorization needs OpenCV and PyAV: pip install 'colorize-tf[video]'"
        ) from e
    return cv2


# --- motion ----------------------------------------------------------------------------------


def l_to_uint8(l_norm: np.ndarray) -> np.ndarray:
    """Normalized L (H, W) in [-1, 1] -> uint8 (H, W) for OpenCV's flow."""
    return np.clip(np.round((np.asarray(l_norm) + 1.0) * 127.5), 0, 255).astype(np.uint8)


_DIS = {}  # one DIS instance per process (its buffers are reused between calls)


def optical_flow(l_to: np.ndarray, l_from: np.ndarray) -> np.ndarray:
    """Dense flow (H, W, 2) from uint8 L ``l_to`` back to ``l_from``: where each pixel came from.

    OpenCV's DIS (Kroeger et al. 2016), preset MEDIUM, with its variational refinement. On the
    synthetic clip's exact motion it was ~6x more accurate than Farneback (mean end-point
    error 0.11 vs 0.78 px at 96 x 128; 0.13 vs 2.2 px at 192 x 256, where Farneback loses
    pans of ~8 px a frame) for a similar time.
    """
    cv2 = load_cv2()
    if "medium" not in _DIS:
        _DIS["medium"] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _DIS["medium"].calc(l_to, l_from, None)


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y), each float32 (H, W); cached, every frame of a video shares it."""
    return tuple(
        np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    )


def warp(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fetch ``image`` (of the earlier frame) along ``flow``: (warped like image, inside mask).

    Bilinear; ``inside`` (H, W) bool is False where the flow points outside the earlier frame.
    """
    cv2 = load_cv2()
    height, width = flow.shape[:2]
    grid_x, grid_y = _grid(height, width)
    map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    warped = cv2.remap(
        np.ascontiguousarray(image, np.float32),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return warped.reshape(image.shape), inside


def flow_confidence(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how well ``backward`` (t -> t-1) and ``forward`` (t-1 -> t)
    agree. 1 where the round trip returns to the start, falling smoothly past the tolerance of
    Ruder et al.; 0 where the backward flow leaves the frame."""
    forward_there, inside = warp(forward, backward)  # forward flow at where each pixel came from
    round_trip = np.sum(np.square(backward + forward_there), axis=-1)
    tolerance = (
        FB_RELATIVE * (np.sum(np.square(backward), -1) + np.sum(np.square(forward_there), -1))
        + FB_ABSOLUTE
    )
    return (np.exp(-round_trip / tolerance) * inside).astype(np.float32)


def l_histogram(l_norm: np.ndarray) -> np.ndarray:
    """(HISTOGRAM_BINS,) float64 histogram of normalized L, summing to 1."""
    counts, _ = np.histogram(l_norm, bins=HISTOGRAM_BINS, range=(-1.0, 1.0))
    return counts / max(counts.sum(), 1)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance of two histograms: 0 identical, 1 disjoint."""
    return 0.5 * float(np.abs(a - b).sum())


# --- the smoother ----------------------------------------------------------------------------


class TemporalSmoother:
    """Blends each frame's predicted ab with the motion-compensated history of its shot.

    A shot starts at the first frame, where the L histogram jumps (``cut_threshold``), and
    where the flow cannot track the previous frame (mean confidence below ``min_tracked``:
    cuts between frames of similar lightness, which the histogram alone misses).

    Args:
        strength: history weight in [0, 1) where tracking is reliable (0: per-frame output).
        cut_threshold: L-histogram distance in (0, 1] that starts a new shot.
        min_tracked: mean flow confidence in [0, 1) below which a new shot starts.

    Attributes:
        cuts: indices of the frames that started a shot (0 included), in order.
        frames: frames seen so far.
    """

    def __init__(
        self,
        strength: float = DEFAULT_STRENGTH,
        cut_threshold: float = DEFAULT_CUT_THRESHOLD,
        min_tracked: float = DEFAULT_MIN_TRACKED,
    ):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        if not 0.0 < cut_threshold <= 1.0:
            raise ValueError(f"cut_threshold must be in (0, 1], got {cut_threshold}")
        if not 0.0 <= min_tracked < 1.0:
            raise ValueError(f"min_tracked must be in [0, 1), got {min_tracked}")
        self.strength, self.cut_threshold = float(strength), float(cut_threshold)
        self.min_tracked = float(min_tracked)
        self.cuts: list[int] = []
        self.frames = 0
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # L8, ab, hist

    def __call__(self, l_norm: np.ndarray, ab_norm: np.ndarray) -> np.ndarray:
        """One frame: normalized L (S, S) or (S, S, 1) and predicted ab (S, S, 2) -> ab (S, S, 2).

        Frames must come in order; a new video needs a new smoother.
        """
        l_norm = np.asarray(l_norm, np.float32).reshape(np.shape(ab_norm)[:2])
        ab_norm = np.asarray(ab_norm, np.float32)
        l8, hist = l_to_uint8(l_norm), l_histogram(l_norm)
        previous = self._previous
        out = None
        if previous is not None and histogram_distance(previous[2], hist) <= self.cut_threshold:
            out = self._blend(l8, ab_norm, *previous[:2])  # None: tracking lost
        if out is None:
            self.cuts.append(self.frames)
            out = ab_norm
        self._previous = (l8, out, hist)
        self.frames += 1
        return out

    def _blend(
        self, l8: np.ndarray, ab_norm: np.ndarray, l8_prev: np.ndarray, ab_prev: np.ndarray
    ) -> np.ndarray | None:
        if self.strength == 0.0:
            return ab_norm
        backward = optical_flow(l8, l8_prev)  # (S, S, 2): t -> t-1
        forward = optical_flow(l8_prev, l8)  # (S, S, 2): t-1 -> t
        confidence = flow_confidence(backward, forward)  # (S, S)
        l_prev_warped, _ = warp(l8_prev.astype(np.float32), backward)
        l_error = (l_prev_warped - l8.astype(np.float32)) / 127.5  # normalized L units
        confidence *= np.exp(-np.square(l_error / L_TOLERANCE))
        if confidence.mean() < self.min_tracked:
            return None
        ab_history, _ = warp(ab_prev, backward)  # (S, S, 2)
        weight = (self.strength * confidence)[..., np.newaxis]  # (S, S, 1)
        return ab_norm + weight * (ab_history - ab_norm)


# --- the flicker measure ---------------------------------------------------------------------


def warping_error(ab: np.ndarray, ab_previous_warped: np.ndarray, mask: np.ndarray) -> float:
    """Lai et al. (2018) warping error of one frame pair: mean |ab_t - warp(ab_{t-1})| over the
    pixels of ``mask``, in CIE a, b units (ab not normalized), averaged over a and b.

    Args:
        ab: (H, W, 2) frame t's ab.
        ab_previous_warped: (H, W, 2) frame t-1's ab warped to frame t.
        mask: (H, W) bool, the non-occluded pixels.
    """
    weight = ops.cast(ops.convert_to_tensor(mask)[..., None], "float32")  # (H, W, 1)
    difference = ops.abs(ops.convert_to_tensor(ab, "float32") - ab_previous_warped) * weight
    return float(ops.sum(difference) / ops.maximum(2.0 * ops.sum(weight), 1.0))


@dataclass(frozen=True)
class SyntheticClip:
    """A film made from photos with a known camera path.

    Attributes:
        frames: uint8 (T, H, W, 3) RGB, the ground truth of every frame.
        flows: float32 (T, H, W, 2) exact backward flow, frame t -> t-1 (zeros at shot starts).
        valid: bool (T, H, W), pixels of frame t seen in frame t-1 (all False at shot starts).
        cuts: indices of the frames that start a shot (0 first).
    """

    frames: np.ndarray
    flows: np.ndarray
    valid: np.ndarray
    cuts: tuple[int, ...]


def _camera(t: float, motion: str) -> tuple[float, float, float]:
    """(scale, x0, y0) of the crop at progress t in [0, 1], in units of the photo's short side:
    the frame shows the photo's square [x0, x0 + scale] x [y0, y0 + scale] (stretched)."""
    if motion == "pan":  # slow pan left to right across the middle
        return 0.7, 0.05 + 0.25 * t, 0.15
    if motion == "zoom":  # slow zoom in on the center
        scale = 0.9 - 0.3 * t
        return scale, 0.5 - scale / 2 + 0.05, 0.5 - scale / 2
    if motion == "crop":  # a crop moving diagonally and widening a little
        scale = 0.55 + 0.1 * t
        return scale, 0.1 + 0.2 * t, 0.1 + 0.15 * t
    raise ValueError(f"unknown motion {motion!r}")


def synthetic_clip(
    photos: Sequence[np.ndarray],
    height: int,
    width: int,
    frames_per_shot: int = 24,
    motions: Sequence[str] = ("pan", "zoom", "crop", "pan"),
) -> SyntheticClip:
    """One shot per motion, photo ``i % len(photos)`` for shot ``i``: hard cuts between shots.

    Frame pixel (x, y) shows the photo at ``(x0 + scale * x / width, y0 + scale * y / height)``
    (times the photo's short side), so the backward flow between frames is known exactly.

    Args:
        photos: uint8 RGB photos (any size; each is pre-shrunk to about twice the frame size so
            the truth itself does not alias).
        height, width: frame size.
        frames_per_shot: frames of each shot.
        motions: the camera path of each shot: "pan", "zoom" or "crop".
    """
    cv2 = load_cv2()
    frames, flows, valid, cuts = [], [], [], []
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for shot, motion in enumerate(motions):
        photo = np.asarray(photos[shot % len(photos)])[..., :3]
        side = min(photo.shape[:2])
        factor = min(1.0, 2.0 * max(height, width) / side)
        if factor < 1.0:
            photo = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            side = min(photo.shape[:2])
        cuts.append(len(frames))
        previous = None
        for index in range(frames_per_shot):
            scale, x0, y0 = _camera(index / max(frames_per_shot - 1, 1), motion)
            # Photo coordinates (pixels) of every frame pixel: an axis-aligned affine map.
            sx, sy = scale * side / width, scale * side / height
            matrix = np.array([[sx, 0, x0 * side], [0, sy, y0 * side]], np.float64)
            frame = cv2.warpAffine(
                photo,
                matrix,
                (width, height),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )
            frames.append(frame)
            if previous is None:
                flows.append(np.zeros((height, width, 2), np.float32))
                valid.append(np.zeros((height, width), bool))
            else:
                (psx, _, ptx), (_, psy, pty) = previous
                px = (matrix[0, 0] * xs + matrix[0, 2] - ptx) / psx  # where it was in t-1
                py = (matrix[1, 1] * ys + matrix[1, 2] - pty) / psy
                flows.append(np.stack([px - xs, py - ys], -1).astype(np.float32))
                valid.append((px >= 0) & (px <= width - 1) & (py >= 0) & (py <= height - 1))
            previous = matrix
    return SyntheticClip(np.stack(frames), np.stack(flows), np.stack(valid), tuple(cuts))


def clip_warping_error(ab_frames: np.ndarray, clip: SyntheticClip) -> float:
    """Mean warping error of ab frames (T, H, W, 2), CIE units, over the clip's frame pairs
    inside shots, with the clip's exact flow and visibility."""
    errors = []
    for t in range(1, len(ab_frames)):
        if t in clip.cuts:
            continue
        warped, _ = warp(ab_frames[t - 1], clip.flows[t])
        errors.append(warping_error(ab_frames[t], warped, clip.valid[t]))
    return float(np.mean(errors))
