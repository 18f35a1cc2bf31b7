"""Inference: the serving graph (``serving``), one loader for every model form (``loader``),
image and video I/O (``images``, ``files``, ``video``, ``temporal``).

Imports ``core``, ``data``, ``models`` and ``config``; never ``training``.
"""
