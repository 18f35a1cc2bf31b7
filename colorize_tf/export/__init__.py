"""Exports of a trained generator: the SavedModel, TFLite files and the ``export.json`` sidecar.

Imports ``inference``, ``core``, ``data`` and ``models``.
"""
