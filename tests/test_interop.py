"""Mesh ↔ trimesh / PyTorch3D / Open3D conversions (softras.interop).

PyTorch3D and Open3D are not installed here; tests/fakes.py provides stand-ins that follow their APIs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import trimesh
from PIL import Image

import softras as sr
from softras import interop
from softras.io import load_mesh, texel_barycentrics
from softras.raster.contract import texel_index
from softras.shapes import icosphere
from tests import fakes

U8 = 0.5 / 255 + 1e-6  # trimesh keeps colours as 8 bits per channel


def _grid_sample_texels(image: torch.Tensor, face_uvs: torch.Tensor, r: int, align_corners: bool) -> torch.Tensor:
    """Oracle: PyTorch3D's TexturesUV lookup (grid_sample of the v-flipped map) at the texel centres."""
    uv = torch.einsum("tk,fkc->ftc", texel_barycentrics(r, torch.float64), face_uvs.double())  # [F, T, 2]
    grid = (uv * 2 - 1)[None]  # x = u, y = v in [-1, 1]
    img = torch.flip(image.double(), dims=[0]).permute(2, 0, 1)[None]
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=align_corners)
    return out[0].permute(1, 2, 0)  # [F, T, 3]


def _textured_trimesh(seed: int = 0) -> trimesh.Trimesh:
    rng = np.random.default_rng(seed)
    v, f = icosphere(1)
    image = Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    uv = rng.random((len(v), 2))
    visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    return trimesh.Trimesh(v.double().numpy(), f.numpy(), visual=visual, process=False)


# ---- trimesh -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_trimesh_keeps_order_and_takes_the_dtype(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(1)
    tm = trimesh.Trimesh(rng.normal(size=(30, 3)), rng.integers(0, 30, (40, 3)), process=False)
    mesh = sr.Mesh.from_trimesh(tm, dtype=dtype)
    assert mesh.vertices.dtype == dtype and mesh.textures.dtype == dtype and mesh.batch_size == 1
    torch.testing.assert_close(mesh.vertices[0], torch.from_numpy(tm.vertices).to(dtype), rtol=0, atol=0)
    assert torch.equal(mesh.faces[0].long(), torch.from_numpy(tm.faces))
    assert torch.equal(mesh.textures, torch.ones(1, 40, 16, 3, dtype=dtype))  # white, R = 4
    back = mesh.to_trimesh()
    assert back.vertices.dtype == np.float64 and np.array_equal(back.faces, tm.faces)
    if dtype == torch.float64:
        assert np.array_equal(back.vertices, tm.vertices)


def test_default_dtype_is_float32_and_normalization_matches_from_file(tmp_path) -> None:
    v, f = icosphere(1)
    tm = trimesh.Trimesh(v.double().numpy() * [5, 2, 1] + 3, f.numpy(), process=False)
    tm.export(tmp_path / "m.ply")
    mesh = sr.Mesh.from_trimesh(tm, normalization=True)
    assert mesh.vertices.dtype == torch.float32
    assert float(mesh.vertices.abs().max()) == pytest.approx(1.0, abs=1e-6)
    from_file = sr.Mesh.from_file(tmp_path / "m.ply", normalization=True)
    torch.testing.assert_close(mesh.vertices, from_file.vertices, rtol=0, atol=1e-6)


def test_vertex_colours_round_trip_exactly_at_8_bits() -> None:
    rng = np.random.default_rng(3)
    colours = rng.integers(0, 256, (20, 4), dtype=np.uint8)
    colours[:, 3] = 255
    tm = trimesh.Trimesh(rng.normal(size=(20, 3)), rng.integers(0, 20, (25, 3)), vertex_colors=colours,
                         process=False)
    mesh = sr.Mesh.from_trimesh(tm, texture_type="vertex", dtype=torch.float64)
    torch.testing.assert_close(mesh.textures[0], torch.from_numpy(colours[:, :3] / 255.0), rtol=0, atol=1e-7)
    back = mesh.to_trimesh()
    assert back.visual.kind == "vertex" and np.array_equal(back.visual.vertex_colors, colours)


def test_face_colours_become_constant_texels_and_come_back_as_face_colours() -> None:
    rng = np.random.default_rng(4)
    colours = np.concatenate([rng.integers(0, 256, (8, 3)), np.full((8, 1), 255)], axis=1).astype(np.uint8)
    tm = trimesh.Trimesh(rng.normal(size=(10, 3)), rng.integers(0, 10, (8, 3)), face_colors=colours, process=False)
    mesh = sr.Mesh.from_trimesh(tm, texture_res=3)
    expected = torch.from_numpy(colours[:, :3] / 255.0).float()[:, None, :].expand(8, 9, 3)
    torch.testing.assert_close(mesh.textures[0], expected, rtol=0, atol=1e-7)
    back = mesh.to_trimesh()
    assert back.visual.kind == "face" and np.array_equal(back.visual.face_colors, colours)
    # one colour per face: the vertices stay shared (float32, the default dtype, then float64)
    assert np.array_equal(back.vertices, tm.vertices.astype(np.float32).astype(np.float64))


def test_texture_visuals_are_sampled_at_texel_centres_and_written_as_an_atlas() -> None:
    tm = _textured_trimesh()
    r = 3
    mesh = sr.Mesh.from_trimesh(tm, texture_res=r, dtype=torch.float64)
    image = torch.from_numpy(np.array(tm.visual.material.image)).double() / 255
    face_uvs = torch.from_numpy(np.asarray(tm.visual.uv))[torch.from_numpy(tm.faces)]
    oracle = _grid_sample_texels(image, face_uvs, r, align_corners=True)
    torch.testing.assert_close(mesh.textures[0], oracle, rtol=0, atol=1e-5)  # sampled in float32

    back = mesh.to_trimesh()  # texels differ within faces: a texture atlas with uvs
    assert back.visual.kind == "texture" and back.visual.uv.shape == (3 * mesh.num_faces, 2)
    assert back.vertices.shape == (3 * mesh.num_faces, 3)
    np.testing.assert_array_equal(back.vertices, tm.vertices[tm.faces].reshape(-1, 3))
    again = sr.Mesh.from_trimesh(back, texture_res=r, dtype=torch.float64)
    torch.testing.assert_close(again.textures, mesh.textures, rtol=0, atol=U8)


def test_to_trimesh_face_colours_average_texels_and_options_are_checked() -> None:
    mesh = sr.Mesh.from_trimesh(_textured_trimesh(), texture_res=2)
    flat = mesh.to_trimesh(surface="face_colors")
    assert flat.visual.kind == "face" and len(flat.vertices) == mesh.num_vertices
    mean = np.round(mesh.textures[0].mean(1).double().numpy() * 255)
    np.testing.assert_array_equal(flat.visual.face_colors[:, :3], mean)
    with pytest.raises(ValueError, match="surface"):
        mesh.to_trimesh(surface="uv")
    with pytest.raises(IndexError, match=r"index: expected an int in \[-1, 1\)"):
        mesh.to_trimesh(1)


def test_to_trimesh_picks_an_item_of_a_batch() -> None:
    v, f = icosphere(0)
    mesh = sr.Mesh(torch.stack([v, v * 2]), f)
    np.testing.assert_array_equal(mesh.to_trimesh(1).vertices, (v * 2).double().numpy())


def test_from_trimesh_rejects_what_it_cannot_convert() -> None:
    tm = _textured_trimesh()
    with pytest.raises(TypeError, match=r"expected a trimesh.Trimesh, got Scene .*to_geometry"):
        sr.Mesh.from_trimesh(trimesh.Scene([tm]))
    with pytest.raises(TypeError, match=r"dtype: expected a floating torch.dtype"):
        sr.Mesh.from_trimesh(tm, dtype=torch.int32)
    with pytest.raises(ValueError, match="texture_type"):
        sr.Mesh.from_trimesh(tm, texture_type="texels")
    with pytest.raises(ValueError, match="mesh: expected a mesh with vertices and faces"):
        sr.Mesh.from_trimesh(trimesh.Trimesh())


def test_from_file_and_from_trimesh_agree_on_a_textured_glb(tmp_path) -> None:
    tm = _textured_trimesh(5)
    tm.export(tmp_path / "m.glb")
    loaded = load_mesh(tmp_path / "m.glb", texture_res=2)
    mesh = sr.Mesh.from_trimesh(trimesh.load(tmp_path / "m.glb", force="mesh"), texture_res=2)
    torch.testing.assert_close(mesh.textures[0], loaded.textures, rtol=0, atol=0)


# ---- PyTorch3D ----------------------------------------------------------------------------------
def test_pytorch3d_missing_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytorch3d", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "pytorch3d.structures", None)
    v, f = icosphere(0)
    with pytest.raises(ImportError, match=r"Mesh.to_pytorch3d needs the optional package 'pytorch3d'"):
        sr.Mesh(v, f).to_pytorch3d()


def test_to_pytorch3d_vertex_textures_keep_dtype_and_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.install(monkeypatch, "pytorch3d")
    v, f = icosphere(1)
    verts = v.double().requires_grad_()
    colours = torch.rand(2, len(v), 3, dtype=torch.float64)
    mesh = sr.Mesh(torch.stack([verts, verts * 2]), f, colours, texture_type="vertex")
    p3d = mesh.to_pytorch3d()
    assert len(p3d) == 2 and isinstance(p3d.textures, fakes.TexturesVertex)
    assert p3d.verts_list()[1].dtype == torch.float64 and p3d.faces_list()[0].dtype == torch.int64
    torch.testing.assert_close(p3d.textures.verts_features_list()[1], colours[1], rtol=0, atol=0)
    p3d.verts_padded().sum().backward()
    torch.testing.assert_close(verts.grad, torch.full_like(verts, 3.0))  # 1 + 2 from the two items
    back = sr.Mesh.from_pytorch3d(p3d)
    assert back.texture_type == "vertex" and back.vertices.dtype == torch.float64
    torch.testing.assert_close(back.vertices, mesh.vertices, rtol=0, atol=0)
    torch.testing.assert_close(back.textures, mesh.textures, rtol=0, atol=0)


@pytest.mark.parametrize("r", [1, 3, 6])
def test_surface_textures_are_pytorch3d_atlases_texel_for_texel(monkeypatch: pytest.MonkeyPatch, r: int) -> None:
    fakes.install(monkeypatch, "pytorch3d")
    v, f = icosphere(0)
    textures = torch.rand(len(f), r * r, 3)
    mesh = sr.Mesh(v, f, textures, texture_res=r)
    atlas = mesh.to_pytorch3d().textures
    assert isinstance(atlas, fakes.TexturesAtlas) and atlas.atlas_list()[0].shape == (len(f), r, r, 3)
    g = torch.Generator().manual_seed(r)
    w = torch.rand(500, 3, generator=g)
    w = w / w.sum(1, keepdim=True)  # points inside the triangle
    for face in (0, 7, len(f) - 1):
        ours = textures[face, texel_index(w[:, 0], w[:, 1], r)]
        torch.testing.assert_close(atlas.sample_face(0, face, w[:, 0], w[:, 1]), ours, rtol=0, atol=0)
    back = sr.Mesh.from_pytorch3d(mesh.to_pytorch3d())
    assert back.texture_res == r and torch.equal(back.textures, mesh.textures)


@pytest.mark.parametrize("align_corners", [True, False])
def test_from_pytorch3d_reads_uv_maps_like_pytorch3d(monkeypatch: pytest.MonkeyPatch, align_corners: bool) -> None:
    fakes.install(monkeypatch, "pytorch3d")
    v, f = icosphere(1)
    g = torch.Generator().manual_seed(0)
    image = torch.rand(12, 20, 3, generator=g)
    verts_uvs = torch.rand(50, 2, generator=g)
    faces_uvs = torch.randint(0, 50, (len(f), 3), generator=g)
    tex = fakes.TexturesUV([image], [faces_uvs], [verts_uvs], align_corners=align_corners)
    mesh = sr.Mesh.from_pytorch3d(fakes.Meshes([v], [f.long()], tex), texture_res=4)
    assert mesh.texture_type == "surface" and mesh.texture_res == 4
    oracle = _grid_sample_texels(image, verts_uvs[faces_uvs], 4, align_corners)
    torch.testing.assert_close(mesh.textures[0].double(), oracle, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="TexturesUV holds colours per face"):
        sr.Mesh.from_pytorch3d(fakes.Meshes([v], [f.long()], tex), texture_type="vertex")


def test_meshes_of_different_sizes_convert_as_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.install(monkeypatch, "pytorch3d")
    small, big = sr.Mesh(*icosphere(0), texture_type="vertex"), sr.Mesh(*icosphere(2), texture_type="vertex")
    p3d = interop.meshes_to_pytorch3d([small, big])
    assert [len(x) for x in p3d.verts_list()] == [small.num_vertices, big.num_vertices]
    assert p3d.faces_padded().shape == (2, big.num_faces, 3) and int(p3d.faces_padded()[0, -1, 0]) == -1
    items = interop.meshes_from_pytorch3d(p3d, dtype=torch.float64)
    assert [(m.num_vertices, m.num_faces) for m in items] == [(12, 20), (162, 320)]
    assert all(m.vertices.dtype == torch.float64 and m.texture_type == "vertex" for m in items)
    torch.testing.assert_close(items[1].vertices, big.vertices.double(), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"equal vertex and face counts, got vertices/faces 12/20, 162/320; use "
                                         r"softras\.interop\.meshes_from_pytorch3d"):
        sr.Mesh.from_pytorch3d(p3d)
    with pytest.raises(ValueError, match="one texture type and one texture_res"):
        interop.meshes_to_pytorch3d([small, sr.Mesh(*icosphere(0))])


def test_from_pytorch3d_textures_vertex_to_surface_and_no_textures(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.install(monkeypatch, "pytorch3d")
    v, f = icosphere(0)
    colours = torch.rand(len(v), 3)
    p3d = fakes.Meshes([v], [f.long()], fakes.TexturesVertex([colours]))
    mesh = sr.Mesh.from_pytorch3d(p3d, texture_type="surface", texture_res=2)
    expected = sr.Mesh(v, f, colours, texture_type="vertex").face_textures[0]  # corner colours [F, 3, 3]
    torch.testing.assert_close(mesh.textures[0], torch.einsum("tk,fkc->ftc", texel_barycentrics(2), expected))
    plain = sr.Mesh.from_pytorch3d(fakes.Meshes([v], [f.long()]))
    assert plain.texture_type == "surface" and torch.equal(plain.textures, torch.ones(1, len(f), 16, 3))
    with pytest.raises(TypeError, match=r"meshes: expected a pytorch3d.structures.Meshes, got Mesh"):
        sr.Mesh.from_pytorch3d(sr.Mesh(v, f))
    with pytest.raises(TypeError, match="dtype: expected a floating"):
        sr.Mesh.from_pytorch3d(p3d, dtype=torch.int64)
    faces_uvs = [torch.zeros(len(f), 3, dtype=torch.int64)]
    two_maps = fakes.TexturesUV([torch.rand(2, 4, 4, 3)], faces_uvs, [torch.rand(1, 2)])
    with pytest.raises(ValueError, match=r"one \[H, W, C\] map per mesh, got shape \(2, 4, 4, 3\)"):
        sr.Mesh.from_pytorch3d(fakes.Meshes([v], [f.long()], two_maps))


# ---- Open3D (through trimesh) -------------------------------------------------------------------
def test_open3d_through_trimesh(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.install(monkeypatch, "open3d")
    import open3d as o3d

    v, f = icosphere(1)
    colours = np.random.default_rng(0).random((len(v), 3))
    o3d_mesh = o3d.geometry.TriangleMesh()
    o3d_mesh.vertices = o3d.utility.Vector3dVector(v.double().numpy())
    o3d_mesh.triangles = o3d.utility.Vector3iVector(f.numpy())
    o3d_mesh.vertex_colors = o3d.utility.Vector3dVector(colours)

    mesh = sr.Mesh.from_trimesh(interop.open3d_to_trimesh(o3d_mesh), texture_type="vertex")
    torch.testing.assert_close(mesh.vertices[0], v, rtol=0, atol=0)
    assert torch.equal(mesh.faces[0].long(), f.long())
    torch.testing.assert_close(mesh.textures[0].double(), torch.from_numpy(colours), rtol=0, atol=U8)

    back = interop.trimesh_to_open3d(mesh.to_trimesh())
    np.testing.assert_array_equal(np.asarray(back.vertices), v.double().numpy())
    np.testing.assert_array_equal(np.asarray(back.triangles), f.numpy())
    np.testing.assert_allclose(np.asarray(back.vertex_colors), colours, atol=U8)


def test_textured_open3d_mesh_keeps_its_uvs(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.install(monkeypatch, "open3d")
    import open3d as o3d

    v, f = icosphere(0)
    rng = np.random.default_rng(1)
    o3d_mesh = o3d.geometry.TriangleMesh()
    o3d_mesh.vertices = o3d.utility.Vector3dVector(v.double().numpy())
    o3d_mesh.triangles = o3d.utility.Vector3iVector(f.numpy())
    o3d_mesh.triangle_uvs = o3d.utility.Vector2dVector(rng.random((3 * len(f), 2)))
    o3d_mesh.textures = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)]
    tm = interop.open3d_to_trimesh(o3d_mesh)
    assert tm.visual.kind == "texture" and len(tm.vertices) == 3 * len(f)
    np.testing.assert_array_equal(tm.visual.uv, np.asarray(o3d_mesh.triangle_uvs))
    np.testing.assert_array_equal(np.asarray(tm.visual.material.image), o3d_mesh.textures[0])


def test_open3d_missing_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(ImportError, match="trimesh_to_open3d needs the optional package 'open3d'"):
        interop.trimesh_to_open3d(_textured_trimesh())


def test_the_trimesh_example_of_the_docs_runs() -> None:
    text = (Path(__file__).parents[1] / "docs" / "interop.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "docs/interop.md", "exec"), {})
