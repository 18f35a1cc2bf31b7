"""Image files in and out of a colorizer: reading for ``serving``, showing, writing.

Reading goes through the package's one PIL reader (``colorize_tf.data.image_files``): the
pixel limit is checked from the header, EXIF orientation applied, and gray and alpha kept,
since ``serving`` composites alpha over white itself. A file that cannot be used raises
``SkipImage`` with the reason shown to the user.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from colorize_tf.config import DEFAULT_MAX_PIXELS
from colorize_tf.data.image_files import ImageFileError, as_rgb, open_image, to_array
from colorize_tf.data.spec import IMAGE_EXTENSIONS, PIL_ONLY_EXTENSIONS

# What colorize reads: every format of training, and those PIL reads besides (TIFF scans).
PHOTO_EXTENSIONS = IMAGE_EXTENSIONS + PIL_ONLY_EXTENSIONS
# zlib level 1: a 12-MP PNG in ~1.5 s instead of ~8 s at PIL's default 6, for ~20% more bytes.
PNG_COMPRESS_LEVEL = 1


class SkipImage(Exception):
    """An input that cannot be colorized; the message is the reason shown to the user."""


def read_image(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str]:
    """Decode an image file (a path or a binary stream) upright for ``serving``.

    Returns:
        (uint8 (H, W, C) with C = 1 gray, 2 gray + alpha, 3 RGB or 4 RGBA; the PIL format).

    Raises:
        SkipImage: unreadable, not an image, or more than ``max_pixels`` pixels.
    """
    from PIL import ImageOps

    try:
        with open_image(path, max_pixels, flag="--max-pixels") as image:
            image_format = image.format or ""
            return to_array(ImageOps.exif_transpose(image)), image_format  # loads the pixels
    except ImageFileError as e:
        raise SkipImage(e.reason) from None


def display_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) as shown to a viewer: (H, W, 3), gray repeated, alpha over white."""
    return as_rgb(image)


def side_by_side(original: np.ndarray, colorized: np.ndarray, gap: int = 8) -> np.ndarray:
    """Input and result next to each other on white: uint8 (H, 2 W + gap, 3)."""
    left = as_rgb(original)
    spacer = np.full((left.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([left, spacer, colorized], axis=1)


def write_image(path: Path, rgb: np.ndarray, image_format: str, quality: int) -> None:
    """Write uint8 RGB as PNG or JPEG, through a temporary file so no partial file remains."""
    from PIL import Image

    partial = path.with_name(f".{path.name}.partial")
    options = (
        {"quality": quality} if image_format == "JPEG" else {"compress_level": PNG_COMPRESS_LEVEL}
    )
    Image.fromarray(rgb).save(partial, format=image_format, **options)
    os.replace(partial, path)
