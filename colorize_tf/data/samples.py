"""The embedded sample photos: real color photographs that scikit-image ships inside its wheel.

They make ``samples`` a data source that works on a fresh machine with ``pip install`` alone
(no download, no data set): ``python -m colorize_tf.data preview samples --out runs/preview.png``.
Seven photos are too few to train a useful model; they are for smoke runs, previews and tests.

The files are found in the installed ``skimage`` package directory (``skimage/data/``), never
fetched: scikit-image's ``skimage.data`` functions can download other images through pooch,
which a fresh or offline machine must not need.
"""

from __future__ import annotations

import os

# Color photographs only: skimage/data also ships grayscale and synthetic images (camera.png,
# text.png, ...), which would teach a colorizer nothing.
SAMPLE_PHOTOS: tuple[str, ...] = (
    "astronaut.png",  # 512 x 512
    "coffee.png",  # 600 x 400
    "chelsea.png",  # 451 x 300
    "rocket.jpg",  # 640 x 427
    "motorcycle_left.png",  # 741 x 500
    "motorcycle_right.png",  # 741 x 500
    "hubble_deep_field.jpg",  # 1000 x 872
)


def sample_photo_dir() -> str:
    """Absolute path of ``skimage/data`` in the installed scikit-image package."""
    import skimage  # imported here so that `import colorize_tf.data.pipeline` stays light

    return os.path.join(os.path.dirname(os.path.abspath(skimage.__file__)), "data")


def sample_photo_paths() -> list[str]:
    """Absolute paths of the embedded sample photos, in ``SAMPLE_PHOTOS`` order.

    Raises:
        FileNotFoundError: if none of them is in the installed scikit-image (a stripped or
            very old install), naming the directory that was searched.
    """
    root = sample_photo_dir()
    paths = [os.path.join(root, name) for name in SAMPLE_PHOTOS]
    present = [p for p in paths if os.path.isfile(p)]
    if not present:
        raise FileNotFoundError(
            f"no sample photos found in {root} (expected {', '.join(SAMPLE_PHOTOS)}); "
            "reinstall scikit-image from its wheel: pip install --force-reinstall scikit-image"
        )
    return present
