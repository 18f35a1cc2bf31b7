"""The method's maths in ``keras.ops`` only (TensorFlow and JAX alike): Lab color, losses, metrics.

Imports nothing else of the package.
"""
