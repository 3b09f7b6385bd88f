"""Tests for softras.io: OBJ/MTL reading and writing, texture sampling, other formats."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import trimesh

from softras.io import (
    LoadedMesh,
    create_texture_atlas,
    load_mesh,
    load_obj,
    sample_surface_textures,
    save_mesh,
    save_obj,
    texel_barycentrics,
    texel_index,
)

QUANT = 1.0 / 255 + 1e-5


def write(path, text: str) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return str(path)


def random_mesh(n_v: int = 12, n_f: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n_v, 3, generator=g) * 2 - 1, torch.randint(0, n_v, (n_f, 3), generator=g)


# --------------------------------------------------------------------------- texel layout


def test_texel_barycentrics_values():
    np.testing.assert_allclose(texel_barycentrics(1).numpy(), [[1 / 3, 1 / 3, 1 / 3]], atol=1e-7)
    b2 = texel_barycentrics(2).double().numpy()
    expected = [
        [1 / 6, 1 / 6, 2 / 3],  # i=0: w_x=0, w_y=0 lower
        [1 / 2 + 1 / 6, 1 / 6, 1 / 6],  # i=1: w_x=1, w_y=0 lower
        [1 / 6, 1 / 2 + 1 / 6, 1 / 6],  # i=2: w_x=0, w_y=1 lower
        [1 / 3, 1 / 3, 1 / 3],  # i=3: upper, ((1-1)+2/3)/2
    ]
    np.testing.assert_allclose(b2, expected, atol=1e-6)


@pytest.mark.parametrize("r", [1, 2, 3, 4, 7])
def test_texel_barycentrics_inverse_of_lookup(r):
    b = texel_barycentrics(r, dtype=torch.float64)
    assert b.shape == (r * r, 3)
    assert torch.allclose(b.sum(1), torch.ones(r * r, dtype=torch.float64))
    assert bool((b > 0).all())
    idx = texel_index(b[:, 0], b[:, 1], r)
    assert torch.equal(idx, torch.arange(r * r))


def test_texel_barycentrics_bad_res():
    with pytest.raises(ValueError):
        texel_barycentrics(0)


# --------------------------------------------------------------------------- sampling


def test_sample_linear_image_is_exact():
    h, w = 9, 13
    xs = np.arange(w) / (w - 1)
    ys = np.arange(h) / (h - 1)
    img = np.zeros((h, w, 3), np.float32)
    img[:, :, 0] = xs[None, :]  # u
    img[:, :, 1] = ys[::-1, None]  # v (row 0 is the top: v = 1)
    img[:, :, 2] = 0.5
    uvs = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.1, 0.1]], [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    r = 3
    out = sample_surface_textures(torch.from_numpy(img), uvs, r)
    assert out.shape == (2, 9, 3)
    expected_uv = torch.einsum("tk,fkc->ftc", texel_barycentrics(r), uvs)
    assert torch.allclose(out[..., :2], expected_uv, atol=1e-5)
    assert torch.allclose(out[..., 2], torch.full((2, 9), 0.5))


def test_sample_wraps_uv_and_handles_grey_and_alpha():
    img = np.zeros((5, 5), np.uint8)
    img[:, 1] = 255  # column at u = 0.25
    uvs = torch.tensor([[[1.25, 0.5], [1.25, 0.5], [1.25, 0.5]]])
    out = sample_surface_textures(img, uvs, 1)
    assert out.shape == (1, 1, 3)
    assert torch.allclose(out, torch.ones(1, 1, 3))
    rgba = np.zeros((4, 4, 4), np.float32)
    rgba[..., 0] = 0.25
    rgba[..., 3] = 0.7
    out = sample_surface_textures(rgba, uvs, 2)
    assert torch.allclose(out, torch.tensor([0.25, 0.0, 0.0]).expand(1, 4, 3))


def test_sample_clamps_at_image_edge():
    img = torch.zeros(4, 4, 3)
    img[0, 3] = torch.tensor([0.1, 0.2, 0.3])  # top-right pixel: u = 1, v = 1
    uvs = torch.ones(1, 3, 2)
    out = sample_surface_textures(img, uvs, 2)
    assert torch.allclose(out, torch.tensor([0.1, 0.2, 0.3]).expand(1, 4, 3))


@pytest.mark.parametrize("r", [1, 2, 4])
def test_atlas_resampling_is_exact(r):
    g = torch.Generator().manual_seed(r)
    tex = torch.rand(7, r * r, 3, generator=g)
    image, uvs = create_texture_atlas(tex, 4)
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
    assert uvs.shape == (7, 3, 2)
    assert uvs.min() >= 0 and uvs.max() <= 1
    back = sample_surface_textures(torch.from_numpy(image), torch.from_numpy(uvs), r)
    assert torch.allclose(back, tex, atol=1e-6)


def test_atlas_rejects_non_square_texel_count():
    with pytest.raises(ValueError, match="R\\*R"):
        create_texture_atlas(torch.rand(3, 5, 3))


# --------------------------------------------------------------------------- save/load round trips


def test_geometry_round_trip(tmp_path):
    v, f = random_mesh()
    path = tmp_path / "geo.obj"
    save_obj(path, v, f)
    v2, f2 = load_obj(path)
    assert v2.dtype == torch.float32 and f2.dtype == torch.int64
    assert torch.allclose(v2, v, atol=1e-7)
    assert torch.equal(f2, f)
    assert not (tmp_path / "geo.mtl").exists()


@pytest.mark.parametrize("r", [1, 2, 4])
def test_surface_texture_round_trip(tmp_path, r):
    v, f = random_mesh(seed=r)
    tex = torch.rand(f.shape[0], r * r, 3, generator=torch.Generator().manual_seed(10 + r))
    path = tmp_path / "tex.obj"
    save_obj(path, v, f, tex, texture_type="surface")
    assert (tmp_path / "tex.png").is_file() and (tmp_path / "tex.mtl").is_file()
    mtl = (tmp_path / "tex.mtl").read_text()
    assert "newmtl" in mtl and "map_Kd tex.png" in mtl
    v2, f2, tex2 = load_obj(path, load_texture=True, texture_res=r)
    assert tex2.shape == (f.shape[0], r * r, 3)
    assert torch.equal(f2, f)
    assert torch.allclose(v2, v, atol=1e-7)
    assert (tex2 - tex).abs().max().item() <= QUANT


def test_surface_round_trip_small_cell_is_enlarged(tmp_path):
    v, f = random_mesh(n_f=5)
    tex = torch.rand(5, 16, 3)
    save_obj(tmp_path / "s.obj", v, f, tex, texture_res=2)
    _, _, tex2 = load_obj(tmp_path / "s.obj", load_texture=True, texture_res=4)
    assert (tex2 - tex).abs().max().item() <= QUANT


def test_vertex_color_round_trip(tmp_path):
    v, f = random_mesh()
    colors = torch.rand(v.shape[0], 3)
    path = tmp_path / "vc.obj"
    save_obj(path, v, f, colors, texture_type="vertex")
    v2, f2, c2 = load_obj(path, load_texture=True, texture_type="vertex")
    assert c2.shape == (v.shape[0], 3)
    assert torch.allclose(c2, colors, atol=1e-7)
    assert torch.allclose(v2, v, atol=1e-7)
    assert torch.equal(f2, f)


def test_save_accepts_grad_tensors_and_numpy(tmp_path):
    v, f = random_mesh()
    vg = v.clone().requires_grad_(True)
    save_obj(tmp_path / "a.obj", vg, f, torch.rand(f.shape[0], 1, 3, requires_grad=True))
    save_obj(tmp_path / "b.obj", v.numpy(), f.numpy().astype(np.int32))
    v2, f2 = load_obj(tmp_path / "b.obj")
    assert torch.allclose(v2, v, atol=1e-7) and torch.equal(f2, f)
    v3, _, t3 = load_obj(tmp_path / "a.obj", load_texture=True, texture_res=1)
    assert torch.allclose(v3, v, atol=1e-7) and t3.shape == (f.shape[0], 1, 3)


def test_save_rejects_bad_shapes(tmp_path):
    v, f = random_mesh()
    with pytest.raises(ValueError):
        save_obj(tmp_path / "x.obj", v[:, :2], f)
    with pytest.raises(ValueError):
        save_obj(tmp_path / "x.obj", v, f + 100)
    with pytest.raises(ValueError):
        save_obj(tmp_path / "x.obj", v, f, torch.rand(3, 1, 3))
    with pytest.raises(ValueError):
        save_obj(tmp_path / "x.obj", v, f, torch.rand(3, 3), texture_type="vertex")


# --------------------------------------------------------------------------- OBJ parsing


QUAD_OBJ = """# a unit square made of a quad and a pentagon-like polygon
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0.5 0  # trailing comment
vn 0 0 1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
f 1/1/1 2/2/1 3/3/1 4/4/1
f -4//1 -1//1 -3//1
f 1 2 5
"""


def test_load_obj_polygons_relative_indices_and_forms(tmp_path):
    path = write(tmp_path / "quad.obj", QUAD_OBJ)
    v, f = load_obj(path)
    assert v.shape == (5, 3) and v.dtype == torch.float32
    assert torch.equal(v[4], torch.tensor([2.0, 0.5, 0.0]))
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 2], [0, 1, 4]]


def test_load_obj_normalization(tmp_path):
    path = write(tmp_path / "n.obj", "v 0 0 0\nv 2 0 0\nv 0 1 0\nf 1 2 3\n")
    v, _ = load_obj(path, normalization=True)
    expected = torch.tensor([[-1.0, -0.5, 0.0], [1.0, -0.5, 0.0], [-1.0, 0.5, 0.0]])
    assert torch.allclose(v, expected)


def test_load_obj_vertex_colors_default_white(tmp_path):
    path = write(tmp_path / "c.obj", "v 0 0 0 1 0 0\nv 1 0 0\nv 0 1 0 0 0.5 1\nf 1 2 3\n")
    _, _, c = load_obj(path, load_texture=True, texture_type="vertex")
    assert torch.allclose(c, torch.tensor([[1.0, 0, 0], [1, 1, 1], [0, 0.5, 1]]))


def test_load_obj_kd_materials_and_white_default(tmp_path):
    write(tmp_path / "m.mtl", "newmtl red\nKd 1 0 0\n\nnewmtl blue\nKd 0 0 1\nnewmtl none\n")
    path = write(
        tmp_path / "m.obj",
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\n"
        "f 1 2 3\nusemtl red\nf 2 4 3\nusemtl blue\nf 1 2 4 3\nusemtl none\nf 1 3 4\n",
    )
    _, f, t = load_obj(path, load_texture=True, texture_res=2)
    assert f.shape == (5, 3) and t.shape == (5, 4, 3)
    assert torch.allclose(t[0], torch.ones(4, 3))
    assert torch.allclose(t[1], torch.tensor([1.0, 0, 0]).expand(4, 3))
    assert torch.allclose(t[2:4], torch.tensor([0.0, 0, 1]).expand(2, 4, 3))
    assert torch.allclose(t[4], torch.ones(4, 3))


def _gradient_png(path, h=6, w=10, grey=False, alpha=False):
    xs = np.arange(w) / (w - 1)
    ys = np.arange(h) / (h - 1)
    img = np.zeros((h, w, 3), np.float64)
    img[:, :, 0] = xs[None, :]
    img[:, :, 1] = ys[::-1, None]
    img[:, :, 2] = 0.25
    u8 = np.round(img * 255).astype(np.uint8)
    if grey:
        u8 = u8[:, :, 0]
    elif alpha:
        u8 = np.concatenate([u8, np.full((h, w, 1), 17, np.uint8)], axis=2)
    iio.imwrite(path, u8)
    return u8


@pytest.mark.parametrize("mode", ["rgb", "grey", "rgba"])
def test_load_obj_texture_image(tmp_path, mode):
    os.makedirs(tmp_path / "tex")
    u8 = _gradient_png(tmp_path / "tex" / "grad.png", grey=mode == "grey", alpha=mode == "rgba")
    write(tmp_path / "m.mtl", "newmtl wood\nKd 0.5 0.5 0.5\nmap_Kd -s 1 1 1 tex/grad.png\n")
    path = write(
        tmp_path / "m.obj",
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0.9 0.1\nvt 0.2 0.8\nvt 0.1 0.3\n"
        "usemtl wood\nf 1/1 2/2 3/3\nf 1 2 3\n",
    )
    r = 4
    _, _, t = load_obj(path, load_texture=True, texture_res=r)
    uvs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.1, 0.3]])
    uv = texel_barycentrics(r) @ uvs  # [R*R, 2]
    # The image holds a quantised linear ramp: bilinear sampling reproduces it.
    img = torch.from_numpy(u8.astype(np.float32) / 255)
    if mode == "grey":
        img = img[:, :, None].expand(-1, -1, 3)
    expected = sample_surface_textures(img[:, :, :3], uvs[None], r)[0]
    assert torch.allclose(t[0], expected, atol=1e-6)
    if mode != "grey":
        assert torch.allclose(t[0, :, 0], uv[:, 0], atol=QUANT)
        assert torch.allclose(t[0, :, 1], uv[:, 1], atol=QUANT)
    # A face without uvs keeps the Kd colour.
    assert torch.allclose(t[1], torch.full((r * r, 3), 0.5))


def test_load_obj_surface_without_mtllib_raises(tmp_path):
    path = write(tmp_path / "plain.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="mtllib"):
        load_obj(path, load_texture=True)


# --------------------------------------------------------------------------- errors


def test_missing_obj(tmp_path):
    missing = tmp_path / "nope.obj"
    with pytest.raises(FileNotFoundError, match=r"nope\.obj"):
        load_obj(missing)


@pytest.mark.parametrize(
    ("body", "line", "pattern"),
    [
        ("v 0 0 0\nv 1 0 x\nv 0 1 0\nf 1 2 3\n", 2, "bad number"),
        ("v 0 0 0\nv 1 0\nf 1 2 3\n", 2, "3 coordinates"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\n\nf 1 2 4\n", 5, "out of range"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", 4, "index 0"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", 4, "at least 3"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -1 -2 -4\n", 4, "relative"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/a 2 3\n", 4, "bad texture coordinate index"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/2 3/1\n", 5, "texture coordinate index 2"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, body, line, pattern):
    path = write(tmp_path / "mesh.obj", body)
    with pytest.raises(ValueError, match=pattern) as info:
        load_obj(path)
    assert f"mesh.obj:{line}:" in str(info.value)


def test_no_vertices_or_faces(tmp_path):
    with pytest.raises(ValueError, match="no vertices"):
        load_obj(write(tmp_path / "e.obj", "# empty\n"))
    with pytest.raises(ValueError, match="no faces"):
        load_obj(write(tmp_path / "nf.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"))


def test_bad_arguments(tmp_path):
    path = write(tmp_path / "t.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="texture_type"):
        load_obj(path, load_texture=True, texture_type="volume")
    with pytest.raises(ValueError, match="texture_res"):
        load_obj(path, load_texture=True, texture_res=0)


TRI = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl a\nf 1/1 2/2 3/3\n"


def test_missing_mtl_names_files(tmp_path):
    path = write(tmp_path / "m.obj", "mtllib gone.mtl\n" + TRI)
    with pytest.raises(FileNotFoundError) as info:
        load_obj(path, load_texture=True)
    assert "gone.mtl" in str(info.value) and "m.obj" in str(info.value)
    # Without textures the MTL is not needed.
    _, f = load_obj(path)
    assert f.shape == (1, 3)


def test_missing_texture_names_files(tmp_path):
    write(tmp_path / "m.mtl", "newmtl a\nmap_Kd missing.png\n")
    path = write(tmp_path / "m.obj", "mtllib m.mtl\n" + TRI)
    with pytest.raises(FileNotFoundError) as info:
        load_obj(path, load_texture=True)
    assert "missing.png" in str(info.value) and "m.mtl" in str(info.value)


def test_paths_escaping_mesh_folder_are_rejected(tmp_path):
    inner = tmp_path / "mesh"
    inner.mkdir()
    write(tmp_path / "outside.mtl", "newmtl a\nKd 1 0 0\n")
    _gradient_png(tmp_path / "outside.png")
    path = write(inner / "m.obj", "mtllib ../outside.mtl\n" + TRI)
    with pytest.raises(ValueError, match="outside"):
        load_obj(path, load_texture=True)
    path = write(inner / "abs.obj", f"mtllib {tmp_path / 'outside.mtl'}\n" + TRI)
    with pytest.raises(ValueError, match="outside"):
        load_obj(path, load_texture=True)
    write(inner / "t.mtl", "newmtl a\nmap_Kd ../outside.png\n")
    path = write(inner / "t.obj", "mtllib t.mtl\n" + TRI)
    with pytest.raises(ValueError, match="outside"):
        load_obj(path, load_texture=True)
    write(inner / "u.mtl", f"newmtl a\nmap_Kd {tmp_path / 'outside.png'}\n")
    path = write(inner / "u.obj", "mtllib u.mtl\n" + TRI)
    with pytest.raises(ValueError, match="outside"):
        load_obj(path, load_texture=True)
    # "sub/../x" that stays inside the folder is fine.
    (inner / "sub").mkdir()
    write(inner / "ok.mtl", "newmtl a\nKd 0 1 0\n")
    path = write(inner / "ok.obj", "mtllib sub/../ok.mtl\n" + TRI)
    _, _, t = load_obj(path, load_texture=True, texture_res=1)
    assert torch.allclose(t, torch.tensor([[[0.0, 1.0, 0.0]]]))


# --------------------------------------------------------------------------- other formats


def test_load_mesh_ply_vertex_colors(tmp_path):
    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    colors = np.zeros((len(box.vertices), 4), np.uint8)
    colors[:, 0] = np.arange(len(box.vertices)) * 30
    colors[:, 1] = 200
    colors[:, 3] = 255
    box.visual = trimesh.visual.ColorVisuals(box, vertex_colors=colors)
    path = tmp_path / "box.ply"
    box.export(path)
    mesh = load_mesh(path, texture_type="vertex")
    assert isinstance(mesh, LoadedMesh) and mesh.texture_type == "vertex"
    assert mesh.vertices.dtype == torch.float32 and mesh.faces.dtype == torch.int64
    assert mesh.faces.shape == (12, 3) and mesh.vertices.shape == (8, 3)
    # Each vertex keeps its colour (match by position, trimesh may reorder).
    for pos, col in zip(box.vertices, colors, strict=True):
        k = int(np.argmin(np.linalg.norm(mesh.vertices.numpy() - pos, axis=1)))
        assert np.allclose(mesh.textures[k].numpy(), col[:3] / 255, atol=1e-6)
    tm = trimesh.Trimesh(mesh.vertices.numpy(), mesh.faces.numpy(), process=False)
    assert tm.volume == pytest.approx(6.0, rel=1e-5)
    surf = load_mesh(path, texture_res=2)
    assert surf.textures.shape == (12, 4, 3) and surf.texture_type == "surface"


def test_load_mesh_stl_white_and_normalization(tmp_path):
    box = trimesh.creation.box(extents=(2.0, 4.0, 1.0))
    path = tmp_path / "box.stl"
    box.export(path)
    mesh = load_mesh(path, texture_res=3)
    assert mesh.faces.shape == (12, 3)
    assert mesh.textures.shape == (12, 9, 3)
    assert torch.equal(mesh.textures, torch.ones(12, 9, 3))
    assert torch.allclose(mesh.vertices.abs().max(0)[0], torch.tensor([1.0, 2.0, 0.5]))
    norm = load_mesh(path, normalization=True)
    assert norm.vertices.max().item() == pytest.approx(1.0)
    assert norm.vertices.min().item() == pytest.approx(-1.0)


def test_load_mesh_ply_face_colors(tmp_path):
    box = trimesh.creation.box()
    fc = np.zeros((12, 4), np.uint8)
    fc[:6, 0] = 255
    fc[6:, 2] = 255
    fc[:, 3] = 255
    box.visual = trimesh.visual.ColorVisuals(box, face_colors=fc)
    path = tmp_path / "fc.ply"
    box.export(path)
    mesh = load_mesh(path, texture_res=2)
    assert mesh.textures.shape == (12, 4, 3)
    reds = (mesh.textures[:, :, 0] == 1).all(1) & (mesh.textures[:, :, 2] == 0).all(1)
    blues = (mesh.textures[:, :, 2] == 1).all(1) & (mesh.textures[:, :, 0] == 0).all(1)
    assert int(reds.sum()) == 6 and int(blues.sum()) == 6


def test_load_mesh_obj(tmp_path):
    v, f = random_mesh()
    tex = torch.rand(f.shape[0], 4, 3)
    save_obj(tmp_path / "t.obj", v, f, tex)
    mesh = load_mesh(tmp_path / "t.obj", texture_res=2)
    assert (mesh.textures - tex).abs().max().item() <= QUANT
    save_obj(tmp_path / "p.obj", v, f)
    plain = load_mesh(tmp_path / "p.obj", texture_res=2)
    assert torch.equal(plain.textures, torch.ones(f.shape[0], 4, 3))
    colors = torch.rand(v.shape[0], 3)
    save_obj(tmp_path / "c.obj", v, f, colors, texture_type="vertex")
    vc = load_mesh(tmp_path / "c.obj", texture_type="vertex")
    assert torch.allclose(vc.textures, colors, atol=1e-7)
    # Vertex colours become surface textures by interpolation (R=1: the mean).
    sc = load_mesh(tmp_path / "c.obj", texture_res=1)
    assert torch.allclose(sc.textures[:, 0], colors[f].mean(1), atol=1e-6)


def test_load_mesh_textured_glb(tmp_path):
    from PIL import Image

    box = trimesh.creation.box()
    img = np.zeros((8, 8, 3), np.uint8)
    img[...] = (10, 200, 60)
    uv = np.full((len(box.vertices), 2), 0.5)
    box.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(img))
    path = tmp_path / "box.glb"
    box.export(path)
    mesh = load_mesh(path, texture_res=2)
    assert mesh.faces.shape == (12, 3)
    assert torch.allclose(mesh.textures, torch.tensor([10, 200, 60]) / 255.0 * torch.ones(12, 4, 3),
                          atol=1e-6)


def test_load_mesh_errors(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        load_mesh(write(tmp_path / "x.xyz", "1 2 3\n"))
    with pytest.raises(FileNotFoundError):
        load_mesh(tmp_path / "missing.ply")
    with pytest.raises(ValueError):
        load_mesh(write(tmp_path / "junk.ply", "this is not a ply file\n"))
    with pytest.raises(ValueError, match="texture_type"):
        load_mesh(tmp_path / "missing.ply", texture_type="bad")


def test_save_mesh_formats(tmp_path):
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float32)
    f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    colors = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    save_mesh(tmp_path / "t.ply", v, f, colors, texture_type="vertex")
    m = load_mesh(tmp_path / "t.ply", texture_type="vertex")
    assert m.faces.shape == (4, 3)
    for pos, col in zip(v, colors, strict=True):
        k = int((m.vertices - pos).norm(dim=1).argmin())
        assert torch.allclose(m.textures[k], col)
    save_mesh(tmp_path / "t.stl", v, f)
    assert load_mesh(tmp_path / "t.stl").faces.shape == (4, 3)
    save_mesh(tmp_path / "t.obj", v, f, torch.rand(4, 1, 3))
    assert load_mesh(tmp_path / "t.obj", texture_res=1).textures.shape == (4, 1, 3)
    with pytest.raises(ValueError, match="extension"):
        save_mesh(tmp_path / "t.abc", v, f)
