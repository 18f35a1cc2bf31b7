"""``python -m colorize_tf.jax_train``: see ``colorize_tf.cli.jax_train``."""

from colorize_tf.training.jax_loop import main

if __name__ == "__main__":
    raise SystemExit(main())
