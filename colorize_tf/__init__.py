"""colorize_tf: grayscale photo colorization with a ResNet-18 U-Net and a PatchGAN, in Lab space."""

__version__ = "0.1.0"
