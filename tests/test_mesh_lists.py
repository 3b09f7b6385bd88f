"""Batches of different meshes: ``sr.Mesh([v1, v2], [f1, f2])``, rendered in one call.

Each item equals its mesh rendered alone (float64: 1e-12), outputs and gradients, through
``softras.render`` (per-item cameras, lights, ``sum`` alpha) and the original's ``SoftRenderer``.
"""

from __future__ import annotations

import pytest
import torch

import softras as sr
from softras.cameras import LookAtCamera
from softras.shapes import icosphere, torus


def _items() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    v1, f1 = icosphere(1, radius=0.6)
    v2, f2 = torus(major_segments=6, minor_segments=4)
    g = torch.Generator().manual_seed(0)
    out = []
    for v, f in ((v1, f1), (v2 * 0.5, f2)):
        v = v.double()
        out.append((v, f, torch.rand(v.shape[0], 3, generator=g, dtype=torch.float64)))
    return out


def test_lists_pad_count_and_pack() -> None:
    items = _items()
    mesh = sr.Mesh([v for v, _, _ in items], [f for _, f, _ in items], [c for *_, c in items], texture_type="vertex")
    assert mesh.is_padded and mesh.batch_size == 2
    assert mesh.vertex_counts.tolist() == [v.shape[0] for v, _, _ in items]
    assert mesh.face_counts.tolist() == [f.shape[0] for _, f, _ in items]
    assert mesh.num_faces == max(mesh.face_counts.tolist())
    vertices, faces, v_off, f_off = mesh.packed()
    assert vertices.shape[0] == int(v_off[-1]) and faces.shape[0] == int(f_off[-1])
    for b, (v, f, c) in enumerate(items):
        torch.testing.assert_close(vertices[v_off[b] : v_off[b + 1]], v)
        torch.testing.assert_close(faces[f_off[b] : f_off[b + 1]] - v_off[b], f.long())
        item = mesh.items()[b]
        assert torch.equal(item.vertices[0], v) and torch.equal(item.faces[0].long(), f.long())
        assert torch.equal(item.textures[0], c)
    padding = mesh.faces[1, mesh.face_counts[1] :] if mesh.face_counts[1] < mesh.num_faces else mesh.faces[0, 80:]
    assert (padding == 0).all()  # the zero-area face (0, 0, 0)
    assert "padded" in repr(mesh)
    uniform = sr.Mesh(*icosphere(0))
    assert not uniform.is_padded and uniform.face_counts.tolist() == [20]


def test_list_errors() -> None:
    (v1, f1, _), (v2, f2, _) = _items()
    with pytest.raises(TypeError, match="faces: with a list of 2 vertex arrays"):
        sr.Mesh([v1, v2], f1)
    with pytest.raises(ValueError, match=r"faces\[1\]: indices must lie in"):
        sr.Mesh([v1, v2], [f1, f2 + 1000])
    with pytest.raises(ValueError, match=r"vertices\[0\]: expected a non-empty \[V, 3\]"):
        sr.Mesh([v1[:, :2], v2], [f1, f2])
    with pytest.raises(ValueError, match=r"textures\[1\]: expected vertex textures"):
        sr.Mesh([v1, v2], [f1, f2], [torch.rand(v1.shape[0], 3), torch.rand(3, 3)], texture_type="vertex")
    with pytest.raises(TypeError, match="a list of faces needs a list of vertices"):
        sr.Mesh(v1, [f1])


@pytest.mark.parametrize("alpha", ["sum", "prod"])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_render_each_item_equals_alone(backend: str, alpha: str) -> None:
    items = _items()
    eyes = torch.tensor([[0.0, 0.4, -2.5], [1.5, 1.0, -1.5]], dtype=torch.float64)
    vertices = [v.clone().requires_grad_() for v, _, _ in items]
    mesh = sr.Mesh(vertices, [f for _, f, _ in items], [c for *_, c in items], texture_type="vertex")
    light = sr.DirectionalLighting(light_intensity=0.6, light_direction=(0.3, 0.5, -1.0))
    options = {"sigma_val": 1e-3, "gamma_val": 1e-2, "aggr_func_alpha": alpha, "backend": backend}
    outputs = ("rgba", "depth", "face_id")
    batch = sr.render(mesh, LookAtCamera(eye=eyes), lights=light, image_size=24, outputs=outputs, **options)
    (batch.rgba.sum() + batch.depth.sum()).backward()
    for b, (v, f, c) in enumerate(items):
        v = v.clone().requires_grad_()
        alone = sr.render(
            sr.Mesh(v, f, c, texture_type="vertex"), LookAtCamera(eye=eyes[b : b + 1]), lights=light, image_size=24,
            outputs=outputs, **options,
        )  # fmt: skip
        torch.testing.assert_close(batch.rgba[b], alone.rgba[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(batch.depth[b], alone.depth[0], atol=1e-12, rtol=0)
        assert torch.equal(batch.face_id[b], alone.face_id[0])
        (alone.rgba.sum() + alone.depth.sum()).backward()
        torch.testing.assert_close(vertices[b].grad, v.grad, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("alpha", ["sum", "prod"])
def test_soft_renderer_each_item_equals_alone(alpha: str) -> None:
    items = _items()
    renderer = sr.SoftRenderer(image_size=20, sigma_val=1e-3, aggr_func_alpha=alpha, texture_type="vertex")
    mesh = sr.Mesh([v for v, _, _ in items], [f for _, f, _ in items], [c for *_, c in items], texture_type="vertex")
    batch = renderer.render_mesh(mesh)
    for b, (v, f, c) in enumerate(items):
        alone = renderer.render_mesh(sr.Mesh(v, f, c, texture_type="vertex"))
        torch.testing.assert_close(batch[b], alone[0], atol=1e-12, rtol=0)
