"""The one PIL reader of image files, and alpha over white in numpy.

Every reader in the package opens a file through ``open_image``: PIL reads the header, the
pixel count is checked against a limit before any pixel is decoded, and what goes wrong
becomes an ``ImageFileError`` that names the file and says why. On top of it:

* ``to_array``: a PIL image of any mode -> uint8 (H, W, C), C = 1 gray, 2 gray + alpha,
  3 RGB or 4 RGBA (16-bit and float scans scaled to 8 bits, not clipped): what ``serving``
  takes, alpha kept.
* ``as_rgb``: such an array as a viewer shows it, (H, W, 3) with alpha over white.
* ``read_rgb``: a file -> upright (EXIF orientation applied) uint8 RGB, alpha over white.

No TensorFlow here (the numpy pipeline for JAX machines uses it).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from colorize_tf.config import DEFAULT_MAX_PIXELS

_SIXTEEN_BIT_OR_FLOAT = ("I;16", "I;16B", "I;16L", "I", "F")
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")


class ImageFileError(ValueError):
    """An image file that cannot be used: ``str()`` is ``PATH: REASON``."""

    def __init__(self, path, reason: str):
        name = "<stream>" if hasattr(path, "read") else os.fspath(path)
        super().__init__(f"{name}: {reason}")
        self.path = path
        self.reason = reason


def too_large(width: int, height: int, max_pixels: int, flag: str | None = None) -> str:
    """The reason given for an image over the pixel limit (``flag``: the command's option)."""
    limit = (
        f"{flag} {max_pixels:,}"
        if flag
        else f"max_pixels={max_pixels:,} (raise max_pixels / --max-pixels to accept it)"
    )
    return f"too large: {width}x{height} = {width * height / 1e6:.1f} MP exceeds {limit}"


@contextlib.contextmanager
def open_image(
    path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    flag: str | None = None,
) -> Iterator[Image.Image]:
    """Open ``path`` (a file name or a binary stream) with PIL, pixels not yet decoded.

    Refuses, as ``ImageFileError``: an empty file, content that is not an image, more than
    ``max_pixels`` pixels (``flag`` names the option in the reason), and any error PIL raises
    while the ``with`` body decodes it (the body may raise ``ImageFileError`` itself).
    """
    try:
        if not hasattr(path, "read") and os.path.getsize(path) == 0:
            raise ImageFileError(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit rules
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageFileError(path, too_large(width, height, max_pixels, flag))
                yield image
    except ImageFileError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageFileError(path, f"too large for PIL to open safely: {e}") from None
    except UnidentifiedImageError:
        raise ImageFileError(path, "not an image (unrecognised content)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageFileError(path, f"unreadable ({e})") from None


def has_alpha(image: Image.Image) -> bool:
    """Whether a PIL image carries transparency (an alpha band or a transparent color)."""
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def to_array(image: Image.Image) -> np.ndarray:
    """PIL image of any mode -> uint8 (H, W, C), C in 1..4: gray kept, alpha kept."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_OR_FLOAT:
        # 16-bit and float scans: scale the full range to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(np.round(values * (255.0 / peak)), 0, 255).astype(np.uint8)
        return gray[..., np.newaxis]
    alpha = has_alpha(image)
    gray = mode in ("1", "L", "LA", "La")
    target = ("LA" if alpha else "L") if gray else ("RGBA" if alpha else "RGB")
    array = np.asarray(image.convert(target), dtype=np.uint8)
    return array[..., np.newaxis] if array.ndim == 2 else array


def over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 color (..., c) and alpha (..., 1) -> uint8 composited over white (..., c).

    Transparent pixels hold arbitrary colors; white is what a viewer shows behind them. The
    in-graph twin is ``colorize_tf.data.image_ops.over_white``.
    """
    a = alpha.astype(np.float32) / 255.0
    return np.round(color * a + 255.0 * (1.0 - a)).astype(np.uint8)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) as shown to a viewer: (H, W, 3), gray repeated, alpha over white."""
    color = image
    if image.shape[-1] in (2, 4):
        color = over_white(image[..., :-1], image[..., -1:])
    return np.repeat(color, 3, axis=-1) if color.shape[-1] == 1 else color


def rgb_image(image: Image.Image) -> Image.Image:
    """PIL image of any mode -> RGB PIL image, alpha over white (as ``as_rgb``)."""
    if image.mode == "RGB":
        return image
    return Image.fromarray(as_rgb(to_array(image)))


def read_rgb(
    path, max_pixels: int = DEFAULT_MAX_PIXELS, *, short_side: int | None = None
) -> Image.Image:
    """A file -> upright (EXIF orientation applied) RGB PIL image, alpha over white.

    ``short_side``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale by libjpeg (several times
    faster) as long as its short side stays at least that long.

    Raises:
        ImageFileError: naming the file and the reason.
    """
    with open_image(path, max_pixels) as image:
        if short_side is not None:
            width, height = image.size
            scale = short_side / min(width, height)
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        return rgb_image(ImageOps.exif_transpose(image))
