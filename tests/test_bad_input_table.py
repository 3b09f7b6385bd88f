"""The bad-input table: every input a reliability probe found accepted silently, or refused with a
misleading or cryptic message, and what happens now.

Each :class:`Case` names its input as docs/robustness.md's table does ("Bad input: cameras,
clipping and files"), the class the probe gave it on the previous release (``silent``,
``misleading``, ``cryptic``) and the class it has now: ``clear`` (an error naming the argument the
caller passed, with what was expected), ``warns`` (done, with one warning saying what was
changed) or ``handled`` (the right result, checked here). The detailed behaviour of each lives in
its own module's tests; this table keeps the list complete and in step with the documentation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import softras as sr
from softras import _memory
from softras.cameras import LookAtCamera, Orthographic, Pinhole, ProjectionCamera, from_angles
from softras.raster import RasterSettings, rasterize, rasterize_channels, soft_rasterize
from softras.shapes import icosphere

D = torch.float64
K32 = [[40.0, 0.0, 15.5], [0.0, 40.0, 15.5], [0.0, 0.0, 1.0]]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"


@dataclass(frozen=True)
class Case:
    input: str  # as in the first column of docs/robustness.md's table
    before: str  # silent | misleading | cryptic
    now: str  # clear | warns | handled
    run: Callable[[Path], object]
    expect: str | Callable[[object], bool]  # message regex (clear, warns) or a check of the result (handled)


def _sphere(level: int = 1, dtype: torch.dtype = D) -> sr.Mesh:
    v, f = icosphere(level)
    return sr.Mesh(v[None].to(dtype), f[None])


def _pinhole(t: tuple[float, float, float] = (0.0, 0.0, 3.0), **kwargs: object) -> Pinhole:
    return Pinhole(K32, torch.eye(3, dtype=D), torch.tensor(t, dtype=D), image_size=32, **kwargs)


def _k(i: int, j: int, value: float) -> list[list[float]]:
    K = [row[:] for row in K32]
    K[i][j] = value
    return K


def _floor() -> sr.Mesh:
    v = torch.tensor([[-30.0, 1.0, -5.0], [30.0, 1.0, -5.0], [30.0, 1.0, 20.0], [-30.0, 1.0, 20.0]], dtype=D)
    return sr.Mesh(v[None], torch.tensor([[[0, 2, 1], [0, 3, 2]]]))


def _floor_render(_: Path) -> sr.RenderOutput:
    camera = Pinhole([[16.0, 0, 15.5], [0, 16.0, 15.5], [0, 0, 1]], torch.eye(3, dtype=D), torch.zeros(3, dtype=D),
                     image_size=32)  # fmt: skip
    return sr.render(_floor(), camera, outputs=("rgba", "face_id"), backend="reference")


def _floor_ok(out: sr.RenderOutput) -> bool:
    # the floor (y = 1, y down) is seen in the bottom half only: rows 17-31, every column
    covered = out.face_id[0] >= 0
    return bool(covered[17:].all()) and not bool(covered[:16].any()) and not bool((out.alpha[0, 0, :16] > 0.5).any())


def _rescaled(_: Path) -> tuple[torch.Tensor, torch.Tensor]:
    small = sr.render(_sphere(), _pinhole(), backend="reference").alpha
    return small, sr.render(_sphere(), _pinhole(), image_size=64, backend="reference").alpha


def _centred(out: tuple[torch.Tensor, torch.Tensor]) -> bool:
    small, big = out

    def centre(alpha: torch.Tensor) -> float:
        rows = torch.arange(alpha.shape[-2], dtype=D)
        return float((alpha[0, 0].sum(1) * rows).sum() / alpha.sum())

    area = 4 * float(small.sum()) / float(big.sum())
    return abs(2 * centre(small) + 0.5 - centre(big)) < 0.05 and abs(area - 1) < 0.05


def _many_features(_: Path) -> sr.RenderOutput:
    """100000 feature channels at 256², on a machine with 8 GiB free (whatever this one has)."""
    real = _memory.available_memory
    _memory.available_memory = lambda device=None: 8 * 2**30
    try:
        return sr.render(_sphere(dtype=torch.float32), from_angles(2.7, 30, 45), image_size=256,
                         outputs=("features",), features=torch.zeros(42, 100000))  # fmt: skip
    finally:
        _memory.available_memory = real


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


TRI = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
PLY = (
    "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
)


def _save_tiny(tmp: Path) -> torch.Tensor:
    v = torch.tensor([[1e-9, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    sr.Mesh(v, torch.tensor([[0, 1, 2]])).save_obj(tmp / "tiny.obj")
    return sr.Mesh.from_file(tmp / "tiny.obj").vertices[0, 0, 0]


def _with_mtl(tmp: Path, mtl: str) -> sr.Mesh:
    _write(tmp / "k.mtl", mtl)
    return sr.Mesh.from_obj(_write(tmp / "k.obj", "mtllib k.mtl\n" + TRI + "usemtl m\nf 1 2 3\n"), load_texture=True)


def _corrupt_png(tmp: Path) -> sr.Mesh:
    (tmp / "t.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    _write(tmp / "t.mtl", "newmtl m\nmap_Kd t.png\n")
    obj = _write(tmp / "t.obj", "mtllib t.mtl\n" + TRI + "vt 0 0\nvt 1 0\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n")
    return sr.Mesh.from_obj(obj, load_texture=True)


CASES = [
    # ---- cameras and clipping
    Case(
        "sphere wholly behind a Pinhole",
        "silent",
        "handled",
        lambda _: sr.render(_sphere(), _pinhole((0.0, 0.0, -3.0)), outputs=("rgba", "face_id"), backend="reference"),
        lambda out: float(out.alpha.sum()) == 0.0 and bool((out.face_id < 0).all()),
    ),
    Case("floor crossing the camera plane", "silent", "handled", _floor_render, _floor_ok),
    Case("`render(image_size=64)` with a 32² Pinhole", "silent", "handled", _rescaled, _centred),
    Case(
        "`render(image_size=(32, 64))` with a 32² Pinhole",
        "silent",
        "clear",
        lambda _: sr.render(_sphere(), _pinhole(), image_size=(32, 64)),
        r"image_size: the camera's image_size \(32, 32\) and the rendered \(32, 64\)",
    ),
    Case(
        "K[2, 2] = 2",
        "silent",
        "clear",
        lambda _: Pinhole(_k(2, 2, 2.0), torch.eye(3), [0, 0, 3]),
        r"K: expected .* K\[2, 2\] = 2",
    ),
    Case(
        "K[1, 0] = 5",
        "silent",
        "clear",
        lambda _: Pinhole(_k(1, 0, 5.0), torch.eye(3), [0, 0, 3]),
        r"K: expected an upper-triangular",
    ),
    Case("K = 0", "silent", "clear", lambda _: Pinhole(torch.zeros(3, 3), torch.eye(3), [0, 0, 3]), r"^K: expected"),
    Case(
        "fx = 0 (Pinhole)",
        "silent",
        "clear",
        lambda _: Pinhole(_k(0, 0, 0.0), torch.eye(3), [0, 0, 3]),
        r"K: expected focal lengths .* got fx = 0",
    ),
    Case(
        "fx = 0 (Orthographic)",
        "silent",
        "clear",
        lambda _: Orthographic(_k(0, 0, 0.0), torch.eye(3), [0, 0, 3]),
        r"K: expected focal lengths .* got fx = 0",
    ),
    Case(
        "negative fx",
        "silent",
        "clear",
        lambda _: Pinhole(_k(0, 0, -40.0), torch.eye(3), [0, 0, 3]),
        r"fx = -40 .* mirrors the image",
    ),
    Case(
        "`ProjectionCamera(P=0)`",
        "silent",
        "clear",
        lambda _: ProjectionCamera(P=torch.zeros(3, 4)),
        r"P: expected P\[:, :3\] \(= K R\) to be invertible",
    ),
    Case(
        "`Pinhole.from_opengl` with a singular projection",
        "silent",
        "clear",
        lambda _: Pinhole.from_opengl(
            torch.eye(4), torch.tensor([[0.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, -1, -0.2], [0, 0, -1, 0]]), 32
        ),
        r"^projection: ",
    ),
    Case("R = 2I", "silent", "clear", lambda _: Pinhole(K32, 2 * torch.eye(3), [0, 0, 3]), r"^R: expected a rotation"),
    Case(
        "R a reflection",
        "silent",
        "clear",
        lambda _: Pinhole(K32, torch.diag(torch.tensor([1.0, 1, -1])), [0, 0, 3]),
        r"^R: expected a rotation",
    ),
    Case(
        "R not orthogonal",
        "silent",
        "clear",
        lambda _: Pinhole(K32, torch.tensor([[1.0, 0.3, 0], [0, 1, 0], [0, 0, 1]]), [0, 0, 3]),
        r"^R: expected a rotation",
    ),
    Case("R = 0", "silent", "clear", lambda _: Pinhole(K32, torch.zeros(3, 3), [0, 0, 3]), r"^R: expected a rotation"),
    Case(
        "`normals_frame='camera'` with R = 2I",
        "silent",
        "clear",
        lambda _: sr.render(_sphere(), Pinhole(K32, 2 * torch.eye(3), [0, 0, 3], image_size=32), outputs=("normals",)),
        r"^R: expected a rotation",
    ),
    Case(
        "k1 = −3 at 32², which folds inside the image",
        "silent",
        "clear",
        lambda _: _pinhole(dist_coeffs=[-3.0, 0, 0, 0, 0]),
        r"^dist_coeffs: ",
    ),
    Case(
        "off-screen sphere with a distortion folding beyond the image",
        "silent",
        "handled",
        lambda _: sr.render(_sphere(), _pinhole((4.8, 0.0, 3.0), dist_coeffs=[-0.4, 0, 0, 0, 0]), backend="reference"),
        lambda out: float(out.alpha.sum()) == 0.0,
    ),
    Case(
        "k1 = 1e6",
        "silent",
        "handled",
        lambda _: sr.render(_sphere(), _pinhole(dist_coeffs=[1e6, 0, 0, 0, 0]), backend="reference"),
        lambda out: bool(torch.isfinite(out.rgba).all()) and float(out.alpha.mean()) > 0.9,
    ),  # a tiny field of view
    Case(
        '`LookAtCamera(perspective="no")`',
        "silent",
        "clear",
        lambda _: LookAtCamera(perspective="no"),
        r"perspective: expected True or False, got 'no'",
    ),
    Case(
        '`from_angles(degrees="yes")`',
        "silent",
        "clear",
        lambda _: from_angles(2.7, 30, 45, degrees="yes"),
        r"degrees: expected True or False, got 'yes'",
    ),
    Case(
        "`up=(0, 0, 0)`",
        "silent",
        "clear",
        lambda _: LookAtCamera(eye=(0, 0, -3), up=(0, 0, 0)),
        r"^up: expected a non-zero up vector",
    ),
    Case(
        "vertex on the camera plane (SoftRenderer)",
        "misleading",
        "clear",
        lambda _: sr.SoftRenderer(image_size=8)(
            torch.tensor([[[0.0, 0, 0], [1, 0, 3], [0, 1, 3]]]),
            torch.tensor([[[0, 1, 2]]]),
            camera=Pinhole([[4.0, 0, 3.5], [0, 4, 3.5], [0, 0, 1]], torch.eye(3), [0, 0, 0]),
        ),
        r"^vertices: 1 of 3 vertices project to non-finite .* Pinhole \(1 of them lie on its camera plane",
    ),
    Case(
        "vertex on the camera plane (`render`)",
        "misleading",
        "handled",
        lambda _: sr.render(
            sr.Mesh(torch.tensor([[1.0, 0, 0], [-1, -1, 3], [0, 1, 3]]), torch.tensor([[0, 1, 2]])),
            Pinhole([[4.0, 0, 3.5], [0, 4, 3.5], [0, 0, 1]], torch.eye(3), [0, 0, 0], image_size=8),
            backend="reference",
        ),
        lambda out: bool(torch.isfinite(out.rgba).all()) and float(out.alpha.sum()) > 1,
    ),
    Case(
        "`Mesh.replace(vertices=NaN)`",
        "misleading",
        "clear",
        lambda _: _sphere().replace(vertices=torch.full((1, 42, 3), math.nan)),
        r"^vertices: expected finite values",
    ),
    Case(
        "`dist_coeffs` of batch 3 for 1 item of points",
        "misleading",
        "clear",
        lambda _: _pinhole(dist_coeffs=torch.zeros(3, 5)).project(torch.zeros(1, 2, 3, dtype=D)),
        r"dist_coeffs: batch of 3 cameras for 1 item of points",
    ),
    Case(
        "meta-device tensors",
        "cryptic",
        "clear",
        lambda _: sr.Mesh(torch.zeros(3, 3, device="meta"), torch.tensor([[0, 1, 2]])),
        r"^vertices: meta tensors hold no data",
    ),
    Case(
        "`from_angles` with tensors of lengths 2 and 3",
        "cryptic",
        "clear",
        lambda _: from_angles(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 10.0, 20.0]), 0.0),
        r"distance.*elevation|elevation.*distance",
    ),
    Case(
        "`rasterize(fv, tex, None)`",
        "cryptic",
        "clear",
        lambda _: rasterize(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 1, 3), None),
        r"^settings: expected",
    ),
    Case(
        "`features` with 100000 channels at 256²",
        "silent",
        "clear",
        _many_features,
        r"^features: rendering 1×256×256 pixels of 100000 channels, 80 faces needs about .* GiB, but only 8.0 GiB",
    ),
    # ---- files
    Case(
        "`Mesh.from_file` of 500000.123",
        "silent",
        "handled",
        lambda tmp: sr.Mesh.from_file(
            _write(tmp / "p.obj", "v 500000.123 0 0\n" + TRI[6:] + "v 0 0 1\nf 1 2 3\n"), dtype=D
        ).vertices[0, 0, 0],
        lambda x: float(x) == 500000.123,
    ),
    Case("`save_obj` of 1e-9", "silent", "handled", _save_tiny, lambda x: float(x) == float(np.float32(1e-9))),
    Case(
        "texture values of 3.0 saved",
        "silent",
        "warns",
        lambda tmp: sr.Mesh(
            torch.rand(3, 3), torch.tensor([[0, 1, 2]]), textures=torch.full((3, 3), 3.0), texture_type="vertex"
        ).save_obj(tmp / "c.obj", save_texture=True),
        r"textures: 9 colour values outside \[0, 1\] \(range \[3, 3\]\)",
    ),
    Case(
        "OBJ vertex colour 300",
        "silent",
        "warns",
        lambda tmp: sr.Mesh.from_obj(
            _write(tmp / "c.obj", "v 0 0 0 300 0 0.5\nv 1 0 0 0 0 0\nv 0 1 0 0 0 0\nf 1 2 3\n"),
            load_texture=True,
            texture_type="vertex",
        ),
        r"vertex colours: 1 colour values outside \[0, 1\]",
    ),
    Case(
        "MTL `Kd 5 -3 0.5`",
        "silent",
        "warns",
        lambda tmp: _with_mtl(tmp, "newmtl m\nKd 5 -3 0.5\n"),
        r"k.mtl:2: Kd: 2 colour values outside \[0, 1\]",
    ),
    Case(
        "PLY face `3 0 1 -1`",
        "silent",
        "clear",
        lambda tmp: sr.Mesh.from_file(_write(tmp / "f.ply", PLY + "0 0 0\n1 0 0\n0 1 0\n3 0 1 -1\n")),
        r"f.ply: face 0 has vertex index -1, outside \[0, 3\)",
    ),
    Case(
        "`to_trimesh` of a face index −1",
        "silent",
        "clear",
        lambda _: (
            sr.Mesh(torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
            .replace(faces=torch.tensor([[[0, 1, -1]]]))
            .to_trimesh()
        ),
        r"^faces: face 0 of item 0 has vertex index -1",
    ),
    Case(
        "OBJ coordinate 1e300 (float32)",
        "misleading",
        "clear",
        lambda tmp: sr.Mesh.from_file(_write(tmp / "o.obj", "v 0 0 0\nv 1e300 0 0\nv 0 1 0\nf 1 2 3\n")),
        r"o.obj:2: vertex coordinate 1e300 overflows float32; load with dtype=torch.float64",
    ),
    Case(
        "PLY with a NaN vertex",
        "misleading",
        "clear",
        lambda tmp: sr.Mesh.from_file(_write(tmp / "n.ply", PLY + "0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n")),
        r"n.ply: vertex 1 is not finite",
    ),
    Case(
        "corrupt PNG texture",
        "misleading",
        "clear",
        _corrupt_png,
        r"t.png: could not read texture image \(not a valid PNG/JPEG.*referenced by .*t.mtl:2",
    ),
    Case(
        '`from_file(b"x.obj")`',
        "misleading",
        "handled",
        lambda tmp: sr.Mesh.from_file(bytes(_write(tmp / "x.obj", TRI + "f 1 2 3\n"))),
        lambda mesh: mesh.num_faces == 1,
    ),
    Case(
        "OBJ face index 10³⁰",
        "cryptic",
        "clear",
        lambda tmp: sr.Mesh.from_file(_write(tmp / "i.obj", TRI + "f 1 2 1000000000000000000000000000000\n")),
        r"i.obj:4: vertex index 1000000000000000000000000000000 out of range",
    ),
    Case(
        "`from_file(None)`",
        "cryptic",
        "clear",
        lambda _: sr.Mesh.from_file(None),
        r"^path: expected a file path \(str, bytes or os.PathLike\), got NoneType",
    ),
    Case(
        "`rasterize(fv, tex, 64)`",
        "cryptic",
        "clear",
        lambda _: rasterize(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 1, 3), 64),
        r"^settings: expected a softras.raster.RasterSettings .* got int",
    ),
    Case(
        "`rasterize_channels(..., background=\"white\")`",
        "cryptic",
        "clear",
        lambda _: rasterize_channels(
            torch.rand(1, 1, 3, 3), RasterSettings.create(8), surface=torch.rand(1, 1, 1, 3), background="white"
        ),
        r"^background: expected 3 numbers \(one per channel\), got 'white'",
    ),
    # ---- the original's raster entry point
    Case(
        "`soft_rasterize` background given as a string",
        "cryptic",
        "clear",
        lambda _: soft_rasterize(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 1, 3), 8, background_color="red"),
        r"background_color: expected 3 numbers",
    ),
    Case(
        "`RasterSettings` given where an image size is expected",
        "cryptic",
        "clear",
        lambda _: soft_rasterize(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 1, 3), RasterSettings.create(8)),
        r"^image_size: expected",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.input for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    if case.now == "clear":
        with pytest.raises((ValueError, TypeError)) as caught:
            case.run(tmp_path)
        assert re.search(case.expect, str(caught.value)), f"{case.input}: {caught.value}"
    elif case.now == "warns":
        with pytest.warns(UserWarning, match=case.expect):
            case.run(tmp_path)
    else:
        assert case.now == "handled"
        assert case.expect(case.run(tmp_path)), case.input


def test_every_case_is_listed_in_the_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [c.input for c in CASES if f"| {c.input} |" not in text]
    assert not missing, f"docs/robustness.md lacks rows for {missing}"


def test_the_table_has_no_duplicates_and_known_classes() -> None:
    assert len({c.input for c in CASES}) == len(CASES)
    assert {c.before for c in CASES} <= {"silent", "misleading", "cryptic"}
    assert {c.now for c in CASES} <= {"clear", "warns", "handled"}
