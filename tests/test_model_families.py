"""The per-pair model's families against outside oracles and their own derivatives.

Distributions against SciPy's (``scipy.stats``) where SciPy has them; every distribution's
density against a finite difference of its D, and S against 1 − D; every T-conorm against its
pairwise definition (the dual of the named t-norm) and its gradient against finite differences.
Each is run through every binding of the one source: plain Python, tensors (the reference),
Numba (the ``cpu`` kernels) and Warp (the ``warp`` kernels, float64; when Warp is installed).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats as st
import torch
from numba import njit

from softras.raster import model
from softras.raster.model import ops

SHAPE, SHIFT = 2.5, 0.3
ZS = np.array([-40.0, -6.0, -2.5, -1.0, -0.99, -0.5, -0.1, 0.0, 0.05, 0.4, 0.9, 1.2, 3.0, 7.0, 35.0])


def _params(name: str) -> tuple[float, float]:
    spec = model.DISTRIBUTIONS[name]
    return (SHAPE if spec.shape else 0.0), (SHIFT if spec.shift else 0.0)


def _scipy(name: str, z: np.ndarray, shape: float, shift: float):
    """(cdf, sf, pdf) from SciPy, or None where SciPy has no such distribution."""
    direct = {
        "uniform": st.uniform(loc=-1, scale=2),
        "wigner_semicircle": st.semicircular(),
        "gaussian": st.norm(),
        "laplace": st.laplace(),
        "logistic": st.logistic(),
        "gudermannian": st.hypsecant(),
        "cauchy": st.cauchy(),
        "gumbel_max": st.gumbel_r(),
        "gumbel_min": st.gumbel_l(),
    }
    if name in direct:
        d = direct[name]
        return d.cdf(z), d.sf(z), d.pdf(z)
    base = {"exponential": st.expon(), "gamma": st.gamma(shape), "levy": st.levy()}
    if name in base:
        d = base[name]
        return d.cdf(z + shift), d.sf(z + shift), d.pdf(z + shift)
    if name.endswith("_rev") and name[:-4] in base:
        d = base[name[:-4]]
        return d.sf(shift - z), d.cdf(shift - z), d.pdf(shift - z)
    return None


NUMBA = model.bind_model(ops.numba_namespace(njit), njit)
HAS_WARP = importlib.util.find_spec("warp") is not None


@functools.cache
def _warp_kernels():
    """Kernels applying the Warp binding (float64) elementwise: (D, S, f) of a distribution; t, α and
    ∂α/∂z of a T-conorm; log1p, expm1 and lgamma of the Warp namespace."""
    import warp as wp

    wp.init()
    C = wp.float64
    fns = model.warp_model(C)
    evaluate, term, alpha, pair_gradient = fns["evaluate"], fns["term"], fns["alpha"], fns["pair_gradient"]
    ns = ops.warp_namespace(C)
    log1p, expm1, lgamma = ns.log1p, ns.expm1, ns.lgamma
    vector, matrix = wp.array(dtype=C), wp.array2d(dtype=C)

    def kernel(**types):
        """wp.kernel with the argument types given here (this file's annotations are strings)."""

        def make(fn):
            fn.__annotations__ = types
            return wp.kernel(enable_backward=False, module="unique")(fn)

        return make

    @kernel(code=int, z=vector, shape=C, shift=C, out=matrix)
    def distribution(code, z, shape, shift, out):
        i = wp.tid()
        d, s, f = evaluate(code, z[i], shape, shift)
        out[i, 0] = d
        out[i, 1] = s
        out[i, 2] = f

    @kernel(code=int, p=C, args=matrix, out=matrix)
    def tconorm(code, p, args, out):
        i = wp.tid()
        d = args[i, 0]
        s = args[i, 1]
        g = args[i, 2]
        out[i, 0] = term(code, d, s, p)
        out[i, 1] = alpha(code, g, p)
        out[i, 2] = pair_gradient(code, g, d, s, args[i, 3], p)

    @kernel(x=vector, out=matrix)
    def special(x, out):
        i = wp.tid()
        out[i, 0] = log1p(x[i])
        out[i, 1] = expm1(x[i])
        out[i, 2] = lgamma(wp.abs(x[i]))

    def run(kernel, n, *inputs):
        out = wp.zeros((n, 3), dtype=C, device="cpu")
        wp.launch(kernel, n, inputs=[*inputs, out], device="cpu")
        return out.numpy()

    return SimpleNamespace(
        distribution=lambda code, z, shape, shift: run(
            distribution, len(z), code, wp.array(z, dtype=C, device="cpu"), shape, shift
        ),
        tconorm=lambda code, p, args: run(tconorm, len(args), code, p, wp.array(args, dtype=C, device="cpu")),
        special=lambda x: run(special, len(x), wp.array(x, dtype=C, device="cpu")),
    )


def _all_bindings(name: str, z: np.ndarray, shape: float, shift: float) -> dict[str, np.ndarray]:
    code = model.DISTRIBUTIONS[name].code
    py = np.array([model.python_model()["evaluate"](code, float(v), shape, shift) for v in z])
    tt = torch.stack(model.torch_model()["evaluate"](code, torch.tensor(z, dtype=torch.float64), shape, shift), -1)
    nb = np.array([NUMBA["evaluate"](code, float(v), shape, shift) for v in z])
    values = {"python": py, "torch": tt.numpy(), "numba": nb}
    if HAS_WARP:
        values["warp"] = _warp_kernels().distribution(code, z, shape, shift)
    return values


@pytest.mark.parametrize("name", list(model.DISTRIBUTIONS))
def test_distribution_against_scipy_and_itself(name):
    shape, shift = _params(name)
    values = _all_bindings(name, ZS, shape, shift)
    d, s, f = values["python"].T
    for label, other in values.items():
        np.testing.assert_allclose(other, values["python"], rtol=1e-12, atol=1e-300, err_msg=f"{name}: {label} binding")
    assert np.all((d >= 0) & (d <= 1) & (s >= 0) & (s <= 1) & (f >= 0)), name
    assert np.all(np.diff(d) >= 0), f"{name}: D not monotonic"
    np.testing.assert_allclose(d + s, 1.0, atol=1e-14, err_msg=f"{name}: D + S")
    oracle = _scipy(name, ZS, shape, shift)
    if oracle is not None:
        cdf, sf, pdf = oracle
        np.testing.assert_allclose(d, cdf, rtol=1e-9, atol=1e-300, err_msg=f"{name}: D vs scipy")
        np.testing.assert_allclose(s, sf, rtol=1e-9, atol=1e-300, err_msg=f"{name}: S vs scipy")
        smooth = ~np.isin(ZS, (-1.0, 1.0))  # the density at a support edge is a convention
        np.testing.assert_allclose(f[smooth], pdf[smooth], rtol=1e-9, atol=1e-300, err_msg=f"{name}: f vs scipy")
    # the density is the derivative of D (central differences, away from kinks)
    evaluate = model.python_model()["evaluate"]
    code = model.DISTRIBUTIONS[name].code
    for z in (-2.2, -0.7, 0.13, 0.61, 2.9):
        h = 1e-6
        fd = (evaluate(code, z + h, shape, shift)[0] - evaluate(code, z - h, shape, shift)[0]) / (2 * h)
        assert evaluate(code, z, shape, shift)[2] == pytest.approx(fd, rel=1e-5, abs=1e-9), (name, z)


@pytest.mark.parametrize("name", list(model.DISTRIBUTIONS))
def test_cull_z_is_where_coverage_reaches_dist_eps(name):
    shape, shift = _params(name)
    evaluate = model.python_model()["evaluate"]
    code = model.DISTRIBUTIONS[name].code
    for eps in (1e-4, 1e-2):
        z = model.cull_z(name, eps, shape, shift)
        assert evaluate(code, z, shape, shift)[0] <= eps
        if z < 0:
            assert evaluate(code, z * (1 - 1e-9) + 1e-12, shape, shift)[0] >= eps * (1 - 1e-6)


def _pairwise(name: str, a: float, b: float, p: float) -> float:
    """The T-conorm of two coverages from the textbook t-norm T: S(a, b) = 1 − T(1 − a, 1 − b)."""
    x, y = 1 - a, 1 - b
    if name == "probabilistic":
        t = x * y
    elif name == "einstein":
        t = x * y / (2 - (x + y - x * y))
    elif name == "hamacher":
        t = 0.0 if p == 0 and x == y == 0 else x * y / (p + (1 - p) * (x + y - x * y))
    elif name == "frank":
        t = math.log1p((p**x - 1) * (p**y - 1) / (p - 1)) / math.log(p)
    elif name == "yager":
        t = max(0.0, 1 - ((1 - x) ** p + (1 - y) ** p) ** (1 / p))
    elif name == "aczel_alsina":
        t = math.exp(-(((-math.log(x)) ** p + (-math.log(y)) ** p) ** (1 / p)))
    elif name == "dombi":
        t = 1 / (1 + (((1 - x) / x) ** p + ((1 - y) / y) ** p) ** (1 / p))
    elif name == "schweizer_sklar":
        t = max(0.0, x**p + y**p - 1) ** (1 / p)
    else:
        raise AssertionError(name)
    return 1 - t


T_PARAMS = {"hamacher": (0.0, 0.5, 3.0), "frank": (0.3, 4.0), "yager": (0.7, 2.0), "aczel_alsina": (0.6, 2.5),
            "dombi": (0.5, 2.0), "schweizer_sklar": (-2.0, -0.5, 0.7)}  # fmt: skip
ARCHIMEDEAN = [(n, p) for n in model.tconorms.ARCHIMEDEAN for p in T_PARAMS.get(n, (0.0,))]


@pytest.mark.parametrize(("name", "p"), ARCHIMEDEAN)
def test_tconorm_fold_equals_its_pairwise_definition(name, p):
    fns = model.python_model()
    code = model.T_CONORMS[name].code
    rng = np.random.default_rng(3)
    for _ in range(20):
        ds = rng.uniform(0.01, 0.9, size=3)
        g = sum(fns["term"](code, d, 1 - d, p) for d in ds)
        folded = _pairwise(name, _pairwise(name, ds[0], ds[1], p), ds[2], p)
        assert fns["alpha"](code, g, p) == pytest.approx(folded, abs=1e-12), (name, p, ds)


@pytest.mark.parametrize(("name", "p"), ARCHIMEDEAN)
def test_tconorm_gradient_from_the_final_state(name, p):
    """∂α/∂z_j from G alone equals a finite difference of α in z_j (logistic coverages)."""
    fns = model.python_model()
    code = model.T_CONORMS[name].code
    logistic = model.DISTRIBUTIONS["logistic"].code

    def alpha(zs):
        g = 0.0
        for z in zs:
            d, s, _ = fns["evaluate"](logistic, z, 0.0, 0.0)
            g += fns["term"](code, d, s, p)
        return fns["alpha"](code, g, p)

    zs = [-1.3, 0.4, -0.2]
    g = sum(fns["term"](code, *fns["evaluate"](logistic, z, 0.0, 0.0)[:2], p) for z in zs)
    for j, z in enumerate(zs):
        d, s, f = fns["evaluate"](logistic, z, 0.0, 0.0)
        exact = fns["pair_gradient"](code, g, d, s, f, p)
        h = 1e-6
        up, down = list(zs), list(zs)
        up[j] += h
        down[j] -= h
        assert exact == pytest.approx((alpha(up) - alpha(down)) / (2 * h), rel=1e-5, abs=1e-10), (name, p, j)


@pytest.mark.skipif(not HAS_WARP, reason="needs NVIDIA Warp")
@pytest.mark.parametrize(("name", "p"), ARCHIMEDEAN)
def test_tconorm_warp_binding(name, p):
    """The Warp binding (float64) of t, α and ∂α/∂z equals the Python one."""
    fns = model.python_model()
    code = model.T_CONORMS[name].code
    rng = np.random.default_rng(4)
    d = np.concatenate([rng.uniform(0.0, 1.0, 30), [0.0, 1.0, 1e-12, 1 - 1e-12]])
    args = np.stack([d, 1 - d, rng.uniform(0.0, 4.0, len(d)), rng.uniform(0.0, 2.0, len(d))], -1)
    want = np.array([
        (fns["term"](code, a, b, p), fns["alpha"](code, g, p), fns["pair_gradient"](code, g, a, b, f, p))
        for a, b, g, f in args.tolist()
    ])  # fmt: skip
    got = _warp_kernels().tconorm(code, p, args)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=f"{name}, p={p}")


@pytest.mark.skipif(not HAS_WARP, reason="needs NVIDIA Warp")
def test_warp_special_functions():
    """Warp's log1p, expm1 (no builtins) against math's; lgamma to 1e-13 of its scale (x > 0)."""
    x = np.concatenate([np.logspace(-300, 2.8, 80), -np.logspace(-300, -1e-9, 40), [0.0, -1.0, 1.0, 2.0]])
    got = _warp_kernels().special(x)
    with np.errstate(divide="ignore"):
        log1p = np.array([math.log1p(v) if v > -1 else -math.inf for v in x])
    expm1 = np.array([math.expm1(v) for v in x])
    np.testing.assert_allclose(got[:, 0], log1p, rtol=4e-16, atol=0)
    np.testing.assert_allclose(got[:, 1], expm1, rtol=4e-16, atol=0)
    pos = x > 0
    lgamma = np.array([math.lgamma(v) for v in x[pos]])
    np.testing.assert_allclose(got[pos, 2], lgamma, rtol=1e-13, atol=1e-13 * (1 + np.abs(np.log(x[pos])).max()))


def test_tconorm_saturation_is_finite():
    """A face with D = 1 exactly (finite support) saturates alpha to 1 with zero gradient, no NaN."""
    fns = model.python_model()
    for name, p in ARCHIMEDEAN:
        code = model.T_CONORMS[name].code
        g = fns["term"](code, 1.0, 0.0, p) + fns["term"](code, 0.3, 0.7, p)
        assert fns["alpha"](code, g, p) == pytest.approx(1.0, abs=1e-12), name
        assert fns["pair_gradient"](code, g, 0.3, 0.7, 0.2, p) == pytest.approx(0.0, abs=1e-12), name
        assert math.isfinite(fns["pair_gradient"](code, g, 1.0, 0.0, 0.0, p)), name


def test_parameters_are_checked_by_name():
    with pytest.raises(ValueError, match="dist_shape"):
        model.check_family("gamma", None, None, "probabilistic", None)
    with pytest.raises(ValueError, match="dist_shape"):
        model.check_family("logistic", 2.0, None, "probabilistic", None)
    with pytest.raises(ValueError, match="dist_shift"):
        model.check_family("gaussian", None, 1.0, "probabilistic", None)
    with pytest.raises(ValueError, match=r"t_conorm_p.*p > 0, p != 1"):
        model.check_family("logistic", None, None, "frank", 1.0)
    with pytest.raises(ValueError, match="t_conorm_p"):
        model.check_family("logistic", None, None, "yager", None)
    with pytest.raises(ValueError, match=r"t_conorm_p.*takes no parameter"):
        model.check_family("logistic", None, None, "einstein", 2.0)
