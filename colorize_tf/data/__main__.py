"""``python -m colorize_tf.data``: see ``colorize_tf.cli.data``."""

from colorize_tf.cli.data import main

raise SystemExit(main())
