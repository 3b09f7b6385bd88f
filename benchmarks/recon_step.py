"""Time one training step of a reconstruction preset and the renderer's share of it.

Run: ``.venv/bin/python benchmarks/recon_step.py --preset paper [--threads 2] [--steps 10]``

The step is the one ``softras recon train`` takes (``Trainer.step``: two views of each object
through the network, four cross renders, IoU loss, Laplacian and flatten terms, Adam), split
into parts by cutting the autograd graph at the predicted vertices: the render and loss are
differentiated down to the vertices first, then the network from those vertex gradients. The
batch is synthetic (random silhouettes of the right shapes), so no dataset is needed.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from softras.recon.model import ReconModel, multiview_iou_loss
from softras.recon.nmr import viewpoints
from softras.recon.train import PRESETS, make_adam

PARTS = ("network forward", "renderer forward", "loss", "renderer backward", "network backward + Adam")


def time_step(
    model: ReconModel, optimizer: torch.optim.Optimizer, batch: int, lambdas: tuple[float, float]
) -> list[float]:
    """Seconds spent in each of :data:`PARTS` for one step on a random batch of ``batch`` objects."""
    size = model.cfg.image_size
    images_a, images_b = torch.rand(batch, 4, size, size), torch.rand(batch, 4, size, size)
    eyes_a, eyes_b = viewpoints(torch.randint(0, 24, (batch,))), viewpoints(torch.randint(0, 24, (batch,)))
    marks = [time.perf_counter()]
    vertices, _ = model.reconstruct(torch.cat([images_a, images_b]))
    regular = lambdas[0] * model.laplacian_loss(vertices).mean() + lambdas[1] * model.flatten_loss(vertices).mean()
    marks.append(time.perf_counter())
    cut = vertices.detach().requires_grad_(True)
    renders = model.render(torch.cat([cut, cut]), torch.cat([eyes_a, eyes_a, eyes_b, eyes_b])).split(batch)
    marks.append(time.perf_counter())
    loss = multiview_iou_loss(tuple(renders), images_a, images_b)
    marks.append(time.perf_counter())
    loss.backward()
    marks.append(time.perf_counter())
    optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward([vertices, regular], [cut.grad, torch.ones(())])
    optimizer.step()
    marks.append(time.perf_counter())
    return [b - a for a, b in itertools.pairwise(marks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after one warm-up step)")
    parser.add_argument("--backend", default=None, help="rasterization backend (default: the device's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = PRESETS[args.preset]
    model = ReconModel(
        cfg.model_config(), sigma_val=cfg.sigma, gamma_val=cfg.gamma, backend=args.backend, coverage=cfg.coverage()
    )
    model.train()
    optimizer = make_adam(model.net.parameters(), cfg.lr)
    lambdas = (cfg.lambda_laplacian, cfg.lambda_flatten)
    time_step(model, optimizer, cfg.batch_size, lambdas)  # warm-up: kernel compilation, allocator
    totals = [0.0] * len(PARTS)
    for _ in range(args.steps):
        for i, t in enumerate(time_step(model, optimizer, cfg.batch_size, lambdas)):
            totals[i] += t / args.steps
    step = sum(totals)
    print(
        f"preset {args.preset}: batch {cfg.batch_size}, {4 * cfg.batch_size} renders at {cfg.image_size}², "
        f"{args.threads} thread(s), mean of {args.steps} steps"
    )
    for name, t in zip(PARTS, totals, strict=True):
        print(f"  {name:<26} {t:7.3f} s  {100 * t / step:4.0f} %")
    renderer = totals[1] + totals[3]
    print(f"  {'total':<26} {step:7.3f} s  -> {1 / step:.2f} it/s; renderer {100 * renderer / step:.0f} %")


if __name__ == "__main__":
    main()
