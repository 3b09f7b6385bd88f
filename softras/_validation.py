"""Small argument checks shared by the whole package.

Every public entry point validates its input once, up front, and raises a clear
``TypeError`` / ``ValueError`` naming the argument and what was expected, instead of
letting a bad tensor crash deep inside a kernel or silently produce NaNs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

__all__ = [
    "DIST_EPS_RANGE",
    "GAMMA_RANGE",
    "SIGMA_RANGE",
    "as_float_tensor",
    "as_index_tensor",
    "as_scalar",
    "check_batch_sizes",
    "check_bool",
    "check_choice",
    "check_dist_eps",
    "check_finite",
    "check_float_dtype",
    "check_gamma",
    "check_not_meta",
    "check_number",
    "check_points",
    "check_positive",
    "check_shape",
    "check_sigma",
    "image_hw",
    "item_values",
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


def check_points(name: str, value: object, count: str = "N") -> torch.Tensor:
    """``value`` checked to be a floating [B, ``count``, 3] tensor of points."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    check_shape(name, value, ("B", count, 3))
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating dtype, got {value.dtype}")
    return value


def check_not_meta(name: str, value: object) -> None:
    """Raise ``ValueError`` if ``value`` is a tensor on the meta device (a shape without values)."""
    if isinstance(value, torch.Tensor) and value.device.type == "meta":
        raise ValueError(f"{name}: meta tensors hold no data; move them to a real device")


def check_batch_sizes(sizes: Mapping[str, int], unit: str = "batch") -> int:
    """The common batch B of named sizes that are each 1 or B (1 if all are 1).

    ``sizes`` maps argument names to their batch (or length); ``unit`` is the word the message
    uses for it. Raises ``ValueError`` naming the first argument whose size is neither 1 nor
    the first size above 1, and the arguments it conflicts with.
    """
    big = [(n, s) for n, s in sizes.items() if s != 1]
    if not big:
        return 1
    common = big[0][1]
    for name, size in big:
        if size != common:
            refs = ", ".join(n for n, s in big if s == common)
            every = ", ".join(sizes)
            raise ValueError(
                f"{name}: {unit} {size} does not match {refs} ({unit} {common}); "
                f"expected {every} of {unit} 1 or one common {unit}"
            )
    return common


def reads_values() -> bool:
    """Whether the checks that read tensor values run: not while ``torch.compile`` or
    ``torch.export`` traces, where a read of values would break the graph (the compiled graph
    runs without them; eager calls check)."""
    return not torch.compiler.is_compiling()


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or Inf (or is a meta tensor, which holds no values);
    values are not read while tracing (:func:`reads_values`)."""
    if t.device.type == "meta":
        raise ValueError(f"{name}: meta tensors hold no data; move them to a real device")
    if not t.is_floating_point() or not reads_values():
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


def as_scalar(value: object) -> object:
    """``value`` with NumPy scalars and one-element tensors turned into Python numbers (others unchanged)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.device.type != "meta":
        return value.item()
    return value


def check_number(name: str, value: object) -> float:
    """``float(value)`` for a finite real number (Python or NumPy scalar, one-element tensor); not a bool/str."""
    v = as_scalar(value)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name}: expected a number, got {_describe(value)} {value!r}")
    if not math.isfinite(float(v)):  # (math, not NumPy: Dynamo traces it)
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(v)


def check_bool(name: str, value: object) -> bool:
    """``value`` as a bool: ``True``/``False`` (Python, NumPy or a one-element tensor) or the integers 0 and 1.

    Strings are refused, so ``fill_back='no'`` is an error instead of ``True``.
    """
    v = as_scalar(value)
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise TypeError(f"{name}: expected True or False, got {value!r}")


#: Valid ranges (inclusive) of the soft rasterizer's σ and γ, and of dist_eps (the upper end excluded).
#: Inside them every backend computes finite images and gradients in float32 and float64: σ above
#: 1e4 gives D ≈ 0.5 everywhere on screen (and near 1e38 overflows float32 cull radii), γ or σ
#: below 1e-20 overflow 1/γ, 1/σ in float32, and dist_eps below 1e-20 makes the cull radius
#: (log(1/dist_eps − 1)) leave the range the kernels were checked on.
SIGMA_RANGE = (1e-20, 1e4)
GAMMA_RANGE = (1e-20, 1e20)
DIST_EPS_RANGE = (1e-20, 0.5)


def _check_range(name: str, value: object, low: float, high: float, *, high_open: bool = False) -> float:
    v = check_number(name, value)
    if not (low <= v < high if high_open else low <= v <= high):
        raise ValueError(f"{name}: expected a number in [{low:g}, {high:g}{')' if high_open else ']'}, got {value!r}")
    return v


def check_sigma(name: str, value: object) -> float:
    """σ (``sigma_val``) as a float in :data:`SIGMA_RANGE`."""
    return _check_range(name, value, *SIGMA_RANGE)


def check_gamma(name: str, value: object) -> float:
    """γ (``gamma_val``) as a float in :data:`GAMMA_RANGE`."""
    return _check_range(name, value, *GAMMA_RANGE)


def check_dist_eps(name: str, value: object) -> float:
    """``dist_eps`` as a float in [1e-20, 0.5) (:data:`DIST_EPS_RANGE`)."""
    return _check_range(name, value, *DIST_EPS_RANGE, high_open=True)


def image_hw(image_size: object, name: str = "image_size") -> tuple[int, int]:
    """``image_size`` (an int S, ``(H, W)``, NumPy integers accepted) as ``(H, W)``."""
    if isinstance(image_size, torch.Tensor):
        image_size = image_size.tolist()
    if isinstance(image_size, np.ndarray):
        image_size = image_size.tolist()
    if isinstance(image_size, Sequence) and not isinstance(image_size, str):
        if len(image_size) != 2:
            raise ValueError(f"{name}: expected an int or (height, width), got {image_size!r}")
        h, w = image_size
    else:
        h = w = image_size
    out = []
    for v in (h, w):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)):
            raise TypeError(f"{name}: expected integers, got {image_size!r}")
        if float(v) != int(v) or int(v) < 1:
            raise ValueError(f"{name}: expected integers >= 1, got {image_size!r}")
        out.append(int(v))
    return out[0], out[1]


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices`` (strings)."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value  # type: ignore[return-value]


def check_float_dtype(dtype: object, name: str = "dtype") -> torch.dtype:
    """Check that ``dtype`` is a floating :class:`torch.dtype`."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"{name}: expected a floating torch.dtype, got {dtype!r}")
    return dtype


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


# ---- settings that take a number or one value per item of a batch ---------------------------------
_PER_ITEM_EXPECTED = "a number or a 1-D sequence / tensor of per-item values (one per item of the batch)"


def item_values(name: str, value: object, check: Callable[[str, object], float]) -> float | tuple[float, ...]:
    """``value`` checked: a number as ``check`` takes it (a float),
    or a 1-D sequence, NumPy array or tensor as a tuple of floats, each checked by ``check``
    (named ``name[i]``). Raises ``TypeError`` / ``ValueError`` naming ``name``."""
    _no_grad(name, value)
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return check(name, value)
        if value.ndim != 1:
            raise ValueError(f"{name}: expected {_PER_ITEM_EXPECTED}, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name}: expected real numbers, got a tensor of {value.dtype}")
        value = value.detach().cpu().tolist()
    elif isinstance(value, np.ndarray):
        if value.ndim == 0:
            return check(name, value.item())
        if value.ndim != 1:
            raise ValueError(f"{name}: expected {_PER_ITEM_EXPECTED}, got an array of shape {value.shape}")
        value = value.tolist()
    elif not isinstance(value, (list, tuple)):
        return check(name, value)
    if len(value) == 0:
        raise ValueError(f"{name}: expected {_PER_ITEM_EXPECTED}, got an empty sequence")
    for v in value:
        _no_grad(name, v)
        if isinstance(v, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(v, str) and np.ndim(v) > 0:
            raise ValueError(f"{name}: expected {_PER_ITEM_EXPECTED}, got a nested (2-D) sequence {value!r}")
    return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))


def _no_grad(name: str, value: object) -> None:
    if isinstance(value, torch.Tensor) and value.requires_grad:
        raise TypeError(
            f"{name}: got a tensor that requires grad, but σ and γ are not differentiable (constants of the "
            f"rasterizer, as in the original); pass {name}=values.detach(), floats or a sequence of floats"
        )
