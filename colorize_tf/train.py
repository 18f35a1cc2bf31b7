"""``python -m colorize_tf.train``: see ``colorize_tf.cli.train``."""

from colorize_tf.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
