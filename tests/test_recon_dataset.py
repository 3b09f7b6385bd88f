"""make-dataset (softras.recon.dataset_builder) and the procedural shape classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from softras.cli import main
from softras.io import save_mesh
from softras.losses import iou
from softras.metrics import mesh_to_nmr_voxels
from softras.recon.dataset_builder import build_dataset, normalize_shapenet, split_indices
from softras.recon.model import ModelConfig, ReconModel
from softras.recon.nmr import NUM_VIEWS, NMRDataset, viewpoints
from softras.recon.procedural import PROCEDURAL_CLASSES, generate
from softras.shapes import color_cube, torus


@pytest.mark.parametrize("class_id", sorted(PROCEDURAL_CLASSES))
def test_procedural_parts_are_closed_and_outward(class_id: str) -> None:
    for seed in range(24):  # enough seeds to draw every sub-type and optional part
        m = generate(class_id, seed)
        assert m.faces.shape[0] == m.face_colors.shape[0]
        mesh = trimesh.Trimesh(m.vertices, m.faces, process=False)
        for part in mesh.split(only_watertight=False):
            assert part.is_watertight and part.is_winding_consistent and part.volume > 0
        assert m.vertices[:, 1].min() >= -0.5  # y is up: the shapes stand on (or near) the floor
    a, b = generate(class_id, 0), generate(class_id, 1)
    assert not np.array_equal(a.vertices, b.vertices) or a.vertices.shape != b.vertices.shape
    assert np.array_equal(generate(class_id, 0).vertices, a.vertices)  # deterministic


def test_normalisation_and_split() -> None:
    v = normalize_shapenet(torch.tensor([[0.0, 0, 0], [4, 2, 0], [2, 1, 4]]))
    lo, hi = v.min(0).values, v.max(0).values
    assert torch.allclose((hi - lo).norm(), torch.tensor(1.0)) and torch.allclose(lo + hi, torch.zeros(3))
    parts = split_indices(20, seed=3)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [14, 2, 4]
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(20))
    assert all(np.array_equal(parts[s], split_indices(20, seed=3)[s]) for s in parts)
    assert min(len(p) for p in split_indices(3, seed=0).values()) == 1


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("meshes")
    a, b = root / "03001627", root / "02691156"
    a.mkdir()
    b.mkdir()
    v, f, t = color_cube(1.0)
    save_mesh(a / "cube.ply", v, f, t)
    trimesh.creation.box((1.0, 0.3, 0.6)).export(a / "slab.stl")
    tv, tf = torus()
    save_mesh(b / "ring.obj", tv, tf)
    (b / "broken.obj").write_text("v 0 0 0\nf 1 2 3\nthis is not an obj\n")
    (b / "empty.off").write_text("OFF\n0 0 0\n")
    logs: list[str] = []
    out = root / "data"
    report = build_dataset(root, out, seed=0, quiet=True, log=logs.append, backend="reference")
    assert report.seconds > 0
    return root, out, logs


def test_make_dataset_writes_nmr_files_and_skips_bad_meshes(built: tuple[Path, Path, list[str]]) -> None:
    _, out, logs = built
    manifest = json.loads((out / "dataset.json").read_text())
    skipped = {s["file"] for s in manifest["skipped"]}
    assert skipped == {"02691156/broken.obj", "02691156/empty.off"}
    assert len(logs) == 2 and all(line.startswith("skipped ") for line in logs)
    chairs = manifest["classes"]["03001627"]
    assert sorted(chairs["train"] + chairs["val"] + chairs["test"]) == ["03001627/cube.ply", "03001627/slab.stl"]
    ds = NMRDataset(out, "train")
    for cid in ds.class_ids:
        assert ds.images[cid].shape[1:] == (NUM_VIEWS, 4, 64, 64) and ds.images[cid].dtype == np.uint8
        assert ds.voxels[cid].shape[1:] == (32, 32, 32)
        assert ds.images[cid][..., 3, :, :].max() == 255  # something is visible in every split file
        assert ds.voxels[cid].sum() > 0


def test_renders_and_voxels_use_the_training_and_evaluation_frames(built: tuple[Path, Path, list[str]]) -> None:
    """The dataset's silhouettes match what the training renderer draws for the same mesh, and its
    voxels are what the evaluation computes for the same mesh."""
    _, out, _ = built
    manifest = json.loads((out / "dataset.json").read_text())
    split = next(s for s in ("train", "val", "test") if "03001627/cube.ply" in manifest["classes"]["03001627"][s])
    idx = manifest["classes"]["03001627"][split].index("03001627/cube.ply")
    ds = NMRDataset(out, split)
    v, f, _ = color_cube(1.0)
    vn = normalize_shapenet(v)
    model = ReconModel(ModelConfig(template_level=1, conv_dim=4, fc_dim=8, latent_dim=8, decoder_dim=8))
    model.decoder.faces = f  # render the cube with the model's renderer
    views = torch.arange(0, NUM_VIEWS, 5)
    sil = model.render(vn[None].expand(len(views), -1, -1), viewpoints(views))[:, 3]
    target = torch.from_numpy(ds.images["03001627"][idx][views.numpy(), 3].astype(np.float32) / 255)
    assert float(iou(sil, target).min()) > 0.9
    vox = mesh_to_nmr_voxels(vn[None], f[None])[0].numpy()
    assert np.array_equal(vox, ds.voxels["03001627"][idx])


def test_make_dataset_cli_procedural(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "proc"
    assert (
        main(
            [
                "recon",
                "make-dataset",
                "--procedural",
                "--per-class",
                "1",
                "--out",
                str(out),
                "--quiet",
                "--split",
                "1,0,0",
                "--npy",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "chair" in text and "wrote" in text
    ds = NMRDataset(out, "train")
    assert len(ds.class_ids) == len(PROCEDURAL_CLASSES) and len(ds) == len(PROCEDURAL_CLASSES)
    assert isinstance(ds.images[ds.class_ids[0]], np.memmap)
    assert main(["recon", "make-dataset", "--meshes", str(tmp_path / "none"), "--out", str(out)]) == 2
