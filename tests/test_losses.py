"""Tests for softras.losses: sparse Laplacian, vectorised flatten loss, silhouette IoU."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import trimesh

from softras.losses import FlattenLoss, LaplacianLoss, hard_iou, iou, mesh_volume, neg_iou_loss


def dense_laplacian(nv: int, faces: np.ndarray) -> np.ndarray:
    """The original SoftRas construction, verbatim in spirit: dense, row-normalised."""
    lap = np.zeros((nv, nv), dtype=np.float64)
    for a, b in [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)]:
        lap[faces[:, a], faces[:, b]] = -1
    lap[np.arange(nv), np.arange(nv)] = -lap.sum(1)
    return lap / np.diag(lap)[:, None]


def small_mesh() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=1)  # 42 vertices, 80 faces


# --------------------------------------------------------------------------- LaplacianLoss
def test_laplacian_matches_dense_formula() -> None:
    m = small_mesh()
    faces = np.asarray(m.faces)
    # repeat some faces: duplicated edges must still count once
    faces = np.concatenate([faces, faces[:5], faces[:3, ::-1]])
    loss = LaplacianLoss(torch.tensor(m.vertices), torch.tensor(faces))
    dense = dense_laplacian(len(m.vertices), faces)
    # the stored matrix is the original's matrix, entry for entry (float32, like the original)
    np.testing.assert_array_equal(loss.laplacian.to_dense().numpy(), dense.astype(np.float32))
    torch.manual_seed(0)
    x = torch.randn(3, len(m.vertices), 3, dtype=torch.float64)
    ref = ((torch.from_numpy(dense) @ x) ** 2).sum((1, 2))
    out = loss(x)
    assert out.shape == (3,) and out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    # float32 input works too
    torch.testing.assert_close(loss(x.float()), ref.float(), rtol=1e-5, atol=1e-5)


def test_laplacian_average_and_values() -> None:
    m = small_mesh()
    x = torch.tensor(m.vertices, dtype=torch.float32)[None].repeat(2, 1, 1)
    per_item = LaplacianLoss(m.vertices, m.faces)(x)
    avg = LaplacianLoss(m.vertices, m.faces, average=True)(x)
    assert avg.ndim == 0
    torch.testing.assert_close(avg, per_item.sum() / 2)
    # a translated mesh has the same loss; a constant field has zero loss
    torch.testing.assert_close(LaplacianLoss(m.vertices, m.faces)(x + 3.0), per_item)
    zero = LaplacianLoss(m.vertices, m.faces)(torch.ones(1, len(m.vertices), 3))
    assert float(zero) == pytest.approx(0.0, abs=1e-10)


def test_laplacian_isolated_vertex_is_zero_row() -> None:
    faces = np.array([[0, 1, 2]])
    loss = LaplacianLoss(np.zeros((4, 3)), faces)  # vertex 3 unused
    x = torch.zeros(1, 4, 3)
    x[0, 3] = 5.0
    assert float(loss(x)) == 0.0
    assert torch.isfinite(loss.laplacian.to_dense()).all()


def test_laplacian_large_mesh_sparse_fast() -> None:
    m = trimesh.creation.icosphere(subdivisions=6)
    nv = len(m.vertices)
    assert nv == 40962
    t0 = time.perf_counter()
    loss = LaplacianLoss(m.vertices, m.faces)
    x = torch.tensor(m.vertices, dtype=torch.float32)[None].requires_grad_()
    out = loss(x)
    out.sum().backward()
    elapsed = time.perf_counter() - t0
    print(f"LaplacianLoss 40k vertices: build+forward+backward {elapsed:.3f}s, nnz {loss.nnz}")
    assert x.grad is not None and torch.isfinite(x.grad).all()
    # nnz = V (diagonal) + 2 * E (each undirected edge both ways); E = 3V - 6 on a sphere
    assert loss.nnz == nv + 2 * (3 * nv - 6)
    stored = sum(b.numel() * b.element_size() for b in loss.buffers())
    assert stored < 10 * 2**20  # a few MB (the dense float32 matrix would be ~6.7 GB)
    # sphere: every vertex sits off its neighbours' centroid in the normal direction only
    assert float(out.detach()) > 0


def test_laplacian_to_device_and_dtype() -> None:
    m = small_mesh()
    loss = LaplacianLoss(m.vertices, m.faces).to("cpu").double()
    names = {n for n, _ in loss.named_buffers()}
    assert {"edge_rows", "edge_cols", "degree"} <= names
    assert loss.degree.dtype == torch.int64  # integer buffers are not cast by .double()
    out = loss(torch.tensor(m.vertices)[None])
    assert out.dtype == torch.float64


def test_laplacian_errors() -> None:
    m = small_mesh()
    with pytest.raises(ValueError, match="faces"):
        LaplacianLoss(m.vertices, np.array([[0, 1, 999]]))
    with pytest.raises(ValueError, match="faces"):
        LaplacianLoss(m.vertices, np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="vertex"):
        LaplacianLoss(np.zeros((5, 2)), np.array([[0, 1, 2]]))
    loss = LaplacianLoss(m.vertices, m.faces)
    with pytest.raises(ValueError, match="x"):
        loss(torch.zeros(1, 7, 3))


# --------------------------------------------------------------------------- FlattenLoss
def flatten_reference(vertices: torch.Tensor, faces: np.ndarray, eps: float = 1e-6
                      ) -> torch.Tensor:
    """Slow reference: loop over edges, loop over faces, original's per-edge formula."""
    edges = sorted({tuple(sorted((int(f[a]), int(f[b]))))
                    for f in faces for a, b in [(0, 1), (1, 2), (2, 0)]})
    total = torch.zeros(vertices.shape[0], dtype=vertices.dtype)
    for v0, v1 in edges:
        opp = [int(next(v for v in f if v not in (v0, v1))) for f in faces
               if v0 in f and v1 in f]
        if len(opp) != 2:
            continue
        v2, v3 = opp
        for b in range(vertices.shape[0]):
            p0, p1, p2, p3 = (vertices[b, i] for i in (v0, v1, v2, v3))
            a = p1 - p0
            cbs, lens = [], []
            for q in (p2, p3):
                s = q - p0
                al2, sl2 = (a * a).sum(), (s * s).sum()
                cos = (a * s).sum() / ((al2 + eps).sqrt() * (sl2 + eps).sqrt() + eps)
                sin = (1 - cos**2 + eps).sqrt()
                cbs.append(s - a * ((a * s).sum() / (al2 + eps)))
                lens.append((sl2 + eps).sqrt() * sin)
            c = (cbs[0] * cbs[1]).sum() / (lens[0] * lens[1] + eps)
            total[b] += (c + 1) ** 2
    return total


def grid_mesh(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A flat n x n grid of quads (two triangles each) in the z = 0 plane."""
    xs, ys = np.meshgrid(np.arange(n + 1.0), np.arange(n + 1.0), indexing="ij")
    verts = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], 1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return verts, faces


def test_flatten_matches_slow_reference() -> None:
    m = small_mesh()
    torch.manual_seed(1)
    verts = torch.tensor(m.vertices)[None] + 0.05 * torch.randn(2, len(m.vertices), 3,
                                                                  dtype=torch.float64)
    loss = FlattenLoss(torch.tensor(m.faces))
    assert loss.v0s.numel() == len(m.edges_unique) == 120
    torch.testing.assert_close(loss(verts), flatten_reference(verts, m.faces), rtol=1e-10,
                               atol=1e-10)
    avg = FlattenLoss(m.faces, average=True)(verts)
    torch.testing.assert_close(avg, loss(verts).sum() / 2)


def test_flatten_open_mesh_skips_boundary_and_flat_is_zero() -> None:
    verts, faces = grid_mesh(4)
    loss = FlattenLoss(faces)
    # 4x4 grid: 16 * 3 + ... interior edges = all edges minus the 16 boundary edges
    n_edges = len(trimesh.Trimesh(verts, faces, process=False).edges_unique)
    assert loss.v0s.numel() == n_edges - 16
    v = torch.tensor(verts)[None]
    assert float(loss(v)) == pytest.approx(0.0, abs=1e-6)
    # folding the grid along a line of interior edges makes the loss clearly positive
    folded = v.clone()
    folded[0, :, 2] = torch.clamp(folded[0, :, 0] - 2.0, min=0.0)
    val = float(loss(folded))
    assert val > 0.1
    torch.testing.assert_close(loss(folded), flatten_reference(folded, faces), rtol=1e-10,
                               atol=1e-10)


def test_flatten_non_manifold_raises() -> None:
    faces = np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]])  # edge (0, 1) has three faces
    with pytest.raises(ValueError, match=r"1 edge\(s\).*more than 2 faces"):
        FlattenLoss(faces)
    with pytest.raises(ValueError, match="repeats a vertex"):
        FlattenLoss(np.array([[0, 0, 1]]))


def test_flatten_large_mesh_construction_fast() -> None:
    m = trimesh.creation.icosphere(subdivisions=6)
    t0 = time.perf_counter()
    loss = FlattenLoss(m.faces)
    elapsed = time.perf_counter() - t0
    print(f"FlattenLoss 40k vertices: construction {elapsed:.3f}s")
    assert loss.v0s.numel() == len(m.edges_unique)
    x = torch.tensor(m.vertices, dtype=torch.float32)[None].requires_grad_()
    out = loss(x)
    out.backward()
    assert torch.isfinite(x.grad).all()  # in practice ~0.05 s


def test_flatten_vertices_shape_error() -> None:
    loss = FlattenLoss(small_mesh().faces)
    with pytest.raises(ValueError, match="vertices"):
        loss(torch.zeros(1, 10, 3))
    with pytest.raises(ValueError, match="vertices"):
        loss(torch.zeros(42, 3))


# --------------------------------------------------------------------------- silhouette IoU
def test_iou_values() -> None:
    p = torch.zeros(2, 4, 4)
    t = torch.zeros(2, 4, 4)
    p[0, :2] = 1.0  # 8 px
    t[0, 1:3] = 1.0  # 8 px, overlap 4 -> iou 4 / 12
    p[1] = 0.5
    t[1] = 1.0  # soft: sum(0.5) / sum(1) = 0.5
    out = iou(p, t)
    assert out.shape == (2,)
    torch.testing.assert_close(out, torch.tensor([4 / 12, 0.5]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(neg_iou_loss(p, t), 1 - out.mean())
    # [B, 1, H, W] accepted, same result
    torch.testing.assert_close(iou(p[:, None], t[:, None]), out)
    torch.testing.assert_close(hard_iou(p, t), torch.tensor([4 / 12, 0.0]))
    torch.testing.assert_close(hard_iou(p, t, threshold=0.4), torch.tensor([4 / 12, 1.0]))


def test_iou_gradient_and_errors() -> None:
    p = torch.rand(3, 8, 8, requires_grad=True)
    t = (torch.rand(3, 8, 8) > 0.5).float()
    neg_iou_loss(p, t).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert float(hard_iou(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))) == 1.0
    with pytest.raises(ValueError, match="same batch size"):
        iou(torch.zeros(2, 4, 4), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="predict"):
        iou(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="target"):
        neg_iou_loss(torch.zeros(4, 4, 4), torch.zeros(4, 4))


def test_mesh_volume_matches_trimesh_and_is_translation_invariant() -> None:
    meshes = [trimesh.creation.box(extents=(1.0, 2.0, 0.5)), trimesh.creation.icosphere(2, radius=0.7),
              trimesh.creation.annulus(0.2, 0.5, 0.3)]
    for m in meshes:
        v = torch.from_numpy(np.asarray(m.vertices)).double()[None]
        f = torch.from_numpy(np.asarray(m.faces))
        expected = float(m.volume)
        assert float(mesh_volume(v, f)[0]) == pytest.approx(expected, rel=1e-9)
        shifted = v + torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)
        assert float(mesh_volume(shifted, f[None])[0]) == pytest.approx(expected, rel=1e-9)
        assert float(mesh_volume(v, f.flip(1))[0]) == pytest.approx(-expected, rel=1e-9)  # inside out


def test_mesh_volume_gradient_and_errors() -> None:
    m = trimesh.creation.icosphere(1)
    v = torch.from_numpy(np.asarray(m.vertices)).double()[None].repeat(2, 1, 1)
    v = (v + 0.05 * torch.randn_like(v)).requires_grad_(True)
    f = torch.from_numpy(np.asarray(m.faces))
    assert torch.autograd.gradcheck(lambda x: mesh_volume(x, f), (v,))
    # a volume: scaling by s scales it by s^3
    with torch.no_grad():
        assert float(mesh_volume(2 * v, f)[0]) == pytest.approx(8 * float(mesh_volume(v, f)[0]))
    with pytest.raises(ValueError, match="vertices"):
        mesh_volume(v[0], f)
    with pytest.raises(ValueError, match="faces"):
        mesh_volume(v, f + 1000)
    with pytest.raises(ValueError, match="faces"):
        mesh_volume(v, f[None].repeat(3, 1, 1))
