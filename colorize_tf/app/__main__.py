"""``python -m colorize_tf.app``: see ``colorize_tf.cli.app``."""

from colorize_tf.cli.app import main

raise SystemExit(main())
