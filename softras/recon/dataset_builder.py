"""Build an NMR-format dataset from a folder of meshes, or from the procedural shape classes.

``softras recon make-dataset --meshes DIR --out DIR`` reads ``DIR/<class_id>/**/*.{obj,ply,stl,
off,glb,gltf}`` (the class id is the sub-folder name), and for each mesh

1. normalises it as ShapeNetCore (v1) models are: centred on its bounding-box centre and scaled
   so that the bounding-box diagonal is 1 (so it fits in the unit cube ``[-0.5, 0.5]^3``, the
   frame of the NMR voxels and of the recon decoder's output);
2. renders the 24 NMR views (:func:`softras.recon.nmr.viewpoints`: ``look_at`` camera at
   distance 2.732, elevation 30°, azimuth ``-15° * v``, viewing angle 15°) as shaded RGBA at
   64², with the mesh's colours, the renderer's default lighting and 2× anti-aliasing;
3. voxelizes it at 32³ (surface + filled interior) with
   :func:`softras.metrics.mesh_to_nmr_voxels`, the same frame the evaluation voxelizes
   predictions in.

Objects are split into train/val/test per class by a seeded permutation (default 70/10/20 %)
and written as ``{class_id}_{split}_images.npz`` (uint8 [N, 24, 4, 64, 64]) and
``{class_id}_{split}_voxels.npz`` (uint8 [N, 32, 32, 32]), plus ``dataset.json`` (which source
mesh is which object, skipped files and why). Unreadable meshes are reported and skipped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from softras.io import MESH_EXTENSIONS, load_mesh
from softras.mesh import Mesh
from softras.metrics import mesh_to_nmr_voxels
from softras.progress import progress
from softras.renderer import SoftRenderer

from .nmr import IMAGE_SIZE, NUM_VIEWS, SPLITS, VIEWING_ANGLE, VOXEL_SIZE, class_name, viewpoints
from .procedural import PROCEDURAL_CLASSES, generate

__all__ = [
    "BuildReport",
    "build_dataset",
    "build_procedural_dataset",
    "make_data_renderer",
    "normalize_shapenet",
    "render_views",
    "split_indices",
    "voxelize",
]

_LOG = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)
#: Sharpness of the dataset renders: near-binary edges (the 2× anti-aliasing smooths them).
DATA_SIGMA = 1e-5
DATA_GAMMA = 1e-5


def normalize_shapenet(vertices: torch.Tensor) -> torch.Tensor:
    """ShapeNetCore normalisation: centre the bounding box, scale its diagonal to 1.

    Args:
        vertices: [V, 3].

    Returns:
        [V, 3] inside ``[-0.5, 0.5]^3``.
    """
    lo, hi = vertices.min(0).values, vertices.max(0).values
    diag = float((hi - lo).norm())
    scale = 1.0 / diag if diag > 0 else 1.0
    return (vertices - (lo + hi) / 2) * scale


def make_data_renderer(image_size: int = IMAGE_SIZE, backend: str | None = None) -> SoftRenderer:
    """The renderer used for the dataset's shaded views (NMR camera, default lighting)."""
    return SoftRenderer(
        image_size=image_size,
        camera_mode="look_at",
        viewing_angle=VIEWING_ANGLE,
        sigma_val=DATA_SIGMA,
        gamma_val=DATA_GAMMA,
        anti_aliasing=True,
        backend=backend,
    )


def render_views(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    textures: torch.Tensor,
    renderer: SoftRenderer | None = None,
    views: Sequence[int] | None = None,
) -> np.ndarray:
    """Render the NMR views of one normalised mesh.

    Args:
        vertices: [V, 3]; faces: [F, 3]; textures: surface textures [F, R*R, 3] in [0, 1].
        renderer: from :func:`make_data_renderer` (made if omitted).
        views: view indices (default all 24).

    Returns:
        uint8 [len(views), 4, S, S] RGBA.
    """
    renderer = renderer if renderer is not None else make_data_renderer()
    vids = torch.arange(NUM_VIEWS) if views is None else torch.as_tensor(list(views))
    n = len(vids)
    renderer.transform.set_eyes(viewpoints(vids))
    with torch.no_grad():
        mesh = Mesh(vertices[None].expand(n, -1, -1), faces[None], textures[None])
        images = renderer.render_mesh(mesh)
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def voxelize(vertices: torch.Tensor, faces: torch.Tensor, size: int = VOXEL_SIZE) -> np.ndarray:
    """Solid voxels of one normalised mesh in the NMR frame: vertices [V, 3], faces [F, 3] ->
    uint8 [size, size, size]."""
    return mesh_to_nmr_voxels(vertices[None], faces[None], size)[0].numpy().astype(np.uint8)


def split_indices(
    n: int, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS, key: str = ""
) -> dict[str, np.ndarray]:
    """Deterministic train/val/test split of ``n`` objects.

    A permutation seeded by ``(seed, key)`` is cut at the cumulative ``fractions``; every split
    gets at least one object while ``n >= 3`` (taken from train). Returns sorted index arrays.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"fractions: expected 3 non-negative numbers (train, val, test), got {fractions}")
    total = float(sum(fractions))
    rng = np.random.default_rng([seed, *map(ord, key)])
    perm = rng.permutation(n)
    n_val = round(n * fractions[1] / total)
    n_test = round(n * fractions[2] / total)
    if n >= 3:
        n_val = max(n_val, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    n_train = max(n - n_val - n_test, 0)
    return {
        "train": np.sort(perm[:n_train]),
        "val": np.sort(perm[n_train : n_train + n_val]),
        "test": np.sort(perm[n_train + n_val :]),
    }


@dataclass
class BuildReport:
    """What :func:`build_dataset` wrote.

    Attributes:
        out_dir: output folder.
        counts: class id -> split -> number of objects.
        skipped: ``(file, reason)`` of meshes that could not be used.
        files: every file written.
        seconds: wall time.
    """

    out_dir: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _save_npz(path: Path, array: np.ndarray) -> Path:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, array)
    os.replace(tmp, path)
    return path


def _write(
    out: Path,
    items: dict[str, list[tuple[str, np.ndarray, np.ndarray]]],
    seed: int,
    fractions: Sequence[float],
    report: BuildReport,
    extra: dict[str, object],
) -> None:
    manifest: dict[str, object] = {"seed": seed, "fractions": list(fractions), "classes": {}, **extra}
    for cid, objs in items.items():
        objs.sort(key=lambda o: o[0])
        parts = split_indices(len(objs), seed, fractions, key=cid)
        entry: dict[str, object] = {"name": class_name(cid)}
        report.counts[cid] = {}
        for split in SPLITS:
            idx = parts[split]
            imgs = (
                np.stack([objs[i][1] for i in idx])
                if len(idx)
                else np.zeros((0, NUM_VIEWS, 4, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
            )
            vox = np.stack([objs[i][2] for i in idx]) if len(idx) else np.zeros((0, *(VOXEL_SIZE,) * 3), np.uint8)
            report.files.append(_save_npz(out / f"{cid}_{split}_images.npz", imgs))
            report.files.append(_save_npz(out / f"{cid}_{split}_voxels.npz", vox))
            entry[split] = [objs[i][0] for i in idx]
            report.counts[cid][split] = len(idx)
        manifest["classes"][cid] = entry  # type: ignore[index]
    manifest["skipped"] = [{"file": f, "reason": r} for f, r in report.skipped]
    path = out / "dataset.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    report.files.append(path)


def _find_meshes(meshes_dir: Path) -> dict[str, list[Path]]:
    if not meshes_dir.is_dir():
        raise FileNotFoundError(f"mesh directory not found: {str(meshes_dir)!r}")
    found: dict[str, list[Path]] = {}
    for sub in sorted(p for p in meshes_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in sub.rglob("*") if p.is_file() and p.suffix.lower() in MESH_EXTENSIONS)
        if files:
            found[sub.name] = files
    if not found:
        raise FileNotFoundError(
            f"no meshes in {str(meshes_dir)!r}: expected sub-folders named by class id holding "
            f"{'/'.join(e.lstrip('.') for e in MESH_EXTENSIONS)} files"
        )
    return found


def build_dataset(
    meshes_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    texture_res: int = 2,
    backend: str | None = None,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
) -> BuildReport:
    """Render and voxelize every mesh under ``meshes_dir/<class_id>/`` into ``out_dir``.

    Args:
        meshes_dir: one sub-folder per class id; meshes anywhere below it.
        out_dir: created if needed.
        seed: split seed.
        fractions: train/val/test proportions.
        texture_res: texels per face edge used to sample the meshes' textures.
        backend: rasterization backend (default for the device).
        quiet: no progress bar.
        log: called with one line per skipped file (default: this module's logger, at WARNING).

    Returns:
        A :class:`BuildReport`.
    """
    t0 = time.perf_counter()
    log = log if log is not None else _LOG.warning
    found = _find_meshes(Path(meshes_dir))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = BuildReport(out)
    renderer = make_data_renderer(backend=backend)
    items: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {cid: [] for cid in found}
    total = sum(len(v) for v in found.values())
    root = Path(meshes_dir)
    with progress(total=total, desc="make-dataset", unit="mesh", quiet=quiet) as bar:
        for cid, files in found.items():
            for path in files:
                rel = str(path.relative_to(root))
                try:
                    m = load_mesh(path, texture_res=texture_res)
                    v = normalize_shapenet(m.vertices.double()).float()
                    if not torch.isfinite(v).all() or float((v.max(0).values - v.min(0).values).norm()) == 0:
                        raise ValueError("degenerate geometry (no extent or non-finite vertices)")
                    imgs = render_views(v, m.faces, m.textures, renderer)
                    vox = voxelize(v, m.faces)
                    items[cid].append((rel, imgs, vox))
                except Exception as exc:  # one bad file never aborts the build
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    report.skipped.append((rel, reason))
                    log(f"skipped {rel}: {reason}")
                bar.update(1)
    items = {c: o for c, o in items.items() if o}
    if not items:
        raise ValueError(f"none of the {total} meshes in {str(meshes_dir)!r} could be read")
    _write(out, items, seed, fractions, report, {"source": str(meshes_dir)})
    report.seconds = time.perf_counter() - t0
    return report


def build_procedural_dataset(
    out_dir: str | os.PathLike,
    per_class: int = 40,
    seed: int = 0,
    class_ids: Sequence[str] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    backend: str | None = None,
    quiet: bool = False,
    save_meshes: bool = False,
) -> BuildReport:
    """The same dataset files from the procedural classes (:mod:`softras.recon.procedural`).

    Args:
        out_dir: created if needed.
        per_class: instances per class (split 70/10/20 by default).
        seed: instance and split seed.
        class_ids: subset of the procedural classes (default all five).
        fractions: as :func:`build_dataset`.
        backend: as :func:`build_dataset`.
        quiet: as :func:`build_dataset`.
        save_meshes: also write every instance as ``meshes/<class_id>/<name>.ply`` (face colours).
    """
    t0 = time.perf_counter()
    ids = list(class_ids) if class_ids is not None else list(PROCEDURAL_CLASSES)
    for cid in ids:
        if cid not in PROCEDURAL_CLASSES:
            raise ValueError(f"class_ids: {cid!r} is not a procedural class ({sorted(PROCEDURAL_CLASSES)})")
    if per_class < 1:
        raise ValueError(f"per_class: expected >= 1, got {per_class}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = BuildReport(out)
    renderer = make_data_renderer(backend=backend)
    items: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {cid: [] for cid in ids}
    with progress(total=per_class * len(ids), desc="make-dataset", unit="mesh", quiet=quiet) as bar:
        for cid in ids:
            name = PROCEDURAL_CLASSES[cid][0]
            for k in range(per_class):
                pm = generate(cid, seed * 100003 + k)
                v = normalize_shapenet(torch.from_numpy(pm.vertices).double()).float()
                f = torch.from_numpy(pm.faces)
                tex = torch.from_numpy(pm.face_colors)[:, None, :]
                label = f"{name}_{k:05d}"
                if save_meshes:
                    from softras.io import save_mesh

                    (out / "meshes" / cid).mkdir(parents=True, exist_ok=True)
                    save_mesh(out / "meshes" / cid / f"{label}.ply", v, f, tex)
                items[cid].append((label, render_views(v, f, tex, renderer), voxelize(v, f)))
                bar.update(1)
    _write(out, items, seed, fractions, report, {"source": "procedural", "per_class": per_class})
    report.seconds = time.perf_counter() - t0
    return report
