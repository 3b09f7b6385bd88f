"""Ready-made applications built on the renderer, each usable from Python and from the CLI.

Every module in this package that defines a module-level ``COMMAND`` (a :class:`Command`)
becomes a ``softras <name>`` subcommand automatically: :func:`discover_commands` imports the
modules of this package and collects them, so adding an app never requires editing
``softras/cli.py``. A minimal app module::

    from softras.apps import Command

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--iters", type=int, default=100)

    def run(args: argparse.Namespace) -> int:
        ...
        return 0

    COMMAND = Command("deform", "deform a sphere into a target silhouette", add_arguments, run)

``run`` returns the exit status; it may raise :class:`UsageError` (or ``FileNotFoundError``)
for bad input, which the CLI reports as one ``softras: error: ...`` line with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from softras._errors import UsageError

__all__ = ["Command", "UsageError", "discover_commands"]


@dataclass(frozen=True)
class Command:
    """A CLI subcommand.

    Attributes:
        name: the subcommand (``softras <name>``).
        help: one-line description shown in ``softras --help``.
        add_arguments: adds the subcommand's options to its ``argparse`` parser.
        run: runs it with the parsed arguments and returns the exit status.
        order: position in ``softras --help`` (lower first, then by name).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    order: int = 100


def discover_commands() -> dict[str, Command]:
    """Import every module of :mod:`softras.apps` and collect their ``COMMAND`` objects by name."""
    found: list[Command] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            found.append(command)
    found.sort(key=lambda c: (c.order, c.name))
    commands: dict[str, Command] = {}
    for command in found:
        if command.name in commands:
            raise RuntimeError(f"two apps define the subcommand {command.name!r}")
        commands[command.name] = command
    return commands
