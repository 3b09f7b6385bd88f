"""Exceptions shared by several layers of the package (the apps, the CLI and the benchmark runner)."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad user input detected by an app (reported by the CLI without a traceback)."""
