"""Tests for softras.functional.voxelization and softras.metrics."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from softras.functional.voxelization import save_voxel, voxelization
from softras.metrics import iou_3d, mesh_to_nmr_voxels, voxel_iou_from_mesh


def sphere_faces(radius: float, center: float, subdivisions: int = 4) -> torch.Tensor:
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    return torch.tensor(m.vertices[m.faces])[None] * radius + center  # [1, F, 3, 3]


def box_faces(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> torch.Tensor:
    lo_, hi_ = np.asarray(lo), np.asarray(hi)
    m = trimesh.creation.box(extents=hi_ - lo_)
    m.apply_translation((lo_ + hi_) / 2)
    return torch.tensor(m.vertices[m.faces])[None]


def test_sphere_volume_filled_symmetric() -> None:
    n, r = 96, 40.3
    vox = voxelization(sphere_faces(r, n / 2), n, normalize=True)
    assert vox.shape == (1, n, n, n) and vox.dtype == torch.int32
    occ = vox[0].bool().numpy()
    c = np.arange(n) + 0.5
    dist = np.sqrt(((np.stack(np.meshgrid(c, c, c, indexing="ij")) - n / 2) ** 2).sum(0))
    # filled: every voxel whose centre is well inside is occupied; nothing far outside is
    assert occ[dist < r - 1.0].all()
    assert not occ[dist > r + 0.9].any()  # a touched voxel's centre is within sqrt(3)/2
    volume = occ.sum()
    exact = 4 / 3 * np.pi * r**3
    # the surface layer is conservative (every touched voxel), which adds a shell of ~0.75
    # voxel on average: volume ~ 4/3 pi (r + 0.75)^3
    assert volume == pytest.approx(exact, rel=0.06)
    assert volume == pytest.approx(4 / 3 * np.pi * (r + 0.75) ** 3, rel=0.015)
    # symmetric like the icosphere: under every axis flip and cyclic permutation of the axes
    for axis in range(3):
        np.testing.assert_array_equal(occ, np.flip(occ, axis))
    np.testing.assert_array_equal(occ, occ.transpose(1, 2, 0))
    np.testing.assert_array_equal(occ, occ.transpose(2, 0, 1))


def test_sphere_interior_not_hollow() -> None:
    n = 32
    vox = voxelization(sphere_faces(12.3, n / 2, 3), n, normalize=True)[0]
    # a straight line through the centre is occupied end to end between the surface crossings
    line = vox[:, n // 2, n // 2].numpy()
    nz = np.flatnonzero(line)
    assert nz.size > 20 and (line[nz[0]: nz[-1] + 1] == 1).all()
    assert vox[n // 2, n // 2, n // 2] == 1


def test_cube_fills_block() -> None:
    n = 16
    vox = voxelization(box_faces((3.3, 4.2, 5.6), (10.7, 12.5, 8.4)), n, normalize=True)[0]
    expected = torch.zeros(n, n, n, dtype=torch.int32)
    expected[3:11, 4:13, 5:9] = 1
    assert torch.equal(vox, expected)
    # normalize=False: the same box given in [0, 1) units gives the same grid
    vox2 = voxelization(box_faces((3.3, 4.2, 5.6), (10.7, 12.5, 8.4)) / n, n)[0]
    assert torch.equal(vox2, expected)


def test_face_on_voxel_boundary_goes_up() -> None:
    # a face exactly on the plane x = 4 belongs to voxel 4 (a point p is in voxel floor(p)),
    # so the box [4, 6] x [2.5, 5.5]^2 covers voxels 4..6 along x and 2..5 along y and z
    n = 8
    vox = voxelization(box_faces((4.0, 2.5, 2.5), (6.0, 5.5, 5.5)), n, normalize=True)[0]
    assert vox[4:7, 2:6, 2:6].all() and vox.sum() == 3 * 4 * 4


def test_orientation_matches_original_convention() -> None:
    # original: voxels[b, i, j, k] with i = floor(x * N), j = floor(y * N), k = floor(z * N)
    n = 32
    box = box_faces((0.61, 0.11, 0.41), (0.89, 0.29, 0.49))
    vox = voxelization(box, n)[0]
    idx = torch.nonzero(vox)
    assert idx[:, 0].min() == 19 and idx[:, 0].max() == 28  # floor(0.61*32), floor(0.89*32)
    assert idx[:, 1].min() == 3 and idx[:, 1].max() == 9
    assert idx[:, 2].min() == 13 and idx[:, 2].max() == 15
    # Mesh.voxelize convention: vertices in [-0.5, 0.5] -> v * N / (N - 1) + 0.5; a box offset
    # towards +x lands at the high end of axis 0
    verts_box = box_faces((0.2, -0.1, -0.1), (0.45, 0.1, 0.1))
    vox = voxelization(verts_box * n / (n - 1) + 0.5, n)[0]
    idx = torch.nonzero(vox)
    assert idx[:, 0].min() >= 16 + 6 and idx[:, 1].min() < 16 <= idx[:, 1].max()


def test_batch_clipping_dtype_and_empty() -> None:
    n = 16
    inside = box_faces((2.5, 2.5, 2.5), (5.5, 5.5, 5.5))
    outside = box_faces((-9.5, 2.5, 2.5), (-5.5, 5.5, 5.5))  # entirely off the grid
    straddle = box_faces((12.5, 2.5, 2.5), (20.5, 5.5, 5.5))  # partly off the grid
    fv = torch.cat([inside, outside, straddle]).float()
    vox = voxelization(fv, n, normalize=True)
    assert vox.shape == (3, n, n, n) and vox.dtype == torch.int32
    assert vox[0].sum() == 64 and vox[1].sum() == 0
    # clipped box: the surface part inside the grid is kept; the open side is not filled
    assert vox[2, 12:, 2:6, 2:6].bool().any() and vox[2, :12].sum() == 0
    empty = voxelization(torch.zeros(2, 0, 3, 3), 8)
    assert empty.shape == (2, 8, 8, 8) and empty.sum() == 0


def test_huge_triangles_are_clipped_cheaply() -> None:
    # a square 2000 voxels wide at z = 5.5 cuts the grid: exactly layer 5 is occupied (the two
    # halves both touch the border, so nothing is filled)
    n = 16
    a, b = -1000.0, 1000.0
    quad = torch.tensor([[[a, a, 5.5], [b, a, 5.5], [b, b, 5.5]],
                         [[a, a, 5.5], [b, b, 5.5], [a, b, 5.5]]], dtype=torch.float64)[None]
    vox = voxelization(quad, n, normalize=True)[0]
    assert vox[:, :, 5].all() and vox.sum() == n * n
    # a big diagonal triangle: every voxel it touches, and only those (compare with sampling)
    tri = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.2, 1.0], [0.3, 1.0, 0.9]]])[None] * n
    vox = voxelization(tri, n, normalize=True)[0].bool().numpy()
    w = np.random.default_rng(0).dirichlet(np.ones(3), 200_000)
    pts = np.floor(w @ tri[0, 0].numpy()).astype(int)
    pts = pts[(pts >= 0).all(1) & (pts < n).all(1)]
    sampled = np.zeros_like(vox)
    sampled[tuple(pts.T)] = True
    assert vox[sampled].all()  # every sampled voxel is marked
    assert vox.sum() <= 1.1 * sampled.sum()  # and few beyond (those only grazed by the triangle)


def test_voxelization_errors() -> None:
    with pytest.raises(ValueError, match="face_vertices"):
        voxelization(torch.zeros(1, 5, 3), 8)
    with pytest.raises(ValueError, match="size"):
        voxelization(torch.zeros(1, 1, 3, 3), 0)
    with pytest.raises(ValueError, match="face_vertices"):
        voxelization(torch.full((1, 1, 3, 3), float("nan")), 8)


def test_voxelization_speed_5k_faces() -> None:
    fv = (sphere_faces(0.45, 0.5, 4)).float()  # 5120 faces
    assert fv.shape[1] == 5120
    t0 = time.perf_counter()
    vox = voxelization(fv, 32)
    elapsed = time.perf_counter() - t0
    print(f"voxelization 5120 faces @ 32^3: {elapsed:.3f}s")
    assert vox.sum() > 0.5 * 4 / 3 * np.pi * (0.45 * 32) ** 3


def test_save_voxel_cubes_and_points(tmp_path: Path) -> None:
    n = 8
    vox = torch.zeros(n, n, n, dtype=torch.int32)
    vox[1:3, 2:5, 3:4] = 1  # a 2 x 3 x 1 block
    vox[6, 6, 6] = 1  # a lone cube
    path = tmp_path / "v.obj"
    save_voxel(str(path), vox)
    text = path.read_text()
    assert text.startswith("# v.obj\n#\n\n")
    m = trimesh.load(path, process=False, force="mesh")
    mm = trimesh.Trimesh(m.vertices, m.faces)  # merge, check closedness and volume
    assert mm.is_watertight
    assert mm.volume == pytest.approx(7 / n**3)  # positive: outward winding
    assert len(m.faces) == 2 * (2 * (2 * 3 + 2 * 1 + 3 * 1) + 6)  # exposed quads only
    np.testing.assert_allclose(m.bounds, [[1 / n, 2 / n, 3 / n], [7 / n, 7 / n, 7 / n]])
    # the original's format: one vertex per occupied voxel at index / N, no faces
    save_voxel(path, vox[None], mode="points")
    lines = path.read_text().splitlines()
    vs = np.array([[float(t) for t in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    assert not any(ln.startswith("f ") for ln in lines)
    np.testing.assert_allclose(np.sort(vs, axis=0),
                               np.sort(np.argwhere(vox.numpy()) / n, axis=0))
    with pytest.raises(ValueError, match="voxel"):
        save_voxel(path, torch.zeros(2, 4, 4, 4))


# --------------------------------------------------------------------------- metrics
def test_iou_3d_values() -> None:
    a = torch.zeros(3, 4, 4, 4, dtype=torch.bool)
    b = torch.zeros(3, 4, 4, 4, dtype=torch.bool)
    a[0, :2] = True
    b[0, 1:3] = True  # 16 shared of 48 -> 1/3
    a[1, 0] = True
    b[1, 3] = True  # disjoint -> 0
    out = iou_3d(a, b.int().numpy())
    torch.testing.assert_close(out, torch.tensor([1 / 3, 0.0, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        iou_3d(a, b[:, :3])
    with pytest.raises(ValueError, match="voxels_a"):
        iou_3d(a[0], b[0])


def test_voxel_iou_from_mesh_self_and_disjoint() -> None:
    n = 32
    m = trimesh.creation.icosphere(subdivisions=3)
    verts = torch.tensor(m.vertices, dtype=torch.float32)
    faces = torch.tensor(m.faces)
    v = torch.stack([verts * 0.3, verts * 0.15 + torch.tensor([0.3, 0.0, 0.0])])  # [2, V, 3]
    f = faces[None].repeat(2, 1, 1)
    target = mesh_to_nmr_voxels(v, f, n)
    assert target.shape == (2, n, n, n)
    torch.testing.assert_close(voxel_iou_from_mesh(v, f, target), torch.ones(2))
    torch.testing.assert_close(voxel_iou_from_mesh(v, faces, target.numpy()), torch.ones(2))
    # the small sphere moved to the other side of the grid: disjoint
    far = v.clone()
    far[1] = verts * 0.15 - torch.tensor([0.3, 0.0, 0.0])
    out = voxel_iou_from_mesh(far, f, target)
    assert out[0] == 1.0 and out[1] == 0.0


def test_nmr_convention_transpose_and_flip() -> None:
    # the recon protocol: pred = voxelize(fv * (N-1)/N + 0.5).transpose(0, 2, 1, 3)[..., ::-1]
    n = 32
    box = box_faces((0.2, -0.35, 0.05), (0.45, -0.15, 0.4)).float()  # +x, -y, +z corner
    verts = box.reshape(1, -1, 3)
    faces = torch.arange(verts.shape[1]).reshape(1, -1, 3)
    nmr = mesh_to_nmr_voxels(verts, faces, n)
    raw = voxelization(box * (n - 1) / n + 0.5, n)
    expected = torch.from_numpy(raw.numpy().transpose(0, 2, 1, 3)[:, :, :, ::-1].copy())
    assert torch.equal(nmr, expected)
    idx = torch.nonzero(nmr[0])
    # dataset axis 0 <- y (low), axis 1 <- x (high), axis 2 <- z flipped (low)
    assert idx[:, 0].max() < n // 2 and idx[:, 1].min() >= n // 2 and idx[:, 2].max() < n // 2
    with pytest.raises(ValueError, match="target_voxels"):
        voxel_iou_from_mesh(verts, faces, torch.zeros(1, 8, 8, 4))
