"""``python -m colorize_tf.app``: see ``colorize_tf.app.server``."""

import sys

from colorize_tf.app.server import main

sys.exit(main())
