"""``python -m colorize_tf.jax_train``: see ``colorize_tf.cli.jax_train``."""

import os

if __name__ == "__main__":  # run as a command: it exists to train under JAX
    os.environ.setdefault("KERAS_BACKEND", "jax")

from colorize_tf.cli.jax_train import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
