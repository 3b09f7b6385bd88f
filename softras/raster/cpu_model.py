"""The per-pair model (:mod:`softras.raster.model`) compiled for the ``cpu`` kernels.

A kernel calls :func:`coverage`, :func:`tc_term`, :func:`tc_alpha` and :func:`tc_pair_gradient`
with a family ``code``. Where that code is a compile-time constant (a specialised kernel, see
``cpu_kernels.Variant``), the call is the family's own model function, inlined: the kernel holds
that one family's arithmetic and no dispatch. Where the code is read at run time (the generic
kernel), the call goes to one non-inlined dispatcher that selects the family, so that the
generic kernel's compile does not grow with the number of families.

Codes outside the registry (SoftRas's own coverage, ``-1``, or alpha codes without a generator)
select a stub returning zeros: the kernels never call them, but a specialised kernel's dead
branches still have to type-check.

The UV texture functions (:mod:`softras.raster.model.texture`) take no family code and call no
registry: :func:`texture_functions` binds that one module for Numba, once, and the kernels call
its functions (inlined) by name.

Every call also takes the registry version (:func:`model_version`) as a compile-time constant:
Numba resolves an overload once per argument types, so the version in those types makes a kernel
compiled after a registration (:func:`softras.raster.model.register_distribution`) resolve to the
model of that version, its dispatchers included.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace

from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from softras.raster import model
from softras.raster.model import ops, texture

__all__ = [
    "coverage",
    "model_key",
    "model_version",
    "tc_alpha",
    "tc_pair_gradient",
    "tc_term",
    "texture_functions",
]

_inline = njit(inline="always", error_model="numpy")
_dispatch = njit(error_model="numpy")  # one compiled function each, called (not inlined) by the generic kernel


def model_version() -> int:
    """The registry version (:func:`softras.raster.model.registry_version`): a kernel passes it to
    every model call as a constant, so that a kernel compiled after a registration resolves the
    model calls afresh (Numba caches an overload's implementation per argument types)."""
    return model.registry_version()


def model_key() -> str:
    """The model's source hash: a closure value of every kernel, so that a changed model (a new
    source or a registered family) recompiles the kernels cached on disk."""
    return model.source_hash()


@functools.cache
def _compiled(version: int) -> SimpleNamespace:
    """The model of registry version ``version`` compiled for Numba: the inlined functions by name
    (``bound``), the run-time dispatchers, and the function names of each registered code."""
    if version != model.registry_version():
        raise TypingError(f"the model's registry is at version {model.registry_version()}, not {version}")
    bound = model.bind_model(ops.numba_namespace(_inline), _inline)
    return SimpleNamespace(
        bound=bound,
        evaluate=_dispatch(bound["evaluate"].py_func),
        term=_dispatch(bound["term"].py_func),
        alpha=_dispatch(bound["alpha"].py_func),
        pair_gradient=_dispatch(bound["pair_gradient"].py_func),
        distributions={d.code: d.name for d in model.DISTRIBUTIONS.values()},
        tconorms={t.code: tuple(fn.__name__ for fn in t.functions) for t in model.T_CONORMS.values() if t.functions},
    )


@functools.cache
def texture_functions() -> dict[str, Callable]:
    """The UV texture model (:mod:`softras.raster.model.texture`) bound for Numba, inlined, by name
    (``uv_at``, ``uv_at_vjp``, ``mip_level``, ``mip_level_vjp``, ``mip_blend``, ``texel_xy``,
    ``wrap_index``). Its functions call only each other, so one binding serves every registry
    version; a change of their source recompiles the cached kernels through :func:`model_key`."""
    return ops.bind(texture, ops.numba_namespace(_inline), _inline)


def _constant(code: types.Type) -> int | None:
    """The value of a compile-time constant code, else None."""
    return code.literal_value if isinstance(code, types.IntegerLiteral) else None


def _model(version: types.Type) -> SimpleNamespace:
    """The compiled model of a model call's ``version`` argument, which must be a constant."""
    value = _constant(version)
    if value is None:
        raise TypingError("a model call's version must be a compile-time constant (cpu_model.model_version())")
    return _compiled(value)


def coverage(code, z, shape, shift, version):  # pragma: no cover - replaced by the overload in compiled code
    """(D, 1 − D, dD/dz) of distribution ``code`` at z (:mod:`softras.raster.model.distributions`)."""
    raise NotImplementedError


def tc_term(code, d, s, p, version):  # pragma: no cover - replaced by the overload in compiled code
    """t(S), the pair's addition to the state G of T-conorm ``code`` (an alpha aggregation code)."""
    raise NotImplementedError


def tc_alpha(code, g, p, version):  # pragma: no cover - replaced by the overload in compiled code
    """α from the state G of T-conorm ``code``."""
    raise NotImplementedError


def tc_pair_gradient(code, g, d, s, f, p, version):  # pragma: no cover - replaced by the overload in compiled code
    """∂α/∂z of one pair from the final state G of T-conorm ``code``."""
    raise NotImplementedError


def _choice(code: types.Type, names: dict[int, object], leaf: Callable[[object], Callable]):
    """What a model call compiles to: ``('leaf', fn)``, the inlined model function of a constant code
    in the registry; ``('zero', None)`` for another constant; ``('runtime', None)`` otherwise."""
    value = _constant(code)
    if value is None:
        return "runtime", None
    if value in names:
        return "leaf", leaf(names[value])
    return "zero", None


# Numba needs each implementation's parameter names to match the stub's, hence one per kind.
@overload(coverage, prefer_literal=True, inline="always")
def _coverage_impl(code, z, shape, shift, version):
    compiled = _model(version)
    kind, leaf = _choice(code, compiled.distributions, compiled.bound.__getitem__)
    if kind == "leaf":
        return lambda code, z, shape, shift, version: leaf(z, shape, shift)
    if kind == "zero":
        return lambda code, z, shape, shift, version: (0.0, 0.0, 0.0)
    evaluate = compiled.evaluate
    return lambda code, z, shape, shift, version: evaluate(code, z, shape, shift)


@overload(tc_term, prefer_literal=True, inline="always")
def _tc_term_impl(code, d, s, p, version):
    compiled = _model(version)
    kind, leaf = _choice(code, compiled.tconorms, lambda names: compiled.bound[names[0]])
    if kind == "leaf":
        return lambda code, d, s, p, version: leaf(d, s, p)
    if kind == "zero":
        return lambda code, d, s, p, version: 0.0
    term = compiled.term
    return lambda code, d, s, p, version: term(code, d, s, p)


@overload(tc_alpha, prefer_literal=True, inline="always")
def _tc_alpha_impl(code, g, p, version):
    compiled = _model(version)
    kind, leaf = _choice(code, compiled.tconorms, lambda names: compiled.bound[names[2]])
    if kind == "leaf":
        return lambda code, g, p, version: leaf(g, p)
    if kind == "zero":
        return lambda code, g, p, version: 0.0
    alpha = compiled.alpha
    return lambda code, g, p, version: alpha(code, g, p)


def _pair_gradient_leaf(compiled: SimpleNamespace, names: tuple[str, str, str, str]) -> Callable:
    """α'(G)·∂t(S)/∂z of the T-conorm with functions ``names``, as the model's ``pair_gradient`` forms it."""
    bound = compiled.bound
    dalpha, dterm, times = bound[names[3]], bound[names[1]], bound["_times"]

    @_inline
    def leaf(g, d, s, f, p):  # pragma: no cover - compiled
        return times(dalpha(g, p), dterm(d, s, f, p))

    return leaf


@overload(tc_pair_gradient, prefer_literal=True, inline="always")
def _tc_pair_gradient_impl(code, g, d, s, f, p, version):
    compiled = _model(version)
    kind, leaf = _choice(code, compiled.tconorms, lambda names: _pair_gradient_leaf(compiled, names))
    if kind == "leaf":
        return lambda code, g, d, s, f, p, version: leaf(g, d, s, f, p)
    if kind == "zero":
        return lambda code, g, d, s, f, p, version: 0.0
    pair_gradient = compiled.pair_gradient
    return lambda code, g, d, s, f, p, version: pair_gradient(code, g, d, s, f, p)
