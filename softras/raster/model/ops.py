"""The operations a model function may use, bound to each backend's arithmetic.

Model functions (:mod:`.distributions`, :mod:`.tconorms`) are written once, in a restricted
Python style, against a namespace called ``m``:

* arithmetic operators and comparisons on scalars;
* ``m.exp``, ``m.log``, ``m.log1p``, ``m.expm1``, ``m.sqrt``, ``m.atan``, ``m.asin``, ``m.cosh``,
  ``m.erf``, ``m.erfc``, ``m.lgamma``, ``m.pow``, ``m.abs``, ``m.minimum``, ``m.maximum``;
* ``m.where(cond, a, b)`` for every choice (both sides are evaluated: branch-free), and
  ``m.both(c1, c2)`` for "and";
* ``for`` loops over a constant ``range``; tuples as return values.

:func:`bind` gives a copy of a model module whose functions see ``m`` as one backend's namespace:
:data:`PYTHON` (``math``, for host-side computations such as cull radii), :data:`TORCH` (the
functions applied elementwise to tensors: the reference backend) and :func:`numba_namespace`
(each function compiled by Numba and inlined into the ``cpu`` kernels).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["OP_NAMES", "PYTHON", "TORCH", "bind", "numba_namespace"]

OP_NAMES = (
    "exp", "log", "log1p", "expm1", "sqrt", "atan", "asin", "cosh", "erf", "erfc", "lgamma",
    "pow", "abs", "minimum", "maximum", "where", "both",
)  # fmt: skip


def _namespace(name: str, ops: dict[str, Callable[..., Any]]) -> types.ModuleType:
    missing = set(OP_NAMES) - set(ops)
    if missing:
        raise ValueError(f"{name}: missing model operations {sorted(missing)}")
    ns = types.ModuleType(name)
    for key, fn in ops.items():
        setattr(ns, key, fn)
    return ns


def _py_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _py_log(x: float) -> float:
    if x > 0:
        return math.log(x)
    return -math.inf if x == 0 else math.nan


def _py_div_safe_pow(a: float, b: float) -> float:
    try:
        return float(a**b)
    except ZeroDivisionError:
        return math.inf
    except OverflowError:
        return math.inf


PYTHON = _namespace(
    "softras_model_python",
    {
        "exp": _py_exp,
        "log": _py_log,
        "log1p": lambda x: math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan),
        "expm1": lambda x: math.expm1(x) if x < 709 else math.inf,
        "sqrt": lambda x: math.sqrt(x) if x >= 0 else math.nan,
        "atan": math.atan,
        "asin": lambda x: math.asin(min(max(x, -1.0), 1.0)),
        "cosh": lambda x: math.cosh(x) if abs(x) < 710 else math.inf,
        "erf": math.erf,
        "erfc": math.erfc,
        "lgamma": math.lgamma,
        "pow": _py_div_safe_pow,
        "abs": abs,
        "minimum": min,
        "maximum": max,
        "where": lambda c, a, b: a if c else b,
        "both": lambda a, b: a and b,
    },
)
"""Plain Python floats (host-side: cull radii, tests)."""


def _t(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """An elementwise torch function that also accepts Python numbers."""

    def op(*args: Any) -> torch.Tensor:
        like = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if like is None:
            args = tuple(torch.as_tensor(a, dtype=torch.float64) for a in args)
        else:
            args = tuple(
                a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=like.dtype, device=like.device)
                for a in args
            )
        return fn(*args)

    return op


def _torch_where(c: Any, a: Any, b: Any) -> Any:
    """``torch.where`` that takes a Python bool (a parameter test) and Python numbers (as float64,
    or the other side's dtype)."""
    if not isinstance(c, torch.Tensor):
        return a if c else b
    like = a if isinstance(a, torch.Tensor) else b if isinstance(b, torch.Tensor) else None
    dtype = like.dtype if like is not None else torch.float64
    if not isinstance(a, torch.Tensor):
        a = torch.tensor(a, dtype=dtype, device=c.device)
    if not isinstance(b, torch.Tensor):
        b = torch.tensor(b, dtype=dtype, device=c.device)
    return torch.where(c, a, b)


TORCH = _namespace(
    "softras_model_torch",
    {
        "exp": _t(torch.exp),
        "log": _t(torch.log),
        "log1p": _t(torch.log1p),
        "expm1": _t(torch.expm1),
        "sqrt": _t(torch.sqrt),
        "atan": _t(torch.atan),
        "asin": _t(lambda x: torch.asin(x.clamp(-1, 1))),
        "cosh": _t(torch.cosh),
        "erf": _t(torch.erf),
        "erfc": _t(torch.erfc),
        "lgamma": _t(torch.lgamma),
        "pow": _t(torch.pow),
        "abs": _t(torch.abs),
        "minimum": _t(torch.minimum),
        "maximum": _t(torch.maximum),
        "where": lambda c, a, b: _torch_where(c, a, b),
        "both": lambda a, b: a & b if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor) else a and b,
    },
)
"""Tensors, elementwise (the reference backend)."""


def numba_namespace(jit: Callable[[Callable], Callable]) -> types.ModuleType:
    """The operations as Numba functions; ``jit`` compiles one (e.g. ``njit(inline='always')``)."""

    def where(c, a, b):  # pragma: no cover - compiled
        return a if c else b

    def both(a, b):  # pragma: no cover - compiled
        return a and b

    def minimum(a, b):  # pragma: no cover - compiled
        return a if a < b else b

    def maximum(a, b):  # pragma: no cover - compiled
        return a if a > b else b

    def exp(x):  # pragma: no cover - compiled
        return math.exp(x)

    def log(x):  # pragma: no cover - compiled
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)

    def log1p(x):  # pragma: no cover - compiled
        return math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan)

    def expm1(x):  # pragma: no cover - compiled
        return math.expm1(x)

    def sqrt(x):  # pragma: no cover - compiled
        return math.sqrt(x) if x >= 0 else math.nan

    def atan(x):  # pragma: no cover - compiled
        return math.atan(x)

    def asin(x):  # pragma: no cover - compiled
        return math.asin(min(max(x, -1.0), 1.0))

    def cosh(x):  # pragma: no cover - compiled
        return math.cosh(x)

    def erf(x):  # pragma: no cover - compiled
        return math.erf(x)

    def erfc(x):  # pragma: no cover - compiled
        return math.erfc(x)

    def lgamma(x):  # pragma: no cover - compiled
        return math.lgamma(x)

    def pow_(a, b):  # pragma: no cover - compiled
        return a**b

    def abs_(x):  # pragma: no cover - compiled
        return abs(x)

    fns = {
        "where": where, "both": both, "minimum": minimum, "maximum": maximum, "exp": exp, "log": log,
        "log1p": log1p, "expm1": expm1, "sqrt": sqrt, "atan": atan, "asin": asin, "cosh": cosh,
        "erf": erf, "erfc": erfc, "lgamma": lgamma, "pow": pow_, "abs": abs_,
    }  # fmt: skip
    return _namespace("softras_model_numba", {k: jit(v) for k, v in fns.items()})


def bind(
    module: types.ModuleType, ops: types.ModuleType, jit: Callable[[Callable], Callable] | None = None
) -> dict[str, Callable]:
    """The model functions of ``module`` (those listed in its ``MODEL_FUNCTIONS``) with ``m`` bound
    to ``ops``; each is passed through ``jit`` when given. Model functions call each other through
    the bound namespace, so a compiled function calls compiled ones."""
    names = module.MODEL_FUNCTIONS
    scope = dict(vars(module))
    scope["m"] = ops
    bound: dict[str, Callable] = {}
    for name in names:
        fn = getattr(module, name)
        copy = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__qualname__ = fn.__qualname__
        copy.__doc__ = fn.__doc__
        copy.__module__ = fn.__module__
        bound[name] = jit(copy) if jit is not None else copy
    scope.update(bound)
    return bound
