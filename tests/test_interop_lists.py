"""Batches of different meshes ↔ ``trimesh.Scene`` and PyTorch3D ``Meshes`` (softras.interop).

PyTorch3D is not installed here; tests/fakes.py stands in for it, following its API.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

import softras as sr
from softras import interop
from softras.shapes import icosphere, torus
from tests import fakes

F64 = torch.float64


def _transform(shift: tuple[float, float, float], mirror: bool = False) -> np.ndarray:
    """A rotation about z by 30°, a scale of 0.5, a shift, and a reflection of x when ``mirror``."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    matrix = np.eye(4)
    matrix[:3, :3] = 0.5 * np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([-1.0 if mirror else 1.0, 1, 1])
    matrix[:3, 3] = shift
    return matrix


def _coloured_scene() -> tuple[trimesh.Scene, list[trimesh.Trimesh]]:
    """A scene placing a vertex-coloured sphere twice (once mirrored) and a torus once, plus a point
    cloud (skipped); and the placed meshes it should give, in node order."""
    rng = np.random.default_rng(0)
    v, f = torus(major_segments=6, minor_segments=4)
    sphere, ring = (trimesh.Trimesh(*[t.double().numpy() for t in shape], process=False,
                                    vertex_colors=rng.integers(0, 256, (len(shape[0]), 3), dtype=np.uint8))
                    for shape in (icosphere(1), (v, f)))  # fmt: skip
    scene = trimesh.Scene()
    placed = []
    for node, mesh, matrix in (("a", sphere, _transform((1, 0, 0))), ("b", ring, _transform((0, 2, 0))),
                               ("c", sphere, _transform((0, 0, 3), mirror=True))):  # fmt: skip
        scene.add_geometry(mesh, node_name=node, geom_name="sphere" if mesh is sphere else "ring", transform=matrix)
        placed.append(mesh.copy().apply_transform(matrix))
    scene.add_geometry(trimesh.PointCloud(rng.random((5, 3))), node_name="points")
    return scene, placed


def test_a_scene_becomes_a_padded_batch_in_world_coordinates_and_comes_back() -> None:
    scene, placed = _coloured_scene()
    mesh = sr.Mesh.from_trimesh_scene(scene, texture_type="vertex", dtype=F64)
    assert mesh.is_padded and mesh.batch_size == 3
    assert mesh.face_counts.tolist() == [len(m.faces) for m in placed]
    for b, want in enumerate(placed):
        item = mesh[b]
        assert torch.equal(item.vertices[0], torch.from_numpy(want.vertices))
        assert torch.equal(item.faces[0].long(), torch.from_numpy(want.faces))  # the mirrored copy: reversed
        expected = torch.from_numpy(want.visual.vertex_colors[:, :3] / 255.0)
        torch.testing.assert_close(item.textures[0], expected, rtol=0, atol=1e-7)
    assert (placed[2].faces == placed[0].faces[:, ::-1]).all()

    back = mesh.to_trimesh_scene()
    assert list(back.graph.nodes_geometry) == ["item_0", "item_1", "item_2"]
    for b, want in enumerate(placed):
        got = back.geometry[f"item_{b}"]
        assert np.array_equal(got.vertices, want.vertices) and np.array_equal(got.faces, want.faces)
        assert np.array_equal(got.visual.vertex_colors, want.visual.vertex_colors)  # 8 bits, both ways
    again = interop.meshes_from_trimesh_scene(interop.mesh_to_trimesh_scene(mesh), texture_type="vertex", dtype=F64)
    for name in ("vertices", "faces", "textures"):
        assert torch.equal(getattr(again, name), getattr(mesh, name)), name


def test_to_trimesh_of_a_padded_item_drops_the_padding() -> None:
    (v1, f1), (v2, f2) = icosphere(1), icosphere(0)
    mesh = sr.Mesh([v1, v2], [f1, f2], texture_type="vertex")
    tm = mesh.to_trimesh(1)
    assert tm.vertices.shape == (len(v2), 3) and np.array_equal(tm.faces, f2.numpy())


def _textured(mesh: trimesh.Trimesh, seed: int, size: tuple[int, int]) -> trimesh.Trimesh:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    visual = trimesh.visual.TextureVisuals(uv=rng.random((len(mesh.vertices), 2)), image=image)
    return trimesh.Trimesh(mesh.vertices, mesh.faces, visual=visual, process=False)


def test_a_textured_scene_keeps_each_meshs_uv_texture_and_shares_its_images() -> None:
    sphere = _textured(trimesh.Trimesh(*[t.double().numpy() for t in icosphere(1)], process=False), 1, (8, 12))
    v, f = torus(major_segments=6, minor_segments=4)
    ring = _textured(trimesh.Trimesh(v.double().numpy(), f.numpy(), process=False), 2, (6, 10))
    scene = trimesh.Scene()
    scene.add_geometry(sphere, node_name="a", geom_name="sphere", transform=_transform((1, 0, 0)))
    scene.add_geometry(ring, node_name="b", geom_name="ring", transform=_transform((0, 1, 0)))
    scene.graph.update(frame_to="c", geometry="sphere", matrix=_transform((0, 0, 2), mirror=True))  # an instance
    mesh = sr.Mesh.from_trimesh_scene(scene, texture_type="uv", dtype=F64)
    assert mesh.texture_type == "uv" and mesh.textures.num_materials == 2  # the sphere's image once
    for b, (node, geometry) in enumerate((("a", sphere), ("b", ring), ("c", sphere))):
        alone = sr.Mesh.from_trimesh(geometry.copy().apply_transform(scene.graph[node][0]), texture_type="uv",
                                     dtype=F64)  # fmt: skip
        item = mesh[b]
        assert torch.equal(item.vertices, alone.vertices) and torch.equal(item.faces, alone.faces)
        assert torch.equal(item.textures.face_uv, alone.textures.face_uv)
        assert torch.equal(item.textures.images[0], alone.textures.images[0])

    back = mesh.to_trimesh_scene()
    for b, geometry in enumerate((sphere, ring, sphere)):
        got = back.geometry[f"item_{b}"]
        np.testing.assert_allclose(got.visual.uv[got.faces], geometry.visual.uv[mesh[b].faces[0].numpy()],
                                   rtol=0, atol=1e-15)  # fmt: skip
        assert np.array_equal(np.asarray(got.visual.material.image), np.asarray(geometry.visual.material.image))


def test_normalization_scales_the_whole_scene_and_bad_scenes_are_refused() -> None:
    scene, placed = _coloured_scene()
    mesh = sr.Mesh.from_trimesh_scene(scene, normalization=True, dtype=F64)
    vertices = mesh.packed()[0]
    assert float(vertices.abs().max()) == pytest.approx(1.0)
    everything = np.concatenate([m.vertices for m in placed])
    scale = 2 / (everything.max(0) - everything.min(0)).max()
    torch.testing.assert_close(mesh[1].vertices[0] - mesh[0].vertices[0].mean(0),
                               torch.from_numpy((placed[1].vertices - placed[0].vertices.mean(0)) * scale))
    with pytest.raises(TypeError, match=r"scene: expected a trimesh.Scene, got Trimesh \(use Mesh.from_trimesh"):
        sr.Mesh.from_trimesh_scene(placed[0])
    with pytest.raises(ValueError, match=r"scene: expected at least one trimesh.Trimesh"):
        sr.Mesh.from_trimesh_scene(trimesh.Scene([trimesh.PointCloud(np.zeros((3, 3)))]))
    with pytest.raises(ValueError, match=r"scene node 'a': has vertex colours, not a UV texture"):
        sr.Mesh.from_trimesh_scene(scene, texture_type="uv")
    with pytest.raises(TypeError, match=r"got Scene .*Mesh.from_trimesh_scene\(scene\) makes one item per mesh"):
        sr.Mesh.from_trimesh(scene)


# ---- PyTorch3D ----------------------------------------------------------------------------------
def test_pytorch3d_meshes_of_different_sizes_become_one_padded_batch_and_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.install(monkeypatch, "pytorch3d")
    (v1, f1), (v2, f2) = icosphere(0), icosphere(1)
    verts = [v1.double().requires_grad_(), v2.double().requires_grad_()]
    colours = [torch.rand(len(v1), 3, dtype=F64), torch.rand(len(v2), 3, dtype=F64)]
    p3d = fakes.Meshes(verts, [f1.long(), f2.long()], fakes.TexturesVertex(colours))

    mesh = interop.meshes_from_pytorch3d(p3d, padded=True)
    assert isinstance(mesh, sr.Mesh) and mesh.is_padded and mesh.texture_type == "vertex"
    assert mesh.vertex_counts.tolist() == [12, 42] and mesh.face_counts.tolist() == [20, 80]
    listed = interop.meshes_from_pytorch3d(p3d)  # the list form is unchanged
    assert isinstance(listed, list) and len(listed) == 2
    for b, single in enumerate(listed):
        for name in ("vertices", "faces", "textures"):
            assert torch.equal(getattr(mesh[b], name), getattr(single, name)), name

    for back in (interop.meshes_to_pytorch3d(mesh), mesh.to_pytorch3d()):
        assert [len(v) for v in back.verts_list()] == [12, 42] and [len(f) for f in back.faces_list()] == [20, 80]
        for b in range(2):
            assert torch.equal(back.verts_list()[b], verts[b])
            assert torch.equal(back.faces_list()[b], p3d.faces_list()[b])
            assert torch.equal(back.textures.verts_features_list()[b], colours[b])
    back.verts_padded().sum().backward()  # the graph reaches the PyTorch3D vertices
    assert torch.equal(verts[1].grad, torch.ones_like(verts[1]))


def test_pytorch3d_atlases_and_no_textures_pad_too(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.install(monkeypatch, "pytorch3d")
    (v1, f1), (v2, f2) = icosphere(0), icosphere(1)
    atlas = [torch.rand(len(f1), 2, 2, 3), torch.rand(len(f2), 2, 2, 3)]
    mesh = interop.meshes_from_pytorch3d(fakes.Meshes([v1, v2], [f1.long(), f2.long()], fakes.TexturesAtlas(atlas)),
                                         padded=True)  # fmt: skip
    assert mesh.texture_type == "surface" and mesh.texture_res == 2
    assert torch.equal(mesh[1].textures[0], atlas[1].reshape(len(f2), 4, 3))
    assert all(torch.equal(a, b) for a, b in zip(mesh.to_pytorch3d().textures.atlas_list(), atlas, strict=True))
    plain = interop.meshes_from_pytorch3d(fakes.Meshes([v1, v2], [f1.long(), f2.long()]), padded=True, texture_res=3)
    assert plain.texture_res == 3 and plain.face_counts.tolist() == [20, 80]
    with pytest.raises(ValueError, match=r"meshes_from_pytorch3d\(meshes, padded=True\) for one padded batch"):
        sr.Mesh.from_pytorch3d(fakes.Meshes([v1, v2], [f1.long(), f2.long()]))
    uv = sr.Mesh(v1, f1, sr.UVTexture(torch.rand(2, 2, 3), torch.rand(len(f1), 3, 2)))
    with pytest.raises(ValueError, match="meshes: UV textures are not converted to PyTorch3D's TexturesUV"):
        interop.meshes_to_pytorch3d([uv])
