"""colorize_tf: grayscale photo colorization with a ResNet-18 U-Net and a PatchGAN, in Lab space.

    import colorize_tf
    colorizer = colorize_tf.load_colorizer()   # the model shipped in the package
    rgb = colorizer(gray)                      # uint8 (H, W[, C]) -> uint8 (H, W, 3)

The names below load lazily, so ``import colorize_tf`` alone pulls in neither Keras nor
TensorFlow.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_colorizer": "colorize_tf.inference.loader",
    "Colorizer": "colorize_tf.inference.loader",
    "load_generator": "colorize_tf.inference.loader",
    "load_preset": "colorize_tf.models.presets",
}
__all__ = ["Colorizer", "__version__", "load_colorizer", "load_generator", "load_preset"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'colorize_tf' has no attribute {name!r}")
