"""``python -m colorize_tf.export``: see ``colorize_tf.cli.export``."""

from colorize_tf.export.export_lib import main

raise SystemExit(main())
