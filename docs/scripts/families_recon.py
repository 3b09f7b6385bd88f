"""Train the same short single-view reconstruction run with several coverage families and score
each with the reconstruction pipeline's metric (docs/families.md, "Measured on a short
reconstruction run").

Every combination gets the same procedural data, seed, network initialisation, batches and
schedule (the ``cpu-small`` preset's network and learning rate, shortened, without the weight
average); only the training renderer's coverage family and its σ differ. Each checkpoint is
scored by the 3D IoU at 32³ on the held-out ``test`` split (:func:`softras.recon.evaluate.evaluate`,
the network alone), which does not depend on the family. The untrained network (iteration 0,
the same initialisation for every row) is scored as the baseline row.

Run from the repository root::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python docs/scripts/families_recon.py

It builds the dataset in ``--data`` when that folder has none, writes one training folder per
combination and ``results.json`` under ``--out``, and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from softras.recon.dataset_builder import build_procedural_dataset
from softras.recon.evaluate import evaluate
from softras.recon.model import ReconModel
from softras.recon.nmr import VIEWING_ANGLE
from softras.recon.train import PRESETS, TrainConfig, Trainer, train

#: name -> (table label, TrainConfig overrides: the family and its σ). The σ of the families on d
#: follow the deform sweep of docs/families.md (an edge about as wide as SoftRas's σ = 1e-4 on
#: d², not tuned); Cauchy's heavy tail is cut at dist_eps = 1e-2 (a radius of 32 σ), since at
#: the recon's 1e-10 every face would reach the whole image.
COMBINATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "softras": ("SoftRas: `logistic` on d², `prod`, σ = 1e-4 (default)", {"sigma": 1e-4}),
    "uniform_prod": (
        "`uniform` on d, `prod`, σ = 1e-2",
        {"distribution": "uniform", "squared_distance": False, "sigma": 1e-2},
    ),
    "gaussian_prod": (
        "`gaussian` on d, `prod`, σ = 5e-3",
        {"distribution": "gaussian", "squared_distance": False, "sigma": 5e-3},
    ),
    "cauchy_prod": (
        "`cauchy` on d, `prod`, σ = 2e-3, dist_eps = 1e-2",
        {"distribution": "cauchy", "squared_distance": False, "sigma": 2e-3, "dist_eps": 1e-2},
    ),
    "logistic_einstein": ("`logistic` on d², `einstein`, σ = 1e-4", {"aggr_func_alpha": "einstein", "sigma": 1e-4}),
    "uniform_yager2": (
        "`uniform` on d, `yager` p = 2, σ = 1e-2",
        {
            "distribution": "uniform",
            "squared_distance": False,
            "sigma": 1e-2,
            "aggr_func_alpha": "yager",
            "t_conorm_p": 2.0,
        },
    ),
    "levy_prod": (
        "`levy` on d, `prod`, σ = 1e-3",
        {"distribution": "levy", "squared_distance": False, "sigma": 1e-3},
    ),
    "gamma_rev_prod": (
        "`gamma_rev` k = 2 on d, `prod`, σ = 2e-3",
        {"distribution": "gamma_rev", "dist_shape": 2.0, "squared_distance": False, "sigma": 2e-3},
    ),
}


#: What a plain run trains: every combination but ``gamma_rev``, whose steps took 2–20 times as
#: long as SoftRas's family in a 20-step probe (run it with ``--only gamma_rev_prod``).
DEFAULT = [name for name in COMBINATIONS if name != "gamma_rev_prod"]


def base_config(iters: int, batch_size: int, seed: int, threads: int) -> TrainConfig:
    """The shared recipe: ``cpu-small``'s network and optimiser, ``iters`` steps, no weight
    average (its 0.999 decay would mostly average the first steps of so short a run)."""
    return replace(
        PRESETS["cpu-small"],
        iters=iters,
        batch_size=batch_size,
        seed=seed,
        threads=threads,
        ema_decay=0.0,
        save_every=iters,
        log_every=1,
        demo_every=0,
    )


def warm_up(cfg: TrainConfig, backend: str | None) -> float:
    """Compile the family's kernels (one forward and backward of two renders) so that the timed
    run measures training only; returns the seconds it took."""
    t0 = time.perf_counter()
    model = ReconModel(cfg.model_config(), sigma_val=cfg.sigma, backend=backend, coverage=cfg.coverage())
    vertices = model.decoder.vertices_base[None].repeat(2, 1, 1).mul(0.4).requires_grad_()
    eye = torch.tensor([[0.0, 1.366, -2.366]]).expand(2, 3)
    model.render(vertices, eye)[:, 3].sum().backward()
    return time.perf_counter() - t0


def score(data: Path, checkpoint: Path, max_objects: int | None, backend: str | None) -> dict[str, Any]:
    """3D IoU of a checkpoint on the test split: mean over classes, per class, and seconds."""
    result = evaluate(
        data,
        checkpoint,
        None,
        baselines=False,
        examples=0,
        max_objects=max_objects,
        backend=backend,
        quiet=True,
        log=lambda _: None,
        device="cpu",
    )
    return {"iou": result.mean["softras"], "per_class": result.iou["softras"], "eval_seconds": result.seconds}


def train_silhouette_iou(log_csv: Path, last: int) -> float:
    """Mean training silhouette IoU (with the family's own renderer) over the last ``last`` steps."""
    rows = list(csv.DictReader(log_csv.open()))
    values = [float(r["iou"]) for r in rows[-last:]]
    return sum(values) / len(values)


def table(rows: list[dict[str, Any]], iters: int) -> str:
    """The Markdown table of docs/families.md."""
    lines = [
        f"| coverage (training renderer) | test 3D IoU after {iters} steps | train silhouette IoU | training time |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if r["name"] == "untrained":
            lines.append(f"| untrained network (iteration 0) | {r['iou']:.3f} | — | — |")
            continue
        minutes, seconds = divmod(round(r["train_seconds"]), 60)
        lines.append(
            f"| {r['label']} | {r['iou']:.3f} | {r['train_silhouette_iou']:.3f} | "
            f"{minutes} min {seconds:02d} s ({r['it_per_s']:.2f} it/s) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path("data/families_recon"), help="dataset folder (built if empty)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/families_recon"), help="output folder")
    parser.add_argument("--per-class", type=int, default=40, help="procedural objects per class (default 40)")
    parser.add_argument("--iters", type=int, default=1000, help="training steps per combination (default 1000)")
    parser.add_argument("--batch-size", type=int, default=8, help="objects per step (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="data, initialisation and batch seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch (and Numba) threads (default 1)")
    parser.add_argument("--eval-objects", type=int, default=None, help="score only the first N test objects per class")
    parser.add_argument("--backend", default="cpu", help="rasterization backend (default cpu)")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated combinations among: {', '.join(COMBINATIONS)} (default: all but gamma_rev_prod)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.only.split(",") if args.only else DEFAULT
    unknown = [n for n in names if n not in COMBINATIONS]
    if unknown:
        parser.error(f"--only: unknown combination(s) {unknown}; expected some of {list(COMBINATIONS)}")
    if not any(args.data.glob("*_train_images.np*")):
        report = build_procedural_dataset(args.data, per_class=args.per_class, seed=args.seed, quiet=True)
        print(f"built {args.data} in {report.seconds:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    base = base_config(args.iters, args.batch_size, args.seed, args.threads)
    rows: list[dict[str, Any]] = []
    # the untrained network: every combination starts from these weights (same seed, same init)
    untrained = Trainer(args.data, args.out / "untrained", base, backend=args.backend, quiet=True).save()
    assert untrained is not None
    rows.append(
        {
            "name": "untrained",
            "label": "untrained network",
            **score(args.data, untrained, args.eval_objects, args.backend),
        }
    )
    print(f"untrained: 3D IoU {rows[-1]['iou']:.4f}", flush=True)
    for name in names:
        label, overrides = COMBINATIONS[name]
        cfg = replace(base, **overrides)
        compile_s = warm_up(cfg, args.backend)
        result = train(args.data, args.out / name, cfg, backend=args.backend, quiet=True, log=lambda _: None)
        assert result.checkpoint is not None
        row = {
            "name": name,
            "label": label,
            "config": cfg.to_dict(),
            "train_seconds": result.seconds,
            "it_per_s": result.it_per_s,
            "warm_up_seconds": compile_s,
            "train_silhouette_iou": train_silhouette_iou(args.out / name / "log.csv", max(1, args.iters // 10)),
            **score(args.data, result.checkpoint, args.eval_objects, args.backend),
        }
        rows.append(row)
        print(
            f"{name}: 3D IoU {row['iou']:.4f}, train silhouette IoU {row['train_silhouette_iou']:.3f}, "
            f"{row['train_seconds']:.0f} s training ({row['it_per_s']:.2f} it/s), {row['eval_seconds']:.0f} s eval",
            flush=True,
        )
        (args.out / "results.json").write_text(json.dumps({"args": _jsonable(vars(args)), "rows": rows}, indent=2))
    meta = {
        "args": _jsonable(vars(args)),
        "torch": torch.__version__,
        "machine": platform.platform(),
        "viewing_angle": VIEWING_ANGLE,
        "rows": rows,
    }
    (args.out / "results.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(table(rows, args.iters))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


if __name__ == "__main__":
    main()
