"""Images in: sources and their listing, the split rule, image ops, TFRecord writing, the tf.data
pipeline (``pipeline``) and the TensorFlow-free numpy pipeline for JAX (``numpy_pipeline``).

Imports only ``colorize_tf.core`` and ``colorize_tf.config``.
"""
