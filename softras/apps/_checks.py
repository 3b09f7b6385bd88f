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

__all__ = [
    "ImageSize",
    "add_image_size_argument",
    "check_float",
    "check_image_size",
    "check_int",
    "describe_image_size",
    "environment",
    "image_hw",
    "int_at_least",
    "join_image_size_values",
    "positive_float",
    "positive_int",
]

#: An image size as the apps take it: an int S (S × S) or (H, W).
ImageSize = int | tuple[int, int]
_IMAGE_SIZE_FORMS = "S, 'H W' or WxH"


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools rejected), else :class:`UsageError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_image_size(name: str, value: object, minimum: int) -> ImageSize:
    """``value`` as an int S or a pair (H, W) of ints, each >= ``minimum``, else :class:`UsageError`."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UsageError(f"{name}: expected an integer or (height, width), got {value!r}")
        return check_int(f"{name} (height)", value[0], minimum), check_int(f"{name} (width)", value[1], minimum)
    return check_int(name, value, minimum)


def image_hw(image_size: ImageSize) -> tuple[int, int]:
    """(H, W) of an app image size (an int S means S × S)."""
    return (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))


def _parse_image_size(text: str, minimum: int) -> ImageSize:
    """``'S'`` -> S, ``'H W'`` -> (H, W), ``'WxH'`` -> (H, W)."""
    t = text.strip().lower()
    try:
        if "x" in t:
            w, h = (int(p) for p in t.split("x"))
            value: ImageSize = (h, w)
        elif len(t.split()) == 2:
            h, w = (int(p) for p in t.split())
            value = (h, w)
        else:
            value = int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {_IMAGE_SIZE_FORMS} (integers >= {minimum}), got {text!r}"
        ) from None
    if min(image_hw(value)) < minimum:
        raise argparse.ArgumentTypeError(f"expected {_IMAGE_SIZE_FORMS} (integers >= {minimum}), got {text!r}")
    return value


def join_image_size_values(argv: list[str]) -> list[str]:
    """``['--image-size', 'H', 'W', ...]`` -> ``['--image-size', 'H W', ...]`` (two integers after it).

    argparse cannot take "one or two values" without swallowing a positional argument that
    follows, so the CLI joins the ``H W`` form into one value before parsing.
    """
    out = list(argv)
    for i in range(len(out) - 2):
        if out[i] == "--image-size" and out[i + 1].isdigit() and out[i + 2].isdigit():
            out[i + 1 : i + 3] = [f"{out[i + 1]} {out[i + 2]}"]
            break
    return out


def add_image_size_argument(
    parser: argparse.ArgumentParser, default: ImageSize | None, minimum: int, what: str
) -> None:
    """``--image-size`` accepting ``S`` (S × S), ``H W`` or ``WxH``; the value is S or (H, W).

    ``what`` starts the help text; a default of ``None`` is left for ``what`` to explain.
    """
    shown = "" if default is None else f" (default: {describe_image_size(default)[:-2]})"
    parser.add_argument(
        "--image-size", type=lambda text: _parse_image_size(text, minimum), default=default, metavar="S | H W | WxH",
        help=f"{what}; S for S×S, or H W, or WxH, each >= {minimum}{shown}",
    )  # fmt: skip


def describe_image_size(image_size: ImageSize) -> str:
    """``'64px'`` or ``'200x120px'`` (W×H) for messages."""
    return f"{image_size}px" if isinstance(image_size, int) else f"{image_size[1]}x{image_size[0]}px"


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
