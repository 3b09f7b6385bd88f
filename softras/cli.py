"""The ``softras`` command line: ``softras <command> [options]``.

Subcommands are the :class:`softras.apps.Command` objects found in the modules of
:mod:`softras.apps` (see :func:`softras.apps.discover_commands`), so a new app registers itself
by defining ``COMMAND`` in its module. Bad input (a missing file, an out-of-range option) is
reported as a single ``softras: error: ...`` line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from softras import __version__

__all__ = ["build_parser", "main"]

PROG = "softras"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``softras: error: <message> (see ...)``.

    ``--image-size H W`` is joined into one value first (see :func:`join_image_size_values`).
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        from softras.apps._checks import join_image_size_values

        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(join_image_size_values(argv), namespace)

    def error(self, message: str) -> NoReturn:
        hint = f"{self.prog} --help"
        self.exit(2, f"{PROG}: error: {message} (see '{hint}')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one subparser per discovered app."""
    from softras.apps import discover_commands

    parser = _Parser(
        prog=PROG,
        description="Soft Rasterizer: a differentiable mesh renderer (PyTorch).",
        epilog="Run 'softras <command> --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    for name, command in discover_commands().items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    ``--help``/``--version`` and argument errors raise :class:`SystemExit` (status 0 / 2) as
    usual with :mod:`argparse`; errors found while running (e.g. a missing mesh file) return 2.
    """
    from softras.apps import UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(args) or 0)
    except FileNotFoundError as exc:
        return _fail(str(exc) if exc.filename is None else f"{exc.strerror or 'not found'}: {exc.filename}")
    except (UsageError, ValueError, OSError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
