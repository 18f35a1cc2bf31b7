"""``python -m colorize_tf.colorize``: see ``colorize_tf.cli.colorize``."""

from colorize_tf.cli.colorize import main

if __name__ == "__main__":
    raise SystemExit(main())
