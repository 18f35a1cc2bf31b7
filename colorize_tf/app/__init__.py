"""The local web app: drop photos on a page, compare before and after, download the results.

``python -m colorize_tf.app`` (or ``colorize-tf-app``) starts it; ``server`` holds the web side,
``jobs`` the queue of colorizations behind it, ``static/`` the one page. Needs the ``[app]``
extra (Starlette and Uvicorn).
"""
