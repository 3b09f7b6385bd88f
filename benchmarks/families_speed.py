"""The coverage families' speed on the W1 workload, as ratios to SoftRas's default (one process).

Usage::

    python benchmarks/families_speed.py [--rounds 3] [--repeat 3] [--threads 2]

Each family's kernels compile on first use (one ``cpu`` kernel per combination of options), so
every row is warmed up before it is timed. Prints a Markdown table: the fastest forward and
forward+backward call of ``rounds × repeat`` (rows interleaved round by round, so load on the
machine spreads over all of them), and the ratio to the first row.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from softras.bench import build_cases, set_threads
from softras.raster import rasterize

#: (label, settings overrides): SoftRas first (the ratios' base), then the families of docs/families.md.
ROWS = (
    ("SoftRas: logistic on d², `prod`", {}),
    ("`logistic` on d², `max` (same pairs)", {"distribution": "logistic", "aggr_func_alpha": "max"}),
    (
        "`logistic` on d², `yager` p = 2 (same pairs)",
        {"distribution": "logistic", "aggr_func_alpha": "yager", "t_conorm_p": 2.0},
    ),
    ("`uniform` on d, `prod`, σ = 1e-2", {"distribution": "uniform", "squared_distance": False, "sigma_val": 1e-2}),
    (
        "`uniform` on d, `einstein`, σ = 1e-2",
        {"distribution": "uniform", "squared_distance": False, "sigma_val": 1e-2, "aggr_func_alpha": "einstein"},
    ),
    ("`gaussian` on d, `prod`, σ = 5e-3", {"distribution": "gaussian", "squared_distance": False, "sigma_val": 5e-3}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    case = build_cases("W1")[0]
    fv = case.face_vertices.float()
    tex = case.textures.float()
    grad = case.grad_output.float()
    settings = {label: dataclasses.replace(case.settings, **extra) for label, extra in ROWS}

    def forward(s) -> None:
        with torch.no_grad():
            rasterize(fv, tex, s, backend="cpu")

    def forward_backward(s) -> None:
        leaf = fv.detach().requires_grad_(True)
        rasterize(leaf, tex, s, backend="cpu").backward(grad)

    for s in settings.values():  # compile every row's kernels first
        forward_backward(s)
    best = {(label, kind): float("inf") for label in settings for kind in ("fwd", "fb")}
    for _ in range(args.rounds):
        for label, s in settings.items():
            for kind, fn in (("fwd", forward), ("fb", forward_backward)):
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    fn(s)
                    best[label, kind] = min(best[label, kind], time.perf_counter() - start)
    base = ROWS[0][0]
    print("| coverage on W1 | forward ms | forward+backward ms | ratio to SoftRas (fwd, f+b) |")
    print("|---|---|---|---|")
    for label in settings:
        fwd, fb = best[label, "fwd"], best[label, "fb"]
        ratio = f"{fwd / best[base, 'fwd']:.2f}, {fb / best[base, 'fb']:.2f}"
        print(f"| {label} | {fwd * 1e3:.1f} | {fb * 1e3:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
