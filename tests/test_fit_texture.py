"""The fit-texture app (softras.apps.fit_texture) and ``softras fit-texture``, at tiny sizes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from softras.apps.fit_texture import (
    FitTextureResult,
    builtin_scene,
    builtin_texture,
    render_views,
    run_fit_texture,
    visible_texels,
)
from softras.cli import main
from softras.raster import BACKENDS, available_backends
from softras.shapes import uv_sphere

#: a backend that samples UV textures, the fastest available
BACKEND = max(
    (
        b
        for b in available_backends()
        if b in BACKENDS and BACKENDS[b].uv_textures and BACKENDS[b].runs_on(torch.device("cpu"))
    ),
    key=lambda b: BACKENDS[b].priority,
)
TINY = {"image_size": 16, "texture_size": (16, 32), "views": 5, "held_out": 1, "batch_size": 4, "backend": BACKEND}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> FitTextureResult:
    return run_fit_texture(tmp_path_factory.mktemp("fit_texture"), iters=12, progress=False, **TINY)


def test_run_writes_files_and_improves_on_grey(result: FitTextureResult) -> None:
    for name in ("textures", "held_out", "gif", "summary"):
        assert result.files[name].exists() and result.files[name].stat().st_size > 0
    summary = json.loads(result.files["summary"].read_text())
    assert set(summary["texture_psnr_db"]) == {"bilinear", "trilinear"}
    assert summary["settings"]["backend"] == BACKEND
    for name in ("bilinear", "trilinear"):
        assert result.texture_psnr[name] > result.start_texture_psnr + 1.0
        assert math.isfinite(result.held_out_psnr[name])
    frames = iio.imread(result.files["gif"], index=None)
    assert frames.shape[0] >= 2 and frames.shape[-1] in (3, 4)


def test_uv_sphere_map_matches_its_geometry() -> None:
    vertices, faces, uv = uv_sphere(6, 8)
    corners = vertices[faces].reshape(-1, 3).double()
    u, v = uv.reshape(-1, 2).double().unbind(1)
    lon = torch.atan2(corners[:, 0], -corners[:, 2]) % (2 * math.pi) / (2 * math.pi)
    lat = torch.asin(corners[:, 1].clamp(-1, 1)) / math.pi + 0.5
    pole = corners[:, 1].abs() > 1 - 1e-6
    seam = (lon - u).abs() > 0.99  # the seam's eastern corners carry u = 1
    assert ((lon - u).abs()[~pole & ~seam] < 1e-6).all()
    assert ((lat - v).abs() < 1e-6).all()
    normals = torch.cross(corners[1::3] - corners[0::3], corners[2::3] - corners[0::3], dim=1)
    assert ((normals * corners.reshape(-1, 3, 3).mean(1)).sum(1) > 0).all()  # counter-clockwise from outside


def test_renders_show_the_texture_where_the_sphere_faces_the_camera() -> None:
    scene = builtin_scene(views=4, held_out=1, image_size=32, texture_size=(16, 32))
    rgba = render_views(
        scene.vertices, scene.faces, scene.uv, scene.texture, scene.held_out_eyes, 32, "bilinear", BACKEND
    )
    assert rgba.shape == (1, 4, 32, 32)
    assert rgba[0, 3, 16, 16] > 0.99 and rgba[0, 3, 0, 0] < 0.01
    assert rgba[0, :3, 12:20, 12:20].std() > 0.02  # the checker shows


def test_visible_texels_cover_the_lit_hemisphere() -> None:
    front = visible_texels(torch.tensor([[0.0, 0.0, -3.0]]), (8, 16))
    # from distance 3 a third of the unit sphere is in sight at all; within 75° of the normals, less
    assert 0.08 < front.float().mean() < 1 / 3
    assert front[4, 0] and not front[4, 8]  # u = 0 faces −z, u = 0.5 faces +z


def test_builtin_texture_range_and_detail() -> None:
    texture = builtin_texture(16, 32)
    assert texture.shape == (16, 32, 3) and 0 <= texture.min() and texture.max() <= 1
    assert np.unique(texture.numpy().round(3)).size > 50


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="held_out"):
        run_fit_texture("unused", views=3, held_out=3, progress=False)
    with pytest.raises(ValueError, match="filters"):
        run_fit_texture("unused", filters=("cubic",), progress=False)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit-texture", "--iters", "2", "--image-size", "16", "--views", "4", "--held-out", "1"]
    argv += ["--filters", "trilinear", "--backend", BACKEND, "--quiet", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "trilinear" in out and "dB" in out
    assert (tmp_path / "summary.json").exists()
