"""The render app (softras.apps.render) and the ``softras`` CLI, at tiny sizes."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import softras
from softras.apps.render import (
    RenderResult,
    builtin_mesh,
    normalize_mesh,
    render_sigma_gamma_sweep,
    render_turntable,
    run_render,
    save_gif,
    sweep_values,
    turntable_azimuths,
)
from softras.cli import main

SIZE = 32


@pytest.fixture(scope="module")
def mesh():
    return normalize_mesh(builtin_mesh(texture_res=2))


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> RenderResult:
    out = tmp_path_factory.mktemp("render")
    return run_render(None, out, image_size=SIZE, texture_res=2, step_deg=45, sweep_frames=4, quiet=True)


def _gif(path: Path) -> np.ndarray:
    return iio.imread(path, index=None)


def test_run_render_writes_every_file(result: RenderResult) -> None:
    names = {p.name for p in result.files.values()}
    expected = {"turntable.gif", "sigma_gamma_sweep.gif", "sweep_strip.png", "mesh.obj", "summary.json"}
    assert expected <= names
    for path in result.files.values():
        assert path.is_file() and path.stat().st_size > 0, path
        assert path.parent == result.out_dir
    assert (result.out_dir / "mesh.mtl").is_file() and (result.out_dir / "mesh.png").is_file()
    assert result.turntable_frames == 8 and result.sweep_frames == 4
    assert {"load", "turntable", "sweep", "write", "total"} <= set(result.timings)
    assert all(t >= 0 for t in result.timings.values())


def test_gif_frame_counts_and_sizes(result: RenderResult) -> None:
    turntable = _gif(result.files["turntable"])
    assert turntable.shape[:3] == (8, SIZE, SIZE)
    sweep = _gif(result.files["sweep"])
    assert sweep.shape[0] == 4 and sweep.shape[2] == SIZE


def test_turntable_frames_differ(result: RenderResult) -> None:
    frames = _gif(result.files["turntable"])[..., :3].astype(np.float64)
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            assert np.abs(frames[i] - frames[j]).mean() > 1.0, (i, j)
    # Something is drawn, and it is not everything: white background around a coloured mesh.
    first = frames[0]
    assert (first < 250).any(axis=-1).mean() > 0.1
    assert (first > 250).all(axis=-1).mean() > 0.2


def test_summary_json(result: RenderResult) -> None:
    summary = json.loads(result.files["summary"].read_text(encoding="utf-8"))
    assert summary["mesh"]["num_faces"] > 0 and summary["mesh"]["num_vertices"] > 0
    assert summary["settings"]["image_size"] == SIZE
    assert summary["settings"]["turntable_frames"] == 8
    assert len(summary["settings"]["sweep_gammas"]) == 4
    assert summary["timings_s"]["total"] >= summary["timings_s"]["turntable"]
    assert set(summary["files"].values()) == {p.name for p in result.files.values()}


def test_saved_mesh_loads_back(result: RenderResult) -> None:
    import softras as sr

    m = sr.Mesh.from_file(result.files["mesh"], texture_res=2)
    assert m.num_faces == result.summary["mesh"]["num_faces"]  # type: ignore[index]
    assert float(m.vertices.norm(dim=-1).max()) == pytest.approx(1.0, abs=1e-3)  # normalised


def test_sweep_gets_blurrier(mesh) -> None:
    sigmas, gammas = sweep_values(4)
    assert gammas[0] == pytest.approx(1e-4) and gammas[-1] == pytest.approx(1e-2)
    assert sigmas == pytest.approx([g / 10 for g in gammas])
    frames = render_sigma_gamma_sweep(mesh, n=4, image_size=SIZE, progress=False)
    assert frames.shape == (4, 4, SIZE, SIZE)
    alpha = frames[:, 3]
    # Larger σ spreads every face's coverage beyond its edges: the footprint (pixels with any
    # coverage) and the total coverage grow monotonically ...
    footprint = (alpha > 0.02).float().mean(dim=(1, 2))
    mass = alpha.mean(dim=(1, 2))
    assert torch.all(footprint[1:] > footprint[:-1]), footprint
    assert torch.all(mass[1:] > mass[:-1]), mass
    # ... and the silhouette gets softer: more partly covered pixels around it.
    soft_edge = ((alpha > 0.02) & (alpha < 0.98)).float().mean(dim=(1, 2))
    assert torch.all(soft_edge[1:] > soft_edge[:-1]) and soft_edge[-1] > 1.3 * soft_edge[0], soft_edge


def test_turntable_api(mesh) -> None:
    assert len(turntable_azimuths(90)) == 4
    assert len(turntable_azimuths(7)) == 51  # round(360 / 7), evenly spaced
    frames = render_turntable(mesh, image_size=16, step_deg=120, batch=2, progress=False)
    assert frames.shape == (3, 4, 16, 16)
    assert 0 <= float(frames.min()) and float(frames.max()) <= 1
    with pytest.raises(ValueError, match="step_deg"):
        turntable_azimuths(0)


def test_save_gif_rgb_and_rgba(tmp_path: Path) -> None:
    rgba = torch.zeros(3, 4, 8, 8)
    rgba[:, 0] = 1.0
    rgba[1, 3, 2:6, 2:6] = 1.0  # frame 1: a red square on the background
    rgba[2, 3] = 1.0  # frame 2: all red
    path = save_gif(rgba, tmp_path / "a.gif", fps=10, background=(0, 0, 1))
    back = _gif(path)[..., :3]
    assert back.shape == (3, 8, 8, 3)
    assert tuple(back[0, 0, 0]) == (0, 0, 255)  # transparent -> background
    assert tuple(back[1, 3, 3]) == (255, 0, 0)
    save_gif(torch.rand(2, 3, 8, 8), tmp_path / "b.gif")
    with pytest.raises(ValueError, match="frames"):
        save_gif(torch.rand(2, 8, 8), tmp_path / "c.gif")


def test_run_render_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.obj"):
        run_render(tmp_path / "missing.obj", tmp_path / "out")
    with pytest.raises(ValueError, match="image_size"):
        run_render(None, tmp_path / "out", image_size=0)
    with pytest.raises(ValueError, match="texture_type"):
        run_render(None, tmp_path / "out", texture_type="plaid")


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["render", "--out", str(out), "--image-size", "24", "--step", "90", "--sweep-frames", "2", "--quiet"]
    assert main([*args, "--texture-type", "vertex"]) == 0
    printed = capsys.readouterr().out
    for name in ("turntable.gif", "sigma_gamma_sweep.gif", "sweep_strip.png", "mesh.obj", "summary.json"):
        assert (out / name).is_file()
        assert str(out / name) in printed
    assert _gif(out / "turntable.gif").shape[:3] == (4, 24, 24)
    assert json.loads((out / "summary.json").read_text())["mesh"]["texture_type"] == "vertex"


def test_cli_render_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], mesh) -> None:
    src = tmp_path / "src.obj"
    mesh.save_obj(src, save_texture=True)
    out = tmp_path / "from_file"
    assert main(["render", str(src), "-o", str(out), "--image-size", "16", "--step", "180", "--sweep-frames", "1"]) == 0
    assert _gif(out / "turntable.gif").shape[0] == 2
    assert str(src) in json.loads((out / "summary.json").read_text())["mesh"]["source"]


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(tmp_path / "missing.obj"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softras: error:") and "missing.obj" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "--image-size", "0"],
        ["render", "--step", "-5"],
        ["render", "--texture-type", "plaid"],
        ["render", "--sweep-frames", "x"],
        ["render", "--bogus"],
        ["no-such-command"],
    ],
)
def test_cli_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softras: error:") and len(err.splitlines()) == 1


def test_cli_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["render", "--help"], ["--version"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "render" in out and "--image-size" in out and "--sweep-frames" in out
    assert f"softras {softras.__version__} (torch {torch.__version__}, numba " in out
    assert "backends: " in out and "reference" in out.split("backends: ")[1]


def test_version_has_one_source() -> None:
    from importlib import metadata

    assert metadata.version("softras") == softras.__version__
