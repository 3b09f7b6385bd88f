"""Coverage distributions: D = F(z) for one (pixel, face) pair, written once.

z = sign·x/σ, with sign = +1 strictly inside the triangle, x = d² or d (``squared_distance``) and
σ = ``sigma_val``. Every distribution is one function ``name(z, shape, shift) -> (D, S, f)``:

* D = F(z), the coverage;
* S = 1 − F(z), computed as its own expression (never as 1 − D), so that it keeps full relative
  precision where D rounds to 1 — the probabilistic T-conorm and the hazards below need it;
* f = F'(z), the density, which every gradient uses.

They follow GenDR's definitions (Petersen et al., CVPR 2022): ``shape`` is the gamma shape k,
``shift`` moves the one-sided families (exponential, gamma, Lévy and their mirrored ``_rev``
forms) by ``shift`` units of σ: they evaluate F at z + shift (``_rev``: 1 − F(shift − z)).
The functions are in the restricted style of :mod:`.ops` (``m.*`` operations, ``m.where`` for
choices), so that the reference, the Numba kernels, the Warp kernels and the host all run this
very source. These are the built-in distributions; :func:`softras.raster.model.register_distribution`
adds one defined anywhere, and ``evaluate(code, z, shape, shift)``, which selects one by its code,
is written from the registry (:mod:`.dispatch`).
"""

from __future__ import annotations

import math

__all__ = ["MODEL_FUNCTIONS"]

_INV_PI = 1.0 / math.pi
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GAMMA_TERMS = 160  # series and continued-fraction steps of the incomplete gamma function

m = None  # the operations namespace, bound per backend by ops.bind_sources


def uniform(z, shape, shift):
    """Uniform on [−1, 1]: D = (z + 1)/2, clamped."""
    d = m.minimum(m.maximum((z + 1.0) * 0.5, 0.0), 1.0)
    s = m.minimum(m.maximum((1.0 - z) * 0.5, 0.0), 1.0)
    f = m.where(m.both(z > -1.0, z < 1.0), 0.5, 0.0)
    return d, s, f


def cubic_hermite(z, shape, shift):
    """Smoothstep on [−1, 1]: y = (z + 1)/2 clamped, D = 3y² − 2y³."""
    y = m.minimum(m.maximum((z + 1.0) * 0.5, 0.0), 1.0)
    r = m.minimum(m.maximum((1.0 - z) * 0.5, 0.0), 1.0)
    return y * y * (3.0 - 2.0 * y), r * r * (3.0 - 2.0 * r), 3.0 * y * r


def wigner_semicircle(z, shape, shift):
    """Wigner semicircle on [−1, 1]: D = 1/2 + (z·√(1 − z²) + asin z)/π."""
    c = m.minimum(m.maximum(z, -1.0), 1.0)
    root = m.sqrt(m.maximum(1.0 - c * c, 0.0))
    d = m.maximum(0.5 + (c * root + m.asin(c)) * _INV_PI, 0.0)
    s = m.maximum(0.5 - (c * root + m.asin(c)) * _INV_PI, 0.0)
    return d, s, 2.0 * _INV_PI * root


def gaussian(z, shape, shift):
    """Standard normal: D = erfc(−z/√2)/2."""
    return 0.5 * m.erfc(-z * _INV_SQRT2), 0.5 * m.erfc(z * _INV_SQRT2), _INV_SQRT_2PI * m.exp(-0.5 * z * z)


def laplace(z, shape, shift):
    """Laplace: D = e^z/2 for z < 0, 1 − e^(−z)/2 otherwise."""
    half = 0.5 * m.exp(-m.abs(z))
    d = m.where(z < 0.0, half, 1.0 - half)
    s = m.where(z < 0.0, 1.0 - half, half)
    return d, s, half


def logistic(z, shape, shift):
    """Logistic (SoftRas): D = 1/(1 + e^(−z))."""
    e = m.exp(-m.abs(z))
    r = 1.0 / (1.0 + e)
    d = m.where(z >= 0.0, r, e * r)
    s = m.where(z >= 0.0, e * r, r)
    return d, s, e * r * r


def gudermannian(z, shape, shift):
    """Hyperbolic secant: D = (2/π)·atan(e^z)."""
    d = 2.0 * _INV_PI * m.atan(m.exp(z))
    s = 2.0 * _INV_PI * m.atan(m.exp(-z))
    return d, s, _INV_PI / m.cosh(z)


def cauchy(z, shape, shift):
    """Cauchy: D = 1/2 + atan(z)/π (the tail as atan(−1/z)/π)."""
    a = m.abs(z)
    tail = m.atan(1.0 / m.maximum(a, 1e-300)) * _INV_PI
    body = 0.5 + m.atan(a) * _INV_PI
    d = m.where(z < 0.0, tail, body)
    s = m.where(z < 0.0, body, tail)
    return d, s, _INV_PI / (1.0 + z * z)


def reciprocal(z, shape, shift):
    """Reciprocal sigmoid: D = 1/2 + z/(2(1 + |z|))."""
    tail = 0.5 / (1.0 + m.abs(z))
    d = m.where(z < 0.0, tail, 1.0 - tail)
    s = m.where(z < 0.0, 1.0 - tail, tail)
    return d, s, 2.0 * tail * tail


def gumbel_max(z, shape, shift):
    """Gumbel (maximum): D = exp(−e^(−z))."""
    e = m.exp(-z)
    return m.exp(-e), -m.expm1(-e), m.exp(-z - e)


def gumbel_min(z, shape, shift):
    """Gumbel (minimum): D = 1 − exp(−e^z)."""
    e = m.exp(z)
    return -m.expm1(-e), m.exp(-e), m.exp(z - e)


def _exponential_at(u):
    """Exponential(1) at u: (F, 1 − F, f), 0 below 0."""
    pos = u > 0.0
    e = m.exp(-m.maximum(u, 0.0))
    return m.where(pos, -m.expm1(-m.maximum(u, 0.0)), 0.0), m.where(pos, e, 1.0), m.where(pos, e, 0.0)


def exponential(z, shape, shift):
    """Exponential: D = 1 − e^(−(z + shift)) for z + shift > 0, else 0."""
    return _exponential_at(z + shift)


def exponential_rev(z, shape, shift):
    """Mirrored exponential: D = e^(−(shift − z)) for z < shift, else 1."""
    p, q, f = _exponential_at(shift - z)
    return q, p, f


def _gamma_at(u, k):
    """Gamma(k, 1) at u: (P, Q, f) with P the regularised lower incomplete gamma function.

    P by its power series where u < k + 1, Q by its continued fraction (modified Lentz) beyond,
    each with a fixed number of steps (:data:`_GAMMA_TERMS`); both are evaluated, one is kept.
    """
    pos = u > 0.0
    x = m.maximum(u, 1e-300)
    log_front = k * m.log(x) - x - m.lgamma(k)
    # series: P = x^k e^-x / Γ(k + 1) · Σ x^n / ((k + 1)…(k + n))
    term = 1.0 / k
    total = term
    n = 0.0  # the step count as a float: every binding's arithmetic stays in floats
    for _ in range(1, _GAMMA_TERMS):
        n = n + 1.0
        term = term * x / (k + n)
        total = total + term
    p_series = m.minimum(m.exp(log_front) * total, 1.0)
    # continued fraction: Q = x^k e^-x / Γ(k) · 1 / (x + 1 − k − 1·(1 − k) / (x + 3 − k − …))
    tiny = 1e-300
    b = x + 1.0 - k
    c = 1.0 / tiny
    d = 1.0 / m.where(m.abs(b) < tiny, tiny, b)
    h = d
    n = 0.0
    for _ in range(1, _GAMMA_TERMS):
        n = n + 1.0
        an = -n * (n - k)
        b = b + 2.0
        d = an * d + b
        d = 1.0 / m.where(m.abs(d) < tiny, tiny, d)
        c = b + an / c
        c = m.where(m.abs(c) < tiny, tiny, c)
        h = h * d * c
    q_fraction = m.minimum(m.exp(log_front) * h, 1.0)
    series = x < k + 1.0
    p = m.where(series, p_series, 1.0 - q_fraction)
    q = m.where(series, 1.0 - p_series, q_fraction)
    f = m.exp(log_front - m.log(x))
    return m.where(pos, p, 0.0), m.where(pos, q, 1.0), m.where(pos, f, 0.0)


def gamma(z, shape, shift):
    """Gamma with shape k = ``shape``: D = P(k, z + shift)."""
    return _gamma_at(z + shift, shape)


def gamma_rev(z, shape, shift):
    """Mirrored gamma: D = 1 − P(k, shift − z)."""
    p, q, f = _gamma_at(shift - z, shape)
    return q, p, f


def _levy_at(u):
    """Lévy (c = 1) at u: (F, 1 − F, f) with F = erfc(√(1/(2u))), 0 below 0."""
    pos = u > 0.0
    x = m.maximum(u, 1e-300)
    r = m.sqrt(0.5 / x)
    f = _INV_SQRT_2PI * m.exp(-0.5 / x - 1.5 * m.log(x))
    return m.where(pos, m.erfc(r), 0.0), m.where(pos, m.erf(r), 1.0), m.where(pos, f, 0.0)


def levy(z, shape, shift):
    """Lévy: D = erfc(√(1/(2(z + shift)))) for z + shift > 0, else 0."""
    return _levy_at(z + shift)


def levy_rev(z, shape, shift):
    """Mirrored Lévy: D = 1 − F(shift − z)."""
    p, q, f = _levy_at(shift - z)
    return q, p, f


MODEL_FUNCTIONS = (
    "uniform", "cubic_hermite", "wigner_semicircle", "gaussian", "laplace", "logistic", "gudermannian",
    "cauchy", "reciprocal", "gumbel_max", "gumbel_min", "_exponential_at", "exponential", "exponential_rev",
    "_gamma_at", "gamma", "gamma_rev", "_levy_at", "levy", "levy_rev",
)  # fmt: skip


# ---- the built-in codes: a distribution's code is its place here (registered ones follow) ----
ORDER = (
    "uniform", "cubic_hermite", "wigner_semicircle", "gaussian", "laplace", "logistic", "gudermannian",
    "cauchy", "reciprocal", "gumbel_max", "gumbel_min", "exponential", "exponential_rev", "gamma",
    "gamma_rev", "levy", "levy_rev",
)  # fmt: skip
