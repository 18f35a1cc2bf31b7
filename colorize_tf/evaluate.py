"""``python -m colorize_tf.evaluate``: see ``colorize_tf.cli.evaluate``."""

from colorize_tf.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
