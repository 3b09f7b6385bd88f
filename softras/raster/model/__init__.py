"""The per-pair model of the soft rasterizer, written once: coverage distributions and T-conorms.

The built-in functions live in :mod:`.distributions` and :mod:`.tconorms`, in the restricted style
of :mod:`.ops`; each backend runs that very source through :func:`.ops.bind_sources` (the reference
applies it to tensors, the ``cpu`` kernels inline its Numba compilation, the ``warp`` kernels call
its ``wp.func`` form). This module holds the registry that everything else derives from: the valid
names, the codes the kernels take, each family's parameters and their valid ranges, the
dispatchers (:mod:`.dispatch`, written from the registered codes) and the cull radius of a
distribution.

A new family is one definition in the restricted style (in any module that has a module-level
``m``, as :mod:`.distributions` does) plus one call of :func:`register_distribution` or
:func:`register_t_conorm`. Registration gives it the next code and bumps
:func:`registry_version`; every cache derived from the registry (the bound models, the source hash
that keys the compiled kernels, the cull points, the ``cpu`` and ``warp`` kernels) is keyed by that
version, so the next call sees the new family everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dispatch, distributions, ops, tconorms, texture

__all__ = [
    "ALPHA_AGGREGATIONS",
    "DISTRIBUTIONS",
    "DISTRIBUTION_NAMES",
    "TAILS",
    "T_CONORMS",
    "Distribution",
    "RegistryNames",
    "TConorm",
    "alpha_aggregations",
    "alpha_code",
    "bind_model",
    "check_family",
    "cull_z",
    "dispatch_source",
    "distribution_names",
    "model_sources",
    "python_model",
    "register_distribution",
    "register_t_conorm",
    "registry_tables",
    "registry_version",
    "source_hash",
    "torch_model",
    "warp_model",
]

TAILS = ("finite", "exponential", "heavy")
"""The tail kinds of a distribution (:attr:`Distribution.tail`)."""


@dataclass(frozen=True)
class Distribution:
    """One coverage distribution.

    Attributes:
        name: its option name (``distribution=``), also the function's name.
        code: the code the kernels take (built-ins: their place in ``distributions.ORDER``;
            registered ones follow in registration order).
        tail: ``'finite'`` (support [−1, 1] or one-sided), ``'exponential'`` or ``'heavy'``
            (polynomial tails: the cull radius grows like 1/dist_eps).
        formula: D = F(z) in words, for the docs.
        shape: whether it takes ``dist_shape`` (required, > 0; tests and docs use 2).
        shift: whether it takes ``dist_shift`` (default 0).
        function: ``name(z, shape, shift) -> (D, S, f)`` in the model's restricted style.
    """

    name: str
    code: int
    tail: str
    formula: str
    shape: bool = False
    shift: bool = False
    function: Callable | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class TConorm:
    """One T-conorm (``aggr_func_alpha=``).

    Attributes:
        name: its option name.
        code: its alpha aggregation code (built-ins: their place in ``tconorms.ORDER``; registered
            ones follow in registration order).
        generator: the t-norm generator t(s) (s = 1 − D), for the docs.
        p_range: the valid ``t_conorm_p`` in words, or '' when it takes none.
        p_valid: the test of that range.
        p_example: a valid ``t_conorm_p`` (tests, docs), None when it takes none.
        functions: (term, dterm, alpha, dalpha) in the model's restricted style (see
            :mod:`.tconorms`); None for ``max``, which is not Archimedean.
    """

    name: str
    code: int
    generator: str
    p_range: str = ""
    p_valid: Callable[[float], bool] | None = None
    p_example: float | None = None
    functions: tuple[Callable, Callable, Callable, Callable] | None = field(default=None, repr=False, compare=False)


def _distribution(name: str, tail: str, formula: str, **params: bool) -> Distribution:
    return Distribution(
        name, distributions.ORDER.index(name), tail, formula, **params, function=getattr(distributions, name)
    )


DISTRIBUTIONS: dict[str, Distribution] = {
    d.name: d
    for d in (
        _distribution("uniform", "finite", "(z + 1)/2 on [−1, 1]"),
        _distribution("cubic_hermite", "finite", "3y² − 2y³, y = (z + 1)/2 on [−1, 1]"),
        _distribution("wigner_semicircle", "finite", "1/2 + (z√(1 − z²) + asin z)/π on [−1, 1]"),
        _distribution("gaussian", "exponential", "Φ(z)"),
        _distribution("laplace", "exponential", "e^z/2 (z < 0), 1 − e^−z/2"),
        _distribution("logistic", "exponential", "1/(1 + e^−z) (SoftRas)"),
        _distribution("gudermannian", "exponential", "(2/π)·atan(e^z)"),
        _distribution("cauchy", "heavy", "1/2 + atan(z)/π"),
        _distribution("reciprocal", "heavy", "1/2 + z/(2(1 + abs z))"),
        _distribution("gumbel_max", "exponential", "exp(−e^−z)"),
        _distribution("gumbel_min", "exponential", "1 − exp(−e^z)"),
        _distribution("exponential", "finite", "1 − e^−u, u = z + shift > 0", shift=True),
        _distribution("exponential_rev", "exponential", "e^−u, u = shift − z > 0, else 1", shift=True),
        _distribution("gamma", "finite", "P(k, u), u = z + shift > 0 (k = dist_shape)", shape=True, shift=True),
        _distribution("gamma_rev", "exponential", "1 − P(k, u), u = shift − z", shape=True, shift=True),
        _distribution("levy", "finite", "erfc(√(1/(2u))), u = z + shift > 0", shift=True),
        _distribution("levy_rev", "heavy", "1 − erfc(√(1/(2u))), u = shift − z", shift=True),
    )
}
"""Every distribution but ``heaviside`` (the hard test, ``dist_func='hard'``), by name, in code order;
:func:`register_distribution` adds to it."""


def _tconorm(
    name: str,
    generator: str,
    p_range: str = "",
    p_valid: Callable[[float], bool] | None = None,
    p_example: float | None = None,
) -> TConorm:
    functions = None
    if name in tconorms.ARCHIMEDEAN:
        functions = tuple(getattr(tconorms, f"{name}_{part}") for part in ("term", "dterm", "alpha", "dalpha"))
    return TConorm(name, tconorms.ORDER.index(name), generator, p_range, p_valid, p_example, functions)


T_CONORMS: dict[str, TConorm] = {
    t.name: t
    for t in (
        _tconorm("probabilistic", "−log s (the same as 'prod')"),
        _tconorm("max", "— (max D; not Archimedean)"),
        _tconorm("einstein", "log((2 − s)/s)"),
        _tconorm("hamacher", "log((p + (1 − p)s)/s); p = 0: (1 − s)/s", "p >= 0", lambda p: p >= 0, 0.5),
        _tconorm("frank", "−log((p^s − 1)/(p − 1))", "p > 0, p != 1", lambda p: p > 0 and p != 1, 3.0),
        _tconorm("yager", "(1 − s)^p (nilpotent)", "p > 0", lambda p: p > 0, 2.0),
        _tconorm("aczel_alsina", "(−log s)^p", "p > 0", lambda p: p > 0, 1.5),
        _tconorm("dombi", "((1 − s)/s)^p", "p > 0", lambda p: p > 0, 2.0),
        _tconorm("schweizer_sklar", "(1 − s^p)/p (nilpotent for p > 0)", "p != 0", lambda p: p != 0, -1.5),
    )
}
"""Every T-conorm, by name, in code order (``prod`` is ``probabilistic``); :func:`register_t_conorm`
adds to it."""

_ALPHA_BUILTINS = {"hard": tconorms.ORDER.index("hard"), "sum": tconorms.ORDER.index("sum")}
_version = 0


def registry_version() -> int:
    """The number of registrations so far: every cache derived from the registry is keyed by it."""
    return _version


def distribution_names() -> tuple[str, ...]:
    """Every valid ``distribution=``: ``heaviside`` (the hard test), then :data:`DISTRIBUTIONS`."""
    return ("heaviside", *DISTRIBUTIONS)


def alpha_aggregations() -> tuple[str, ...]:
    """Every valid ``aggr_func_alpha=``: ``hard``, ``sum``, ``prod``, every other T-conorm of
    :data:`T_CONORMS`, then ``probabilistic`` (the same as ``prod``)."""
    return ("hard", "sum", "prod", *(name for name in T_CONORMS if name != "probabilistic"), "probabilistic")


def alpha_code(name: str) -> int:
    """The alpha aggregation code the kernels take for ``aggr_func_alpha=name``."""
    if name in _ALPHA_BUILTINS:
        return _ALPHA_BUILTINS[name]
    return T_CONORMS["probabilistic" if name == "prod" else name].code


class RegistryNames(Sequence[str]):
    """A tuple of names read from the registry at every use (iteration, ``in``, indexing, len):
    a name registered later is in it, also where it was imported before the registration."""

    def __init__(self, names: Callable[[], tuple[str, ...]]) -> None:
        self._names = names

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._names())


DISTRIBUTION_NAMES = RegistryNames(distribution_names)
"""Every valid ``distribution=`` (:func:`distribution_names`), live."""
ALPHA_AGGREGATIONS = RegistryNames(alpha_aggregations)
"""Every valid ``aggr_func_alpha=`` (:func:`alpha_aggregations`), live."""


def _function(what: str, fn: object, params: tuple[str, ...]) -> types.FunctionType:
    """``fn`` when it is a Python function of the parameters ``params`` (by count), else TypeError."""
    if not isinstance(fn, types.FunctionType) or fn.__name__ == "<lambda>":
        raise TypeError(f"{what}: expected a function defined with def, got {fn!r}")
    got = tuple(inspect.signature(fn).parameters)
    if len(got) != len(params) or "code" in got:
        raise TypeError(f"{what}: expected a function of ({', '.join(params)}), got {fn.__name__}{tuple(got)}")
    return fn


def _model_names() -> set[str]:
    """Every function name of the bound model (a registered function may not reuse one)."""
    names = {*distributions.MODEL_FUNCTIONS, *tconorms.MODEL_FUNCTIONS, *dispatch.NAMES}
    names |= {fn.__name__ for fn in _registered_functions()}
    return names


def _registered_functions() -> list[types.FunctionType]:
    """The registered families' functions (those outside the built-in modules), in code order."""
    builtin = {distributions.__name__, tconorms.__name__}
    fns = [d.function for d in DISTRIBUTIONS.values() if d.function is not None]
    fns += [fn for t in T_CONORMS.values() for fn in (t.functions or ())]
    return [fn for fn in fns if fn.__module__ not in builtin]


def _check_new(kind: str, names: tuple[str, ...], taken: set[str]) -> None:
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"{kind}: {name!r} is not a valid name")
        if name in taken:
            raise ValueError(f"{kind}: the name {name!r} is already taken")


def _bump() -> None:
    global _version
    _version += 1


def register_distribution(
    function: Callable, *, tail: str, formula: str, shape: bool = False, shift: bool = False
) -> Distribution:
    """Add a coverage distribution to the registry under its function's name, with the next code.

    Args:
        function: ``name(z, shape, shift) -> (D, S, f)`` written in the restricted style of
            :mod:`.ops` against the global ``m`` of its module (that module sets ``m = None``; each
            backend binds it): D = F(z), S = 1 − F(z) as its own expression, f = F'(z). It may call
            the model's functions (built-in or registered) by name.
        tail: ``'finite'``, ``'exponential'`` or ``'heavy'`` (:attr:`Distribution.tail`).
        formula: D = F(z) in words, for the docs.
        shape: whether it takes ``dist_shape``.
        shift: whether it takes ``dist_shift``.

    Returns:
        The registered :class:`Distribution`; ``distribution=<its name>`` is valid from now on, on
        every backend.
    """
    fn = _function("function", function, ("z", "shape", "shift"))
    if tail not in TAILS:
        raise ValueError(f"tail: expected one of {TAILS}, got {tail!r}")
    _check_new("function", (fn.__name__,), set(distribution_names()) | _model_names())
    code = 1 + max(d.code for d in DISTRIBUTIONS.values())
    spec = Distribution(fn.__name__, code, tail, formula, bool(shape), bool(shift), fn)
    DISTRIBUTIONS[spec.name] = spec
    _bump()
    return spec


def register_t_conorm(
    name: str,
    *,
    term: Callable,
    dterm: Callable,
    alpha: Callable,
    dalpha: Callable,
    generator: str,
    p_range: str = "",
    p_valid: Callable[[float], bool] | None = None,
    p_example: float | None = None,
) -> TConorm:
    """Add an Archimedean T-conorm to the registry under ``name``, with the next alpha code.

    The four functions are written in the restricted style of :mod:`.ops` against the global ``m``
    of their module (see :mod:`.tconorms` for their meaning), each named uniquely in the model:

    Args:
        name: its option name (``aggr_func_alpha=name``).
        term: ``term(d, s, p)``: t(S), the pair's addition to the state G.
        dterm: ``dterm(d, s, f, p)``: ∂t(S)/∂z (f = dD/dz).
        alpha: ``alpha(g, p)``: α from G.
        dalpha: ``dalpha(g, p)``: dα/dG (0 where G >= t(0)).
        generator: the t-norm generator t(s), s = 1 − D, for the docs.
        p_range: the valid ``t_conorm_p`` in words ('' when it takes none).
        p_valid: the test of that range; None when it takes no parameter.
        p_example: a valid ``t_conorm_p`` (tests, docs).

    Returns:
        The registered :class:`TConorm`; ``aggr_func_alpha=name`` is valid from now on, on every
        backend.
    """
    functions = (
        _function("term", term, ("d", "s", "p")),
        _function("dterm", dterm, ("d", "s", "f", "p")),
        _function("alpha", alpha, ("g", "p")),
        _function("dalpha", dalpha, ("g", "p")),
    )
    if p_valid is not None and (not p_range or p_example is None or not p_valid(p_example)):
        raise ValueError(f"p_valid: a parametrised T-conorm needs p_range and a valid p_example, got {p_example!r}")
    _check_new("name", (name,), set(alpha_aggregations()))
    fn_names = tuple(fn.__name__ for fn in functions)
    if len(set(fn_names)) != 4:
        raise ValueError(f"{name}: its four functions need four names, got {fn_names}")
    _check_new("function", fn_names, _model_names())
    code = 1 + max(t.code for t in T_CONORMS.values())
    spec = TConorm(name, code, generator, p_range, p_valid, p_example, functions)
    T_CONORMS[name] = spec
    _bump()
    return spec


def check_family(
    distribution: str, dist_shape: float | None, dist_shift: float | None, t_conorm: str, p: float | None
) -> None:
    """Raise ValueError naming the argument when a family's parameter is missing, extra or out of range."""
    spec = DISTRIBUTIONS.get(distribution)
    takes_shape = spec is not None and spec.shape
    takes_shift = spec is not None and spec.shift
    if takes_shape and (dist_shape is None or not dist_shape > 0 or not math.isfinite(dist_shape)):
        raise ValueError(f"dist_shape: distribution {distribution!r} needs a finite shape > 0, got {dist_shape!r}")
    if not takes_shape and dist_shape is not None:
        raise ValueError(f"dist_shape: distribution {distribution!r} takes no shape parameter, got {dist_shape!r}")
    if not takes_shift and dist_shift is not None:
        raise ValueError(f"dist_shift: distribution {distribution!r} takes no shift, got {dist_shift!r}")
    if dist_shift is not None and not math.isfinite(dist_shift):
        raise ValueError(f"dist_shift: expected a finite number, got {dist_shift!r}")
    tc = T_CONORMS.get(t_conorm)
    if tc is not None and tc.p_valid is not None:
        if p is None or not math.isfinite(p) or not tc.p_valid(p):
            raise ValueError(f"t_conorm_p: aggr_func_alpha={t_conorm!r} needs {tc.p_range}, got {p!r}")
    elif p is not None:
        raise ValueError(f"t_conorm_p: aggr_func_alpha={t_conorm!r} takes no parameter, got {p!r}")


def dispatch_source() -> str:
    """The source of the dispatchers for the registry as it stands (:mod:`.dispatch`)."""
    return _dispatch_source(_version)


@functools.cache
def _dispatch_source(version: int) -> str:
    dists = [(d.code, d.name) for d in DISTRIBUTIONS.values()]
    tcs = [(t.code, tuple(fn.__name__ for fn in t.functions)) for t in T_CONORMS.values() if t.functions]
    return dispatch.source(dists, tcs)  # type: ignore[arg-type]


def model_sources() -> list[ops.Source]:
    """Every model function as :class:`.ops.Source`: the built-in modules, the registered
    functions (one source per defining module) and the dispatchers."""
    sources = [ops.module_source(distributions), ops.module_source(tconorms), ops.module_source(texture)]
    by_module: dict[int, list[types.FunctionType]] = {}
    for fn in _registered_functions():
        by_module.setdefault(id(fn.__globals__), []).append(fn)
    for fns in by_module.values():
        sources.append(ops.Source(fns[0].__module__, fns[0].__globals__, tuple(fns)))
    scope = {"__name__": dispatch.__name__}
    sources.append(ops.Source("dispatch", scope, text=dispatch_source(), names=dispatch.NAMES))
    return sources


def bind_model(namespace: types.ModuleType, jit: Callable[[Callable], Callable] | None = None) -> dict[str, Callable]:
    """Every model function and dispatcher bound to ``namespace`` (:func:`.ops.bind_sources`), by name."""
    return ops.bind_sources(model_sources(), namespace, jit)


def source_hash() -> str:
    """A hash of the model's source: compiled kernels that inline the model are cached under it. It
    covers the model's files, the dispatchers and every registered function's source and constants."""
    return _source_hash(_version)


@functools.cache
def _source_hash(version: int) -> str:
    digest = hashlib.sha256()
    for module in (ops, dispatch, distributions, tconorms, texture):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(dispatch_source().encode())
    for fn in _registered_functions():
        digest.update(inspect.getsource(fn).encode())
        constants = {k: fn.__globals__[k] for k in fn.__code__.co_names if type(fn.__globals__.get(k)) in (int, float)}
        digest.update(repr(sorted(constants.items())).encode())
    return digest.hexdigest()[:16]


def python_model() -> dict[str, Callable]:
    """The model functions on Python floats (host-side)."""
    return _python_model(_version)


@functools.cache
def _python_model(version: int) -> dict[str, Callable]:
    return bind_model(ops.PYTHON)


def torch_model() -> dict[str, Callable]:
    """The model functions on tensors, elementwise (the reference backend)."""
    return _torch_model(_version)


@functools.cache
def _torch_model(version: int) -> dict[str, Callable]:
    return bind_model(ops.TORCH)


def warp_model(scalar: type) -> dict[str, Callable]:
    """The model functions as ``wp.func`` functions on ``scalar`` (``wp.float32`` or ``wp.float64``: the
    ``warp`` kernels); needs NVIDIA Warp."""
    return _warp_model(scalar, _version)


@functools.cache
def _warp_model(scalar: type, version: int) -> dict[str, Callable]:
    import warp as wp

    return bind_model(ops.warp_namespace(scalar), wp.func)


def cull_z(distribution: str, dist_eps: float, shape: float, shift: float) -> float:
    """The z at and below which D <= ``dist_eps``: pairs outside a face further than the distance
    this z stands for are culled. Finite supports give their exact edge (where D reaches
    dist_eps), other tails the quantile F⁻¹(dist_eps), found by bisection of the model's own D
    (so that the rule cannot drift from the function). Returns 0 or more when no outside pair
    reaches dist_eps (D(0) <= dist_eps). Cached: settings are rebuilt at every call of the
    original's modules, and the bisection evaluates D a few hundred times."""
    return _cull_z(_version, distribution, dist_eps, shape, shift)


@functools.lru_cache(maxsize=256)
def _cull_z(version: int, distribution: str, dist_eps: float, shape: float, shift: float) -> float:
    evaluate = python_model()["evaluate"]
    code = DISTRIBUTIONS[distribution].code

    def coverage(z: float) -> float:
        return evaluate(code, z, shape, shift)[0]

    if coverage(0.0) <= dist_eps:
        return 0.0
    lo = -1.0
    while coverage(lo) > dist_eps:
        lo *= 2.0
        if lo < -1e300:
            raise ValueError(f"dist_eps: distribution {distribution!r} never falls to {dist_eps} (too small)")
    hi = lo / 2.0 if lo < -1.0 else 0.0
    for _ in range(200):  # D(lo) <= eps < D(hi)
        mid = 0.5 * (lo + hi)
        if coverage(mid) <= dist_eps:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * abs(lo):
            break
    return lo


def registry_tables(dist_eps: float = 1e-4) -> str:
    """The two Markdown tables of docs/families.md, from the registries: every distribution (its D,
    tail, parameters and the cull point z where D falls to ``dist_eps``) and every T-conorm."""
    rows = [
        "| distribution | D = F(z) | tail | parameters | cull at z (dist_eps = 1e-4) |",
        "|---|---|---|---|---|",
        "| `heaviside` | 1 inside the closed triangle, else 0 (`dist_func='hard'`) | — | — | — |",
    ]
    for d in DISTRIBUTIONS.values():
        params = ", ".join(p for p, used in (("dist_shape", d.shape), ("dist_shift", d.shift)) if used) or "—"
        shape = 2.0 if d.shape else 0.0
        rows.append(f"| `{d.name}` | {d.formula} | {d.tail} | {params} | {cull_z(d.name, dist_eps, shape, 0.0):.6g} |")
    rows += ["", "| aggr_func_alpha | t-norm generator t(s), s = 1 − D | t_conorm_p |", "|---|---|---|"]
    rows.append("| `hard` | — (1 where any D > 0.5) | — |")
    rows.append("| `sum` | — (Σ D / F) | — |")
    for t in T_CONORMS.values():
        rows.append(f"| `{t.name}` | {t.generator} | {t.p_range or '—'} |")
    return "\n".join(rows)
