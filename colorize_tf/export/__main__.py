"""``python -m colorize_tf.export``: see ``colorize_tf.cli.export``."""

from colorize_tf.cli.export import main

raise SystemExit(main())
