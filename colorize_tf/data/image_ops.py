"""In-graph image operations, the same eagerly and inside ``tf.data`` maps: decode -> upright
-> short side resized -> train / eval crop -> (L, ab).

Decoding: JPEG / PNG / GIF / BMP / WebP bytes to upright uint8 RGB (EXIF orientation applied,
gray expanded, alpha composited over white, 16-bit PNG rounded to 8 bits; large JPEGs decoded
at 1/2, 1/4 or 1/8 scale by libjpeg when the short side allows). Training crops: a random
square covering 1/``MAX_ZOOM`` to all of the short side (scale jitter), resized to
``crop_size``, random horizontal flip. Evaluation (the protocol): resize the short side to
``crop_size`` (up or down), center crop. Both then go through ``color.rgb_to_l_ab``.
Under the TensorFlow Keras backend only: ``color`` runs on ``keras.ops`` inside the graph.
"""

from __future__ import annotations

import tensorflow as tf

from colorize_tf.core import color
from colorize_tf.data.spec import MAX_ASPECT, MAX_ZOOM


def _jpeg_ratio_index(encoded: tf.Tensor, min_short_side: int) -> tf.Tensor:
    """Index into (1, 2, 4, 8): the largest DCT down-scaling that keeps the short side."""
    shape = tf.image.extract_jpeg_shape(encoded)  # (height, width, channels): header only
    short = tf.minimum(shape[0], shape[1])
    fits = [tf.cast((short + r - 1) // r >= min_short_side, tf.int32) for r in (2, 4, 8)]
    return tf.add_n(fits)  # ratios that fit form a prefix, so their count is the index


def over_white(values: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """Color (..., c) and alpha (..., 1) -> color composited over white (..., c), in-graph.

    Float values in [0, 1] stay float; uint8 is mixed in float32 and rounded back to uint8
    (the numpy twin: ``colorize_tf.data.image_files.over_white``). Transparent pixels hold
    arbitrary colors; white is what a viewer shows behind them.
    """
    if values.dtype == tf.uint8:
        a = tf.cast(alpha, tf.float32) / 255.0
        mixed = tf.cast(values, tf.float32) * a + 255.0 * (1.0 - a)
        return tf.cast(tf.round(mixed), tf.uint8)
    return values * alpha + (1.0 - alpha)


def _to_rgb(image: tf.Tensor) -> tf.Tensor:
    """Float (h, w, 1|2|3|4) -> (h, w, 3): gray expanded, alpha composited over white."""
    gray = image[..., :1]
    branches = [
        lambda: tf.tile(gray, [1, 1, 3]),
        lambda: over_white(tf.tile(gray, [1, 1, 3]), image[..., 1:2]),
        lambda: image[..., :3],
        lambda: over_white(image[..., :3], image[..., 3:4]),
    ]
    return tf.switch_case(tf.shape(image)[-1] - 1, branches)


def apply_orientation(image: tf.Tensor, orientation) -> tf.Tensor:
    """(h, w, c) as stored + EXIF orientation 1..8 -> upright image (same as PIL exif_transpose)."""
    transforms = [
        lambda: image,  # 1: upright
        lambda: image[:, ::-1],  # 2: mirrored
        lambda: image[::-1, ::-1],  # 3: rotated 180
        lambda: image[::-1],  # 4: mirrored vertically
        lambda: tf.transpose(image, [1, 0, 2]),  # 5: transposed
        lambda: tf.image.rot90(image, k=3),  # 6: needs 90 degrees clockwise
        lambda: tf.transpose(image[::-1, ::-1], [1, 0, 2]),  # 7: transversed
        lambda: tf.image.rot90(image, k=1),  # 8: needs 90 degrees counter-clockwise
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    return tf.switch_case(index, transforms)


def decode_image(encoded, orientation=1, min_short_side: int = 0) -> tf.Tensor:
    """Encoded JPEG / PNG / GIF / BMP / WebP bytes -> upright uint8 RGB (height, width, 3).

    Grayscale, palette and CMYK become RGB, alpha is composited over white, 16-bit PNG is read
    at full precision before rounding to 8 bits. With ``min_short_side`` > 0 a large JPEG is
    decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, several times faster) as long as
    its short side stays >= ``min_short_side`` pixels.
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)

    def jpeg() -> tf.Tensor:
        # channels=3: libjpeg converts grayscale and (Adobe) CMYK itself; measured equal to PIL.
        if min_short_side <= 0:
            return tf.io.decode_jpeg(encoded, channels=3)
        decoders = [
            lambda r=r: tf.io.decode_jpeg(encoded, channels=3, ratio=r) for r in (1, 2, 4, 8)
        ]
        return tf.switch_case(_jpeg_ratio_index(encoded, min_short_side), decoders)

    def other() -> tf.Tensor:
        # float32 output keeps 16-bit PNG exact (a uint8 decode would just drop the low byte).
        image = tf.io.decode_image(encoded, channels=0, dtype=tf.float32, expand_animations=False)
        return tf.cast(tf.round(tf.clip_by_value(_to_rgb(image), 0.0, 1.0) * 255.0), tf.uint8)

    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff")
    image = tf.cond(is_jpeg, jpeg, other)
    return tf.ensure_shape(apply_orientation(image, orientation), [None, None, 3])


def resize_short_side(image: tf.Tensor, short_side: int, fast: bool = False) -> tf.Tensor:
    """uint8 (h, w, 3) -> uint8 with min(h, w) == short_side (aspect kept, capped at MAX_ASPECT).

    Bilinear with antialiasing; ``fast`` antialiases only when shrinking more than 2x (2.5x
    faster; after DCT-scaled JPEG decoding the rest is < 2x, where bilinear barely aliases).
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    max_long = tf.cast(tf.math.floor(tf.cast(short, tf.float32) * MAX_ASPECT), tf.int32)
    crop_h, crop_w = tf.minimum(height, max_long), tf.minimum(width, max_long)
    image = tf.image.crop_to_bounding_box(
        image, (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w
    )
    scale = short_side / tf.cast(short, tf.float32)
    new_h = tf.maximum(short_side, tf.cast(tf.round(tf.cast(crop_h, tf.float32) * scale), tf.int32))
    new_w = tf.maximum(short_side, tf.cast(tf.round(tf.cast(crop_w, tf.float32) * scale), tf.int32))

    def resize(antialias: bool) -> tf.Tensor:
        # antialias: shrinking 2-8x without it aliases fine texture into false color.
        resized = tf.image.resize(image, [new_h, new_w], method="bilinear", antialias=antialias)
        return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)

    same = tf.logical_and(tf.equal(new_h, crop_h), tf.equal(new_w, crop_w))
    antialias = tf.logical_or(not fast, scale < 0.5)
    return tf.case(
        [(same, lambda: image), (antialias, lambda: resize(True))], default=lambda: resize(False)
    )


def eval_crop(image: tf.Tensor, crop_size: int) -> tf.Tensor:
    """The evaluation protocol: uint8 (h, w, 3) -> short side to crop_size, center crop.

    Returns float32 (crop_size, crop_size, 3) RGB in [0, 1].
    """
    image = resize_short_side(image, crop_size)
    shape = tf.shape(image)
    top, left = (shape[0] - crop_size) // 2, (shape[1] - crop_size) // 2
    image = tf.image.crop_to_bounding_box(image, top, left, crop_size, crop_size)
    return tf.ensure_shape(tf.cast(image, tf.float32) / 255.0, [crop_size, crop_size, 3])


def random_crop(image: tf.Tensor, crop_size: int, seed, max_zoom: float = MAX_ZOOM) -> tf.Tensor:
    """``train_crop`` without scaling: (h, w, 3) of any dtype -> float32 (S, S, 3), same units.

    Used on uint8 RGB (the pipeline divides by 255 inside its XLA-compiled Lab step, where it
    costs nothing) and on cached float16 Lab planes.
    """
    # One random op for all four draws: small ops dominate the cost of a crop.
    u_side, u_top, u_left, u_flip = tf.unstack(
        tf.random.stateless_uniform([4], tf.cast(seed, tf.int64))
    )
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    low = tf.cast(tf.math.ceil(tf.cast(short, tf.float32) / max_zoom), tf.int32)

    def draw(u: tf.Tensor, count: tf.Tensor) -> tf.Tensor:  # uniform in 0 .. count - 1
        return tf.minimum(tf.cast(u * tf.cast(count, tf.float32), tf.int32), count - 1)

    side = low + draw(u_side, short - low + 1)
    top, left = draw(u_top, height - side + 1), draw(u_left, width - side + 1)
    crop = tf.slice(image, [top, left, 0], [side, side, 3])  # (side, side, 3)
    # Flipped here, on the small crop: in the fused Lab step a reverse costs 3x (measured).
    crop = tf.cond(u_flip < 0.5, lambda: tf.reverse(crop, axis=[1]), lambda: crop)
    # No antialias: shrinking by <= max_zoom (1.25) barely aliases, and it costs 4x the time.
    # Bilinear weights are convex, so the result stays within the input's range: no clip.
    rgb255 = tf.image.resize(crop, [crop_size, crop_size])
    return tf.ensure_shape(rgb255, [crop_size, crop_size, 3])


def train_crop(image: tf.Tensor, crop_size: int, seed, max_zoom: float = MAX_ZOOM) -> tf.Tensor:
    """Random square crop with scale jitter + random horizontal flip, stateless in ``seed``.

    Args:
        image: uint8 (h, w, 3), ideally with short side >= crop_size * max_zoom (no upscaling).
        crop_size: output side in pixels.
        seed: (2,) int seed; equal seeds give equal crops, eagerly and in tf.data.
        max_zoom: the crop side is uniform in [short / max_zoom, short] pixels.

    Returns:
        float32 (crop_size, crop_size, 3) RGB in [0, 1].
    """
    return random_crop(image, crop_size, seed, max_zoom) / 255.0


def to_l_ab(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """RGB in [0, 1] (..., 3) -> (L_norm (..., 1), ab_norm (..., 2)) via ``color.rgb_to_l_ab``."""
    l_norm, ab_norm = color.rgb_to_l_ab(rgb)
    return tf.convert_to_tensor(l_norm), tf.convert_to_tensor(ab_norm)
