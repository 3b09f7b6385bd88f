"""Test-time refinement (softras.recon.refine) and the same-view retrieval baseline."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from softras.cli import main
from softras.losses import iou
from softras.recon.baselines import RetrievalBaseline, image_features
from softras.recon.dataset_builder import build_procedural_dataset
from softras.recon.evaluate import evaluate
from softras.recon.model import ModelConfig, ReconModel
from softras.recon.nmr import NMRDataset, viewpoints
from softras.recon.refine import RefineConfig, refine_reconstruction
from softras.recon.train import PRESETS, train

SMALL = ModelConfig(image_size=32, template_level=1, conv_dim=4, fc_dim=32, latent_dim=16, decoder_dim=32)


@pytest.fixture(scope="module")
def model_and_inputs() -> tuple[ReconModel, torch.Tensor, torch.Tensor]:
    """A randomly initialised small model and two silhouette images of ellipsoids it does not predict."""
    torch.manual_seed(0)
    model = ReconModel(SMALL, backend="reference").eval()
    eyes = viewpoints([3, 10])
    base = model.decoder.vertices_base
    shapes = torch.stack([base * base.new_tensor([0.45, 0.15, 0.3]), base * base.new_tensor([0.2, 0.3, 0.3])])
    with torch.no_grad():
        alpha = model.render(shapes, eyes)[:, 3:]
    return model, torch.cat([alpha.expand(-1, 3, -1, -1), alpha], 1), eyes


def _silhouette_iou(
    model: ReconModel, vertices: torch.Tensor, images: torch.Tensor, eyes: torch.Tensor
) -> torch.Tensor:
    with torch.no_grad():
        return iou(model.render(vertices, eyes)[:, 3], images[:, 3])


def _same(a: object, b: object) -> bool:
    """Equal state_dict values: tensors, or the renderer's settings (dicts that may hold tensors)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def test_refinement_fits_the_input_silhouette_and_leaves_the_model_alone(
    model_and_inputs: tuple[ReconModel, torch.Tensor, torch.Tensor],
) -> None:
    model, images, eyes = model_and_inputs
    state = copy.deepcopy(model.state_dict())  # weights and the renderer's settings
    sigma = model.renderer.rasterizer.sigma_val
    plain, _ = refine_reconstruction(model, images, eyes, RefineConfig(steps=0))
    with torch.no_grad():
        assert torch.equal(plain, model.reconstruct(images)[0])  # 0 steps: the network's answer
    before = _silhouette_iou(model, plain, images, eyes)
    fitted, colors = refine_reconstruction(model, images, eyes, RefineConfig(steps=40, lr=0.3, sigma=3e-4))
    after = _silhouette_iou(model, fitted, images, eyes)
    assert colors is None and fitted.shape == plain.shape and not fitted.requires_grad
    assert (after > before + 0.02).all() and float((after - before).mean()) > 0.08, (before, after)
    assert fitted.abs().max() <= 0.5  # still the decoder's output: inside the NMR box
    for k, v in model.state_dict().items():
        assert _same(v, state[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert model.renderer.rasterizer.sigma_val == sigma  # the fitting sigma is restored
    model.train()  # a model left in training mode is fitted in eval mode, and left as it was
    try:
        again, _ = refine_reconstruction(model, images, eyes, RefineConfig(steps=40, lr=0.3, sigma=3e-4))
        assert model.training
    finally:
        model.eval()
    torch.testing.assert_close(again, fitted, atol=1e-6, rtol=0)


def test_refinement_of_a_query_does_not_depend_on_its_batch(
    model_and_inputs: tuple[ReconModel, torch.Tensor, torch.Tensor],
) -> None:
    model, images, eyes = model_and_inputs
    cfg = RefineConfig(steps=8, lr=0.3)
    together, _ = refine_reconstruction(model, images, eyes, cfg)
    alone = torch.cat([refine_reconstruction(model, images[i : i + 1], eyes[i : i + 1], cfg)[0] for i in range(2)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_refinement_rejects_bad_input(model_and_inputs: tuple[ReconModel, torch.Tensor, torch.Tensor]) -> None:
    model, images, eyes = model_and_inputs
    with pytest.raises(ValueError, match=r"images: expected \[B, 4, S, S\]"):
        refine_reconstruction(model, images[:, :3], eyes)
    with pytest.raises(ValueError, match="images: expected floating-point"):
        refine_reconstruction(model, (images * 255).to(torch.uint8), eyes)
    with pytest.raises(ValueError, match=r"eyes: expected \[2, 3\]"):
        refine_reconstruction(model, images, eyes[:1])
    for kwargs, name in (({"steps": -1}, "steps"), ({"lr": 0.0}, "lr"), ({"sigma": -1.0}, "sigma")):
        with pytest.raises(ValueError, match=name):
            RefineConfig(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lambda_laplacian"):
        RefineConfig(lambda_laplacian=-1.0)
    with pytest.raises(ValueError, match="lambda_color"):
        RefineConfig(lambda_color=-1.0)


def test_refinement_colour_term_only_acts_on_models_that_predict_colours(
    model_and_inputs: tuple[ReconModel, torch.Tensor, torch.Tensor],
) -> None:
    model, images, eyes = model_and_inputs
    fits = [refine_reconstruction(model, images, eyes, RefineConfig(steps=5, lambda_color=w))[0] for w in (0.0, 5.0)]
    assert torch.equal(fits[0], fits[1])  # silhouette model: no colours, no colour term
    torch.manual_seed(1)
    full = ReconModel(replace(SMALL, variant="full"), backend="reference").eval()
    results = [refine_reconstruction(full, images, eyes, RefineConfig(steps=5, lambda_color=w)) for w in (0.0, 5.0)]
    (v0, c0), (v1, c1) = results
    assert c0 is not None and c1 is not None and c0.shape == (2, full.faces.shape[0], 3)
    assert not torch.equal(v0, v1) and not torch.equal(c0, c1)  # the RGB term steers the fit


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("refine")
    data = root / "data"
    build_procedural_dataset(
        data, per_class=2, class_ids=("02958343",), fractions=(1, 0, 1), quiet=True, backend="reference"
    )
    cfg = replace(PRESETS["tiny"], iters=2, template_level=1, demo_every=0)
    result = train(data, root / "run", cfg, quiet=True, backend="reference")
    assert result.checkpoint is not None
    return data, result.checkpoint


def test_same_view_retrieval_searches_only_the_query_view(run: tuple[Path, Path]) -> None:
    data, _ = run
    train_set = NMRDataset(data, "train")
    retrieval = RetrievalBaseline(train_set, dim=0)
    cid = train_set.class_ids[0]
    n = train_set.num_objects[cid]
    assert torch.equal(retrieval.view, torch.arange(24).repeat(n))
    query = torch.from_numpy(np.asarray(train_set.images[cid][0, 5:6], np.float32) / 255)  # object 0, view 5
    assert int(retrieval.nearest(query, torch.tensor([5]))) == train_set.offsets[cid]
    # asked for view 17, the answer is the owner of the nearest view-17 image, computed by hand
    feats = image_features(query, None)
    candidates = torch.from_numpy(np.asarray(train_set.images[cid][:, 17], np.float32) / 255)
    expected = int((image_features(candidates, None) - feats).pow(2).sum(1).argmin()) + train_set.offsets[cid]
    assert int(retrieval.nearest(query, torch.tensor([17]))) == expected
    assert retrieval.predict(query, torch.tensor([17])).shape == (1, 32, 32, 32)
    with pytest.raises(ValueError, match="view_ids: expected"):
        retrieval.nearest(query, torch.tensor([1, 2]))


def test_eval_with_refinement_adds_the_fitted_and_same_view_rows(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, ckpt = run
    lines: list[str] = []
    refine = RefineConfig(steps=2)
    res = evaluate(data, ckpt, tmp_path, examples=1, quiet=True, log=lines.append, backend="reference", refine=refine)
    rows = [r.split("  ")[0] for r in lines[0].splitlines()[2:]]
    assert rows == [
        "SoftRas (silhouette)",
        "SoftRas (silhouette) + input fit",
        "Retrieval",
        "Retrieval (same view)",
        "Mean shape (class oracle)",
    ]
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["refine"]["steps"] == 2
    assert 0 <= res.mean["softras_refined"] <= 1 and 0 <= res.mean["retrieval_same_view"] <= 1
    gif = next((tmp_path / "examples").glob("*.gif"))
    frame = iio.imread(gif, index=0)
    assert frame.shape[1] == 3 * frame.shape[0]  # input | network | refined
    with pytest.raises(ValueError, match="refine: needs a checkpoint"):
        evaluate(data, None, None, refine=refine, quiet=True)
    args = ["recon", "eval", "--data", str(data), "--out", str(tmp_path), "--quiet"]
    assert main([*args, "--checkpoint", str(ckpt), "--refine-steps", "-1"]) == 2
    assert "--refine-steps: expected >= 0" in capsys.readouterr().err
    assert main([*args, "--refine-steps", "3"]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err
    assert main([*args, "--checkpoint", str(ckpt), "--refine-steps", "1", "--examples", "0", "--no-baselines"]) == 0
    methods = json.loads((tmp_path / "results.json").read_text())["methods"]
    assert set(methods) == {"softras", "softras_refined"}


def test_the_docs_single_image_example_runs(
    run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python example of docs/reconstruction.md, on a tiny checkpoint and a test image."""
    data, ckpt = run
    text = (Path(__file__).parents[1] / "docs" / "reconstruction.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    snippet = next(b for b in blocks if "refine_reconstruction" in b)
    (tmp_path / "runs" / "proc").mkdir(parents=True)
    (tmp_path / "runs" / "proc" / "checkpoint.pt").write_bytes(ckpt.read_bytes())
    test_set = NMRDataset(data, "test")
    iio.imwrite(tmp_path / "chair.png", np.asarray(test_set.images[test_set.class_ids[0]][0, 2]).transpose(1, 2, 0))
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "docs/reconstruction.md", "exec"), {})
    assert (tmp_path / "chair.obj").stat().st_size > 0


def test_eval_device_argument(run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, ckpt = run
    res = evaluate(
        data, ckpt, None, baselines=False, quiet=True, log=lambda _: None, device="cpu", refine=RefineConfig(1)
    )
    assert res.info["device"] == "cpu" and set(res.mean) == {"softras", "softras_refined"}
    with pytest.raises(ValueError, match="device: expected"):
        evaluate(data, ckpt, None, quiet=True, device="gpu")
    if not torch.cuda.is_available():
        args = ["recon", "eval", "--data", str(data), "--checkpoint", str(ckpt), "--out", str(tmp_path)]
        assert main([*args, "--device", "cuda", "--quiet"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_eval_with_refinement_on_cuda_matches_cpu(run: tuple[Path, Path]) -> None:
    data, ckpt = run
    kwargs = {"baselines": False, "quiet": True, "log": lambda _: None, "refine": RefineConfig(3)}
    cpu = evaluate(data, ckpt, None, device="cpu", **kwargs)  # type: ignore[arg-type]
    gpu = evaluate(data, ckpt, None, device="cuda", **kwargs)  # type: ignore[arg-type]
    for m in cpu.mean:
        assert gpu.mean[m] == pytest.approx(cpu.mean[m], abs=0.02)
