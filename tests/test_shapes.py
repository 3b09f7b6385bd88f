"""Tests for softras.shapes: counts, closedness, winding and colours of the built-in meshes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from softras import shapes
from softras.io import texel_barycentrics


def as_trimesh(v: torch.Tensor, f: torch.Tensor) -> trimesh.Trimesh:
    return trimesh.Trimesh(v.double().numpy(), f.numpy(), process=False)


def signed_volume(v: torch.Tensor, f: torch.Tensor) -> float:
    t = v.double()[f]
    return float(torch.linalg.det(t).sum() / 6)


CLOSED = {
    "icosphere": lambda: shapes.icosphere(2),
    "fibonacci_sphere": lambda: shapes.fibonacci_sphere(),
    "color_cube": lambda: shapes.color_cube()[:2],
    "torus": lambda: shapes.torus(),
    "bumpy_sphere": lambda: shapes.bumpy_sphere(level=3),
    "star_prism": lambda: shapes.star_prism(),
    "demo_mesh": lambda: shapes.demo_mesh()[:2],
}


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_closed_watertight_outward(name):
    v, f = CLOSED[name]()
    assert v.dtype == torch.float32 and f.dtype == torch.int64
    assert v.device.type == "cpu" and f.device.type == "cpu"
    assert v.ndim == 2 and v.shape[1] == 3 and f.ndim == 2 and f.shape[1] == 3
    assert int(f.min()) >= 0 and int(f.max()) < v.shape[0]
    tm = as_trimesh(v, f)
    assert tm.is_watertight
    assert tm.is_winding_consistent
    assert signed_volume(v, f) > 0
    # No degenerate faces.
    assert float(tm.area_faces.min()) > 1e-8


@pytest.mark.parametrize(("level", "nv", "nf"), [(0, 12, 20), (2, 162, 320), (3, 642, 1280),
                                                 (4, 2562, 5120)])
def test_icosphere_counts(level, nv, nf):
    v, f = shapes.icosphere(level)
    assert v.shape == (nv, 3) and f.shape == (nf, 3)
    assert torch.allclose(v.norm(dim=1), torch.ones(nv), atol=1e-6)


def test_icosphere_default_and_radius():
    v, f = shapes.icosphere()
    assert v.shape == (642, 3) and f.shape == (1280, 3)
    v2, _ = shapes.icosphere(1, radius=2.5)
    assert torch.allclose(v2.norm(dim=1), torch.full((42,), 2.5), atol=1e-5)
    assert signed_volume(*shapes.icosphere(3)) == pytest.approx(4 / 3 * np.pi, rel=0.01)


@pytest.mark.parametrize("n", [4, 5, 162, 1352])
def test_fibonacci_sphere_counts_and_uniformity(n):
    v, f = shapes.fibonacci_sphere(n, radius=0.5)
    assert v.shape == (n, 3) and f.shape == (2 * n - 4, 3)
    assert torch.allclose(v.norm(dim=1), torch.full((n,), 0.5), atol=1e-6)
    tm = as_trimesh(v, f)
    assert tm.is_watertight and tm.is_winding_consistent and signed_volume(v, f) > 0
    if n == 1352:  # the original's template resolution: near-uniform edges, valences 5 to 7
        edges = tm.edges_unique_length / 0.5
        assert 0.08 < edges.min() and edges.max() < 0.15 and edges.max() / edges.min() < 1.8
        valence = np.bincount(f.numpy().ravel())
        assert valence.min() == 5 and valence.max() == 7 and (valence == 6).mean() > 0.7


def test_color_cube():
    v, f, t = shapes.color_cube(size=2.0)
    assert v.shape == (8, 3) and f.shape == (12, 3) and t.shape == (12, 1, 3)
    assert torch.allclose(v.abs(), torch.ones(8, 3))
    assert signed_volume(v, f) == pytest.approx(8.0)
    # Both triangles of a side share a colour; the six colours are distinct and saturated.
    assert torch.equal(t[0::2], t[1::2])
    side_colours = t[0::2, 0]
    assert len({tuple(c.tolist()) for c in side_colours}) == 6
    assert bool(((side_colours == 0) | (side_colours == 1)).all())
    # Each side's two triangles lie on one axis-aligned plane with an outward normal.
    tri = v[f]
    normals = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = normals / normals.norm(dim=1, keepdim=True)
    centres = tri.mean(1)
    assert bool(((normals * centres).sum(1) > 0).all())
    assert torch.allclose(normals[0::2], normals[1::2])
    # +x is red, +z is blue.
    assert torch.equal(side_colours[normals[0::2, 0] > 0.5][0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(side_colours[normals[0::2, 2] > 0.5][0], torch.tensor([0.0, 0.0, 1.0]))


def test_torus_counts_and_volume():
    v, f = shapes.torus(major_radius=0.7, minor_radius=0.3, major_segments=64, minor_segments=32)
    assert v.shape == (64 * 32, 3) and f.shape == (2 * 64 * 32, 3)
    expected = 2 * np.pi**2 * 0.7 * 0.3**2
    assert signed_volume(v, f) == pytest.approx(expected, rel=0.02)
    assert as_trimesh(v, f).euler_number == 0
    with pytest.raises(ValueError):
        shapes.torus(major_radius=0.3, minor_radius=0.5)


def test_bumpy_sphere_is_non_convex():
    v, f = shapes.bumpy_sphere(level=4, amplitude=0.1)
    assert v.shape == (2562, 3) and f.shape == (5120, 3)
    r = v.norm(dim=1)
    assert r.max().item() == pytest.approx(1.1, abs=1e-5)
    assert r.min().item() == pytest.approx(0.9, abs=1e-5)
    tm = as_trimesh(v, f)
    assert tm.convex_hull.volume > tm.volume * 1.02
    flat, _ = shapes.bumpy_sphere(level=2, amplitude=0.0)
    assert torch.allclose(flat.norm(dim=1), torch.ones(162), atol=1e-6)
    with pytest.raises(ValueError):
        shapes.bumpy_sphere(amplitude=1.5)


def test_star_prism_non_convex():
    v, f = shapes.star_prism(points=6, height=0.4)
    assert v.shape == (4 * 6 + 2, 3) and f.shape == (8 * 6, 3)
    tm = as_trimesh(v, f)
    assert tm.convex_hull.volume > tm.volume * 1.2
    assert v[:, 2].max().item() == pytest.approx(0.2)


def test_demo_mesh():
    v, f, c = shapes.demo_mesh()
    assert 2000 <= f.shape[0] <= 6000
    assert c.shape == (v.shape[0], 3) and c.dtype == torch.float32
    assert v.norm(dim=1).max().item() < 1.0
    assert float(c.min()) >= 0 and float(c.max()) <= 1
    # Colourful: hues vary a lot across the mesh.
    assert float(c.std(0).min()) > 0.15
    tm = as_trimesh(v, f)
    assert tm.convex_hull.volume > tm.volume * 1.2  # a torus is far from convex
    v2, f2, c2 = shapes.demo_mesh()
    assert torch.equal(v, v2) and torch.equal(f, f2) and torch.equal(c, c2)


@pytest.mark.parametrize("r", [1, 2, 4])
def test_surface_colors_from_vertex_colors(r):
    v, f = shapes.icosphere(1)
    colours = (v + 1) / 2  # linear in position
    colours.requires_grad_(True)
    tex = shapes.surface_colors_from_vertex_colors(f, colours, r)
    assert tex.shape == (f.shape[0], r * r, 3)
    # Colours are linear in position, so texel colours equal colours at texel-centre points.
    points = torch.einsum("tk,fkc->ftc", texel_barycentrics(r), v[f])
    assert torch.allclose(tex, (points + 1) / 2, atol=1e-6)
    if r == 1:
        assert torch.allclose(tex[:, 0], colours[f].mean(1), atol=1e-6)
    tex.sum().backward()
    # Every vertex receives gradient (each belongs to several faces).
    assert bool((colours.grad > 0).all())


def test_surface_colors_constant():
    _, f = shapes.torus(major_segments=8, minor_segments=6)
    col = torch.tensor([0.2, 0.4, 0.6]).expand(48, 3)
    tex = shapes.surface_colors_from_vertex_colors(f, col, 3)
    assert torch.allclose(tex, torch.tensor([0.2, 0.4, 0.6]).expand(f.shape[0], 9, 3))
    with pytest.raises(ValueError):
        shapes.surface_colors_from_vertex_colors(f, col[:10], 3)


def test_argument_validation():
    with pytest.raises(ValueError, match="vertices"):
        shapes.fibonacci_sphere(3)
    with pytest.raises(ValueError):
        shapes.icosphere(-1)
    with pytest.raises(TypeError):
        shapes.icosphere(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        shapes.icosphere(2, radius=0)
    with pytest.raises(ValueError):
        shapes.color_cube(size=-1)
    with pytest.raises(ValueError):
        shapes.star_prism(points=2)
