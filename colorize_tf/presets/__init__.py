"""The presets shipped in the package, one folder each (``config.json``, ``model.weights.h5``,
``metadata.json``); the format is ``colorize_tf.models.presets``.
"""
