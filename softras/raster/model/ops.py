"""The operations a model function may use, bound to each backend's arithmetic.

Model functions (:mod:`.distributions`, :mod:`.tconorms`) are written once, in a restricted
Python style, against a namespace called ``m``:

* arithmetic operators and comparisons on scalars;
* ``m.exp``, ``m.log``, ``m.log1p``, ``m.expm1``, ``m.sqrt``, ``m.atan``, ``m.asin``, ``m.cosh``,
  ``m.erf``, ``m.erfc``, ``m.lgamma``, ``m.pow``, ``m.abs``, ``m.minimum``, ``m.maximum``,
  ``m.floor`` (a float);
* ``m.where(cond, a, b)`` for every choice (both sides are evaluated: branch-free), and
  ``m.both(c1, c2)`` for "and";
* ``for`` loops over a constant ``range``; tuples as return values;
* floats and ints are not mixed in one operation (a float counter where a loop index would be).

:func:`bind` gives a copy of a model module whose functions see ``m`` as one backend's namespace:
:data:`PYTHON` (``math``, for host-side computations such as cull radii), :data:`TORCH` (the
functions applied elementwise to tensors: the reference backend), :func:`numba_namespace`
(each function compiled by Numba and inlined into the ``cpu`` kernels) and :func:`warp_namespace`
(each function a ``wp.func`` of one float type, called by the ``warp`` kernels).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import linecache
import math
import sys
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "OP_NAMES",
    "PYTHON",
    "TORCH",
    "Source",
    "bind",
    "bind_sources",
    "module_source",
    "numba_namespace",
    "warp_namespace",
]

OP_NAMES = (
    "exp", "log", "log1p", "expm1", "sqrt", "atan", "asin", "cosh", "erf", "erfc", "lgamma",
    "pow", "abs", "minimum", "maximum", "floor", "where", "both",
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
        "floor": lambda x: float(math.floor(x)) if math.isfinite(x) else x,
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
        "floor": _t(torch.floor),
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

    def floor(x):  # pragma: no cover - compiled
        return float(math.floor(x))

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
        "where": where, "both": both, "minimum": minimum, "maximum": maximum, "floor": floor, "exp": exp, "log": log,
        "log1p": log1p, "expm1": expm1, "sqrt": sqrt, "atan": atan, "asin": asin, "cosh": cosh,
        "erf": erf, "erfc": erfc, "lgamma": lgamma, "pow": pow_, "abs": abs_,
    }  # fmt: skip
    return _namespace("softras_model_numba", {k: jit(v) for k, v in fns.items()})


def warp_namespace(scalar: type) -> types.ModuleType:
    """The operations as Warp builtins and ``wp.func`` functions on ``scalar`` (``wp.float32`` or
    ``wp.float64``). :func:`bind` with this namespace gives ``wp.func`` functions of that type (it rewrites
    the model's source for Warp, see :func:`_warp_source`); pass ``jit=wp.func``.

    Warp has no ``log1p``, ``expm1`` or ``lgamma``: they are written here (accurate to a few ulps;
    ``lgamma`` for x > 0, the only use of the model: the gamma shape)."""
    import warp as wp

    C = scalar
    # Stirling's series of log Γ(x) for x >= 16: (x − 1/2) log x − x + log(2π)/2 + Σ B_2k / (2k(2k − 1) x^(2k−1)).
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    b1, b2, b3, b4 = 1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0
    b5, b6, b7 = 1.0 / 1188.0, -691.0 / 360360.0, 1.0 / 156.0

    @wp.func
    def log1p(x: C):
        """log(1 + x) with the rounding of 1 + x corrected: log(u)·x/(u − 1), u = 1 + x."""
        u = C(1.0) + x
        if u == C(1.0):
            return x
        if wp.isinf(u):
            return u
        return wp.log(u) * (x / (u - C(1.0)))

    @wp.func
    def expm1(x: C):
        """e^x − 1 by Kahan's correction: (u − 1)·x/log u, u = e^x."""
        u = wp.exp(x)
        if u == C(1.0):
            return x
        um1 = u - C(1.0)
        if um1 == C(-1.0) or wp.isinf(u):
            return um1
        return um1 * (x / wp.log(u))

    @wp.func
    def lgamma(x: C):
        """log Γ(x), x > 0: the recurrence Γ(x) = Γ(x + n)/(x(x + 1)…(x + n − 1)) up to x + n >= 16,
        then Stirling's series (relative error ~1e-16 in float64)."""
        y = x
        prod = C(1.0)
        while y < C(16.0):
            prod = prod * y
            y = y + C(1.0)
        r = C(1.0) / y
        r2 = r * r
        series = r * (C(b1) + r2 * (C(b2) + r2 * (C(b3) + r2 * (C(b4) + r2 * (C(b5) + r2 * (C(b6) + r2 * C(b7)))))))
        return (y - C(0.5)) * wp.log(y) - y + C(half_log_2pi) + series - wp.log(prod)

    @wp.func
    def both(a: bool, b: bool):
        return a and b

    ops = {
        "exp": wp.exp, "log": wp.log, "log1p": log1p, "expm1": expm1, "sqrt": wp.sqrt, "atan": wp.atan,
        "asin": wp.asin, "cosh": wp.cosh, "erf": wp.erf, "erfc": wp.erfc, "lgamma": lgamma, "pow": wp.pow,
        "abs": wp.abs, "minimum": wp.min, "maximum": wp.max, "floor": wp.floor, "where": wp.where, "both": both,
    }  # fmt: skip
    ns = _namespace(f"softras_model_warp_{C.__name__}", ops)
    ns.scalar = C  # marks a Warp namespace: bind rewrites the model's source for it
    return ns


_WARP_SCALAR = "_warp_scalar"  # the name the rewritten source calls the float type by
_FINITE = {  # the smallest normal and the largest finite value of each float type
    "float32": (1.1754943508222875e-38, 3.4028234663852886e38),
    "float64": (sys.float_info.min, sys.float_info.max),
}


class _WarpFloats(ast.NodeTransformer):
    """Every float literal and every module-level float constant becomes ``_warp_scalar(value)``:
    Warp types a bare Python float as float32, and converts a literal by that call to the target
    type without rounding through float32. Nonzero values beyond the type's normal range are
    clamped into it (the model's 1e-300 floors and 1e300 caps stay positive and finite in float32)."""

    def __init__(self, constants: dict[str, float], scalar: str) -> None:
        self.constants = constants
        self.tiny, self.huge = _FINITE[scalar]

    def _wrap(self, value: float, node: ast.AST) -> ast.AST:
        if value != 0.0 and math.isfinite(value):
            value = math.copysign(min(max(abs(value), self.tiny), self.huge), value)
        call = ast.Call(ast.Name(_WARP_SCALAR, ast.Load()), [ast.Constant(value)], [])
        return ast.copy_location(call, node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is float:
            return self._wrap(node.value, node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.constants:
            return self._wrap(self.constants[node.id], node)
        return node


@dataclass(frozen=True)
class Source:
    """Model functions that share one scope: a model module's, or the generated dispatchers'.

    Attributes:
        label: a name for error messages and for the file name of rewritten source.
        scope: the globals the functions see before binding (their module's); :func:`bind_sources`
            adds ``m`` and every bound model function.
        functions: functions defined in Python; Warp reads each one's source (``inspect.getsource``).
        text: source defining further functions (the dispatchers of :mod:`.dispatch`).
        names: the functions ``text`` defines, in order.
    """

    label: str
    scope: Mapping[str, Any]
    functions: tuple[types.FunctionType, ...] = ()
    text: str = ""
    names: tuple[str, ...] = ()


def module_source(module: types.ModuleType) -> Source:
    """The model functions of ``module`` (those listed in its ``MODEL_FUNCTIONS``)."""
    return Source(module.__name__, vars(module), tuple(getattr(module, n) for n in module.MODEL_FUNCTIONS))


def _source_text(source: Source) -> str:
    """The Python source of every function of ``source``, functions first, then ``text``."""
    parts = [textwrap.dedent(inspect.getsource(fn)) for fn in source.functions]
    return "\n\n".join([*parts, source.text])


def _warp_source(source: Source, scope: dict[str, Any], scalar: type) -> dict[str, types.FunctionType]:
    """The functions of ``source``, recompiled in ``scope`` from their source rewritten for Warp
    (:class:`_WarpFloats`) and annotated (floats: ``scalar``; the ``code`` of a dispatcher: int).
    The rewritten source is registered in :mod:`linecache` under its own name (Warp reads a
    function's source through :mod:`inspect`); it is deterministic, so Warp's kernel cache keeps."""
    names = [fn.__name__ for fn in source.functions] + list(source.names)
    tree = ast.parse(_source_text(source))
    constants = {k: v for k, v in source.scope.items() if type(v) is float}
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in set(names)]
    for node in defs:
        node.decorator_list = []
    rewritten = ast.fix_missing_locations(
        _WarpFloats(constants, scalar.__name__).visit(ast.Module(body=defs, type_ignores=[]))
    )
    text = ast.unparse(rewritten) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    filename = f"<softras model {source.label} for warp {scalar.__name__} {digest}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    scope[_WARP_SCALAR] = scalar
    exec(compile(text, filename, "exec"), scope)  # the model's own source, rewritten
    functions = {}
    for name in names:
        fn = scope[name]
        params = inspect.signature(fn).parameters
        fn.__annotations__ = {arg: int if arg == "code" else scalar for arg in params}
        functions[name] = fn
    return functions


def _python_functions(source: Source, scope: dict[str, Any]) -> dict[str, types.FunctionType]:
    """The functions of ``source`` as copies that read their globals from ``scope``."""
    functions = {}
    for fn in source.functions:
        copy = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__qualname__ = fn.__qualname__
        copy.__doc__ = fn.__doc__
        copy.__module__ = fn.__module__
        functions[fn.__name__] = copy
    if source.text:
        digest = hashlib.sha256(source.text.encode()).hexdigest()[:12]
        filename = f"<softras model {source.label} {digest}>"
        linecache.cache[filename] = (len(source.text), None, source.text.splitlines(True), filename)
        exec(compile(source.text, filename, "exec"), scope)
        functions.update({name: scope[name] for name in source.names})
    return functions


def bind_sources(
    sources: Sequence[Source], ops: types.ModuleType, jit: Callable[[Callable], Callable] | None = None
) -> dict[str, Callable]:
    """The functions of every source with ``m`` bound to ``ops``, each passed through ``jit`` when
    given. Every source's scope also sees every bound function by its name, so model functions
    call each other (across sources too) through the binding: a compiled function calls compiled
    ones. A Warp namespace (:func:`warp_namespace`) gets the functions recompiled from source
    rewritten for Warp. Raises ValueError when two sources define the same name."""
    scalar = getattr(ops, "scalar", None)
    bound: dict[str, Callable] = {}
    scopes = []
    for source in sources:
        scope = dict(source.scope)
        scope["m"] = ops
        scopes.append(scope)
        if scalar is not None:
            functions = _warp_source(source, scope, scalar)
        else:
            functions = _python_functions(source, scope)
        for name, fn in functions.items():
            if name in bound:
                raise ValueError(f"{source.label}: the model already has a function named {name!r}")
            bound[name] = jit(fn) if jit is not None else fn
    for scope in scopes:
        scope.update(bound)
    return bound


def bind(
    module: types.ModuleType, ops: types.ModuleType, jit: Callable[[Callable], Callable] | None = None
) -> dict[str, Callable]:
    """The model functions of one ``module`` (its ``MODEL_FUNCTIONS``) bound to ``ops``
    (:func:`bind_sources`)."""
    return bind_sources([module_source(module)], ops, jit)
