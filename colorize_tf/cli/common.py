"""What the commands share: their flags, errors -> exit codes, the parser's summary line.

Flags more than one command takes are defined once, here (``--config``/``--set``:
train; ``--model``: colorize, evaluate, export, app; ``--size``/``--threads``: colorize, app),
and each command adds the ones it takes, as TF Model Garden's commands all call
``official.common.flags.define_flags()`` instead of repeating ``--config_file`` and
``--params_override``:

    parser = common.parser("python -m colorize_tf.train", __doc__)
    common.add_config_flags(parser, example="train.gan.epochs=5")

Exit codes: 0 done; 1 done, but some inputs failed (``colorize``); 2 nothing could be run, a
user error (a bad flag, config or path: ``error: MESSAGE`` on stderr, no traceback). An
exception a command does not name is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Sequence

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2

Main = Callable[[Sequence[str] | None], int]


class CommandError(Exception):
    """A user error a command finds itself (no inputs, a port in use); exits with 2."""


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A command's parser; ``description``'s first line (a module docstring) is its summary."""
    return argparse.ArgumentParser(prog=prog, description=(description or "").split("\n")[0])


def add_config_flags(parser: argparse.ArgumentParser, example: str) -> None:
    """``--config NAME|FILE`` and repeatable ``--set KEY=VALUE`` (into ``args.overrides``), read
    by ``colorize_tf.config.load_config(args.config, args.overrides)``."""
    parser.add_argument(
        "--config", default=None, help="a YAML file or a packaged config name (default: quickstart)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. --set {example} (repeatable)",
    )


def add_model_flag(parser: argparse.ArgumentParser, keras_only: bool = False) -> None:
    """``--model``: any form ``colorize_tf.inference.loader`` loads (``keras_only``: the forms a
    Keras generator is rebuilt from, for ``export``); None means the shipped preset."""
    from colorize_tf.inference.loader import KERAS_MODEL_HELP, MODEL_HELP

    parser.add_argument(
        "--model", default=None, help=KERAS_MODEL_HELP if keras_only else MODEL_HELP
    )


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """``--size`` (the network's input for Keras-based forms) and ``--threads`` (TFLite), the two
    arguments of ``load_colorizer`` besides the model."""
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="network input size for Keras-based models (default: the size it was trained at)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="TFLite interpreter threads (default: cores)"
    )


def fail(message: object) -> int:
    """Print ``error: MESSAGE`` to stderr; returns ``EXIT_USAGE``."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def command(*user_errors: type[BaseException]) -> Callable[[Main], Main]:
    """Decorate a ``main(argv) -> int``: ``CommandError`` and the ``user_errors`` it names (what a
    user can cause: a bad config, a missing file) print ``error: MESSAGE`` and return 2; any
    other exception is a bug and propagates with its traceback."""
    caught = (CommandError, *user_errors)

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None) -> int:
            try:
                return main(argv)
            except caught as err:
                return fail(err)

        return run

    return decorate


@contextlib.contextmanager
def user_errors(*types: type[BaseException]) -> Iterator[None]:
    """Inside, the ``types`` become ``CommandError`` (same message): for a command whose user
    errors come from one step (loading the model), so the same types elsewhere stay bugs."""
    try:
        yield
    except types as err:
        raise CommandError(str(err)) from err
