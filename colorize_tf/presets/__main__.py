"""``python -m colorize_tf.presets``: see ``colorize_tf.cli.presets``."""

from colorize_tf.cli.presets import main

raise SystemExit(main())
