"""The command line: one module per command over one common parser (``common``).

The only package that imports across branches; nothing in the package imports it except the
``python -m`` entry modules (``colorize_tf/train.py`` and the like, one line each).
"""
