"""Pieces shared by the applications: argument checks (function API and argparse types) and
the environment block of every ``summary.json``."""

from __future__ import annotations

import argparse
import math
import platform
from collections.abc import Callable

import numpy as np
import torch

from . import UsageError

__all__ = ["check_float", "check_int", "environment", "int_at_least", "positive_float", "positive_int"]


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools rejected), else :class:`UsageError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(
    name: str, value: object, lo: float = -math.inf, hi: float = math.inf, *, positive: bool = False
) -> float:
    """``value`` as a finite float in [lo, hi] (and > 0 when ``positive``), else :class:`UsageError`."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name}: expected a number, got {value!r}") from exc
    if not math.isfinite(x) or (positive and x <= 0):
        raise UsageError(f"{name}: expected a {'positive' if positive else 'finite'} number, got {value!r}")
    if not lo <= x <= hi:
        raise UsageError(f"{name}: expected a number in [{lo}, {hi}], got {value!r}")
    return x


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type=`` accepting integers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1)


def positive_float(text: str) -> float:
    """An argparse ``type=`` accepting finite numbers > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def environment() -> dict[str, object]:
    """Versions and threads, recorded in every app's ``summary.json``."""
    return {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads()}
