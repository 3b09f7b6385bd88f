"""Optional dependencies: import them when a function needs them, naming the package when it is missing."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require"]


def require(package: str, purpose: str) -> Any:
    """Import ``package`` or raise an ImportError that names it and what needs it."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional package {package.split('.')[0]!r}, which is not installed"
        ) from exc
