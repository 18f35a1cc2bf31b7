"""``python -m colorize_tf.data``: see ``colorize_tf.cli.data``."""

from colorize_tf.data.pipeline import main

raise SystemExit(main())
