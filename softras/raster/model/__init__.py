"""The per-pair model of the soft rasterizer, written once: coverage distributions and T-conorms.

The functions live in :mod:`.distributions` and :mod:`.tconorms`, in the restricted style of
:mod:`.ops`; each backend runs that very source through :func:`.ops.bind` (the reference applies
it to tensors, the ``cpu`` kernels inline its Numba compilation, the ``warp`` kernels call its
``wp.func`` form). This module holds the
registries that everything else derives from: the valid names, the codes the kernels take, each
family's parameters and their valid ranges, and the cull radius of a distribution.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import distributions, ops, tconorms

__all__ = [
    "DISTRIBUTIONS",
    "T_CONORMS",
    "Distribution",
    "TConorm",
    "check_family",
    "cull_z",
    "python_model",
    "source_hash",
    "torch_model",
    "warp_model",
]


@dataclass(frozen=True)
class Distribution:
    """One coverage distribution of :mod:`.distributions`.

    Attributes:
        name: its option name (``distribution=``), also the function's name.
        code: the code the kernels take (its place in ``distributions.ORDER``).
        tail: ``'finite'`` (support [−1, 1] or one-sided), ``'exponential'`` or ``'heavy'``
            (polynomial tails: the cull radius grows like 1/dist_eps).
        formula: D = F(z) in words, for the docs.
        shape: whether it takes ``dist_shape`` (required, > 0; tests and docs use 2).
        shift: whether it takes ``dist_shift`` (default 0).
    """

    name: str
    code: int
    tail: str
    formula: str
    shape: bool = False
    shift: bool = False


@dataclass(frozen=True)
class TConorm:
    """One T-conorm (``aggr_func_alpha=``) of :mod:`.tconorms`.

    Attributes:
        name: its option name.
        code: its alpha aggregation code (its place in ``tconorms.ORDER``).
        generator: the t-norm generator t(s) (s = 1 − D), for the docs.
        p_range: the valid ``t_conorm_p`` in words, or '' when it takes none.
        p_valid: the test of that range.
        p_example: a valid ``t_conorm_p`` (tests, docs), None when it takes none.
    """

    name: str
    code: int
    generator: str
    p_range: str = ""
    p_valid: Callable[[float], bool] | None = None
    p_example: float | None = None


def _distribution(name: str, tail: str, formula: str, **params: bool) -> Distribution:
    return Distribution(name, distributions.ORDER.index(name), tail, formula, **params)


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
"""Every distribution but ``heaviside`` (the hard test, ``dist_func='hard'``), by name."""

DISTRIBUTION_NAMES = ("heaviside", *DISTRIBUTIONS)


def _tconorm(
    name: str,
    generator: str,
    p_range: str = "",
    p_valid: Callable[[float], bool] | None = None,
    p_example: float | None = None,
) -> TConorm:
    return TConorm(name, tconorms.ORDER.index(name), generator, p_range, p_valid, p_example)


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
"""Every T-conorm, by name (``prod`` is ``probabilistic``)."""


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


@functools.cache
def source_hash() -> str:
    """A hash of the model's source files: compiled kernels that inline the model are cached under it."""
    digest = hashlib.sha256()
    for module in (ops, distributions, tconorms):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def python_model() -> dict[str, Callable]:
    """The model functions on Python floats (host-side)."""
    return {**ops.bind(distributions, ops.PYTHON), **ops.bind(tconorms, ops.PYTHON)}


@functools.cache
def torch_model() -> dict[str, Callable]:
    """The model functions on tensors, elementwise (the reference backend)."""
    return {**ops.bind(distributions, ops.TORCH), **ops.bind(tconorms, ops.TORCH)}


@functools.cache
def warp_model(scalar: type) -> dict[str, Callable]:
    """The model functions as ``wp.func`` functions on ``scalar`` (``wp.float32`` or ``wp.float64``: the
    ``warp`` kernels); needs NVIDIA Warp."""
    import warp as wp

    namespace = ops.warp_namespace(scalar)
    return {**ops.bind(distributions, namespace, wp.func), **ops.bind(tconorms, namespace, wp.func)}


@functools.lru_cache(maxsize=256)
def cull_z(distribution: str, dist_eps: float, shape: float, shift: float) -> float:
    """The z at and below which D <= ``dist_eps``: pairs outside a face further than the distance
    this z stands for are culled. Finite supports give their exact edge (where D reaches
    dist_eps), other tails the quantile F⁻¹(dist_eps), found by bisection of the model's own D
    (so that the rule cannot drift from the function). Returns 0 or more when no outside pair
    reaches dist_eps (D(0) <= dist_eps). Cached: settings are rebuilt at every call of the
    original's modules, and the bisection evaluates D a few hundred times."""
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
