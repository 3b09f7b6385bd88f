"""Evaluation: per-class 3D IoU at 32³ over all 24 views of a split, as the paper's Table 1.

For every object of the split and every one of its 24 views, the network reconstructs a mesh
from that single image; the mesh is voxelized in the NMR frame
(:func:`softras.metrics.voxel_iou_from_mesh`) and compared with the object's voxels. A class's
IoU is the mean over its objects × views; the table's last column is the mean over classes
(as the original ``examples/recon/test.py``). The retrieval and mean-shape baselines
(:mod:`softras.recon.baselines`) are scored on the same queries.

With ``refine``, the table gains the network's reconstructions fitted to their input silhouettes
(:mod:`softras.recon.refine`, which uses the input's camera) and, as its fair counterpart, the
retrieval baseline restricted to training images of the query's view.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softras._validation import resolve_device
from softras.metrics import iou_3d, voxel_iou_from_mesh
from softras.progress import progress

from .baselines import MeanShapeBaseline, RetrievalBaseline, visual_hull
from .nmr import NUM_VIEWS, NMRDataset, class_name, viewpoints
from .refine import RefineConfig, refine_reconstruction

__all__ = ["EvalResult", "evaluate", "format_table"]

_LOG = logging.getLogger(__name__)

METHOD_LABELS = {
    "softras_refined": "SoftRas (silhouette) + input fit",
    "softras_full_refined": "SoftRas (full) + input fit",
    "retrieval": "Retrieval",
    "retrieval_same_view": "Retrieval (same view)",
    "mean_shape": "Mean shape (class oracle)",
    "softras": "SoftRas (silhouette)",
    "softras_full": "SoftRas (full)",
    "visual_hull": "Visual hull (24 views, oracle)",
}


@dataclass
class EvalResult:
    """Per-method, per-class IoU (fractions in [0, 1]) and what was written.

    Attributes:
        class_ids: the evaluated classes (table columns).
        iou: method -> class id -> mean IoU; ``mean`` holds each method's mean over classes.
        counts: class id -> number of (object, view) queries.
        files: name -> path of every file written.
        seconds: wall time.
    """

    class_ids: list[str]
    iou: dict[str, dict[str, float]]
    mean: dict[str, float]
    counts: dict[str, int]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        return format_table(self.class_ids, self.iou, self.mean)


def format_table(class_ids: Sequence[str], iou: dict[str, dict[str, float]], mean: dict[str, float]) -> str:
    """The paper's Table 1 layout: one row per method, one column per class, then the mean (IoU × 100)."""
    names = [class_name(c) for c in class_ids] + ["mean"]
    label_w = max([len(METHOD_LABELS.get(m, m)) for m in iou] + [6])
    col_w = max(max(len(n) for n in names), 6)
    head = "method".ljust(label_w) + "".join(f" {n:>{col_w}}" for n in names)
    lines = [head, "-" * len(head)]
    for m, per in iou.items():
        vals = [per.get(c, math.nan) for c in class_ids] + [mean[m]]
        lines.append(METHOD_LABELS.get(m, m).ljust(label_w) + "".join(f" {100 * v:>{col_w}.1f}" for v in vals))
    return "\n".join(lines)


def _export_examples(
    model: Any,
    test: NMRDataset,
    out: Path,
    count: int,
    files: dict[str, Path],
    backend: str | None = None,
    refine: RefineConfig | None = None,
) -> None:
    """Mesh (PLY, with colours for 'full') from view 0, a GIF of input vs prediction over the 24
    views, and one montage PNG of all examples. With ``refine`` the meshes are the refined ones
    and the GIFs show input | network | refined."""
    import imageio.v3 as iio

    from softras.io import save_mesh
    from softras.io.images import composite, save_gif

    from .dataset_builder import make_data_renderer, render_views

    ex = out / "examples"
    ex.mkdir(parents=True, exist_ok=True)
    renderer = make_data_renderer(backend=backend)
    faces = model.faces.cpu()
    picks: list[tuple[str, int]] = []
    k = 0
    while len(picks) < count and k < max(test.num_objects.values()):  # round-robin over classes
        picks += [(c, k) for c in test.class_ids if k < test.num_objects[c]]
        k += 1
    rows = []
    for cid, i in picks[:count]:
        views = torch.from_numpy(np.asarray(test.images[cid][i], np.float32) / 255.0)  # [24, 4, S, S]
        first = views[:1].to(model.faces.device)
        with torch.no_grad():
            predictions = [model.reconstruct(first)]
        if refine is not None:
            predictions.append(refine_reconstruction(model, first, viewpoints([0]), refine))
        name = f"{class_name(cid)}_{i:04d}"
        columns = [composite(views)]
        for vertices, colors in predictions:
            v = vertices[0].cpu()
            tex = colors[0].cpu()[:, None, :] if colors is not None else torch.full((faces.shape[0], 1, 3), 0.8)
            pred = torch.from_numpy(render_views(v, faces, tex, renderer).astype(np.float32) / 255.0)
            columns.append(composite(pred))
        save_mesh(ex / f"{name}.ply", v, faces, tex)  # the last prediction: the refined one when asked
        frames = np.concatenate(columns, axis=2)  # [24, S, (1 + predictions) S, 3]
        files[f"gif_{name}"] = save_gif(frames, ex / f"{name}.gif", fps=8)
        files[f"mesh_{name}"] = ex / f"{name}.ply"
        rows.append(
            np.concatenate(
                [frames[0], composite(pred[[6, 12, 18]]).transpose(1, 0, 2, 3).reshape(frames.shape[1], -1, 3)], axis=1
            )
        )
    if rows:
        path = out / "examples.png"
        iio.imwrite(path, np.concatenate(rows, axis=0))
        files["examples_png"] = path


def evaluate(
    data: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    *,
    split: str = "test",
    batch_size: int = 96,
    baselines: bool = True,
    examples: int = 5,
    max_objects: int | None = None,
    backend: str | None = None,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
    hull: bool = False,
    average: bool = True,
    refine: RefineConfig | None = None,
    device: str | torch.device | None = None,
) -> EvalResult:
    """Score a checkpoint (and the baselines) on a split; write ``results.json`` and examples.

    Args:
        data: dataset folder.
        checkpoint: a ``checkpoint.pt`` from :func:`softras.recon.train.train` (None: baselines only).
        out: output folder for ``results.json``, ``table.txt``, ``examples/`` (None: write nothing).
        split: ``'test'`` (default) or ``'val'``.
        batch_size: queries per forward pass.
        baselines: also score retrieval and mean shape (they need the ``train`` split).
        examples: number of example meshes/GIFs to export (0: none).
        max_objects: evaluate only the first objects of each class (for quick checks).
        backend: rasterization backend (used by the input fit and to render example GIFs).
        quiet: no progress bar; log: called with the results table (default: this module's logger, at INFO).
        hull: also score the visual hull of each object's 24 ground-truth silhouettes
            (:func:`softras.recon.baselines.visual_hull`; a reference, not a single-view method).
        average: score the checkpoint's moving average of the weights when it has one
            (False: the last optimizer iterate).
        refine: also score the reconstructions fitted to their input silhouettes with these
            options (:func:`softras.recon.refine.refine_reconstruction`; needs a checkpoint), and
            the same-view retrieval baseline when ``baselines``.
        device: where the network, the fit and the voxelization run (default: CUDA if available);
            the baselines run on the CPU.

    Returns:
        An :class:`EvalResult`.
    """
    t0 = time.perf_counter()
    log = log if log is not None else _LOG.info
    if checkpoint is None and not baselines and not hull:
        raise ValueError("nothing to evaluate: give a checkpoint or enable the baselines")
    if refine is not None and checkpoint is None:
        raise ValueError("refine: needs a checkpoint (it refines the network's reconstructions)")
    dev = resolve_device(device)
    test = NMRDataset(data, split)
    model = None
    method = None
    info: dict[str, Any] = {"split": split, "data": str(data)}
    if checkpoint is not None:
        from .train import load_model

        model, cfg, ckpt = load_model(checkpoint, backend=backend, device=dev, average=average)
        method = "softras_full" if cfg.variant == "full" else "softras"
        weights = "average" if average and "ema" in ckpt else "last"
        info.update(
            checkpoint=str(checkpoint),
            iteration=int(ckpt["iteration"]),
            variant=cfg.variant,
            weights=weights,
            device=str(dev),
        )
    retrieval = mean_shape = None
    if baselines:
        train = NMRDataset(data, "train")
        retrieval = RetrievalBaseline(train)
        mean_shape = MeanShapeBaseline(train)
        info["mean_shape_thresholds"] = mean_shape.thresholds
    refined = None if refine is None or method is None else f"{method}_refined"
    if refined is not None:
        info["refine"] = asdict(refine)
    methods = [m for m in (method, refined) if m is not None]
    if baselines:
        methods += ["retrieval"] + (["retrieval_same_view"] if refined else []) + ["mean_shape"]
    methods += ["visual_hull"] if hull else []
    hull_iou: dict[tuple[str, int], float] = {}
    sums = {m: {c: 0.0 for c in test.class_ids} for m in methods}
    counts = {c: 0 for c in test.class_ids}
    total = sum(min(n, max_objects or n) for n in test.num_objects.values()) * NUM_VIEWS
    with progress(total=total, desc=f"eval ({split})", unit="view", quiet=quiet) as bar:
        for cid in test.class_ids:
            for b in test.evaluation_batches(cid, batch_size, max_objects=max_objects):
                n = b.images.shape[0]
                if model is not None and method is not None:
                    images, voxels = b.images.to(dev), b.voxels.to(dev)
                    scores, _ = model.evaluate_iou(images, voxels)
                    sums[method][cid] += float(scores.double().sum())
                    if refined is not None:
                        vertices, _ = refine_reconstruction(model, images, viewpoints(b.view_ids), refine)
                        fitted = voxel_iou_from_mesh(vertices, model.faces, voxels)
                        sums[refined][cid] += float(fitted.double().sum())
                if retrieval is not None and mean_shape is not None:
                    sums["retrieval"][cid] += float(iou_3d(retrieval.predict(b.images), b.voxels).double().sum())
                    if refined is not None:
                        same_view = retrieval.predict(b.images, b.view_ids)
                        sums["retrieval_same_view"][cid] += float(iou_3d(same_view, b.voxels).double().sum())
                    if cid in mean_shape.shapes:
                        sums["mean_shape"][cid] += float(iou_3d(mean_shape.predict(cid, n), b.voxels).double().sum())
                    else:
                        sums["mean_shape"][cid] = math.nan
                if hull:
                    for o, vox in zip(b.object_ids.tolist(), b.voxels, strict=True):
                        if (cid, o) not in hull_iou:
                            alphas = torch.from_numpy(np.asarray(test.images[cid][o][:, 3], np.float32) / 255.0)
                            hull_iou[cid, o] = float(iou_3d(visual_hull(alphas, size=vox.shape[0])[None], vox[None]))
                        sums["visual_hull"][cid] += hull_iou[cid, o]
                counts[cid] += n
                bar.update(n)
    classes = [c for c in test.class_ids if counts[c] > 0]
    iou = {m: {c: sums[m][c] / counts[c] for c in classes} for m in methods}
    mean = {m: float(np.mean([iou[m][c] for c in classes])) for m in methods}
    result = EvalResult(classes, iou, mean, {c: counts[c] for c in classes}, info=info)
    log(result.table())
    if out is not None:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        if model is not None and examples > 0:
            _export_examples(model, test, out_dir, examples, result.files, backend, refine)
        result.seconds = time.perf_counter() - t0
        payload = {
            "metric": "voxel IoU at 32^3, mean over objects x 24 views per class; 'mean' over classes",
            "classes": {c: class_name(c) for c in classes},
            "queries": result.counts,
            "methods": {m: {"label": METHOD_LABELS.get(m, m), "per_class": iou[m], "mean": mean[m]} for m in methods},
            "seconds": round(result.seconds, 2),
            **info,
        }
        path = out_dir / "results.json"
        path.write_text(json.dumps(payload, indent=2) + "\n")
        (out_dir / "table.txt").write_text(result.table() + "\n")
        result.files["results"] = path
        result.files["table"] = out_dir / "table.txt"
    result.seconds = time.perf_counter() - t0
    return result
