"""``softras recon``: single-view mesh reconstruction (the paper's ShapeNet experiment).

Sub-commands::

    softras recon make-dataset --procedural --per-class 60 --out data/proc
    softras recon make-dataset --meshes MESHES --out data/mine      # MESHES/<class_id>/*.obj ...
    softras recon convert --data data/shapenet                      # .npz -> memory-mappable .npy
    softras recon train --data data/proc --out runs/proc --preset cpu-small
    softras recon eval --data data/proc --checkpoint runs/proc/checkpoint.pt --out runs/proc/eval

See docs/reconstruction.md; the Python API lives in :mod:`softras.recon`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from softras.apps import Command, UsageError

from ._checks import positive_float, positive_int

__all__ = ["COMMAND"]


def _fractions(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected TRAIN,VAL,TEST numbers, got {text!r}") from exc
    if len(vals) != 3 or any(v < 0 for v in vals) or sum(vals) <= 0:
        raise argparse.ArgumentTypeError(f"expected three non-negative numbers TRAIN,VAL,TEST, got {text!r}")
    return vals  # type: ignore[return-value]


# --------------------------------------------------------------------------------------- make-dataset
def _add_make_dataset(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--meshes", metavar="DIR", help="folder with one sub-folder of meshes per class id")
    src.add_argument("--procedural", action="store_true", help="use the built-in procedural shape classes")
    p.add_argument("--out", required=True, metavar="DIR", help="output dataset folder")
    p.add_argument(
        "--per-class", type=positive_int, default=60, metavar="N", help="procedural instances per class (default 60)"
    )
    p.add_argument("--seed", type=int, default=0, help="split (and procedural instance) seed (default 0)")
    p.add_argument(
        "--split",
        type=_fractions,
        default=(0.7, 0.1, 0.2),
        metavar="TRAIN,VAL,TEST",
        help="split proportions (default 0.7,0.1,0.2)",
    )
    p.add_argument("--save-meshes", action="store_true", help="procedural: also write the meshes as PLY")
    p.add_argument("--npy", action="store_true", help="also write memory-mappable .npy twins")
    p.add_argument("--backend", default=None, help="rasterization backend (default: the device's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_make_dataset(args: argparse.Namespace) -> int:
    from softras.recon.dataset_builder import build_dataset, build_procedural_dataset
    from softras.recon.nmr import class_name, convert_to_npy

    if args.procedural:
        report = build_procedural_dataset(
            args.out,
            per_class=args.per_class,
            seed=args.seed,
            fractions=args.split,
            backend=args.backend,
            quiet=args.quiet,
            save_meshes=args.save_meshes,
        )
    else:
        report = build_dataset(
            args.meshes, args.out, seed=args.seed, fractions=args.split, backend=args.backend, quiet=args.quiet,
            log=print,
        )
    if args.npy:
        convert_to_npy(args.out)
    for cid, c in report.counts.items():
        print(f"{cid} {class_name(cid):<12} train {c['train']:>5}  val {c['val']:>5}  test {c['test']:>5}")
    if report.skipped:
        print(f"skipped {len(report.skipped)} file(s) (see {report.out_dir / 'dataset.json'})")
    print(f"wrote {report.out_dir} in {report.seconds:.1f} s")
    return 0


# --------------------------------------------------------------------------------------- convert
def _add_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder with .npz files")
    p.add_argument("--overwrite", action="store_true", help="rewrite existing .npy files")


def _run_convert(args: argparse.Namespace) -> int:
    from softras.recon.nmr import convert_to_npy

    written = convert_to_npy(args.data, overwrite=args.overwrite)
    print(f"wrote {len(written)} .npy file(s) in {args.data}")
    return 0


# --------------------------------------------------------------------------------------- train
def _add_train(p: argparse.ArgumentParser) -> None:
    from softras.recon.train import PRESETS

    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (checkpoint, logs, demo images)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper",
        help="option set: paper (250k iterations, batch 64), cpu-small, tiny (default paper)",
    )
    p.add_argument("--iters", type=positive_int, default=None, metavar="N", help="override the preset's iterations")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="B", help="override the batch size")
    p.add_argument("--lr", type=positive_float, default=None, help="override the learning rate")
    p.add_argument(
        "--variant",
        choices=("silhouette", "full"),
        default=None,
        help="silhouette (default) or full (also per-face colours)",
    )
    p.add_argument(
        "--sigma-decay",
        type=positive_float,
        default=None,
        metavar="F",
        help="factor applied to sigma at 60%% of the run (default: the lr's, 0.3)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=("step", "cosine"),
        default=None,
        help="step: lr x0.3 at 60%% (the paper); cosine: lr anneals to 0 over the run",
    )
    p.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        metavar="D",
        help="keep a moving average of the weights with this decay, used for evaluation (0: off)",
    )
    p.add_argument(
        "--dropout",
        type=float,
        default=None,
        metavar="P",
        help="dropout probability after the encoder's first two fc layers (0: off, as in the paper)",
    )
    p.add_argument(
        "--lambda-volume",
        type=float,
        default=None,
        metavar="W",
        help="weight of the predicted meshes' volume: prefer the smallest shape that fits the silhouettes (0: off)",
    )
    p.add_argument(
        "--color-jitter",
        type=float,
        default=None,
        metavar="J",
        help="scale the input images' R, G, B by random factors in 1 +- J (0: off)",
    )
    p.add_argument(
        "--shift-pixels",
        type=int,
        default=None,
        metavar="K",
        help="translate the input images by random offsets of up to +-K pixels (0: off)",
    )
    p.add_argument(
        "--symmetric",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="predict meshes mirror-symmetric about x = 0 (not in the paper)",
    )
    _add_coverage(p)
    p.add_argument("--classes", default=None, metavar="IDS", help="comma-separated class ids (default: all)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--save-every", type=positive_int, default=None, metavar="N", help="checkpoint period")
    p.add_argument("--resume", default=None, metavar="CKPT", help="continue from this checkpoint")
    p.add_argument("--backend", default=None, help="rasterization backend (default: the device's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard (if installed)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_coverage(p: argparse.ArgumentParser) -> None:
    """The training renderer's sigma and coverage family (docs/families.md)."""
    from softras.raster.settings import ALPHA_AGGREGATIONS, DISTRIBUTIONS

    g = p.add_argument_group("coverage family (docs/families.md; default SoftRas's)")
    g.add_argument("--sigma", type=positive_float, default=None, help="sigma of the soft rasterizer (default 1e-4)")
    g.add_argument("--distribution", choices=DISTRIBUTIONS, default=None, help="coverage F (default logistic)")
    g.add_argument(
        "--squared-distance",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the distribution reads the squared distance (SoftRas, the default) or the distance",
    )
    g.add_argument("--dist-shape", type=positive_float, default=None, metavar="K", help="shape k of the gamma families")
    g.add_argument("--dist-shift", type=float, default=None, metavar="S", help="shift of the one-sided families")
    g.add_argument(
        "--aggr-func-alpha", choices=ALPHA_AGGREGATIONS, default=None, help="alpha aggregation (default prod)"
    )
    g.add_argument("--t-conorm-p", type=float, default=None, metavar="P", help="parameter of the parametric T-conorms")
    g.add_argument(
        "--dist-eps", type=positive_float, default=None, metavar="E", help="coverage cull threshold (default 1e-10)"
    )


def _run_train(args: argparse.Namespace) -> int:
    from softras.recon.train import PRESETS, train

    cfg = PRESETS[args.preset]
    if args.ema_decay is not None and not 0 <= args.ema_decay < 1:
        raise UsageError(f"--ema-decay: expected a value in [0, 1), got {args.ema_decay}")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout: expected a probability in [0, 1), got {args.dropout}")
    if args.lambda_volume is not None and args.lambda_volume < 0:
        raise UsageError(f"--lambda-volume: expected a value >= 0, got {args.lambda_volume}")
    if args.color_jitter is not None and not 0 <= args.color_jitter < 1:
        raise UsageError(f"--color-jitter: expected a value in [0, 1), got {args.color_jitter}")
    if args.shift_pixels is not None and args.shift_pixels < 0:
        raise UsageError(f"--shift-pixels: expected a value >= 0, got {args.shift_pixels}")
    overrides = {
        "iters": args.iters,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "variant": args.variant,
        "seed": args.seed,
        "save_every": args.save_every,
        "threads": args.threads,
        "ema_decay": args.ema_decay,
        "lr_schedule": args.lr_schedule,
        "sigma_decay": args.sigma_decay,
        "lambda_volume": args.lambda_volume,
        "dropout": args.dropout,
        "color_jitter": args.color_jitter,
        "shift_pixels": args.shift_pixels,
        "symmetric": args.symmetric,
        "class_ids": tuple(args.classes.split(",")) if args.classes else None,
        "sigma": args.sigma,
        "distribution": args.distribution,
        "squared_distance": args.squared_distance,
        "dist_shape": args.dist_shape,
        "dist_shift": args.dist_shift,
        "aggr_func_alpha": args.aggr_func_alpha,
        "t_conorm_p": args.t_conorm_p,
        "dist_eps": args.dist_eps,
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    result = train(
        args.data,
        args.out,
        cfg,
        resume=args.resume,
        backend=args.backend,
        device=args.device,
        quiet=args.quiet,
        tensorboard=args.tensorboard,
        log=print,
    )
    if result.checkpoint is not None:
        state = "interrupted at" if result.interrupted else "finished"
        m = result.metrics
        print(
            f"{state} iteration {result.iteration}/{cfg.iters}: loss {m.get('loss', float('nan')):.4f}, "
            f"silhouette IoU {m.get('iou', float('nan')):.3f}, {result.it_per_s:.2f} it/s; "
            f"checkpoint {result.checkpoint}"
        )
    return 130 if result.interrupted else 0


# --------------------------------------------------------------------------------------- eval
def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder")
    p.add_argument("--checkpoint", default=None, metavar="CKPT", help="trained model (omit: baselines only)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (results.json, examples)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="split to score (default test)")
    p.add_argument("--batch-size", type=positive_int, default=96, help="queries per batch (default 96)")
    p.add_argument("--examples", type=int, default=5, metavar="N", help="example meshes/GIFs to export (default 5)")
    p.add_argument(
        "--max-objects", type=positive_int, default=None, metavar="N", help="only the first N objects per class"
    )
    p.add_argument("--no-baselines", action="store_true", help="skip the retrieval and mean-shape baselines")
    p.add_argument(
        "--raw-weights",
        action="store_true",
        help="score the last optimizer iterate instead of the checkpoint's weight average (if it has one)",
    )
    p.add_argument(
        "--visual-hull",
        action="store_true",
        help="also score the visual hull of the 24 ground-truth silhouettes (a reference bound)",
    )
    p.add_argument(
        "--refine-steps",
        type=int,
        default=0,
        metavar="N",
        help="also score the reconstructions fitted to their input silhouettes with N Adam steps on the "
        "latent code (uses the input's camera; adds a same-view retrieval row; 0: off, default)",
    )
    p.add_argument("--refine-lr", type=float, default=0.05, help="learning rate of that fit (default 0.05)")
    p.add_argument("--backend", default=None, help="rasterization backend (default: the device's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_eval(args: argparse.Namespace) -> int:
    from softras.recon.evaluate import evaluate
    from softras.recon.refine import RefineConfig

    if args.examples < 0:
        raise UsageError(f"--examples: expected >= 0, got {args.examples}")
    if args.refine_steps < 0:
        raise UsageError(f"--refine-steps: expected >= 0, got {args.refine_steps}")
    if not args.refine_lr > 0:
        raise UsageError(f"--refine-lr: expected > 0, got {args.refine_lr}")
    if args.refine_steps > 0 and args.checkpoint is None:
        raise UsageError("--refine-steps: needs --checkpoint (it refines the network's reconstructions)")
    result = evaluate(
        args.data,
        args.checkpoint,
        args.out,
        split=args.split,
        batch_size=args.batch_size,
        baselines=not args.no_baselines,
        examples=args.examples,
        max_objects=args.max_objects,
        backend=args.backend,
        quiet=args.quiet,
        hull=args.visual_hull,
        average=not args.raw_weights,
        refine=RefineConfig(steps=args.refine_steps, lr=args.refine_lr) if args.refine_steps > 0 else None,
        device=args.device,
        log=print,
    )
    print(f"wrote {result.files.get('results')} ({result.seconds:.1f} s)")
    return 0


_SUBCOMMANDS = {
    "make-dataset": (
        "build an NMR-format dataset from meshes or procedural shapes",
        _add_make_dataset,
        _run_make_dataset,
    ),
    "convert": ("convert a dataset's .npz files to memory-mappable .npy", _add_convert, _run_convert),
    "train": ("train the reconstruction model (multi-view IoU objective)", _add_train, _run_train),
    "eval": ("per-class voxel IoU table with baselines, example meshes and GIFs", _add_eval, _run_eval),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="recon_command", metavar="<subcommand>", parser_class=type(parser))
    for name, (help_text, add, run_fn) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(_recon_run=run_fn)


def run(args: argparse.Namespace) -> int:
    fn = getattr(args, "_recon_run", None)
    if fn is None:
        raise UsageError("missing subcommand: softras recon {make-dataset,convert,train,eval}")
    return int(fn(args))


COMMAND = Command(
    "recon", "single-view mesh reconstruction: make-dataset, convert, train, eval", add_arguments, run, order=50
)
