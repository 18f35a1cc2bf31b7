"""Training: the recipe both backends share, the Keras GAN (``gan``), callbacks, checkpoints,
strategies (``distribute``) and the one loop (``loop``) both Keras backends run.

Imports ``core``, ``data``, ``models`` and ``config``; never ``inference``, ``export``,
``evaluation``, ``app`` or ``cli``.
"""
