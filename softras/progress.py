"""Progress bars for long-running work (rendering turntables, optimisation loops, benchmarks).

A thin wrapper around :mod:`tqdm` so that every app behaves the same way:

* ``quiet=True`` disables the bar;
* the bar is also disabled when its stream (stderr by default) is not a terminal, so logs,
  CI output and captured test output stay free of carriage-return noise;
* setting the environment variable ``SOFTRAS_PROGRESS=1`` forces bars on (e.g. under a pager),
  ``SOFTRAS_PROGRESS=0`` forces them off.

Example::

    from softras.progress import progress

    for step in progress(range(500), desc="fit", quiet=args.quiet):
        ...

    with progress(total=90, desc="turntable", unit="frame") as bar:
        bar.update(8)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import IO, Any, TypeVar

from tqdm import tqdm

__all__ = ["progress", "progress_enabled"]

T = TypeVar("T")


def progress_enabled(quiet: bool = False, file: IO[str] | None = None) -> bool:
    """Whether a progress bar would be shown for this ``quiet`` flag and output stream."""
    if quiet:
        return False
    forced = os.environ.get("SOFTRAS_PROGRESS", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    stream = file if file is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # closed or detached stream
        return False


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | float | None = None,
    desc: str | None = None,
    unit: str = "it",
    quiet: bool = False,
    leave: bool = False,
    file: IO[str] | None = None,
    **kwargs: Any,
) -> tqdm:
    """A :class:`tqdm` bar over ``iterable`` (or a manual one with ``total``), disabled when quiet.

    Args:
        iterable: what to iterate over; ``None`` for a manual bar advanced with ``update(n)``.
        total: number of steps (defaults to ``len(iterable)`` when it has one).
        desc: short label shown before the bar.
        unit: name of one step (``'frame'``, ``'iter'``, ...).
        quiet: never show the bar.
        leave: keep the finished bar on screen (default: erase it).
        file: output stream (default stderr).
        **kwargs: passed on to :class:`tqdm`.

    Returns:
        The bar; it is iterable, a context manager, and has ``update``/``set_postfix``/``close``
        even when disabled.
    """
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        file=file,
        disable=not progress_enabled(quiet, file),
        dynamic_ncols=True,
        **kwargs,
    )
