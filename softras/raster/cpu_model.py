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
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from numba import njit, types
from numba.extending import overload

from softras.raster.model import distributions, ops, source_hash, tconorms

__all__ = ["MODEL_KEY", "coverage", "tc_alpha", "tc_pair_gradient", "tc_term"]

_inline = njit(inline="always", error_model="numpy")
_BOUND = {
    **ops.bind(distributions, ops.numba_namespace(_inline), _inline),
    **ops.bind(tconorms, ops.numba_namespace(_inline), _inline),
}
_dispatch = njit(error_model="numpy")  # one compiled function each, called (not inlined) by the generic kernel
_evaluate = _dispatch(_BOUND["evaluate"].py_func)
_term = _dispatch(_BOUND["term"].py_func)
_alpha = _dispatch(_BOUND["alpha"].py_func)
_pair_gradient = _dispatch(_BOUND["pair_gradient"].py_func)

#: A closure value of every kernel, so that a changed model recompiles the kernels cached on disk.
MODEL_KEY = source_hash()


def _constant(code: types.Type) -> int | None:
    """The value of a compile-time constant code, else None."""
    return code.literal_value if isinstance(code, types.IntegerLiteral) else None


def coverage(code, z, shape, shift):  # pragma: no cover - replaced by the overload in compiled code
    """(D, 1 − D, dD/dz) of distribution ``code`` at z (:mod:`softras.raster.model.distributions`)."""
    raise NotImplementedError


def tc_term(code, d, s, p):  # pragma: no cover - replaced by the overload in compiled code
    """t(S), the pair's addition to the state G of T-conorm ``code`` (an alpha aggregation code)."""
    raise NotImplementedError


def tc_alpha(code, g, p):  # pragma: no cover - replaced by the overload in compiled code
    """α from the state G of T-conorm ``code``."""
    raise NotImplementedError


def tc_pair_gradient(code, g, d, s, f, p):  # pragma: no cover - replaced by the overload in compiled code
    """∂α/∂z of one pair from the final state G of T-conorm ``code``."""
    raise NotImplementedError


def _choice(code: types.Type, names: tuple[str | None, ...], leaf: Callable[[str], Callable]):
    """What a model call compiles to: ``('leaf', fn)``, the inlined model function of a constant code
    in the registry; ``('zero', None)`` for another constant; ``('runtime', None)`` otherwise."""
    value = _constant(code)
    if value is None:
        return "runtime", None
    if 0 <= value < len(names) and names[value] is not None:
        return "leaf", leaf(names[value])
    return "zero", None


def _tconorm_names() -> tuple[str | None, ...]:
    """The T-conorm with a generator at each alpha code, None where there is none."""
    return tuple(name if name in tconorms.ARCHIMEDEAN else None for name in tconorms.ORDER)


# Numba needs each implementation's parameter names to match the stub's, hence one per kind.
@overload(coverage, prefer_literal=True, inline="always")
def _coverage_impl(code, z, shape, shift):
    kind, leaf = _choice(code, distributions.ORDER, _BOUND.__getitem__)
    if kind == "leaf":
        return lambda code, z, shape, shift: leaf(z, shape, shift)
    if kind == "zero":
        return lambda code, z, shape, shift: (0.0, 0.0, 0.0)
    return lambda code, z, shape, shift: _evaluate(code, z, shape, shift)


@overload(tc_term, prefer_literal=True, inline="always")
def _tc_term_impl(code, d, s, p):
    kind, leaf = _choice(code, _tconorm_names(), lambda name: _BOUND[f"{name}_term"])
    if kind == "leaf":
        return lambda code, d, s, p: leaf(d, s, p)
    if kind == "zero":
        return lambda code, d, s, p: 0.0
    return lambda code, d, s, p: _term(code, d, s, p)


@overload(tc_alpha, prefer_literal=True, inline="always")
def _tc_alpha_impl(code, g, p):
    kind, leaf = _choice(code, _tconorm_names(), lambda name: _BOUND[f"{name}_alpha"])
    if kind == "leaf":
        return lambda code, g, p: leaf(g, p)
    if kind == "zero":
        return lambda code, g, p: 0.0
    return lambda code, g, p: _alpha(code, g, p)


@functools.cache
def _pair_gradient_leaf(name: str) -> Callable:
    """α'(G)·∂t(S)/∂z of T-conorm ``name``, as the model's ``pair_gradient`` forms it."""
    dalpha, dterm, times = _BOUND[f"{name}_dalpha"], _BOUND[f"{name}_dterm"], _BOUND["_times"]

    @_inline
    def leaf(g, d, s, f, p):  # pragma: no cover - compiled
        return times(dalpha(g, p), dterm(d, s, f, p))

    return leaf


@overload(tc_pair_gradient, prefer_literal=True, inline="always")
def _tc_pair_gradient_impl(code, g, d, s, f, p):
    kind, leaf = _choice(code, _tconorm_names(), _pair_gradient_leaf)
    if kind == "leaf":
        return lambda code, g, d, s, f, p: leaf(g, d, s, f, p)
    if kind == "zero":
        return lambda code, g, d, s, f, p: 0.0
    return lambda code, g, d, s, f, p: _pair_gradient(code, g, d, s, f, p)
