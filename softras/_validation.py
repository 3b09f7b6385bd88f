"""Small argument checks shared by the whole package.

Every public entry point validates its input once, up front, and raises a clear
``TypeError`` / ``ValueError`` naming the argument and what was expected, instead of
letting a bad tensor crash deep inside a kernel or silently produce NaNs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "as_float_tensor",
    "as_index_tensor",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_positive",
    "check_shape",
    "resolve_device",
]


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"
    if isinstance(x, np.ndarray):
        return f"ndarray of shape {x.shape}, dtype {x.dtype}"
    return type(x).__name__


def as_float_tensor(
    name: str,
    value: object,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Convert ``value`` (tensor, ndarray, number, NumPy scalar or nested sequence) to a floating tensor.

    A tensor that is already floating keeps its dtype unless ``dtype`` is given, and keeps
    autograd history (``.to`` is differentiable). Integer inputs become ``dtype`` (default
    float32).
    """
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, (int, float, np.number, Sequence)) and not isinstance(value, (str, bytes)):
        try:
            t = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name}: expected numbers, got {value!r}") from exc
    else:
        raise TypeError(f"{name}: expected a tensor, ndarray or sequence of numbers, got {_describe(value)}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name}: expected real numbers, got {_describe(t)}")
    target = dtype if dtype is not None else (t.dtype if t.is_floating_point() else torch.float32)
    return t.to(device=device if device is not None else t.device, dtype=target)


def as_index_tensor(name: str, value: object, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Convert ``value`` to an integer tensor (int32/int64 kept, floats with integral values accepted)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name}: expected integer indices, got {type(value).__name__}") from exc
    if value.is_floating_point():
        if not torch.equal(value, value.round()):
            raise TypeError(f"{name}: expected integer indices, got non-integral {_describe(value)}")
        value = value.long()
    elif value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"{name}: expected integer indices, got {_describe(value)}")
    return value.to(device) if device is not None else value


def check_shape(name: str, t: torch.Tensor, expected: Sequence[int | str | None]) -> None:
    """Check ``t.shape`` against ``expected``; ``None`` or a string (a symbolic name) matches any size.

    >>> check_shape("vertices", torch.zeros(2, 5, 3), ("B", "V", 3))
    """
    ok = t.ndim == len(expected) and all(
        isinstance(e, str) or e is None or e == s for e, s in zip(expected, t.shape, strict=False)
    )
    if not ok:
        want = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(t.shape)}")


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or Inf."""
    if not t.is_floating_point():
        return
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64):
        # NumPy, single-threaded: a PyTorch op here would wake PyTorch's OpenMP pool, whose
        # threads then spin for a while and slow down the rasterizer's own threads.
        finite = bool(np.isfinite(t.detach().numpy()).all())
    else:
        finite = bool(torch.isfinite(t).all())
    if not finite:
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name}: expected finite values, found {bad} NaN/Inf entries")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``float(value)`` after checking it is a finite number > 0 (or >= 0)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name}: expected a number, got {_describe(value)}")
        value = value.item()
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return v


def check_bool(name: str, value: object) -> bool:
    """``value`` as a bool: Python and NumPy booleans, and the integers 0 and 1 (never strings)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {value!r}")


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices`` (strings)."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value  # type: ignore[return-value]


def resolve_device(device: str | torch.device | None, name: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device` (None: CUDA if available, else the CPU).

    Raises:
        ValueError: naming ``name``, for a string torch cannot parse or a CUDA device on a machine
            without CUDA.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"{name}: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: {dev} requested but CUDA is not available")
    return dev
