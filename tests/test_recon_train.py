"""Training (softras.recon.train): the objective, schedule, exact resume after Ctrl-C, checkpoints."""

from __future__ import annotations

import csv
import os
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from softras.cli import main
from softras.recon.ema import WeightAverage
from softras.recon.model import ModelConfig, ReconModel, multiview_iou_loss
from softras.recon.nmr import NUM_VIEWS
from softras.recon.train import PRESETS, TrainConfig, Trainer, load_checkpoint, load_model, train

# a tiny network on a coarse template: a step takes a few tens of milliseconds
CFG = replace(PRESETS["tiny"], iters=6, save_every=100, demo_every=0, template_level=1, image_size=32)


def write_blobs(directory: Path, counts: dict[str, int], size: int = 32, seed: int = 0) -> None:
    """Synthetic NMR files: a random ellipse silhouette per object (the same in every view)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    for cid, n in counts.items():
        images = np.zeros((n, NUM_VIEWS, 4, size, size), np.uint8)
        for i in range(n):
            a, b = rng.uniform(0.1, 0.35, 2)
            mask = (xx / a) ** 2 + (yy / b) ** 2 < 1
            images[i, :, :3] = rng.integers(50, 255, 3)[None, :, None, None] * mask
            images[i, :, 3] = 255 * mask
        voxels = (rng.random((n, 32, 32, 32)) > 0.7).astype(np.uint8)
        for split in ("train", "val", "test"):
            np.savez(directory / f"{cid}_{split}_images.npz", images)
            np.savez(directory / f"{cid}_{split}_voxels.npz", voxels)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("blobs")
    write_blobs(d, {"03001627": 3, "04379243": 2})
    return d


def test_decoder_keeps_vertices_in_the_unit_box_and_loss_shapes() -> None:
    model = ReconModel(ModelConfig(image_size=32, template_level=1, conv_dim=4, fc_dim=16, latent_dim=8, decoder_dim=8))
    images = torch.rand(3, 4, 32, 32)
    vertices, colors = model.reconstruct(images)
    assert vertices.shape == (3, 42, 3) and colors is None
    assert float(vertices.detach().abs().max()) <= 0.5
    eyes = torch.tensor([[0.0, 1.366, -2.366]]).expand(3, 3)
    renders, _, lap, flat = model.render_multiview(images, images, eyes, eyes)
    assert len(renders) == 4 and renders[0].shape == (3, 4, 32, 32) and lap.shape == (6,) and flat.shape == (6,)
    loss = multiview_iou_loss(renders, images, images)
    loss.backward()
    assert all(p.grad is not None for p in model.net.parameters() if p.requires_grad)
    full = ReconModel(
        ModelConfig(variant="full", image_size=32, template_level=1, conv_dim=4, fc_dim=16, latent_dim=8, decoder_dim=8)
    )
    _, colors = full.reconstruct(images)
    assert colors is not None and colors.shape == (3, 80, 3)
    assert 0 < float(colors.detach().min()) <= float(colors.detach().max()) < 1


def test_symmetric_decoder_mirrors_its_meshes_about_x0() -> None:
    from softras.recon.model import _mirror_permutation

    cfg = ModelConfig(image_size=32, template_level=2, conv_dim=4, fc_dim=16, latent_dim=8, decoder_dim=8)
    flip = torch.tensor([-1.0, 1.0, 1.0])
    sym = ReconModel(replace(cfg, symmetric=True))
    torch.nn.init.normal_(sym.decoder.fc_centroid.weight, std=5.0)  # a large centroid too
    vertices, _ = sym.reconstruct(torch.rand(3, 4, 32, 32))
    mirror = sym.decoder.mirror
    assert sorted(mirror.tolist()) == list(range(162)) and torch.equal(mirror[mirror], torch.arange(162))
    assert torch.allclose(vertices[:, mirror] * flip, vertices, atol=1e-7)
    assert float(vertices.detach().abs().max()) <= 0.5
    plain, _ = ReconModel(cfg).reconstruct(torch.rand(3, 4, 32, 32))
    assert not torch.allclose(plain[:, mirror] * flip, plain, atol=1e-3)  # the paper's decoder is free
    assert "mirror" not in sym.net.state_dict()  # derived from the template: checkpoints unchanged
    with pytest.raises(ValueError, match="not symmetric"):
        _mirror_permutation(torch.tensor([[0.3, 0.0, 0.0], [0.2, 1.0, 0.0]]))


def test_encoder_dropout_is_active_in_training_only() -> None:
    cfg = ModelConfig(image_size=32, template_level=1, conv_dim=4, fc_dim=64, latent_dim=8, decoder_dim=8)
    torch.manual_seed(0)
    dropped = ReconModel(replace(cfg, dropout=0.5))
    plain = ReconModel(cfg)
    plain.net.load_state_dict(dropped.net.state_dict())  # dropout has no parameters
    images = torch.rand(3, 4, 32, 32)
    dropped.net.train()
    first, second = dropped.reconstruct(images)[0], dropped.reconstruct(images)[0]
    assert not torch.allclose(first, second)  # a new mask per call
    plain.net.load_state_dict(dropped.net.state_dict())  # the BatchNorm statistics moved
    dropped.net.eval(), plain.net.eval()
    assert torch.equal(dropped.reconstruct(images)[0], plain.reconstruct(images)[0])
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.0)
    assert PRESETS["paper"].dropout == 0.0 and PRESETS["paper"].model_config().dropout == 0.0


def test_schedule_decays_lr_and_sigma_at_60_percent(data: Path, tmp_path: Path) -> None:
    tr = Trainer(data, tmp_path, replace(CFG, iters=10), quiet=True)
    assert tr.schedule(5) == (CFG.lr, CFG.sigma)
    lr, sigma = tr.schedule(6)
    assert lr == pytest.approx(0.3 * CFG.lr) and sigma == pytest.approx(0.3 * CFG.sigma)
    cosine = Trainer(data, tmp_path, replace(CFG, iters=10, lr_schedule="cosine"), quiet=True)
    assert cosine.schedule(0) == (CFG.lr, CFG.sigma)
    assert cosine.schedule(5)[0] == pytest.approx(0.5 * CFG.lr) and cosine.schedule(5)[1] == CFG.sigma
    assert cosine.schedule(6)[1] == pytest.approx(0.3 * CFG.sigma)  # σ keeps its step
    assert cosine.schedule(10)[0] == pytest.approx(0.0, abs=1e-20)
    sharp = Trainer(data, tmp_path, replace(CFG, iters=10, sigma_decay=0.1), quiet=True)
    assert sharp.schedule(6) == (pytest.approx(0.3 * CFG.lr), pytest.approx(0.1 * CFG.sigma))
    with pytest.raises(ValueError, match="lr_schedule"):
        replace(CFG, lr_schedule="linear")
    paper = PRESETS["paper"]
    assert paper.lr_schedule == "step" and paper.ema_decay == 0 and paper.color_jitter == paper.shift_pixels == 0
    assert (paper.iters, paper.batch_size, paper.lr, paper.sigma) == (250_000, 64, 1e-4, 1e-4)
    assert (paper.lambda_laplacian, paper.lambda_flatten, paper.decay_at) == (5e-3, 5e-4, 0.6)


def test_volume_weight_adds_the_mean_mesh_volume_to_the_loss(data: Path, tmp_path: Path) -> None:
    losses = {}
    for weight in (0.0, 0.5):
        tr = Trainer(data, tmp_path / str(weight), replace(CFG, lambda_volume=weight), quiet=True)
        losses[weight] = tr.step()
    plain, weighted = losses[0.0], losses[0.5]
    assert plain["volume"] > 0  # the template sphere, nothing learned yet: the same first batch
    assert weighted["volume"] == pytest.approx(plain["volume"])
    assert weighted["loss"] == pytest.approx(plain["loss"] + 0.5 * plain["volume"], rel=1e-5)
    with pytest.raises(ValueError, match="lambda_volume"):
        replace(CFG, lambda_volume=-1.0)


def test_interrupt_and_resume_is_exact(data: Path, tmp_path: Path) -> None:
    # the reference backend: deterministic arithmetic, so "the same" means bit-identical; the
    # weight average and the colour jitter (which draws from the batch sampler) must resume too
    cfg = replace(CFG, ema_decay=0.9, color_jitter=0.3, shift_pixels=2)
    straight = train(data, tmp_path / "a", cfg, quiet=True, backend="reference")
    assert straight.iteration == cfg.iters and not straight.interrupted

    def ctrl_c(trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: finish the step, save, stop

    first = train(data, tmp_path / "b", cfg, quiet=True, on_step=ctrl_c, backend="reference")
    assert first.interrupted and first.iteration == 2
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["iteration"] == 2
    resumed = train(data, tmp_path / "b", cfg, quiet=True, resume=tmp_path / "b" / "checkpoint.pt", backend="reference")
    assert resumed.iteration == cfg.iters and not resumed.interrupted
    ckpt_a, ckpt_b = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in ("a", "b"))
    for a, b in ((ckpt_a["model"], ckpt_b["model"]), (ckpt_a["ema"]["weights"], ckpt_b["ema"]["weights"])):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical, BatchNorm statistics included
    assert ckpt_a["ema"]["updates"] == ckpt_b["ema"]["updates"] == cfg.iters
    rows = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert [int(r["iteration"]) for r in rows] == list(range(1, cfg.iters + 1))
    ref = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    assert [r["loss"] for r in rows] == [r["loss"] for r in ref]
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.endswith(".tmp")]  # atomic writes


def test_checkpoint_content_and_model_loading(data: Path, tmp_path: Path) -> None:
    cfg = replace(CFG, iters=2, variant="full", demo_every=2)
    result = train(data, tmp_path, cfg, quiet=True)
    ckpt = load_checkpoint(result.checkpoint)  # weights_only=True
    assert set(ckpt) >= {"iteration", "model", "optimizer", "config", "rng"}
    assert set(ckpt["rng"]) == {"torch", "numpy", "python", "sampler"} and len(ckpt["rng"]["sampler"]) == 1
    assert TrainConfig.from_dict(ckpt["config"]) == cfg
    model, loaded_cfg, _ = load_model(result.checkpoint)
    assert loaded_cfg.variant == "full" and not model.training
    assert (tmp_path / "demo" / "0000002.png").is_file() and (tmp_path / "demo" / "0000002.obj").is_file()
    assert result.metrics["color"] > 0
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


FAMILY = {
    "distribution": "uniform",
    "squared_distance": False,
    "aggr_func_alpha": "yager",
    "t_conorm_p": 2.0,
    "dist_eps": 1e-4,
}


def _family(model: ReconModel) -> dict[str, object]:
    settings = model.renderer.rasterizer.settings()
    return {k: getattr(settings, k) for k in (*FAMILY, "sigma_val")}


def test_coverage_family_reaches_the_renderer_and_the_checkpoint(data: Path, tmp_path: Path) -> None:
    cfg = replace(CFG, iters=1, sigma=1e-2, **FAMILY)
    assert {k: cfg.coverage()[k] for k in FAMILY} == FAMILY
    trainer = Trainer(data, tmp_path, cfg, quiet=True)
    assert _family(trainer.model) == {**FAMILY, "sigma_val": 1e-2}
    # the training renders are the family's: the same as a SoftRenderer built with its keywords
    from softras.mesh import Mesh
    from softras.renderer import SoftRenderer

    vertices, _ = trainer.model.reconstruct(torch.rand(2, 4, 32, 32))
    eyes = torch.tensor([[0.0, 1.366, -2.366]]).expand(2, 3)
    renderer = SoftRenderer(
        image_size=32, sigma_val=1e-2, aggr_func_rgb="hard", camera_mode="look_at", viewing_angle=15, **FAMILY
    )
    renderer.transform.set_eyes(eyes)
    expected = renderer.render_mesh(Mesh(vertices, trainer.model.faces[None]))
    assert torch.equal(trainer.model.render(vertices, eyes), expected)
    default = ReconModel(cfg.model_config(), sigma_val=1e-2)
    assert not torch.equal(default.render(vertices, eyes)[:, 3], expected[:, 3])
    result = trainer.run()
    model, loaded, _ = load_model(result.checkpoint)
    assert loaded == cfg and _family(model) == {**FAMILY, "sigma_val": 1e-2}
    # a checkpoint written before the option existed loads with SoftRas's family
    old = {k: v for k, v in cfg.to_dict().items() if k not in FAMILY}
    assert TrainConfig.from_dict(old).coverage() == TrainConfig().coverage()
    assert TrainConfig().coverage() == {
        "distribution": "logistic",
        "squared_distance": True,
        "dist_shape": None,
        "dist_shift": None,
        "aggr_func_alpha": "prod",
        "t_conorm_p": None,
        "dist_eps": 1e-10,
    }


def test_train_cli_coverage_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data64 = tmp_path / "data64"
    data64.mkdir()
    write_blobs(data64, {"03001627": 2}, size=64)
    out = tmp_path / "run"
    args = ["recon", "train", "--data", str(data64), "--out", str(out), "--preset", "tiny", "--iters", "1", "--quiet"]
    family = ["--sigma", "0.01", "--distribution", "uniform", "--no-squared-distance", "--aggr-func-alpha", "yager"]
    family += ["--t-conorm-p", "2", "--dist-eps", "1e-4"]
    assert main(args + family) == 0
    _, cfg, _ = load_model(out / "checkpoint.pt")
    assert {k: getattr(cfg, k) for k in FAMILY} == FAMILY and cfg.sigma == 0.01
    capsys.readouterr()
    with pytest.raises(SystemExit, match="2"):
        main([*args, "--distribution", "gamma", "--dist-shape", "-1"])  # argparse: not a positive number
    assert main([*args, "--aggr-func-alpha", "yager", "--t-conorm-p", "-1"]) == 2  # the renderer's check
    assert "t_conorm_p" in capsys.readouterr().err


def test_weight_average_follows_the_ema_formula_and_round_trips() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, decay=0.5)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].num_batches_tracked.fill_(7)
    avg.update(net)  # warm-up: d = min(0.5, 2 / 11)
    d = 2 / 11
    expected = d * start["0.weight"] + (1 - d) * net[0].weight.detach()
    assert torch.allclose(avg.shadow["0.weight"], expected)
    assert int(avg.shadow["1.num_batches_tracked"]) == 7  # integer buffers are copied
    for _ in range(20):
        avg.update(net)
    assert torch.allclose(avg.shadow["0.weight"], net[0].weight.detach(), atol=1e-5)  # converges to a still net
    other = WeightAverage(net, decay=0.9)
    other.load_state_dict(avg.state_dict())
    assert other.updates == 21 and other.decay == 0.5
    assert all(torch.equal(other.shadow[k], avg.shadow[k]) for k in avg.shadow)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, decay=1.0)
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict({"decay": 0.5, "updates": 1, "weights": {"x": torch.zeros(1)}})


def test_checkpoint_average_is_what_evaluation_loads(data: Path, tmp_path: Path) -> None:
    cfg = replace(CFG, iters=3, ema_decay=0.5, lr=1e-2)
    result = train(data, tmp_path, cfg, quiet=True, backend="reference")
    ckpt = load_checkpoint(result.checkpoint)
    averaged, _, _ = load_model(result.checkpoint)
    last, _, _ = load_model(result.checkpoint, average=False)
    for name, value in averaged.net.state_dict().items():
        assert torch.equal(value, ckpt["ema"]["weights"][name])
        assert torch.equal(last.net.state_dict()[name], ckpt["model"][name])
    assert any(not torch.equal(ckpt["ema"]["weights"][k], ckpt["model"][k]) for k in ckpt["model"])


def test_color_jitter_scales_rgb_only(data: Path, tmp_path: Path) -> None:
    tr = Trainer(data, tmp_path, replace(CFG, color_jitter=0.5), quiet=True)
    images = torch.rand(16, 4, 8, 8)
    out = tr._jitter_colors(images)
    assert torch.equal(out[:, 3], images[:, 3]) and float(out.min()) >= 0 and float(out.max()) <= 1
    ratio = out[:, :3].flatten(2) / images[:, :3].flatten(2)
    unclamped = out[:, :3].flatten(2) < 1
    gains = torch.where(unclamped, ratio, torch.nan).nanmean(-1)  # one gain per image and channel
    assert float(gains.min()) >= 0.5 - 1e-6 and float(gains.max()) <= 1.5 + 1e-6
    assert float(gains.std()) > 0.1  # the gains differ between images and channels


def test_shift_translates_each_image_within_the_range(data: Path, tmp_path: Path) -> None:
    tr = Trainer(data, tmp_path, replace(CFG, shift_pixels=2), quiet=True)
    images = torch.zeros(32, 4, 16, 16)
    images[:, :, 7, 7] = 1.0  # one lit pixel per image
    out = tr._shift(images)
    assert out.shape == images.shape and torch.equal(out.sum((1, 2, 3)), images.sum((1, 2, 3)))
    ys, xs = (out[:, 0] > 0).nonzero()[:, 1:].T
    assert int((ys - 7).abs().max()) <= 2 and int((xs - 7).abs().max()) <= 2
    assert len(set(zip(ys.tolist(), xs.tolist(), strict=True))) > 5  # the offsets vary


def test_train_cli(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    data64 = tmp_path / "data64"
    data64.mkdir()
    write_blobs(data64, {"03001627": 2}, size=64)
    assert (
        main(
            [
                "recon",
                "train",
                "--data",
                str(data64),
                "--out",
                str(out),
                "--preset",
                "tiny",
                "--iters",
                "2",
                "--quiet",
                "--backend",
                "reference",
            ]
        )
        == 0
    )
    assert "finished iteration 2/2" in capsys.readouterr().out
    assert {"checkpoint.pt", "log.csv", "config.json"} <= {p.name for p in out.iterdir()}
    assert (
        main(
            [
                "recon",
                "train",
                "--data",
                str(data),
                "--out",
                str(out),
                "--preset",
                "tiny",
                "--iters",
                "2",
                "--batch-size",
                "2",
                "--quiet",
                "--backend",
                "reference",
            ]
        )
        == 2
    )  # tiny expects 64² images
    assert "64" in capsys.readouterr().err
    assert main(["recon", "train", "--data", str(tmp_path / "none"), "--out", str(out), "--preset", "tiny"]) == 2
