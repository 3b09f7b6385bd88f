"""Evaluation table, results.json, examples and baselines (softras.recon.evaluate / baselines)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from softras.cli import main
from softras.metrics import iou_3d
from softras.recon.baselines import MeanShapeBaseline, RetrievalBaseline, visual_hull
from softras.recon.dataset_builder import build_procedural_dataset
from softras.recon.evaluate import evaluate, format_table
from softras.recon.nmr import NUM_VIEWS, NMRDataset
from softras.recon.train import PRESETS, train

CLASSES = ("03001627", "04379243")  # chair, table


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    data = root / "data"
    build_procedural_dataset(data, per_class=2, class_ids=CLASSES, fractions=(1, 0, 1), quiet=True, backend="reference")
    cfg = replace(PRESETS["tiny"], iters=2, template_level=1, demo_every=0)
    result = train(data, root / "run", cfg, quiet=True, backend="reference")
    assert result.checkpoint is not None
    return data, result.checkpoint


def test_eval_writes_table_results_and_examples(run: tuple[Path, Path], tmp_path: Path) -> None:
    data, ckpt = run
    lines: list[str] = []
    res = evaluate(data, ckpt, tmp_path, examples=2, quiet=True, log=lines.append, backend="reference")
    table = lines[0].splitlines()
    assert table[0].split() == ["method", "chair", "table", "mean"]  # paper layout: classes as columns
    assert [r.split("  ")[0] for r in table[2:]] == ["SoftRas (silhouette)", "Retrieval", "Mean shape (class oracle)"]
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["classes"] == {"03001627": "chair", "04379243": "table"}
    assert payload["queries"] == {c: NUM_VIEWS for c in CLASSES}  # 1 test object x 24 views per class
    assert set(payload["methods"]) == {"softras", "retrieval", "mean_shape"}
    for m in payload["methods"].values():
        per = m["per_class"]
        assert set(per) == set(CLASSES) and all(0 <= v <= 1 for v in per.values())
        assert m["mean"] == pytest.approx(np.mean(list(per.values())))
    assert payload["iteration"] == 2 and res.mean["softras"] == payload["methods"]["softras"]["mean"]
    assert (tmp_path / "table.txt").read_text().strip() == lines[0]
    ex = tmp_path / "examples"
    assert {p.suffix for p in ex.iterdir()} == {".gif", ".ply"} and len(list(ex.glob("*.gif"))) == 2
    assert (tmp_path / "examples.png").is_file()


def test_baselines_are_exact_on_their_own_training_data(run: tuple[Path, Path]) -> None:
    data, _ = run
    train_set = NMRDataset(data, "train")
    retrieval = RetrievalBaseline(train_set, dim=64)
    cid = train_set.class_ids[0]
    images = torch.from_numpy(np.asarray(train_set.images[cid][:, 5], np.float32) / 255)
    assert torch.equal(retrieval.nearest(images), torch.arange(train_set.num_objects[cid]) + train_set.offsets[cid])
    mean = MeanShapeBaseline(train_set)
    assert set(mean.shapes) == set(CLASSES) and all(0 < t < 1 for t in mean.thresholds.values())
    assert mean.predict(cid, 3).shape == (3, 32, 32, 32)


def test_eval_cli_baselines_only_and_errors(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = run
    assert main(["recon", "eval", "--data", str(data), "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Retrieval" in out and "SoftRas" not in out
    assert set(json.loads((tmp_path / "results.json").read_text())["methods"]) == {"retrieval", "mean_shape"}
    assert (
        main(["recon", "eval", "--data", str(data), "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path)])
        == 2
    )
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["recon", "eval", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2


def test_visual_hull_contains_the_object(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data, _ = run
    test_set = NMRDataset(data, "test")
    for cid in test_set.class_ids:
        alphas = torch.from_numpy(np.asarray(test_set.images[cid][0][:, 3], np.float32) / 255)
        hull = visual_hull(alphas)
        vox = torch.from_numpy(np.asarray(test_set.voxels[cid][0]))
        assert hull.shape == vox.shape and hull.dtype == torch.uint8
        covered = float((hull.bool() & vox.bool()).sum()) / float(vox.bool().sum())
        assert (
            covered > 0.9
        )  # the hull holds almost every true voxel (anti-aliased thin parts can fall below alpha 0.5) ...
        assert 0.3 < float(iou_3d(hull[None], vox[None])) < 1  # ... and more: what no view sees empty
        assert not visual_hull(torch.zeros_like(alphas)).any()
    args = ["recon", "eval", "--data", str(data), "--out", str(tmp_path), "--no-baselines", "--visual-hull", "--quiet"]
    assert main(args) == 0
    assert "Visual hull" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "results.json").read_text())["methods"]) == {"visual_hull"}


def test_format_table_marks_missing_classes() -> None:
    text = format_table(["02691156", "x"], {"retrieval": {"02691156": 0.5}}, {"retrieval": 0.5})
    assert text.splitlines()[0].split() == ["method", "airplane", "x", "mean"]
    assert "nan" in text.splitlines()[2]
