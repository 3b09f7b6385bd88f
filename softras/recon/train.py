"""Training of the single-view reconstruction model with the paper's multi-view objective.

Per iteration: ``B`` objects, two random views ``a``, ``b`` of each; the network predicts a mesh
from each image, both meshes are rendered from both views (four cross renders ``R_aa``, ``R_ba``,
``R_ab``, ``R_bb``), and the loss is

    mean_k (1 - IoU(alpha(R_k), alpha(target_k)))  +  5e-3 * Laplacian  +  5e-4 * flatten
    [+ colour_weight * L1(rgb(R_k), rgb(target_k))   for the 'full' variant]

optimised with Adam (lr 1e-4, betas (0.9, 0.999)); lr and σ are multiplied by 0.3 after 60 %
of the iterations (150k of 250k in the paper).

Checkpoints (``checkpoint.pt``) hold the network, the optimizer, every RNG state (torch, numpy,
python, and each rank's batch sampler) and the iteration, so ``--resume`` continues exactly:
an interrupted-and-resumed run ends with the same parameters as an uninterrupted one. They are
written atomically (temporary file + ``os.replace``) every ``save_every`` iterations, at the end,
and when the run is interrupted (Ctrl-C finishes the current iteration, saves and exits; a
second Ctrl-C aborts at once).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from softras.losses import mesh_volume
from softras.progress import progress

from . import ddp
from .checkpoint import load_checkpoint, remove_stale_temporaries, save_checkpoint, truncate_log
from .ema import WeightAverage
from .model import DIST_EPS, ModelConfig, ReconModel, multiview_iou_loss
from .nmr import NMRDataset

__all__ = [
    "PRESETS",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "train",
]

_LOG = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
#: What ``--resume`` needs from a checkpoint (``load_checkpoint(..., required=RESUME_KEYS)``).
RESUME_KEYS = ("iteration", "model", "optimizer", "config", "rng.torch", "rng.numpy", "rng.python", "rng.sampler")


@dataclass(frozen=True)
class TrainConfig:
    """Every training option (defaults: the paper's).

    Attributes:
        iters: optimisation steps.
        batch_size: objects per step (global: divided among DDP ranks); each gives 2 images
            and 4 renders.
        lr: Adam learning rate.
        sigma: σ of the soft rasterizer.
        gamma: γ of the soft rasterizer (colour renders).
        distribution: the coverage distribution of the training renderer (GenDR's families,
            docs/families.md; default SoftRas's ``'logistic'``).
        squared_distance: the distribution reads the squared screen distance (SoftRas) or the
            distance itself (GenDR's default); σ's scale differs accordingly.
        dist_shape: shape parameter of the ``gamma`` families (None: the renderer's default).
        dist_shift: shift of the one-sided families, in units of σ (None: the renderer's default).
        aggr_func_alpha: the alpha aggregation (T-conorm) of the training renderer (default
            SoftRas's ``'prod'``).
        t_conorm_p: the parameter of the parametric T-conorms (None: the renderer's default).
        dist_eps: coverage below which a pixel–face pair is skipped (the cull radius; 1e-10 as
            in the original's recon renderer). Heavy-tailed distributions reach far at a small
            ``dist_eps``: raise it to keep their renders fast.
        lambda_laplacian: weight of the Laplacian loss.
        lambda_flatten: weight of the flatten loss.
        lambda_color: weight of the colour loss ('full' only).
        lambda_volume: weight of the predicted meshes' mean signed volume
            (:func:`softras.losses.mesh_volume`; 0: off, as in the paper). Silhouettes seen from
            above (elevation 30°) cannot carve every empty region (under a table's top, between a
            car's wheels), so the IoU loss leaves those regions to the regularisers, which fill
            them; a small volume weight makes the smallest shape that matches the silhouettes the
            preferred one. (On the procedural data it shrank the visible parts too and lowered the
            test IoU; docs/reconstruction.md has the numbers.)
        decay_at: fraction of ``iters`` after which lr and σ are multiplied by ``decay``.
        decay: the factor of lr (and σ) at ``decay_at``.
        sigma_decay: factor applied to σ at ``decay_at`` (None: ``decay``, as in the paper).
            The dataset's images have exact, anti-aliased edges, while at σ = 1e-4 the soft
            silhouette of a closed mesh is dilated (many faces near the rim each add coverage:
            4–30 % more mass for the ground-truth procedural meshes at 64²), so the loss pulls
            the predicted shapes thinner than the truth; ending at σ = 1e-5 removes that bias.
        lr_schedule: ``'step'`` (the paper: lr × ``decay`` from ``decay_at`` on) or ``'cosine'``
            (lr follows half a cosine from ``lr`` down to 0 over the run; σ still steps at
            ``decay_at``).
        seed: seeds torch/numpy/python and the batch sampler.
        save_every: checkpoint period in iterations.
        log_every: log period in iterations.
        demo_every: demo period in iterations (0 disables demos).
        variant: the network's ``variant`` (see :class:`ModelConfig`).
        image_size: the network's ``image_size`` (see :class:`ModelConfig`).
        template_level: the network's ``template_level`` (see :class:`ModelConfig`).
        conv_dim: the network's ``conv_dim`` (see :class:`ModelConfig`).
        fc_dim: the network's ``fc_dim`` (see :class:`ModelConfig`).
        latent_dim: the network's ``latent_dim`` (see :class:`ModelConfig`).
        decoder_dim: the network's ``decoder_dim`` (see :class:`ModelConfig`).
        symmetric: the network's ``symmetric`` (see :class:`ModelConfig`).
        dropout: the network's ``dropout`` (see :class:`ModelConfig`).
        class_ids: train on these classes only (default: all in the data folder).
        threads: torch intra-op threads (0: leave PyTorch's default).
        ema_decay: keep an exponential moving average of the weights with this decay
            (:class:`~softras.recon.ema.WeightAverage`; 0 disables it, as in the paper);
            checkpoints then hold both, and evaluation uses the average.
        color_jitter: scale each input image's R, G, B by independent factors drawn uniformly
            from ``[1 - j, 1 + j]`` (0: off, as in the paper); the targets are silhouettes, so
            this only keeps the encoder from memorising training objects by their colours.
        shift_pixels: translate each input image by a random whole-pixel offset of up to
            ``±shift_pixels`` in x and y (zero fill; 0: off, as in the paper). Only the network's
            input moves: the renders are still compared with the unshifted silhouettes, so the
            encoder learns to ignore small misplacements instead of keying on exact pixels.
    """

    iters: int = 250_000
    batch_size: int = 64
    lr: float = 1e-4
    sigma: float = 1e-4
    gamma: float = 1e-4
    distribution: str = "logistic"
    squared_distance: bool = True
    dist_shape: float | None = None
    dist_shift: float | None = None
    aggr_func_alpha: str = "prod"
    t_conorm_p: float | None = None
    dist_eps: float = DIST_EPS
    lambda_laplacian: float = 5e-3
    lambda_flatten: float = 5e-4
    lambda_color: float = 1.0
    lambda_volume: float = 0.0
    decay_at: float = 0.6
    decay: float = 0.3
    sigma_decay: float | None = None
    lr_schedule: str = "step"
    seed: int = 0
    save_every: int = 10_000
    log_every: int = 100
    demo_every: int = 1_000
    variant: str = "silhouette"
    image_size: int = 64
    template_level: int = 3
    conv_dim: int = 64
    fc_dim: int = 1024
    latent_dim: int = 512
    decoder_dim: int = 1024
    class_ids: tuple[str, ...] | None = None
    threads: int = 0
    ema_decay: float = 0.0
    color_jitter: float = 0.0
    shift_pixels: int = 0
    symmetric: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.lambda_volume < 0:
            raise ValueError(f"lambda_volume: expected a value >= 0, got {self.lambda_volume}")
        if self.lr_schedule not in ("step", "cosine"):
            raise ValueError(f"lr_schedule: expected 'step' or 'cosine', got {self.lr_schedule!r}")

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            self.variant,
            self.image_size,
            self.template_level,
            self.conv_dim,
            self.fc_dim,
            self.latent_dim,
            self.decoder_dim,
            self.symmetric,
            self.dropout,
        )

    def coverage(self) -> dict[str, Any]:
        """The training renderer's coverage family as :class:`~softras.SoftRenderer` keywords."""
        return {
            "distribution": self.distribution,
            "squared_distance": self.squared_distance,
            "dist_shape": self.dist_shape,
            "dist_shift": self.dist_shift,
            "aggr_func_alpha": self.aggr_func_alpha,
            "t_conorm_p": self.t_conorm_p,
            "dist_eps": self.dist_eps,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_ids"] = list(self.class_ids) if self.class_ids is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("class_ids") is not None:
            kw["class_ids"] = tuple(kw["class_ids"])
        return cls(**kw)


#: The per-step metrics written to ``log.csv`` (between the iteration and the timing columns).
LOG_METRICS = ("loss", "silhouette_loss", "iou", "laplacian", "flatten", "color", "volume", "lr", "sigma")

#: Named option sets for ``--preset``.
PRESETS: dict[str, TrainConfig] = {
    # the paper's schedule: 250k iterations of 64 objects (GPU-scale)
    "paper": TrainConfig(),
    # the paper's network and objective on this project's 2-core CPU: fewer, smaller steps and
    # a larger learning rate, sized for the procedural dataset (`--per-class 100`) and a
    # 45-minute train + eval budget on a machine shared with other jobs: one thread (two threads
    # are faster alone but collapse ~10x next to another multi-threaded job); beyond the paper:
    # a mirror-symmetric decoder and evaluation with a moving average of the weights (see
    # docs/reconstruction.md for the ablations)
    "cpu-small": TrainConfig(
        iters=8000,
        batch_size=8,
        lr=3e-4,
        ema_decay=0.999,
        symmetric=True,
        save_every=500,
        log_every=10,
        demo_every=1000,
        threads=1,
        conv_dim=32,
        fc_dim=512,
        latent_dim=256,
        decoder_dim=512,
    ),
    # a seconds-long smoke test (tiny network, coarse template)
    "tiny": TrainConfig(
        iters=20,
        batch_size=2,
        lr=1e-4,
        save_every=10,
        log_every=1,
        demo_every=10,
        template_level=2,
        conv_dim=8,
        fc_dim=64,
        latent_dim=32,
        decoder_dim=32,
    ),
}


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the iteration reached, whether it was interrupted, the checkpoint,
    the last logged metrics, wall time and mean iterations per second of this run."""

    iteration: int
    interrupted: bool
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    it_per_s: float = 0.0


def _rng_state_python() -> list[Any]:
    version, state, gauss = random.getstate()
    return [version, list(state), gauss]


def _set_rng_state_python(s: list[Any]) -> None:
    random.setstate((s[0], tuple(s[1]), s[2]))


def _numpy_global_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _set_numpy_global_state(s: dict[str, Any]) -> None:
    state = (s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["cached"])
    np.random.set_state(state)  # noqa: NPY002


def load_model(
    path: str | os.PathLike,
    backend: str | None = None,
    device: str | torch.device = "cpu",
    average: bool = True,
) -> tuple[ReconModel, TrainConfig, dict[str, Any]]:
    """Model (in eval mode) and config from a checkpoint.

    Args:
        path: a ``checkpoint.pt``.
        backend: the rasterizer backend the model renders with.
        device: where the model runs.
        average: load the moving average of the weights when the checkpoint has one (trained
            with ``ema_decay > 0``); False loads the last optimizer iterate.
    """
    ckpt = load_checkpoint(path, device)
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = ReconModel(
        cfg.model_config(), sigma_val=cfg.sigma, gamma_val=cfg.gamma, backend=backend, coverage=cfg.coverage()
    )
    use_average = average and "ema" in ckpt
    model.net.load_state_dict(ckpt["ema"]["weights"] if use_average else ckpt["model"])
    model.to(device).eval()
    return model, cfg, ckpt


class _StopFlag:
    """Turns the first SIGINT into a request to stop at the next iteration boundary."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C aborts at once

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


def make_adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch build has it (CPU: torch >= 2.4), else ``foreach``.

    Same update rule either way; on the ``cpu-small`` network (7.5 M parameters) the fused step
    takes 4 ms against 48 ms for the per-tensor loop that is torch's CPU default.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class Trainer:
    """One training run; see :func:`train`."""

    def __init__(
        self,
        data: str | os.PathLike,
        out: str | os.PathLike,
        cfg: TrainConfig,
        backend: str | None = None,
        device: str | None = None,
        quiet: bool = False,
        tensorboard: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.quiet = quiet
        self.log = log if log is not None else _LOG.info
        self.dist = ddp.setup(device)
        self.main = self.dist.is_main
        if cfg.batch_size % self.dist.world_size != 0:
            raise ValueError(
                f"batch_size ({cfg.batch_size}) must be divisible by the number of processes ({self.dist.world_size})"
            )
        self.local_batch = cfg.batch_size // self.dist.world_size
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)  # noqa: NPY002  (the global state, for user code)
        random.seed(cfg.seed)
        self.dataset = NMRDataset(data, "train", class_ids=cfg.class_ids)
        if self.dataset.image_size != cfg.image_size:
            raise ValueError(f"dataset images are {self.dataset.image_size}², the model expects {cfg.image_size}²")
        self.model = ReconModel(
            cfg.model_config(), sigma_val=cfg.sigma, gamma_val=cfg.gamma, backend=backend, coverage=cfg.coverage()
        )
        self.model.to(self.dist.device)
        if self.dist.distributed:
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.model.net = nn.parallel.DistributedDataParallel(self.model.net, device_ids=ids)
        self.optimizer = make_adam(self.model.net.parameters(), cfg.lr)
        self.ema = WeightAverage(self.model.core, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.sampler = np.random.default_rng([cfg.seed, self.dist.rank])
        self.iteration = 0
        self.writer: Any = None
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            for stale in remove_stale_temporaries(self.out, CHECKPOINT_NAME):
                self.log(f"removed a stale temporary checkpoint left by an interrupted write: {stale}")
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self.writer = SummaryWriter(str(self.out / "tensorboard"))
                except ImportError:
                    self.log("tensorboard is not installed: logging to log.csv only")
        self.stop_requested = False

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """The checkpoint content (collective under DDP: every rank must call it)."""
        sampler_states = ddp.all_gather_objects(self.dist, self.sampler.bit_generator.state)
        return {
            "iteration": self.iteration,
            "model": self.model.core.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.cfg.to_dict(),
            "world_size": self.dist.world_size,
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": _numpy_global_state(),
                "python": _rng_state_python(),
                "sampler": sampler_states,
            },
        }

    def load_state(self, ckpt: dict[str, Any]) -> None:
        """Restore a checkpoint (model, optimizer, iteration, RNGs, sampler position)."""
        self.model.core.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.iteration = int(ckpt["iteration"])
        if self.ema is not None:
            if "ema" in ckpt:
                self.ema.load_state_dict(ckpt["ema"])
            else:
                self.log("checkpoint has no weight average: it starts from the loaded weights")
                self.ema = WeightAverage(self.model.core, self.cfg.ema_decay)
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        _set_numpy_global_state(rng["numpy"])
        _set_rng_state_python(rng["python"])
        samplers = rng["sampler"]
        if len(samplers) == self.dist.world_size:
            self.sampler.bit_generator.state = samplers[self.dist.rank]
        else:
            self.log(
                f"checkpoint was written by {len(samplers)} process(es), this run has "
                f"{self.dist.world_size}: batch sampling restarts from a new seed"
            )
            self.sampler = np.random.default_rng([self.cfg.seed, self.dist.rank, self.iteration])

    def save(self) -> Path | None:
        """Write ``checkpoint.pt`` (rank 0 only; collective under DDP)."""
        state = self.state()
        if not self.main:
            return None
        return save_checkpoint(self.out / CHECKPOINT_NAME, state)

    def release_distributed(self) -> None:
        """Unwrap the network from DistributedDataParallel and free the wrapper now. Its reducer
        holds the process group, whose gloo threads are joined when the last reference goes:
        that must happen inside :func:`ddp.cleanup`, while every rank is still there, not
        whenever the garbage collector gets to the wrapper after another rank has exited."""
        if isinstance(self.model.net, nn.parallel.DistributedDataParallel):
            self.model.net = self.model.net.module
            gc.collect()  # the wrapper and its reducer can sit in reference cycles

    def request_stop(self) -> None:
        """Stop after the current iteration (and save), as Ctrl-C does."""
        self.stop_requested = True

    # ------------------------------------------------------------------ schedule
    def schedule(self, iteration: int) -> tuple[float, float]:
        """(lr, σ) at ``iteration``: σ ×``sigma_decay`` (default ``decay``) and, for the ``step``
        schedule, lr ×``decay`` from ``decay_at * iters`` on; the ``cosine`` lr is
        ``lr * (1 + cos(π · iteration / iters)) / 2``."""
        cfg = self.cfg
        decayed = iteration >= round(cfg.decay_at * cfg.iters)
        f = cfg.decay if decayed else 1.0
        sigma = cfg.sigma * ((cfg.decay if cfg.sigma_decay is None else cfg.sigma_decay) if decayed else 1.0)
        if cfg.lr_schedule == "cosine":
            return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * iteration / cfg.iters)), sigma
        return cfg.lr * f, sigma

    # ------------------------------------------------------------------ one step
    def step(self) -> dict[str, float]:
        """One optimisation step; returns the loss terms and the mean silhouette IoU."""
        lr, sigma = self.schedule(self.iteration)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.model.set_sigma(sigma)
        self.model.train()
        batch = self.dataset.sample_batch(self.local_batch, self.sampler)
        dev = self.dist.device
        img_a, img_b = batch.images_a.to(dev), batch.images_b.to(dev)
        renders, vertices, lap, flat = self.model.render_multiview(
            self._augment(img_a), self._augment(img_b), batch.viewpoints_a.to(dev), batch.viewpoints_b.to(dev)
        )
        sil = multiview_iou_loss(renders, img_a, img_b)
        volume = mesh_volume(vertices, self.model.faces)
        loss = sil + self.cfg.lambda_laplacian * lap.mean() + self.cfg.lambda_flatten * flat.mean()
        if self.cfg.lambda_volume > 0:
            loss = loss + self.cfg.lambda_volume * volume.mean()
        color = torch.zeros(())
        if self.cfg.variant == "full":
            targets = (img_a, img_a, img_b, img_b)
            color = sum((r[:, :3] - t[:, :3]).abs().mean() for r, t in zip(renders, targets, strict=True)) / 4
            loss = loss + self.cfg.lambda_color * color
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.dist.distributed:
            self._sync_buffers()
        if self.ema is not None:
            self.ema.update(self.model.core)
        self.iteration += 1
        self._last = (img_a[:1].detach(), tuple(r[:1].detach() for r in renders), vertices[:1].detach())
        return {
            "loss": float(loss.detach()),
            "silhouette_loss": float(sil.detach()),
            "iou": 1.0 - float(sil.detach()),
            "laplacian": float(lap.detach().mean()),
            "flatten": float(flat.detach().mean()),
            "color": float(color.detach()),
            "volume": float(volume.detach().mean()),
            "lr": lr,
            "sigma": sigma,
        }

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """The network's input: images [B, 4, S, S] after ``color_jitter`` and ``shift_pixels``
        (random draws from this rank's checkpointed batch sampler; unchanged when both are 0)."""
        if self.cfg.color_jitter > 0:
            images = self._jitter_colors(images)
        if self.cfg.shift_pixels > 0:
            images = self._shift(images)
        return images

    def _jitter_colors(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 4, S, S] with R, G, B scaled per image by factors in ``1 ± color_jitter``,
        clamped to [0, 1]; alpha unchanged."""
        j = self.cfg.color_jitter
        gains = self.sampler.uniform(1.0 - j, 1.0 + j, size=(images.shape[0], 3))
        gains = torch.from_numpy(gains).to(images)[:, :, None, None]
        return torch.cat([(images[:, :3] * gains).clamp(0.0, 1.0), images[:, 3:]], dim=1)

    def _shift(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, S, S] each translated by a random offset in ``[-k, k]²`` pixels
        (``k = shift_pixels``), zero fill."""
        k = self.cfg.shift_pixels
        b, _, h, w = images.shape
        padded = torch.nn.functional.pad(images, (k, k, k, k))
        offsets = self.sampler.integers(0, 2 * k + 1, size=(b, 2))
        return torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(offsets.tolist())])

    def _sync_buffers(self) -> None:
        """Average the BatchNorm running statistics over the ranks (each rank updated them with its
        own batch), so every rank holds the same state at every iteration boundary."""
        import torch.distributed as dist

        for name, buf in self.model.core.named_buffers():
            if buf.is_floating_point() and ("running_mean" in name or "running_var" in name):
                dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                buf.div_(self.dist.world_size)

    def _demo(self) -> None:
        from softras.io import save_obj
        from softras.io.images import composite

        img, renders, vertices = self._last
        demo = self.out / "demo"
        demo.mkdir(exist_ok=True)
        tiles = torch.cat([img.cpu(), renders[0].cpu(), renders[2].cpu()])  # input, R_aa, R_ab
        import imageio.v3 as iio

        iio.imwrite(demo / f"{self.iteration:07d}.png", np.concatenate(list(composite(tiles)), axis=1))
        save_obj(demo / f"{self.iteration:07d}.obj", vertices[0].cpu(), self.model.faces.cpu())

    # ------------------------------------------------------------------ loop
    def run(self, on_step: Callable[[Trainer, dict[str, float]], None] | None = None) -> TrainResult:
        """Train from :attr:`iteration` to ``cfg.iters``; see :func:`train`."""
        cfg = self.cfg
        t0 = time.perf_counter()
        start = self.iteration
        csv_file = None
        writer = None
        if self.main:
            path = self.out / "log.csv"
            new = not path.exists() or start == 0
            if not new and (dropped := truncate_log(path, start)):
                self.log(f"{path}: dropped {dropped} rows past the resumed iteration {start}")
            csv_file = open(path, "w" if new else "a", newline="")
            writer = csv.writer(csv_file)
            if new:
                writer.writerow(["iteration", *LOG_METRICS, "it_per_s", "elapsed_s"])
            (self.out / "config.json").write_text(
                json.dumps({**cfg.to_dict(), "world_size": self.dist.world_size}, indent=2) + "\n"
            )
        metrics: dict[str, float] = {}
        interrupted = False
        ckpt: Path | None = None
        window_t, window_n = time.perf_counter(), 0
        bar = progress(total=cfg.iters, initial=start, desc="train", unit="it", quiet=self.quiet or not self.main)
        try:
            with _StopFlag() as flag:
                while self.iteration < cfg.iters:
                    metrics = self.step()
                    window_n += 1
                    if on_step is not None:
                        on_step(self, metrics)
                    stop = ddp.any_rank(self.dist, flag.requested or self.stop_requested)
                    it = self.iteration
                    if self.main:
                        bar.update(1)
                        bar.set_postfix(loss=f"{metrics['loss']:.4f}", iou=f"{metrics['iou']:.3f}")
                        if it % cfg.log_every == 0 or it == cfg.iters or stop:
                            now = time.perf_counter()
                            rate = window_n / max(now - window_t, 1e-9)
                            window_t, window_n = now, 0
                            metrics["it_per_s"] = rate
                            assert writer is not None and csv_file is not None
                            try:
                                writer.writerow(
                                    [it] + [f"{metrics[k]:.6g}" for k in LOG_METRICS]
                                    + [f"{rate:.4g}", f"{now - t0:.2f}"]
                                )
                                csv_file.flush()
                            except OSError as exc:
                                raise OSError(f"could not write {self.out / 'log.csv'}: {exc.strerror or exc}") from exc
                            if self.writer is not None:
                                for k, v in metrics.items():
                                    self.writer.add_scalar(f"train/{k}", v, it)
                        if cfg.demo_every and it % cfg.demo_every == 0:
                            try:
                                self._demo()
                            except OSError as exc:
                                raise OSError(f"could not write {self.out / 'demo'}: {exc.strerror or exc}") from exc
                    if it % cfg.save_every == 0 or it == cfg.iters or stop:
                        ckpt = self.save() or ckpt
                    if stop:
                        interrupted = self.iteration < cfg.iters
                        break
        except KeyboardInterrupt:
            # a second Ctrl-C during a step: the step may be half-applied, so do not save it
            interrupted = True
            if self.main:
                self.log("interrupted during an iteration: the last checkpoint is kept")
        finally:
            bar.close()
            if csv_file is not None:
                with contextlib.suppress(OSError):  # a full disk: the write error above is the one to report
                    csv_file.close()
            if self.writer is not None:
                self.writer.close()
        seconds = time.perf_counter() - t0
        done = self.iteration - start
        if self.main and ckpt is None and (self.out / CHECKPOINT_NAME).exists():
            ckpt = self.out / CHECKPOINT_NAME
        return TrainResult(
            self.iteration, interrupted, ckpt, metrics, seconds, done / seconds if seconds > 0 else math.nan
        )


def train(
    data: str | os.PathLike,
    out: str | os.PathLike,
    cfg: TrainConfig | None = None,
    *,
    resume: str | os.PathLike | None = None,
    backend: str | None = None,
    device: str | None = None,
    quiet: bool = False,
    tensorboard: bool = False,
    on_step: Callable[[Trainer, dict[str, float]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a reconstruction model on the ``train`` split of an NMR-format dataset.

    Args:
        data: dataset folder (see :mod:`softras.recon.nmr`).
        out: output folder: ``checkpoint.pt``, ``log.csv``, ``config.json``, ``demo/``
            (and ``tensorboard/`` if requested and installed). Only rank 0 writes.
        cfg: options (default: the ``paper`` preset).
        resume: checkpoint to continue from (its iteration, optimizer, RNGs and sampler);
            ``cfg`` should match the one it was trained with (``iters`` may be raised).
        backend: rasterization backend. device: ``'cpu'``/``'cuda'`` (default: CUDA if available).
        quiet: no progress bar. tensorboard: also log to TensorBoard when it is installed.
        on_step: called after every iteration with the trainer and the step's metrics (it may
            call :meth:`Trainer.request_stop`).
        log: called with each note (resuming, stale files, ...); default: this module's logger,
            at INFO.

    Returns:
        A :class:`TrainResult`.
    """
    cfg = cfg if cfg is not None else PRESETS["paper"]
    trainer = Trainer(data, out, cfg, backend=backend, device=device, quiet=quiet, tensorboard=tensorboard, log=log)
    finished = False
    try:
        if resume is not None:
            ckpt = load_checkpoint(resume, trainer.dist.device, required=RESUME_KEYS)
            if int(ckpt["iteration"]) > cfg.iters:
                raise ValueError(
                    f"{resume}: the checkpoint is at iteration {int(ckpt['iteration'])}, past the end of training "
                    f"(iters={cfg.iters}): nothing to resume; raise --iters to train further"
                )
            saved = TrainConfig.from_dict(ckpt["config"])
            if replace(saved, iters=cfg.iters) != replace(cfg, iters=cfg.iters):
                diff = [k for k, v in saved.to_dict().items() if cfg.to_dict()[k] != v and k != "iters"]
                trainer.log(f"note: resuming with options that differ from the checkpoint's: {', '.join(diff)}")
            trainer.load_state(ckpt)
            if trainer.main and not quiet:
                trainer.log(f"resuming from iteration {trainer.iteration}")
        result = trainer.run(on_step)
        finished = True
        return result
    finally:
        trainer.release_distributed()
        ddp.cleanup(trainer.dist, barrier=finished)
