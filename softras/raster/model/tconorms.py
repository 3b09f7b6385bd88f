"""T-conorms: how the coverages D_j of a pixel's faces fold into alpha, written once.

Alpha is the T-conorm S folded over the pixel's faces, α = S(D_1, …, D_n), where S is the dual of
a t-norm T: S(a, b) = 1 − T(1 − a, 1 − b). The Archimedean ones (every family here but ``max``)
have an additive generator t of T, a decreasing map with t(1) = 0, and

    α = 1 − t⁻¹(min(G, t(0))),   G = Σ_j t(S_j),   S_j = 1 − D_j,

so the per-pixel state is the one float64 sum G, the fold is order-free, and the gradient of α
with respect to one face's z_j is exact from the final state, without dividing by anything:

    ∂α/∂z_j = α'(G) · ∂t(S_j)/∂z_j.

Each family is four functions in the restricted style of :mod:`.ops`, of (D, S, f) from the
distribution (f = dD/dz) and the family's parameter p (``t_conorm_p``):

* ``<name>_term(d, s, p)``: t(S_j), the pair's addition to G;
* ``<name>_dterm(d, s, f, p)``: ∂t(S_j)/∂z_j;
* ``<name>_alpha(g, p)``: α from G;
* ``<name>_dalpha(g, p)``: dα/dG (0 where G ≥ t(0): a nilpotent family saturates).

The probabilistic sum (``prod``) is the generator t(s) = −log s; the kernels keep its state as
the product Π S_j = e^(−G) instead, which needs no logarithm. ``max`` keeps the largest D and the
face holding it (ties: the lowest face index); its gradient reaches that face only.

These are the built-in families; :func:`softras.raster.model.register_t_conorm` adds one defined
anywhere. The dispatchers that select a family by its alpha code (``term``, ``alpha``,
``pair_gradient``, ...) are written from the registry (:mod:`.dispatch`).
"""

from __future__ import annotations

__all__ = ["MODEL_FUNCTIONS"]

m = None  # the operations namespace, bound per backend by ops.bind_sources


def _hazard(s, f):
    """f / S, 0 where S = 0 (there G is infinite and α'(G) = 0)."""
    return m.where(s > 0.0, f / m.maximum(s, 1e-300), 0.0)


def _times(dalpha, dterm):
    """dalpha · dterm, 0 where dalpha = 0 (a saturated pixel: dterm may be infinite there)."""
    return m.where(dalpha != 0.0, dalpha * dterm, 0.0)


# ---- probabilistic: t(s) = −log s ----------------------------------------------------------
def probabilistic_term(d, s, p):
    return -m.log(s)


def probabilistic_dterm(d, s, f, p):
    return _hazard(s, f)


def probabilistic_alpha(g, p):
    return -m.expm1(-g)


def probabilistic_dalpha(g, p):
    return m.exp(-g)


# ---- Hamacher (p >= 0): t(s) = log((p + (1 − p)s)/s), p = 0: (1 − s)/s; Einstein is p = 2 ------
def hamacher_term(d, s, p):
    zero = p == 0.0
    odds = d / m.maximum(s, 1e-300)  # ~1e300 where s = 0: alpha 1, dalpha 0
    general = m.log(m.where(zero, 1.0, p + (1.0 - p) * s)) - m.log(s)
    return m.where(zero, odds, general)


def hamacher_dterm(d, s, f, p):
    h = _hazard(s, f)
    zero = p == 0.0
    general = h - (1.0 - p) * f / m.where(zero, 1.0, p + (1.0 - p) * s)
    return m.where(zero, h / m.maximum(s, 1e-300), general)


def hamacher_alpha(g, p):
    den = 1.0 + (p - 1.0) * m.exp(-g)  # > 0 for p > 0
    return m.where(p == 0.0, g / (1.0 + g), -m.expm1(-g) / m.where(den > 0.0, den, 1.0))


def hamacher_dalpha(g, p):
    e = m.exp(-g)
    den = 1.0 + (p - 1.0) * e
    den = m.where(den > 0.0, den, 1.0)
    return m.where(p == 0.0, 1.0 / ((1.0 + g) * (1.0 + g)), p * e / (den * den))


def einstein_term(d, s, p):
    return hamacher_term(d, s, 2.0)


def einstein_dterm(d, s, f, p):
    return hamacher_dterm(d, s, f, 2.0)


def einstein_alpha(g, p):
    return hamacher_alpha(g, 2.0)


def einstein_dalpha(g, p):
    return hamacher_dalpha(g, 2.0)


# ---- Frank (p > 0, p != 1): t(s) = −log((p^s − 1)/(p − 1)) --------------------------------------
def frank_term(d, s, p):
    return -m.log(m.expm1(s * m.log(p)) / (p - 1.0))


def frank_dterm(d, s, f, p):
    x = s * m.log(p)
    ratio = m.where(x != 0.0, x / m.where(x != 0.0, -m.expm1(-x), 1.0), 1.0)  # x/(1 − e^−x) -> 1 as s -> 0
    return _hazard(s, f) * ratio


def frank_alpha(g, p):
    lp = m.log(p)
    return 1.0 - m.log1p((p - 1.0) * m.exp(-g)) / lp


def frank_dalpha(g, p):
    e = (p - 1.0) * m.exp(-g)
    return e / ((1.0 + e) * m.log(p))


# ---- Yager (p > 0): t(s) = (1 − s)^p = D^p, nilpotent (t(0) = 1) -------------------------------
def yager_term(d, s, p):
    return m.pow(d, p)


def yager_dterm(d, s, f, p):
    return m.where(d > 0.0, p * m.pow(m.maximum(d, 1e-300), p - 1.0) * f, 0.0)


def yager_alpha(g, p):
    return m.minimum(m.pow(g, 1.0 / p), 1.0)


def yager_dalpha(g, p):
    inside = m.both(g > 0.0, g < 1.0)
    return m.where(inside, m.pow(m.maximum(g, 1e-300), 1.0 / p - 1.0) / p, 0.0)


# ---- Aczél–Alsina (p > 0): t(s) = (−log s)^p ----------------------------------------------------
def aczel_alsina_term(d, s, p):
    return m.pow(-m.log(s), p)


def aczel_alsina_dterm(d, s, f, p):
    nl = -m.log(s)
    return m.where(nl > 0.0, p * m.pow(m.maximum(nl, 1e-300), p - 1.0) * _hazard(s, f), 0.0)


def aczel_alsina_alpha(g, p):
    return -m.expm1(-m.pow(g, 1.0 / p))


def aczel_alsina_dalpha(g, p):
    r = m.minimum(m.pow(m.maximum(g, 1e-300), 1.0 / p), 800.0)  # e^-800 = 0: saturated
    return m.where(m.both(g > 0.0, r < 800.0), m.exp(-r) * r / (p * m.maximum(g, 1e-300)), 0.0)


# ---- Dombi (p > 0): t(s) = ((1 − s)/s)^p --------------------------------------------------------
def dombi_term(d, s, p):
    return m.pow(d / m.maximum(s, 1e-300), p)


def dombi_dterm(d, s, f, p):
    odds = d / m.maximum(s, 1e-300)
    return m.where(
        m.both(d > 0.0, s > 0.0),
        p * m.pow(m.maximum(odds, 1e-300), p - 1.0) * _hazard(s, f) / m.maximum(s, 1e-300),
        0.0,
    )


def dombi_alpha(g, p):
    r = m.pow(g, 1.0 / p)
    return m.where(r < 1e300, r / (1.0 + r), 1.0)


def dombi_dalpha(g, p):
    r = m.pow(m.maximum(g, 1e-300), 1.0 / p)
    ok = m.both(g > 0.0, r < 1e150)
    return m.where(ok, r / (p * m.maximum(g, 1e-300) * (1.0 + r) * (1.0 + r)), 0.0)


# ---- Schweizer–Sklar (p != 0): t(s) = (1 − s^p)/p, nilpotent for p > 0 ---------------------------
def schweizer_sklar_term(d, s, p):
    return -m.expm1(p * m.log(s)) / p


def schweizer_sklar_dterm(d, s, f, p):
    return m.where(s > 0.0, m.exp(p * m.log(m.maximum(s, 1e-300))) * _hazard(s, f), 0.0)


def schweizer_sklar_alpha(g, p):
    base = m.maximum(1.0 - p * g, 0.0)
    return m.where(base > 0.0, -m.expm1(m.log(m.maximum(base, 1e-300)) / p), 1.0)


def schweizer_sklar_dalpha(g, p):
    base = 1.0 - p * g
    return m.where(base > 0.0, m.exp((1.0 / p - 1.0) * m.log(m.maximum(base, 1e-300))), 0.0)


_FAMILIES = ("probabilistic", "hamacher", "einstein", "frank", "yager", "aczel_alsina", "dombi", "schweizer_sklar")
MODEL_FUNCTIONS = (
    "_hazard",
    "_times",
    *(f"{n}_{part}" for n in _FAMILIES for part in ("term", "dterm", "alpha", "dalpha")),
)


# ---- the built-in alpha aggregation codes: a name's code is its place here (registered T-conorms
# follow); hard 0, sum 1 and max 3 are not Archimedean ----
ORDER = (
    "hard", "sum", "probabilistic", "max", "einstein", "hamacher", "frank", "yager", "aczel_alsina", "dombi",
    "schweizer_sklar",
)  # fmt: skip
ARCHIMEDEAN = ORDER[2:3] + ORDER[4:]
