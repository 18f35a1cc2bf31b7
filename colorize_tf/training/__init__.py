"""Training: the recipe both backends share, the Keras GAN (``gan``), callbacks, checkpoints,
strategies (``distribute``), the TensorFlow loop (``loop``) and the JAX loop (``jax_loop``).

Imports ``core``, ``data``, ``models`` and ``config``; never ``inference``, ``export``,
``evaluation``, ``app`` or ``cli``.
"""
