"""The tie and boundary rules (docs/robustness.md) hold on every backend.

Each case is one of the disagreements a fuzz probe found between backends (the repros of issue
14), reduced to a scene whose expected answer is known exactly.
"""

from __future__ import annotations

import pytest
import torch

from softras.raster import RasterSettings, rasterize_channels
from softras.raster.backends import available_backends
from softras.raster.contract import pixel_centers

from .helpers import assert_grad_close
from .options import DIST_FUNCS

BACKENDS = [b for b in ("reference", "cpu", "warp") if b in available_backends()]
F64 = torch.float64


def _tri(z: float | list[float], *, x0: float = -0.5, y0: float = -0.5) -> torch.Tensor:
    """One counter-clockwise triangle [1, 1, 3, 3] with first vertex (x0, y0)."""
    zs = [z] * 3 if isinstance(z, float) else z
    return torch.tensor([[[[x0, y0, zs[0]], [0.6, -0.4, zs[1]], [0.1, 0.7, zs[2]]]]], dtype=F64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("plane", ["near", "far"])
def test_a_face_exactly_on_the_near_or_far_plane_is_inside(backend: str, plane: str) -> None:
    near, far = 1.6866737543045118, 2.4408794541900454  # the repro's planes: 1/z sums round either way
    fv = _tri(near if plane == "near" else far)
    s = RasterSettings.create(9, near=near, far=far, dist_func="hard", aggr_func_rgb="hard", with_zbuffer=True)
    out = rasterize_channels(fv, s, vertex=torch.ones(1, 1, 3, 1, dtype=F64), backend=backend)
    covered = out.alpha[0, 0] > 0
    assert covered.sum() > 10
    assert (out.face_id[0][covered] == 0).all()  # coloured, and the z-buffer's
    assert torch.allclose(out.channels[0, 0][covered], torch.ones(()).to(F64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_vertex_on_a_pixel_centre_is_on_the_boundary(backend: str) -> None:
    h = w = 8
    x0 = float(pixel_centers(w, flip=False, dtype=F64, device="cpu")[2])
    y0 = float(pixel_centers(h, flip=True, dtype=F64, device="cpu")[5])
    fv = _tri(2.0, x0=x0, y0=y0)
    row, col = 5, 2
    # closed tests (hard coverage, z-buffer): the vertex's pixel is inside
    s = RasterSettings.create((h, w), dist_func="hard", aggr_func_alpha="hard", with_zbuffer=True)
    out = rasterize_channels(fv, s, backend=backend)
    assert out.alpha[0, 0, row, col] == 1 and out.face_id[0, row, col] == 0
    bary = out.barycentrics[0, :, row, col]
    torch.testing.assert_close(bary, torch.tensor([1.0, 0.0, 0.0], dtype=F64), rtol=0, atol=1e-12)
    # strict tests (Euclidean / barycentric sign): on the boundary, D = sigmoid(0) = 0.5, hard alpha 0
    for dist_func in ("euclidean", "barycentric"):
        s = RasterSettings.create((h, w), dist_func=dist_func, aggr_func_alpha="hard", sigma_val=1e-4)
        assert rasterize_channels(fv, s, backend=backend).alpha[0, 0, row, col] == 0
        s = RasterSettings.create((h, w), dist_func=dist_func, aggr_func_alpha="sum", sigma_val=1e-4)
        alpha = rasterize_channels(fv, s, backend=backend).alpha[0, 0, row, col]
        torch.testing.assert_close(alpha, torch.tensor(0.5, dtype=F64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_faces_tie_to_the_lowest_index(backend: str) -> None:
    fv = torch.cat([_tri(2.0), _tri(3.0), _tri(2.0)], dim=1)  # faces 0 and 2 identical, 1 behind
    colours = torch.tensor([0.25, 0.5, 0.75], dtype=F64)[None, :, None, None].expand(1, 3, 3, 1).contiguous()
    s = RasterSettings.create(9, dist_func="hard", aggr_func_rgb="hard", with_zbuffer=True)
    out = rasterize_channels(fv, s, vertex=colours, backend=backend)
    covered = out.face_id[0] >= 0
    assert covered.sum() > 10 and (out.face_id[0][covered] == 0).all()
    torch.testing.assert_close(out.channels[0, 0][covered], torch.full((int(covered.sum()),), 0.25, dtype=F64))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "reference"])
def test_float32_gradients_do_not_amplify_rounding_at_tiny_gamma(backend: str) -> None:
    g = torch.Generator().manual_seed(5)
    fv = torch.cat([torch.rand(1, 12, 3, 2, generator=g, dtype=F64) * 1.6 - 0.8,
                    1.7 + 0.7 * torch.rand(1, 12, 3, 1, generator=g, dtype=F64)], -1)  # fmt: skip
    colours = torch.rand(1, 12, 3, 3, generator=g, dtype=F64)
    upstream = torch.randn(1, 3, 24, 24, generator=g, dtype=F64)
    s = RasterSettings.create(24, near=1.69, far=2.44, sigma_val=7e-6, gamma_val=1e-7)  # γ·(far − near) ~ 1e-7

    def grad(dtype: torch.dtype, name: str) -> torch.Tensor:
        v = fv.float().to(dtype).requires_grad_(True)  # the same (float32) inputs in both dtypes
        out = rasterize_channels(v, s, vertex=colours.float().to(dtype), backend=name)
        (out.channels * upstream.to(dtype)).sum().backward()
        return v.grad.double()

    want = grad(F64, "reference")
    got = grad(torch.float32, backend)
    assert float(want.abs().max()) > 0
    if backend == "cpu":  # computes in float64 inside, from the float32 inputs
        assert_grad_close(got, want, 1e-3)
    else:  # float32 arithmetic: bounded by float32 rounding of depth differences / (γ (far - near))
        assert torch.isfinite(got).all()


ZERO_AREA = {
    "collinear": [[0.45, 0.40, 3.17], [0.48, 0.24, 3.51], [0.465, 0.32, 3.34]],  # v2 = midpoint of v0-v1
    "point": [[0.1, 0.2, 2.5]] * 3,
    "duplicate_vertex": [[-0.3, 0.1, 2.2], [0.4, -0.2, 2.6], [-0.3, 0.1, 2.2]],
    "tiny": [[0.2, 0.1, 2.0], [0.2 + 1e-12, 0.1, 2.0], [0.2, 0.1 + 1e-12, 2.0]],  # |det| ~ 1e-24
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(ZERO_AREA))
@pytest.mark.parametrize("dist_func", DIST_FUNCS)
def test_a_face_without_area_is_not_rasterized(backend: str, kind: str, dist_func: str) -> None:
    """contract.DET_EPS: a zero-area face changes no output and gets no gradient, on every backend."""
    g = torch.Generator().manual_seed(3)
    solid = _tri([2.0, 2.4, 2.8])
    fv = torch.cat([solid, torch.tensor([[ZERO_AREA[kind]]], dtype=F64)], dim=1)
    colours = torch.rand(1, 2, 3, 3, generator=g, dtype=F64)
    texels = torch.rand(1, 2, 4, 3, generator=g, dtype=F64)
    s = RasterSettings.create((11, 13), sigma_val=3e-3, gamma_val=1e-2, dist_func=dist_func,
                              with_depth=True, with_zbuffer=True)  # fmt: skip

    def run(faces: torch.Tensor, vertex: torch.Tensor, surface: torch.Tensor):
        leaves = [t.clone().requires_grad_(True) for t in (faces, vertex, surface)]
        out = rasterize_channels(leaves[0], s, surface=leaves[2], vertex=leaves[1], backend=backend)
        upstream = torch.randn(out.channels.shape, generator=torch.Generator().manual_seed(4), dtype=F64)
        loss = (out.channels * upstream).sum() + out.depth.sum()
        if dist_func != "hard":
            loss = loss + out.alpha.sum()
        return out, torch.autograd.grad(loss, leaves)

    with_face, grads = run(fv, colours, texels)
    without, grads_without = run(solid, colours[:, :1], texels[:, :1])
    for name in ("channels", "alpha", "depth", "hard_depth", "barycentrics", "face_id"):
        torch.testing.assert_close(getattr(with_face, name), getattr(without, name), rtol=0, atol=0, msg=name)
    for g_with, g_without in zip(grads, grads_without, strict=True):
        torch.testing.assert_close(g_with[:, :1], g_without, rtol=0, atol=0)
        assert torch.equal(g_with[:, 1:], torch.zeros_like(g_with[:, 1:]))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "reference"])
def test_max_alpha_ties_give_every_backend_the_same_shared_vertex_gradient(backend: str) -> None:
    """alpha='max' on a closed mesh: outside the silhouette, neighbouring faces share the pixel's
    closest edge or vertex, so their D tie and the backends' rounding picks the face. Each pick is a
    one-sided derivative; through the shared vertices (in general position) they are the same."""
    trimesh = pytest.importorskip("trimesh")
    from scipy.spatial.transform import Rotation

    sphere = trimesh.creation.icosphere(subdivisions=2)
    rotation = torch.tensor(Rotation.random(random_state=3).as_matrix(), dtype=F64)
    base = torch.tensor(sphere.vertices, dtype=F64) @ rotation.T * 0.8
    faces = torch.tensor(sphere.faces)
    colours = torch.rand(1, len(faces), 3, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    s = RasterSettings.create(32, sigma_val=1e-4, aggr_func_alpha="max")

    def vertex_gradient(name: str) -> torch.Tensor:
        v = base.clone().requires_grad_(True)
        fv = v[faces][None]
        z = fv[..., 2:] + 3.0
        out = rasterize_channels(torch.cat([fv[..., :2] / z * 1.5, z], -1), s, vertex=colours, backend=name)
        weights = torch.linspace(0, 1, out.alpha.numel(), dtype=F64).reshape(out.alpha.shape)
        ((out.alpha * weights).sum() + (out.channels**2).sum()).backward()
        return v.grad

    assert_grad_close(vertex_gradient(backend), vertex_gradient("reference"), 1e-10)
