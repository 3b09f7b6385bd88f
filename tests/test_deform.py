"""The deform app (softras.apps.deform) and ``softras deform``, at tiny sizes (32², a few views)."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from softras.apps import UsageError
from softras.apps.deform import (
    DeformModel,
    DeformResult,
    builtin_target,
    camera_grid,
    load_target_files,
    render_targets,
    run_deform,
)
from softras.cli import main
from softras.mesh import Mesh
from softras.shapes import icosphere

SIZE = 32
ITERS = 30
EVERY = 10


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> DeformResult:
    out = tmp_path_factory.mktemp("deform")
    return run_deform(
        out_dir=out, iters=ITERS, image_size=SIZE, views=4, template_vertices=162, snapshot_every=EVERY, progress=False
    )


def _disc_targets(tmp_path: Path, n: int = 2, size: int = SIZE) -> tuple[Path, Path]:
    """A centred disc silhouette seen from ``n`` cameras, written in the original's format."""
    yy, xx = np.mgrid[:size, :size]
    disc = ((xx - size / 2 + 0.5) ** 2 + (yy - size / 2 + 0.5) ** 2 < (0.3 * size) ** 2).astype(np.uint8) * 255
    images = np.zeros((n, 4, size, size), np.uint8)
    images[:, :3] = 128
    images[:, 3] = disc
    cameras = np.stack([np.full(n, 2.732), np.linspace(0, 45, n), np.linspace(0, 270, n)], 1).astype(np.float32)
    ipath, cpath = tmp_path / "images.npy", tmp_path / "cameras.npy"
    np.save(ipath, images)
    np.save(cpath, cameras)
    return ipath, cpath


def test_loss_decreases_and_iou_improves(result: DeformResult) -> None:
    assert len(result.losses) == ITERS
    assert all(np.isfinite(result.losses))
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    assert result.mean_iou > result.initial_mean_iou
    assert len(result.per_view_iou) == 4
    assert all(0.0 <= x <= 1.0 for x in result.per_view_iou)
    assert result.mean_iou == pytest.approx(float(np.mean(result.per_view_iou)))


def test_outputs_written(result: DeformResult) -> None:
    files = result.files
    for key in ("gif", "mesh", "comparison", "views", "summary", "target_images", "target_cameras"):
        assert files[key].is_file() and files[key].stat().st_size > 0, key
    gif = iio.imread(files["gif"], index=None)
    assert gif.shape[0] == ITERS // EVERY + 1  # iterations 0, 10, 20 and the final mesh
    mesh = Mesh.from_obj(files["mesh"])
    assert mesh.num_vertices == 162 and mesh.num_faces == 320  # fibonacci_sphere(162)
    assert torch.allclose(mesh.vertices[0], result.vertices, atol=1e-5)
    summary = json.loads(files["summary"].read_text())
    assert summary["mean_iou"] == pytest.approx(result.mean_iou, abs=1e-6)
    assert summary["iterations"] == ITERS
    assert [v["iou"] for v in summary["per_view"]] == pytest.approx(result.per_view_iou, abs=1e-6)
    assert summary["settings"]["image_size"] == SIZE and summary["settings"]["views"] == 4
    assert summary["settings"]["sigma"] == 1e-4 and summary["settings"]["viewing_angle"] == 15.0
    assert summary["seconds"] > 0
    images = np.load(files["target_images"])
    assert images.shape == (4, 4, SIZE, SIZE) and images.dtype == np.uint8
    assert np.load(files["target_cameras"]).shape == (4, 3)
    # the deformed mesh stays inside the parametrisation's cube
    assert result.vertices.abs().max() < 1


def test_npy_targets(tmp_path: Path) -> None:
    ipath, cpath = _disc_targets(tmp_path)
    res = run_deform(
        target_images=ipath, target_cameras=cpath, out_dir=tmp_path / "out", iters=3, template_vertices=42,
        progress=False,
    )  # fmt: skip
    assert len(res.per_view_iou) == 2 and len(res.losses) == 3
    assert res.summary["settings"]["image_size"] == SIZE  # type: ignore[index]
    assert "target_images" not in res.files
    assert res.files["summary"].is_file()


@pytest.mark.heavy(60)
def test_default_template_fits_npy_targets(tmp_path: Path) -> None:
    """The default template (the original's 1352-vertex resolution) deforms to targets in the
    original's ``.npy`` format: an ellipsoid seen from 12 views, 40 steps at 32²."""
    v, f = icosphere(3)
    v = v * torch.tensor([0.62, 0.36, 0.45])
    cameras = camera_grid(12)
    ipath, cpath = tmp_path / "source.npy", tmp_path / "camera.npy"
    np.save(ipath, render_targets(v, f, cameras, SIZE))
    np.save(cpath, cameras.numpy().astype(np.float32))
    res = run_deform(target_images=ipath, target_cameras=cpath, out_dir=tmp_path / "out", iters=40,
                     snapshot_every=40, progress=False)  # fmt: skip
    assert res.summary["template"]["num_vertices"] == 1352  # type: ignore[index]
    assert res.initial_mean_iou < 0.85
    assert res.mean_iou > 0.9 and min(res.per_view_iou) > 0.8


def test_npy_targets_round_trip(result: DeformResult, tmp_path: Path) -> None:
    """The ``.npy`` files written for a mesh target load back as valid targets."""
    images, cameras = load_target_files(result.files["target_images"], result.files["target_cameras"])
    assert images.shape == (4, 4, SIZE, SIZE) and cameras.dtype == np.float32
    assert np.allclose(cameras, result.cameras.numpy())


def _write(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing_images", "not found"),
        ("missing_cameras", "not found"),
        ("not_npy", "cannot read"),
        ("three_dims", r"\[N, 4, H, W\]"),
        ("no_alpha", "alpha channel missing"),
        ("float_images", "uint8"),
        ("empty_alpha", "alpha channel"),
        ("cameras_shape", r"\[N, 3\]"),
        ("count_mismatch", "one camera per image"),
        ("nan_camera", "finite"),
    ],
)
def test_bad_target_files(tmp_path: Path, case: str, match: str) -> None:
    ipath, cpath = _disc_targets(tmp_path, n=3)
    images, cameras = np.load(ipath), np.load(cpath)
    bad = {"images": ipath, "cameras": cpath}
    if case == "missing_images":
        bad["images"] = tmp_path / "nope.npy"
    elif case == "missing_cameras":
        bad["cameras"] = tmp_path / "nope.npy"
    elif case == "not_npy":
        bad["images"] = tmp_path / "text.npy"
        bad["images"].write_text("not an array")
    elif case == "three_dims":
        bad["images"] = _write(tmp_path / "b.npy", images[:, 3])
    elif case == "no_alpha":
        bad["images"] = _write(tmp_path / "b.npy", images[:, :3])
    elif case == "float_images":
        bad["images"] = _write(tmp_path / "b.npy", images.astype(np.float32) / 255)
    elif case == "empty_alpha":
        empty = images.copy()
        empty[:, 3] = 0
        bad["images"] = _write(tmp_path / "b.npy", empty)
    elif case == "cameras_shape":
        bad["cameras"] = _write(tmp_path / "b.npy", cameras[:, :2])
    elif case == "count_mismatch":
        bad["cameras"] = _write(tmp_path / "b.npy", cameras[:2])
    elif case == "nan_camera":
        nan = cameras.copy()
        nan[1, 1] = np.nan
        bad["cameras"] = _write(tmp_path / "b.npy", nan)
    with pytest.raises(ValueError, match=match) as info:
        load_target_files(bad["images"], bad["cameras"])
    assert isinstance(info.value, UsageError)
    bad_name = bad["cameras"].name if "camera" in case else bad["images"].name
    assert bad_name in str(info.value)


def test_bad_arguments(tmp_path: Path) -> None:
    ipath, cpath = _disc_targets(tmp_path)
    with pytest.raises(ValueError, match="both"):
        run_deform(target_images=ipath, out_dir=tmp_path, iters=0, progress=False)
    with pytest.raises(ValueError, match="does not match"):
        run_deform(target_images=ipath, target_cameras=cpath, image_size=64, out_dir=tmp_path, iters=0, progress=False)
    with pytest.raises(ValueError, match="not found"):
        run_deform(tmp_path / "missing.obj", out_dir=tmp_path, iters=0, progress=False)
    with pytest.raises(ValueError, match="iters"):
        run_deform(out_dir=tmp_path, iters=-1, progress=False)
    with pytest.raises(UsageError, match="device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu0'"):
        run_deform(out_dir=tmp_path, iters=0, device="gpu0", progress=False)


def test_camera_grid_matches_original_layout() -> None:
    cams = camera_grid(120)
    assert cams.shape == (120, 3)
    assert torch.all(cams[:, 0] == 2.732)
    elevations = sorted(set(cams[:, 1].tolist()))
    assert elevations == pytest.approx([-30.0, -7.5, 15.0, 37.5, 60.0])
    for e in elevations:
        assert int((cams[:, 1] == e).sum()) == 24
    small = camera_grid(4)
    assert small.shape == (4, 3) and len(set(small[:, 2].tolist())) == 4


def test_model_starts_at_template_and_stays_in_cube() -> None:
    v, f = icosphere(2)
    model = DeformModel(v * 0.5, f)
    vertices, lap, flat = model()
    assert vertices.shape == (1, 162, 3)
    assert torch.allclose(vertices[0], v * 0.5, atol=1e-4)
    assert lap.ndim == 0 and flat.ndim == 0
    with torch.no_grad():
        model.displace.fill_(20.0)
        model.center.fill_(3.0)
    assert model()[0].abs().max() <= 1


def test_builtin_target_is_not_a_sphere() -> None:
    v, f = builtin_target()
    assert v.ndim == 2 and v.shape[1] == 3 and f.shape[1] == 3
    extent = v.max(0).values - v.min(0).values
    assert extent[0] > 2 * extent[1]  # long and low: a car, not a ball


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["deform", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--target", "--target-images", "--target-cameras", "--template", "--iters", "--backend", "--quiet"):
        assert flag in text


def test_cli_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["deform", "--iters", "5", "--image-size", "32", "--views", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mean IoU" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 5 and "mean_iou" in summary
    assert summary["template"]["num_vertices"] == 1352
    assert (out / "deform.gif").is_file() and (out / "deformed.obj").is_file()


def test_cli_bad_target_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ipath, cpath = _disc_targets(tmp_path)
    np.save(cpath, np.zeros((5, 3), np.float32) + 2.0)
    status = main(["deform", "--target-images", str(ipath), "--target-cameras", str(cpath), "--out", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softras: error:") and "cameras.npy" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as info:
        main(["deform", "--iters", "-3"])
    assert info.value.code == 2
