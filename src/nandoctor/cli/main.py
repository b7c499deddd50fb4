"""``nandoctor`` entry point: dispatches to one module per subcommand.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Input errors become one ``path:line:col: message`` line on
stderr and exit code 2; no traceback ever reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nandoctor import __version__
from nandoctor.core.types import InputError

COMMANDS = ("diagnose", "lint", "lr", "log", "watch", "scan_data", "replay", "rules", "demo")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``only`` of that one command.

    Each command module imports what it needs (numpy, the rules, the log parser): loading
    one instead of eight keeps a quick command quick.
    """
    parser = argparse.ArgumentParser(
        prog="nandoctor",
        description="Why did my training go NaN, and what exactly do I change?",
    )
    parser.add_argument("--version", action="version", version=f"nandoctor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"nandoctor.cli.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The module name of the command ``argv`` starts with, when it is one (else: load all)."""
    if argv and "_" not in argv[0] and argv[0].replace("-", "_") in COMMANDS:
        return argv[0].replace("-", "_")
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except InputError as exc:
        print(f"nandoctor: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nandoctor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
