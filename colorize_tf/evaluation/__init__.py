"""The evaluation protocol run end to end: ours beside the gray baseline on the same crops, with
a report. Imports ``inference``, ``core``, ``data`` and ``models``.
"""
