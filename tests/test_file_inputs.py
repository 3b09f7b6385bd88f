"""Mesh files and textures: what is read is kept, and bad files are named with their line.

Precision (``dtype=torch.float64``), bit-exact ``save_obj`` round trips, colours clipped with one
warning, face indices and coordinates checked with the file and line, unreadable texture images,
path types, and the checks of ``Mesh.to_trimesh`` / ``Mesh.replace``. Every file is written here.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

import softras as sr
from softras.io import create_texture_atlas, load_mesh, load_obj, save_mesh, save_obj

TRI = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
PLY_HEADER = (
    "ply\nformat ascii 1.0\nelement vertex 3\nproperty {kind} x\nproperty {kind} y\nproperty {kind} z\n"
    "element face {faces}\nproperty list uchar int vertex_indices\nend_header\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def ply(path: Path, vertices: str, faces: list[str], kind: str = "float") -> Path:
    return write(path, PLY_HEADER.format(kind=kind, faces=len(faces)) + vertices + "".join(f + "\n" for f in faces))


def user_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


# ---- 1. float64 keeps every digit ------------------------------------------------------------------
def test_float64_loads_keep_every_digit_and_float32_stays_the_default(tmp_path: Path) -> None:
    obj = write(tmp_path / "p.obj", "v 500000.123 0.1 -7e-12\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    exact = torch.tensor([500000.123, 0.1, -7e-12], dtype=torch.float64)
    for mesh in (sr.Mesh.from_file(obj, dtype=torch.float64), sr.Mesh.from_obj(obj, dtype=torch.float64)):
        assert mesh.vertices.dtype == torch.float64 and mesh.textures.dtype == torch.float64
        assert torch.equal(mesh.vertices[0, 0], exact)
    v, _ = load_obj(obj, dtype=torch.float64)
    assert torch.equal(v[0], exact)
    assert torch.equal(load_mesh(obj, texture_type="vertex", dtype=torch.float64).vertices[0], exact)
    default = sr.Mesh.from_file(obj)
    assert default.vertices.dtype == torch.float32 and default.vertices[0, 0, 0].item() == 500000.125
    mesh = sr.Mesh.from_file(ply(tmp_path / "p.ply", "500000.123 0 0\n1 0 0\n0 1 0\n", ["3 0 1 2"], "double"),
                             dtype=torch.float64)
    assert mesh.vertices[0, 0, 0].item() == 500000.123
    with pytest.raises(TypeError, match=r"dtype: expected a floating torch\.dtype"):
        load_obj(obj, dtype=torch.int32)


# ---- 2. save_obj round trips bit for bit -----------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_save_obj_round_trips_vertices_and_colours_bit_exactly(tmp_path: Path, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    scale = 10.0 ** torch.randint(-12, 12, (50, 3), generator=g)
    v = (torch.rand(50, 3, generator=g, dtype=torch.float64) - 0.5) * scale
    v[0] = torch.tensor([1e-9, -0.0, 500000.123])
    v[1] = torch.tensor([1e30, -1e-30, 0.1])
    v = v.to(dtype)
    f = torch.randint(0, 50, (40, 3), generator=g)
    colours = torch.rand(50, 3, generator=g, dtype=dtype)
    save_obj(tmp_path / "v.obj", v, f, colours, texture_type="vertex")
    v2, f2, c2 = load_obj(tmp_path / "v.obj", load_texture=True, texture_type="vertex", dtype=dtype)
    assert torch.equal(v2, v) and torch.equal(f2, f) and torch.equal(c2, colours)
    assert torch.equal(torch.signbit(v2), torch.signbit(v))  # -0.0 stays -0.0
    save_obj(tmp_path / "g.obj", v, f)
    assert torch.equal(load_obj(tmp_path / "g.obj", dtype=dtype)[0], v)


def test_save_obj_writes_texture_coordinates_exactly(tmp_path: Path) -> None:
    v, f = torch.rand(5, 3), torch.tensor([[0, 1, 2], [2, 3, 4], [0, 2, 4]])
    tex = torch.rand(3, 4, 3, generator=torch.Generator().manual_seed(1))
    save_obj(tmp_path / "t.obj", v, f, tex, texture_res=16)
    _, uvs = create_texture_atlas(tex, 16)
    lines = (tmp_path / "t.obj").read_text().splitlines()
    written = np.array([[float(x) for x in line.split()[1:]] for line in lines if line.startswith("vt ")])
    assert np.array_equal(written.astype(np.float32), uvs.reshape(-1, 2))
    assert torch.equal(load_obj(tmp_path / "t.obj")[0], v)


# ---- 3. colours outside [0, 1]: clipped, with one warning ------------------------------------------
def test_save_obj_clips_textures_with_one_warning(tmp_path: Path) -> None:
    v, f = torch.rand(3, 3), torch.tensor([[0, 1, 2]])
    tex = torch.full((1, 4, 3), 0.5)
    tex[0, 0] = 3.0
    tex[0, 1, 0] = -1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_obj(tmp_path / "s.obj", v, f, tex, texture_res=2)
    assert user_warnings(caught) == [
        "textures: 4 colour values outside [0, 1] (range [-1, 3]) were clipped to [0, 1]"
    ]
    assert caught[0].filename == __file__  # attributed to the caller, not to softras
    _, _, back = load_obj(tmp_path / "s.obj", load_texture=True, texture_res=2)
    assert torch.allclose(back[0, 0], torch.ones(3)) and back[0, 1, 0] == 0
    with pytest.warns(UserWarning, match=r"textures: 3 colour values .* \(range \[0, 3\]\)"):
        save_obj(tmp_path / "c.obj", v, f, torch.tensor([[3.0, 0, 0], [0, 3, 0], [0, 0, 3]]), texture_type="vertex")
    _, _, colours = load_obj(tmp_path / "c.obj", load_texture=True, texture_type="vertex")
    assert torch.equal(colours, torch.eye(3))


def test_obj_vertex_colours_above_255_are_clipped_and_8_bit_colours_scaled(tmp_path: Path) -> None:
    path = write(tmp_path / "vc.obj", "v 0 0 0 300 0 0\nv 1 0 0 0 0.5 0\nv 0 1 0 0 0 -2\nf 1 2 3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, colours = load_obj(path, load_texture=True, texture_type="vertex")
    assert user_warnings(caught) == [
        f"{path}: vertex colours: 2 colour values outside [0, 1] (range [-2, 300]) were clipped to [0, 1]"
    ]
    assert torch.equal(colours, torch.tensor([[1.0, 0, 0], [0, 0.5, 0], [0, 0, 0]]))
    # Integers in [0, 255] with one above 1: 8-bit colours, divided by 255 without a warning.
    path = write(tmp_path / "u8.obj", "v 0 0 0 255 0 0\nv 1 0 0 0 128 0\nv 0 1 0\nf 1 2 3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mesh = sr.Mesh.from_file(path, texture_type="vertex")
    expected = torch.tensor([[1.0, 0, 0], [0, 128 / 255, 0], [1, 1, 1]])  # no colour: white
    assert torch.allclose(mesh.textures[0], expected, atol=1e-7, rtol=0)


def test_mtl_kd_outside_0_1_is_clipped_with_one_warning(tmp_path: Path) -> None:
    write(tmp_path / "k.mtl", "newmtl a\nKd 0.2 0.2 0.2\nnewmtl b\nKd 5 -3 0.5\n")
    obj = write(tmp_path / "k.obj", "mtllib k.mtl\n" + TRI + "v 1 1 0\nusemtl a\nf 1 2 3\nusemtl b\nf 2 4 3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, tex = load_obj(obj, load_texture=True, texture_res=1)
    assert user_warnings(caught) == [
        f"{tmp_path / 'k.mtl'}:4: Kd: 2 colour values outside [0, 1] (range [-3, 5]) were clipped to [0, 1]"
    ]
    assert torch.equal(tex[:, 0], torch.tensor([[0.2, 0.2, 0.2], [1.0, 0.0, 0.5]]))


def test_float_texture_image_outside_0_1_is_clipped_with_one_warning(tmp_path: Path) -> None:
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "f.tiff", np.array([[-0.5, 0.25], [0.5, 0.75]], dtype=np.float32))
    write(tmp_path / "f.mtl", "newmtl a\nmap_Kd f.tiff\n")
    obj = write(tmp_path / "f.obj", "mtllib f.mtl\n" + TRI + "vt 0 0\nvt 1 0\nvt 0 1\nusemtl a\nf 1/1 2/2 3/3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, tex = load_obj(obj, load_texture=True, texture_res=2)
    assert user_warnings(caught) == [
        f"{tmp_path / 'f.tiff'}: texture image: 1 colour values outside [0, 1] (range [-0.5, 0.75]) "
        "were clipped to [0, 1]"
    ]
    assert tex.min() >= 0 and tex.max() <= 0.75


def test_to_trimesh_and_save_mesh_warn_when_clipping(tmp_path: Path) -> None:
    mesh = sr.Mesh(torch.rand(3, 3), torch.tensor([[0, 1, 2]]), torch.full((3, 3), 3.0), texture_type="vertex")
    with pytest.warns(UserWarning, match=r"^textures: 9 colour values outside \[0, 1\] \(range \[3, 3\]\)"):
        tm = mesh.to_trimesh()
    assert (tm.visual.vertex_colors[:, :3] == 255).all()
    with pytest.warns(UserWarning, match=r"^textures: 9 colour values"):
        save_mesh(tmp_path / "m.ply", mesh.vertices[0], mesh.faces[0], mesh.textures[0], texture_type="vertex")


# ---- 4. face indices ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("face", "index"), [("3 0 1 -1", -1), ("3 0 7 1", 7)])
def test_ply_face_index_outside_the_vertices_names_file_and_face(tmp_path: Path, face: str, index: int) -> None:
    path = ply(tmp_path / "f.ply", "0 0 0\n1 0 0\n0 1 0\n", ["3 0 1 2", face])
    with pytest.raises(ValueError) as info:
        load_mesh(path)
    assert str(info.value) == f"{path}: face 1 has vertex index {index}, outside [0, 3) (the file has 3 vertices)"


HUGE = "1" + "0" * 30


@pytest.mark.parametrize("face", [f"f 1 2 {HUGE}", f"f 1/1 2/1 3/{HUGE}"])
def test_obj_huge_face_index_is_a_value_error_with_line(tmp_path: Path, face: str) -> None:
    path = write(tmp_path / "o.obj", TRI + "vt 0 0\n" + face + "\n")
    with pytest.raises(ValueError, match=rf"^o\.obj:5: .*index {HUGE} out of range"):
        load_obj(path)


def test_obj_relative_indices_still_work(tmp_path: Path) -> None:
    _, faces = load_obj(write(tmp_path / "r.obj", TRI + "f -1 -2 -3\n"))
    assert faces.tolist() == [[2, 1, 0]]


# ---- 5. non-finite and overflowing coordinates --------------------------------------------------
def test_obj_coordinate_overflowing_float32_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "ov.obj", "v 0 0 0\nv 1 0 0\nv 1 1e300 0\nf 1 2 3\n")
    message = "ov.obj:3: vertex coordinate 1e300 overflows float32; load with dtype=torch.float64"
    with pytest.raises(ValueError, match=f"^{message}$"):
        sr.Mesh.from_file(path)
    assert load_obj(path, dtype=torch.float64)[0][2, 1].item() == 1e300


def test_ply_non_finite_or_overflowing_vertex_is_named(tmp_path: Path) -> None:
    path = ply(tmp_path / "nan.ply", "0 0 0\nnan 0 0\n0 1 0\n", ["3 0 1 2"])
    with pytest.raises(ValueError) as info:
        load_mesh(path)
    assert str(info.value) == f"{path}: vertex 1 is not finite: (nan, 0.0, 0.0) (1 of the 3 vertices are not finite)"
    path = ply(tmp_path / "big.ply", "0 0 0\n1e300 0 0\n0 1 0\n", ["3 0 1 2"], "double")
    with pytest.raises(ValueError, match=r"big\.ply: vertex 1 \(1e\+300, 0.0, 0.0\) overflows float32; load with"):
        load_mesh(path)
    assert load_mesh(path, dtype=torch.float64).vertices[1, 0].item() == 1e300


# ---- 6. unreadable texture images ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x89PNG\r\n\x1a\nnot really a png", r"corrupt PNG data"),
        (b"garbage bytes, not an image" * 4, r"unrecognised image header b'garbage '"),
        (b"", "the file is empty"),
    ],
)
def test_corrupt_texture_image_names_image_and_mtl(tmp_path: Path, payload: bytes, reason: str) -> None:
    (tmp_path / "bad.png").write_bytes(payload)
    write(tmp_path / "b.mtl", "newmtl a\nmap_Kd bad.png\n")
    obj = write(tmp_path / "b.obj", "mtllib b.mtl\n" + TRI + "vt 0 0\nvt 1 0\nvt 0 1\nusemtl a\nf 1/1 2/2 3/3\n")
    with pytest.raises(ValueError) as info:
        load_obj(obj, load_texture=True)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'bad.png'}: could not read texture image (not a valid PNG/JPEG: ")
    assert "referenced by b.mtl:2 (b.obj)" in message and "pyav" not in message
    assert re.search(reason, message)


# ---- 7. path types ------------------------------------------------------------------------------------
def test_bytes_paths_work_and_none_is_a_type_error(tmp_path: Path) -> None:
    obj = write(tmp_path / "x.obj", TRI + "f 1 2 3\n")
    raw = bytes(obj)
    assert sr.Mesh.from_file(raw).num_faces == 1 and sr.Mesh.from_obj(raw).num_faces == 1
    assert load_mesh(raw).faces.tolist() == [[0, 1, 2]]
    save_obj(bytes(tmp_path / "y.obj"), torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
    assert (tmp_path / "y.obj").is_file()
    with pytest.raises(TypeError, match=r"^path: expected a file path \(str, bytes or os.PathLike\), got NoneType"):
        sr.Mesh.from_file(None)
    with pytest.raises(TypeError, match=r"^filename_obj: expected a file path"):
        sr.Mesh.from_obj(None)
    with pytest.raises(TypeError, match=r"^filename: expected a file path"):
        save_obj(3, torch.rand(3, 3), torch.tensor([[0, 1, 2]]))


# ---- 8, 9. Mesh.to_trimesh and Mesh.replace ----------------------------------------------------------
def test_to_trimesh_refuses_faces_outside_the_vertices() -> None:
    mesh = sr.Mesh(torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
    for bad in (-1, 3):
        with pytest.raises(ValueError, match=rf"^faces: face 0 of item 0 has vertex index {bad}, outside \[0, 3\)"):
            mesh.replace(faces=torch.tensor([[[0, 1, bad]]])).to_trimesh()
    assert isinstance(mesh.to_trimesh(), trimesh.Trimesh)


def test_replace_checks_vertices_at_once() -> None:
    mesh = sr.Mesh(torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"^vertices: expected finite values, found 9 NaN/Inf entries$"):
        mesh.replace(vertices=torch.full((1, 3, 3), float("nan")))
    moved = mesh.replace(vertices=mesh.vertices + 1)
    assert torch.equal(moved.vertices, mesh.vertices + 1)
