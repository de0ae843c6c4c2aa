"""The ``postroom`` command: no arguments opens the console; subcommands work headless."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points

from app import __version__
from app.cli.common import Context, fail
from app.errors import PostroomError

# Each module registers its subcommand with ``register(subparsers)``.
COMMAND_MODULES = (
    "policy",
    "recipient",
    "dns",
    "rus",
    "serve",
    "smtp",
    "connector",
    "queue",
    "dkim",
    "imap",
    "pop3",
    "mailbox_store",
)

# Where a console registers itself (ui/ does in pyproject.toml); the command never names one.
CONSOLE_GROUP = "postroom.console"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postroom",
        description="Host e-mail for several domains on one machine. "
        "Without a command, opens the console.",
    )
    parser.add_argument("--version", action="version", version=f"postroom {__version__}")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="data directory (default: $POSTROOM_DATA_DIR or the platform's user data folder)",
    )
    parser.add_argument(
        "--choose-data-dir",
        action="store_true",
        help="open the console after choosing its data directory in a folder dialog",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"app.cli.{name}").register(subparsers)
    _accept_data_dir_anywhere(parser)
    return parser


def _accept_data_dir_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``--data-dir`` follow the subcommand too (``postroom policy list --data-dir D``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--data-dir" not in sub._option_string_actions:
                    sub.add_argument(
                        "--data-dir",
                        metavar="DIR",
                        default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS,
                    )
                _accept_data_dir_anywhere(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 refused, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    context = Context(args.data_dir)
    try:
        if args.command is None:
            return _open_console(context, choose_data_dir=args.choose_data_dir)
        status: int = args.func(args, context)
        return status
    except PostroomError as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return 130
    finally:
        context.close()


def console_entry_points() -> list[EntryPoint]:
    """The consoles installed in the ``postroom.console`` entry-point group, by name."""
    return sorted(entry_points(group=CONSOLE_GROUP), key=lambda point: point.name)


def _open_console(context: Context, *, choose_data_dir: bool = False) -> int:
    found = console_entry_points()
    if not found:
        return fail(
            f"No console is installed (nothing in the {CONSOLE_GROUP!r} entry-point group). "
            "Install it with the README's './run console', or give a command (postroom --help)."
        )
    point = found[0]
    try:
        run = point.load()
    except ImportError as error:
        # The console is registered but a library it needs (Qt) is missing.
        return fail(
            f"The console {point.value} cannot start: {error}. "
            "Install it with the README's './run console'."
        )
    status: int = run(context.data_dir, choose_data_dir=choose_data_dir)
    return status


def entry_point() -> None:
    sys.exit(main())
