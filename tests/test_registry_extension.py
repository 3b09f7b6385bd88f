"""An addition is an addition: a family defined here, registered, runs everywhere.

This file defines a coverage distribution (``triangular``, the symmetric triangular law on
[−1, 1]) and an Archimedean T-conorm (``ali_mikhail_haq``) in the model's restricted style, each
one definition plus one registration call (:func:`register`), and runs them through what the
built-in families go through: the settings' validation, the model's functions on every binding
against independent computations (SciPy, the pairwise definition, finite differences), the
``reference``, ``cpu`` (generic and specialised kernels) and ``warp`` backends against each other,
gradcheck in float64, and determinism.

Registering changes the process's registry, so the tests that need the new families run in a
fresh interpreter: :func:`test_registered_families_in_a_fresh_interpreter` runs this file again
under pytest with :data:`INNER` set, where a module fixture registers the families (after
rendering once with the generic ``cpu`` kernels, so that they are proven to pick up the new
codes). The rest of the suite never sees them.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import scipy.stats as st
import torch

from softras.raster import RasterSettings, available_backends, model, rasterize_channels, soft_rasterize

from .scenes import random_scene

INNER = "SOFTRAS_TEST_REGISTRY_EXTENSION"
"""Set (to 1) in the fresh interpreter that registers the families and runs the tests below."""
inner = pytest.mark.skipif(os.environ.get(INNER) != "1", reason="runs in a fresh interpreter (see the module doc)")
BACKENDS = ["reference", "cpu", *(["warp"] if "warp" in available_backends() else [])]

m = None  # the operations namespace, bound per backend by the model's bindings


# ---- the distribution: triangular on [−1, 1] ------------------------------------------------
def triangular(z, shape, shift):
    """Triangular on [−1, 1]: D = (1 + z)²/2 for z < 0, 1 − (1 − z)²/2 otherwise, f = 1 − |z|."""
    c = m.minimum(m.maximum(z, -1.0), 1.0)
    lo = 0.5 * (1.0 + c) * (1.0 + c)
    hi = 0.5 * (1.0 - c) * (1.0 - c)
    d = m.where(c < 0.0, lo, 1.0 - hi)
    s = m.where(c < 0.0, 1.0 - lo, hi)
    f = m.where(m.both(z > -1.0, z < 1.0), 1.0 - m.abs(c), 0.0)
    return d, s, f


# ---- the T-conorm: Ali–Mikhail–Haq, t(s) = log((1 − p(1 − s))/s), −1 <= p < 1 ----------------
def amh_term(d, s, p):
    """t(S) = log(1 − p·D) − log S."""
    return m.log1p(-p * d) - m.log(s)


def amh_dterm(d, s, f, p):
    """∂t(S)/∂z = f/S − p·f/(1 − p·D) (f/S is 0 where S = 0: there α'(G) = 0)."""
    hazard = m.where(s > 0.0, f / m.maximum(s, 1e-300), 0.0)
    return hazard - p * f / (1.0 - p * d)


def amh_alpha(g, p):
    """α = 1 − t⁻¹(G) = (1 − e^−G)/(1 − p·e^−G)."""
    return -m.expm1(-g) / (1.0 - p * m.exp(-g))


def amh_dalpha(g, p):
    """dα/dG = (1 − p)·e^−G/(1 − p·e^−G)²."""
    e = m.exp(-g)
    den = 1.0 - p * e
    return (1.0 - p) * e / (den * den)


def register() -> tuple[model.Distribution, model.TConorm]:
    """The two registration calls."""
    dist = model.register_distribution(triangular, tail="finite", formula="(1 + z)²/2 (z < 0), 1 − (1 − z)²/2")
    tc = model.register_t_conorm(
        "ali_mikhail_haq",
        term=amh_term,
        dterm=amh_dterm,
        alpha=amh_alpha,
        dalpha=amh_dalpha,
        generator="log((1 − p(1 − s))/s)",
        p_range="-1 <= p < 1",
        p_valid=lambda p: -1.0 <= p < 1.0,
        p_example=-0.5,
    )
    return dist, tc


# ---- the outer test: everything below in a fresh interpreter ---------------------------------
@pytest.mark.heavy(400)
@pytest.mark.skipif(os.environ.get(INNER) == "1", reason="the inner run itself")
def test_registered_families_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """This file's inner tests pass in an interpreter where the two families are registered."""
    root = Path(__file__).resolve().parents[1]
    report = tmp_path / "inner.xml"
    env = {**os.environ, INNER: "1", "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pytest", str(Path(__file__)), "-x", "-q", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*command, f"--junitxml={report}"], cwd=root, env=env, capture_output=True, text=True, timeout=3000
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    suite = ElementTree.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == 0 and counts["skipped"] == 1, counts  # this test is skipped
    assert counts["tests"] - counts["skipped"] >= 15, counts


# ---- the inner tests --------------------------------------------------------------------------
SCENE = {"sigma_val": 1e-3, "gamma_val": 1e-2, "dist_eps": 1e-5, "with_depth": True}


def _render(backend: str, distribution: str, alpha: str, seed: int, squared: bool) -> tuple[torch.Tensor, ...]:
    """Outputs and gradients of a small float64 scene (surface texels, vertex attributes, depth)."""
    fv, tex = random_scene(batch=2, faces=10, texture_type="surface", seed=seed)
    vert = torch.rand(2, 10, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    kwargs: dict[str, object] = {"distribution": distribution, "aggr_func_alpha": alpha}
    tc = model.T_CONORMS.get(alpha)
    if tc is not None and tc.p_example is not None:
        kwargs["t_conorm_p"] = tc.p_example
    s = RasterSettings.create((12, 15), squared_distance=squared, **SCENE, **kwargs)
    f, v, t = (x.clone().requires_grad_(True) for x in (fv, vert, tex))
    r = rasterize_channels(f, s, surface=t, vertex=v, backend=backend)
    weights = torch.linspace(0, 1, r.channels.numel(), dtype=torch.float64).reshape(r.channels.shape)
    ((r.channels * weights).sum() + (r.alpha**2).sum() + 0.1 * r.depth.sum()).backward()
    return tuple(x.detach() for x in (r.channels, r.alpha, r.depth, f.grad, v.grad, t.grad))


@pytest.fixture(scope="module")
def registered() -> tuple[model.Distribution, model.TConorm]:
    """The families registered, after one render with the generic ``cpu`` kernels (their model calls
    resolved for the registry without the new families)."""
    version = model.registry_version()
    kernels = os.environ.get("SOFTRAS_CPU_KERNELS")
    os.environ["SOFTRAS_CPU_KERNELS"] = "generic"
    try:
        _render("cpu", "gaussian", "einstein", seed=0, squared=False)
    finally:
        if kernels is None:
            del os.environ["SOFTRAS_CPU_KERNELS"]
        else:
            os.environ["SOFTRAS_CPU_KERNELS"] = kernels
    dist, tc = register()
    assert model.registry_version() == version + 2
    return dist, tc


@inner
def test_registration_assigns_codes_and_names(registered) -> None:
    dist, tc = registered
    assert dist.code == 1 + max(d.code for d in model.DISTRIBUTIONS.values() if d.name != "triangular")
    assert tc.code == 1 + max(t.code for t in model.T_CONORMS.values() if t.name != "ali_mikhail_haq")
    assert model.alpha_code("ali_mikhail_haq") == tc.code
    assert "`triangular`" in model.registry_tables() and "`ali_mikhail_haq`" in model.registry_tables()
    from softras.raster import settings

    from . import options

    assert "triangular" in settings.DISTRIBUTIONS and "ali_mikhail_haq" in settings.ALPHA_AGGREGATIONS
    assert options.SOFTRAS_ALPHA_AGGREGATIONS == ("hard", "sum", "prod")
    with pytest.raises(ValueError, match="already taken"):
        model.register_distribution(triangular, tail="finite", formula="again")
    with pytest.raises(ValueError, match="already taken"):
        model.register_t_conorm(
            "einstein", term=amh_term, dterm=amh_dterm, alpha=amh_alpha, dalpha=amh_dalpha, generator=""
        )


@inner
def test_settings_validate_the_new_names(registered) -> None:
    s = RasterSettings(distribution="triangular", aggr_func_alpha="ali_mikhail_haq", t_conorm_p=0.3)
    assert s.family[0] == registered[0].code
    assert s.cull_threshold > 0
    # the finite support's edge: D = dist_eps at z = −1 + √(2·dist_eps)
    z = model.cull_z("triangular", 1e-4, 0.0, 0.0)
    assert z == pytest.approx(-1.0 + math.sqrt(2e-4), rel=1e-9)
    with pytest.raises(ValueError, match="t_conorm_p"):
        RasterSettings(aggr_func_alpha="ali_mikhail_haq", t_conorm_p=1.0)
    with pytest.raises(ValueError, match="t_conorm_p"):
        RasterSettings(aggr_func_alpha="ali_mikhail_haq")
    with pytest.raises(ValueError, match="'triangular'"):  # the list of valid names has it
        RasterSettings(distribution="trapezoidal")
    with pytest.raises(ValueError, match="'ali_mikhail_haq'"):
        RasterSettings(aggr_func_alpha="clayton")


@functools.cache
def _bindings() -> dict[str, object]:
    """Elementwise (code, z) -> (D, S, f) and (code, d, s, g, f, p) -> (t, α, ∂α/∂z) per binding,
    on NumPy arrays; made (the Numba binding compiled) once, after the registration."""
    from numba import njit

    from softras.raster.model import ops

    py, tt = model.python_model(), model.torch_model()
    nb = model.bind_model(ops.numba_namespace(njit), njit)

    def scalar(fns):
        return {
            "dist": lambda code, z: np.array([fns["evaluate"](code, float(v), 0.0, 0.0) for v in z]),
            "tc": lambda code, p, a: np.array(
                [
                    (
                        fns["term"](code, r[0], r[1], p),
                        fns["alpha"](code, r[2], p),
                        fns["pair_gradient"](code, r[2], r[0], r[1], r[3], p),
                    )
                    for r in a
                ]
            ),
        }

    def tensor(code, z):
        return torch.stack(tt["evaluate"](code, torch.tensor(z, dtype=torch.float64), 0.0, 0.0), -1).numpy()

    def tensor_tc(code, p, a):
        d, s, g, f = (torch.tensor(a[:, i], dtype=torch.float64) for i in range(4))
        out = (tt["term"](code, d, s, p), tt["alpha"](code, g, p), tt["pair_gradient"](code, g, d, s, f, p))
        return torch.stack(out, -1).numpy()

    bindings = {"python": scalar(py), "torch": {"dist": tensor, "tc": tensor_tc}, "numba": scalar(nb)}
    if "warp" in available_backends():
        from .test_model_families import _warp_kernels

        warp = _warp_kernels()
        bindings["warp"] = {
            "dist": lambda code, z: warp.distribution(code, z, 0.0, 0.0),
            "tc": lambda code, p, a: warp.tconorm(code, p, a),
        }
    return bindings


ZS = np.array([-3.0, -1.0, -0.999, -0.7, -0.25, -1e-3, 0.0, 0.1, 0.5, 0.93, 1.0, 2.5])


@inner
def test_distribution_against_scipy_on_every_binding(registered) -> None:
    """D, S and f against SciPy's triangular law, S = 1 − D, and f against finite differences of D."""
    code = registered[0].code
    law = st.triang(c=0.5, loc=-1.0, scale=2.0)
    inside = (ZS > -1) & (ZS < 1)
    for name, binding in _bindings().items():
        out = binding["dist"](code, ZS)
        np.testing.assert_allclose(out[:, 0], law.cdf(ZS), rtol=1e-14, atol=1e-16, err_msg=name)
        np.testing.assert_allclose(out[:, 1], law.sf(ZS), rtol=1e-14, atol=1e-16, err_msg=name)
        np.testing.assert_allclose(out[:, 1], 1.0 - out[:, 0], rtol=0, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(out[inside, 2], law.pdf(ZS[inside]), rtol=1e-14, atol=1e-16, err_msg=name)
        h = 1e-6
        zs = ZS[inside & (np.abs(ZS) > 2 * h) & (np.abs(np.abs(ZS) - 1) > 2 * h)]
        fd = (binding["dist"](code, zs + h)[:, 0] - binding["dist"](code, zs - h)[:, 0]) / (2 * h)
        np.testing.assert_allclose(binding["dist"](code, zs)[:, 2], fd, rtol=1e-7, atol=1e-9, err_msg=name)


def _amh_pairwise(a: np.ndarray, b: np.ndarray, p: float) -> np.ndarray:
    """S(a, b) = 1 − T(1 − a, 1 − b) with the Ali–Mikhail–Haq t-norm T(x, y) = xy/(1 − p(1 − x)(1 − y))."""
    x, y = 1.0 - a, 1.0 - b
    return 1.0 - x * y / (1.0 - p * (1.0 - x) * (1.0 - y))


@inner
@pytest.mark.parametrize("p", [-1.0, -0.5, 0.0, 0.6, 0.95])
def test_t_conorm_against_its_definition_on_every_binding(registered, p: float) -> None:
    """α(t(S_1) + t(S_2)) is the pairwise T-conorm; ∂α/∂z_j matches finite differences through the
    triangular distribution; and α equals Hamacher's with parameter 1 − p (the same family)."""
    dist, tc = registered
    rng = np.random.default_rng(3)
    za, zb = rng.uniform(-0.95, 0.95, 12), rng.uniform(-0.95, 0.95, 12)
    py = model.python_model()
    for name, binding in _bindings().items():
        da, sa, fa = binding["dist"](dist.code, za).T
        db, sb, _ = binding["dist"](dist.code, zb).T
        ta = binding["tc"](tc.code, p, np.stack([da, sa, np.zeros_like(da), fa], -1))[:, 0]
        tb = binding["tc"](tc.code, p, np.stack([db, sb, np.zeros_like(db), fa], -1))[:, 0]
        g = ta + tb
        out = binding["tc"](tc.code, p, np.stack([da, sa, g, fa], -1))
        np.testing.assert_allclose(out[:, 1], _amh_pairwise(da, db, p), rtol=1e-12, atol=1e-15, err_msg=name)
        hamacher = np.array([py["alpha"](model.alpha_code("hamacher"), v, 1.0 - p) for v in g])
        np.testing.assert_allclose(out[:, 1], hamacher, rtol=1e-12, atol=1e-15, err_msg=name)
        h = 1e-6

        def alpha_at(z: np.ndarray, binding: dict = binding, tb: np.ndarray = tb) -> np.ndarray:
            d, s, _ = binding["dist"](dist.code, z).T
            t = binding["tc"](tc.code, p, np.stack([d, s, np.zeros_like(d), np.zeros_like(d)], -1))[:, 0]
            return np.array([py["alpha"](tc.code, v, p) for v in t + tb])

        fd = (alpha_at(za + h) - alpha_at(za - h)) / (2 * h)
        np.testing.assert_allclose(out[:, 2], fd, rtol=1e-6, atol=1e-9, err_msg=name)


@inner
@pytest.mark.parametrize(
    ("kernels", "distribution", "alpha"),
    [
        ("generic", "triangular", "ali_mikhail_haq"),
        ("generic", "triangular", "prod"),
        ("generic", "gaussian", "ali_mikhail_haq"),
        ("specialised", "triangular", "ali_mikhail_haq"),  # one variant inlines both new families
    ],
)
def test_kernels_equal_reference(registered, monkeypatch, kernels: str, distribution: str, alpha: str) -> None:
    """Every output and gradient of the cpu (generic and specialised kernels) and warp backends
    equals the reference's (the tolerances of tests/test_families.py). Each specialised variant is
    a kernel compile, so one variant holds both new families."""
    monkeypatch.setenv("SOFTRAS_CPU_KERNELS", kernels)
    seed, squared = 11, distribution == "gaussian"
    ref = _render("reference", distribution, alpha, seed, squared)
    assert ref[1].max() > 0.5  # the scene is covered
    for backend in ["cpu", *(["warp"] if kernels == "generic" and "warp" in BACKENDS else [])]:
        got = _render(backend, distribution, alpha, seed, squared)
        for a, b in zip(got, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=f"{backend} ({kernels})")


@inner
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(registered, backend: str) -> None:
    """d(RGBA)/d(face vertices, vertex colours) equals finite differences (float64)."""
    fv, tex = random_scene(batch=1, faces=3, texture_type="vertex", seed=5, size=1.0)
    fv.requires_grad_(True)
    tex.requires_grad_(True)

    def render(f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return soft_rasterize(
            f, t, (4, 5), sigma_val=4e-2, gamma_val=3e-2, texture_type="vertex", near=1.0, far=6.0, dist_eps=1e-7,
            background_color=(0.3, 0.5, 0.7), backend=backend, squared_distance=False, distribution="triangular",
            aggr_func_alpha="ali_mikhail_haq", t_conorm_p=-0.5,
        )  # fmt: skip

    assert torch.autograd.gradcheck(render, (fv, tex), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


@inner
@pytest.mark.parametrize("backend", BACKENDS)
def test_deterministic(registered, backend: str) -> None:
    """A repeated render and its gradients are bit-identical."""
    first = _render(backend, "triangular", "ali_mikhail_haq", seed=13, squared=False)
    second = _render(backend, "triangular", "ali_mikhail_haq", seed=13, squared=False)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b), backend
