"""Deform a template sphere into a mesh whose silhouettes match multi-view target silhouettes.

The SoftRas paper's (and the original ``examples/demo_deform.py``'s) silhouette-based mesh
deformation: a template (a 1352-vertex sphere like the original's, scaled to radius 0.5) is deformed by
a per-vertex displacement in the original's sigmoid parametrisation plus a centroid, so that its
soft silhouettes seen from ``N`` cameras match target silhouettes. The loss is the negative soft
IoU plus a Laplacian (0.03) and a flatten (0.0003) regulariser, minimised with
``Adam(lr=0.01, betas=(0.5, 0.99))`` at 64² with σ = 1e-4 and a 15° viewing angle.

Python API::

    from softras.apps.deform import run_deform

    result = run_deform(out_dir="out/deform")                 # built-in car-like target, 120 views
    result = run_deform("chair.obj", iters=500)                # target silhouettes rendered from a mesh
    result = run_deform(target_images="source.npy", target_cameras="camera.npy")  # the original's files
    print(result.mean_iou, result.per_view_iou[:4])

CLI: ``softras deform [--target MESH | --target-images IMAGES.npy --target-cameras CAMERAS.npy]``
(see ``softras deform --help`` and docs/applications.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from softras import __version__
from softras._validation import resolve_device
from softras.apps import Command, UsageError
from softras.apps.figures import label
from softras.cameras import from_angles
from softras.functional import get_points_from_angles
from softras.lighting import AmbientLighting, DirectionalLighting
from softras.losses import FlattenLoss, LaplacianLoss, hard_iou, neg_iou_loss
from softras.mesh import Mesh
from softras.progress import progress as progress_bar
from softras.raster import available_backends, default_backend
from softras.renderer import SoftRenderer

from ._checks import (
    ImageSize,
    add_image_size_argument,
    check_image_size,
    check_int,
    environment,
    image_hw,
    positive_int,
)

__all__ = [
    "DEFAULT_DISTANCE",
    "DEFAULT_ITERS",
    "DEFAULT_VIEWS",
    "TARGET_RADIUS",
    "DeformModel",
    "DeformResult",
    "builtin_target",
    "camera_grid",
    "load_target_files",
    "render_targets",
    "run_deform",
]

DEFAULT_ITERS = 2000
DEFAULT_VIEWS = 120
#: Views rendered per iteration, drawn at random. The original renders all 120; 40 reach the
#: same IoU (the original's airplane: 0.906 with 40 against 0.904 with 120) in a third of the time.
DEFAULT_BATCH_SIZE = 40
DEFAULT_IMAGE_SIZE = 64
#: The original's camera distance (``camera.npy`` holds 2.732 for every view).
DEFAULT_DISTANCE = 2.732
VIEWING_ANGLE = 15.0
SIGMA = 1e-4
LEARNING_RATE = 0.01
BETAS = (0.5, 0.99)
LAPLACIAN_WEIGHT = 0.03
FLATTEN_WEIGHT = 0.0003
#: The template is scaled to this radius, as the original's ``template.vertices * 0.5``.
TEMPLATE_RADIUS = 0.5
#: Vertices of the default template (:func:`softras.shapes.fibonacci_sphere`): the resolution of
#: the original's ``sphere_1352.obj``.
TEMPLATE_VERTICES = 1352
#: A target mesh is centred and scaled to this bounding-sphere radius: it then stays inside every
#: view (asin(0.65 / 2.732) = 13.8° < 15°) and inside the parametrisation's cube (-1, 1)³.
TARGET_RADIUS = 0.65
#: Elevation range of the camera grid (degrees); 24 azimuths per ring for 120 views.
ELEVATION_RANGE = (-30.0, 60.0)
#: Surface colour of the shaded pictures.
DISPLAY_COLOR = (0.78, 0.82, 0.92)
#: Views shown in the progress GIF and in the comparison picture.
GIF_VIEWS = 4
COMPARISON_VIEWS = 8
#: Clamp of ``|v|`` in the inverse sigmoid, so that template coordinates that are exactly 0
#: (an icosphere has some) give a finite base instead of ``log(0)``.
_BASE_EPS = 1e-4


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------
def _prism(ring: np.ndarray, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Extrude a star-shaped polygon ``ring`` [K, 2] (CCW, star-shaped w.r.t. its vertex mean)
    along z from ``z0`` to ``z1``; caps are fans from the mean. Returns (vertices [2K+2, 3],
    faces [4K, 3]) with outward winding."""
    k = len(ring)
    centre = ring.mean(0)
    lo = np.concatenate([ring, np.full((k, 1), z0)], 1)
    hi = np.concatenate([ring, np.full((k, 1), z1)], 1)
    verts = np.concatenate([lo, hi, [[*centre, z0], [*centre, z1]]], 0)
    cb, ct = 2 * k, 2 * k + 1
    i = np.arange(k)
    j = (i + 1) % k
    faces = np.concatenate(
        [
            np.stack([np.full(k, ct), k + i, k + j], 1),
            np.stack([np.full(k, cb), j, i], 1),
            np.stack([i, j, k + j], 1),
            np.stack([i, k + j, k + i], 1),
        ]
    )
    return verts, faces


def builtin_target() -> tuple[torch.Tensor, torch.Tensor]:
    """A procedural car-like mesh (the original demo deformed a sphere into a car).

    A side profile (bonnet, windscreen, roof, rear window, boot) extruded across the width, plus
    four wheels that stick out below the body; x is the length, y up, z the width. The parts
    overlap (the mesh is a union of closed parts, which is all that silhouettes need).

    Returns:
        ``(vertices [V, 3] float32, faces [F, 3] int64)``, not normalised (about 4.2 × 1.5 × 1.9).
    """
    profile = np.array(
        [
            (2.0, 0.3), (2.1, 0.35), (2.1, 0.8), (1.2, 0.95), (0.6, 1.0), (0.1, 1.5),
            (-1.0, 1.5), (-1.5, 1.05), (-2.0, 1.0), (-2.1, 0.8), (-2.1, 0.35), (-2.0, 0.3),
        ]
    )  # fmt: skip
    parts = [_prism(profile, -0.85, 0.85)]
    angles = np.arange(16) * (2 * math.pi / 16)
    circle = 0.38 * np.stack([np.cos(angles), np.sin(angles)], 1)
    for cx in (-1.3, 1.3):
        for z0, z1 in ((0.55, 0.95), (-0.95, -0.55)):
            parts.append(_prism(circle + np.array([cx, 0.38]), z0, z1))
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    v = torch.from_numpy(np.concatenate(verts).astype(np.float32))
    f = torch.from_numpy(np.concatenate(faces).astype(np.int64))
    return v, f


def camera_grid(views: int = DEFAULT_VIEWS, distance: float = DEFAULT_DISTANCE) -> torch.Tensor:
    """Cameras around the origin like the original's ``camera.npy``: ``[N, 3]`` (distance,
    elevation, azimuth in degrees).

    The views are split into ``R = round(sqrt(N / 4.8))`` rings of elevations evenly spaced in
    [-30°, 60°], with evenly spaced azimuths in each ring (odd rings shifted by half a step):
    120 views give 5 rings × 24 azimuths (elevations -30, -7.5, 15, 37.5, 60). With a single
    ring (fewer than 11 views) the elevations instead sweep [-30°, 60°] along the azimuths.
    """
    n = int(views)
    if n < 1:
        raise ValueError(f"views: expected an integer >= 1, got {views!r}")
    rings = max(1, round(math.sqrt(n / 4.8)))
    lo, hi = ELEVATION_RANGE
    rows: list[tuple[float, float, float]] = []
    if rings == 1:
        for i in range(n):
            elev = 30.0 if n == 1 else lo + (hi - lo) * i / (n - 1)
            rows.append((distance, elev, 360.0 * i / n))
    else:
        for r in range(rings):
            count = n // rings + (1 if r < n % rings else 0)
            elev = lo + (hi - lo) * r / (rings - 1)
            shift = 0.5 if r % 2 else 0.0
            rows.extend((distance, elev, 360.0 * (i + shift) / count) for i in range(count))
    return torch.tensor(rows, dtype=torch.float32)


def _normalize(vertices: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Centre ``vertices`` [V, 3] on their bounding-box centre and scale into a sphere of ``radius``.
    Returns (normalised [V, 3], centre [3], scale)."""
    v = vertices.detach().float()
    centre = (v.min(0).values + v.max(0).values) / 2
    extent = float((v - centre).norm(dim=1).max())
    scale = radius / extent if extent > 0 else 1.0
    return (v - centre) * scale, centre, scale


def _silhouette_renderer(
    image_size: ImageSize,
    backend: str | None,
    device: torch.device,
    sigma_val: float = SIGMA,
    coverage: dict[str, Any] | None = None,
) -> SoftRenderer:
    """The original demo's renderer: 64², σ = 1e-4, hard RGB aggregation, look_at, 15°;
    ``coverage``: SoftRenderer keywords that choose another coverage family (and its σ)."""
    options: dict[str, Any] = {"sigma_val": sigma_val, "dist_eps": 1e-10, **(coverage or {})}
    renderer = SoftRenderer(
        image_size=image_size,
        aggr_func_rgb="hard",
        camera_mode="look_at",
        viewing_angle=VIEWING_ANGLE,
        backend=backend,
        **options,
    )
    return renderer.to(device)


def _set_cameras(renderer: SoftRenderer, cameras: torch.Tensor) -> None:
    """Point ``renderer`` at ``cameras`` [B, 3] (distance, elevation, azimuth)."""
    renderer.transform.set_eyes_from_angles(cameras[:, 0], cameras[:, 1], cameras[:, 2])


def _render_views(
    renderer: SoftRenderer, vertices: torch.Tensor, faces: torch.Tensor, cameras: torch.Tensor, chunk: int = 40
) -> torch.Tensor:
    """Render one mesh (vertices [V, 3], faces [F, 3]) from every camera [N, 3], ``chunk`` cameras
    per call, without autograd -> [N, 4, H, W] on the CPU."""
    out = []
    with torch.no_grad():
        for start in range(0, len(cameras), chunk):
            cams = cameras[start : start + chunk]
            _set_cameras(renderer, cams)
            b = len(cams)
            mesh = Mesh(vertices[None].expand(b, -1, -1), faces[None].expand(b, -1, -1))
            out.append(renderer.render_mesh(mesh).float().cpu())
    return torch.cat(out)


def _display_views(
    vertices: torch.Tensor, faces: torch.Tensor, cameras: torch.Tensor, size: ImageSize, backend: str | None
) -> np.ndarray:
    """Shaded pictures of one mesh (vertices [V, 3], faces [F, 3]) from cameras [N, 3] -> [N, 4, H, W].

    Smooth shading with a light at each camera (plus one from above), so that every view shows
    the shape; alpha without the stipple (see :func:`softras.apps.render.display_render`).
    """
    from softras.apps.render import display_render

    eyes = get_points_from_angles(cameras[:, 0], cameras[:, 1], cameras[:, 2])
    lights = [
        AmbientLighting(0.25),
        DirectionalLighting(0.65, light_direction=F.normalize(eyes, dim=1)),  # a light at each camera
        DirectionalLighting(0.15, light_direction=(0.0, 1.0, 0.0)),
    ]
    camera = from_angles(cameras[:, 0], cameras[:, 1], cameras[:, 2], viewing_angle=VIEWING_ANGLE)
    colour = torch.tensor(DISPLAY_COLOR, dtype=vertices.dtype, device=vertices.device)
    mesh = Mesh(vertices[None], faces[None], colour.expand(1, faces.shape[0], 1, 3))
    return display_render(mesh, camera, image_size=size, lights=lights, backend=backend).numpy()


def render_targets(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras: torch.Tensor,
    image_size: ImageSize = DEFAULT_IMAGE_SIZE,
    backend: str | None = None,
) -> np.ndarray:
    """Target images in the original's ``source.npy`` format from a (normalised) mesh.

    Rendered nearly sharp (σ = 1e-5, default lighting on a white surface) with the deformation's
    camera model (look_at, 15° viewing angle).

    Args:
        vertices: [V, 3] mesh vertices (e.g. centred and scaled to radius 0.65).
        faces: [F, 3] triangles.
        cameras: [N, 3] (distance, elevation, azimuth in degrees).
        image_size: S (S × S) or (H, W) pixels.
        backend: rasterizer backend (``None``: the default).

    Returns:
        uint8 ``[N, 4, H, W]``: shaded RGB and the silhouette in channel 3.
    """
    renderer = SoftRenderer(
        image_size=image_size,
        sigma_val=1e-5,
        camera_mode="look_at",
        viewing_angle=VIEWING_ANGLE,
        backend=backend,
    ).to(vertices.device)
    images = _render_views(renderer, vertices, faces, cameras.to(vertices.device))
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.exists():
        raise UsageError(f"{what} file not found: {path}")
    if not path.is_file():
        raise UsageError(f"{what} path is not a file: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"cannot read {what} file {path} as a .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray):
        raise UsageError(f"{what} file {path}: expected a single .npy array, got a .npz archive")
    return arr


def load_target_files(images_path: str | os.PathLike, cameras_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load and check targets in the original demo's format.

    Args:
        images_path: ``.npy`` of uint8 ``[N, 4, H, W]`` RGBA images (silhouette in channel 3).
        cameras_path: ``.npy`` of ``[N, 3]`` cameras (distance, elevation, azimuth in degrees).

    Returns:
        ``(images uint8 [N, 4, H, W], cameras float32 [N, 3])``.

    Raises:
        UsageError (a ``ValueError``): a file is missing or unreadable, or has the wrong shape,
            dtype or count; the message names the file and what was expected.
    """
    ipath, cpath = Path(images_path), Path(cameras_path)
    images = _load_npy(ipath, "target images")
    cameras = _load_npy(cpath, "target cameras")
    expected = "uint8 RGBA images [N, 4, H, W] with the silhouette (alpha) in channel 3"
    if images.ndim != 4:
        raise UsageError(f"target images {ipath}: expected {expected}, got an array of shape {images.shape}")
    if images.shape[1] != 4:
        hint = " (alpha channel missing)" if images.shape[1] in (1, 3) else ""
        raise UsageError(
            f"target images {ipath}: expected {expected}, got {images.shape[1]} channels{hint} (shape {images.shape})"
        )
    if images.shape[2] < 1 or images.shape[3] < 1:
        raise UsageError(f"target images {ipath}: expected images [N, 4, H, W], got shape {images.shape}")
    if images.dtype != np.uint8:
        raise UsageError(f"target images {ipath}: expected dtype uint8 (0..255), got {images.dtype}")
    if images.shape[0] < 1:
        raise UsageError(f"target images {ipath}: expected at least one image, got shape {images.shape}")
    if not np.any(images[:, 3] > 127):
        raise UsageError(f"target images {ipath}: the alpha channel (3) is empty in every image (nothing to fit)")
    if cameras.ndim != 2 or cameras.shape[1] != 3:
        raise UsageError(
            f"target cameras {cpath}: expected [N, 3] (distance, elevation, azimuth in degrees), "
            f"got shape {cameras.shape}"
        )
    if not (np.issubdtype(cameras.dtype, np.floating) or np.issubdtype(cameras.dtype, np.integer)):
        raise UsageError(f"target cameras {cpath}: expected a numeric array, got dtype {cameras.dtype}")
    cams = cameras.astype(np.float32)
    if not np.all(np.isfinite(cams)):
        raise UsageError(f"target cameras {cpath}: expected finite numbers, found NaN or inf")
    if np.any(cams[:, 0] <= 0):
        raise UsageError(f"target cameras {cpath}: expected positive distances in column 0")
    if len(cams) != len(images):
        raise UsageError(
            f"target cameras {cpath} has {len(cams)} cameras but target images {ipath} has {len(images)} "
            "images: expected one camera per image"
        )
    return images, cams


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
class DeformModel(nn.Module):
    """Template + per-vertex displacement in the original demo's sigmoid parametrisation.

    With template coordinates ``t`` (|t| < 1), displacement ``d`` and centre parameter ``c``::

        base = log(|t| / (1 - |t|))                 # inverse sigmoid of |t|
        v = sigmoid(base + d) * sign(t)             # each coordinate stays in its half (-1, 0) or (0, 1)
        k = tanh(c)
        v = relu(v) * (1 - k) - relu(-v) * (k + 1) + k   # (0, 1) -> (k, 1), (-1, 0) -> (-1, k)

    so every vertex stays inside the cube (-1, 1)³, in its octant around the centroid ``k``.
    ``d = 0, c = 0`` gives the template. Unlike the original, ``|t|`` is clamped to
    ``[1e-4, 1 - 1e-4]`` and ``sign(0) = +1``, so coordinates that are exactly 0 can move.

    Args:
        vertices: template [V, 3] with every coordinate in (-1, 1).
        faces: [F, 3].

    Parameters: ``displace`` [1, V, 3], ``center`` [1, 1, 3] (zeros).
    """

    template: torch.Tensor
    faces: torch.Tensor

    def __init__(self, vertices: torch.Tensor, faces: torch.Tensor) -> None:
        super().__init__()
        v = vertices.detach().float()[None]
        self.register_buffer("template", v)
        self.register_buffer("faces", faces.detach().long())
        self.displace = nn.Parameter(torch.zeros_like(v))
        self.center = nn.Parameter(torch.zeros(1, 1, 3))
        self.laplacian_loss = LaplacianLoss(v[0].cpu(), faces.cpu())
        self.flatten_loss = FlattenLoss(faces.cpu())

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The deformed vertices [1, V, 3] and the Laplacian and flatten losses (scalars)."""
        a = self.template.abs().clamp(_BASE_EPS, 1 - _BASE_EPS)
        base = torch.log(a / (1 - a))
        sign = torch.where(self.template < 0, -1.0, 1.0).to(self.template)
        centroid = torch.tanh(self.center)
        v = torch.sigmoid(base + self.displace) * sign
        v = F.relu(v) * (1 - centroid) - F.relu(-v) * (centroid + 1) + centroid
        return v, self.laplacian_loss(v).mean(), self.flatten_loss(v).mean()


# ---------------------------------------------------------------------------------------------
# pictures
# ---------------------------------------------------------------------------------------------
def _upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of [H, W, 3] uint8 by an integer ``factor`` -> [fH, fW, 3]."""
    return img if factor == 1 else np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def _overlay(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Silhouette comparison [S, S, 3] uint8 from alpha maps [S, S] in [0, 1]: both = dark grey,
    target only (missed) = red, prediction only (extra) = blue, neither = white."""
    p, t = pred > 0.5, target > 0.5
    out = np.full((*p.shape, 3), 255, np.uint8)
    out[p & t] = (70, 70, 70)
    out[t & ~p] = (230, 60, 50)
    out[p & ~t] = (60, 110, 230)
    return out


def _alpha_image(alpha: np.ndarray) -> np.ndarray:
    """Black silhouette on white [S, S, 3] uint8 from an alpha map [S, S] in [0, 1]."""
    g = (255 * (1 - np.clip(alpha, 0, 1))).round().astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def _shaded_image(rgba: np.ndarray) -> np.ndarray:
    """RGBA [4, S, S] in [0, 1] composited over white -> [S, S, 3] uint8."""
    a = np.clip(rgba[3], 0, 1)[..., None]
    rgb = np.clip(rgba[:3].transpose(1, 2, 0), 0, 1)
    return (255 * (rgb * a + (1 - a))).round().astype(np.uint8)


def _grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized [H, W, 3] images row by row with ``gap`` light-grey pixels between."""
    h, w = rows[0][0].shape[:2]
    ncols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, ncols * (w + gap) - gap, 3), 200, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = img
    return out


def _label(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` [H, W, 3] with ``text`` below it, left-aligned (in lines where too wide)."""
    return label([image], [text], size=12 if image.shape[1] >= 200 else 9, align="left")[0]


# ---------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------
@dataclass
class DeformResult:
    """What :func:`run_deform` did.

    Attributes:
        mean_iou: mean over views of the hard IoU (both silhouettes > 0.5) of the final mesh.
        per_view_iou: that IoU for every target view, in the targets' order ([N] floats).
        initial_mean_iou: the same for the template, before any step.
        losses: total loss at every iteration (before its update).
        vertices: final vertices [V, 3] (CPU, in the normalised target frame).
        faces: faces [F, 3] (CPU).
        cameras: the target cameras [N, 3] (distance, elevation, azimuth).
        files: name -> path of every file written (``gif``, ``mesh``, ``comparison``, ``views``,
            ``summary`` and, for mesh targets, ``target_images``/``target_cameras``).
        seconds: wall time of the whole run; ``optimize_seconds``: of the iterations alone.
        summary: the content of ``summary.json``.
    """

    mean_iou: float
    per_view_iou: list[float]
    initial_mean_iou: float
    losses: list[float]
    vertices: torch.Tensor = field(repr=False)
    faces: torch.Tensor = field(repr=False)
    cameras: torch.Tensor = field(repr=False)
    files: dict[str, Path]
    seconds: float
    optimize_seconds: float
    summary: dict[str, object] = field(repr=False)


def _load_mesh(path: str | os.PathLike, what: str) -> Mesh:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} mesh file not found: {p}")
    if not p.is_file():
        raise UsageError(f"{what} mesh path is not a file: {p}")
    try:
        return Mesh.from_file(p)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot load {what} mesh {p}: {exc}") from exc


def _template(template: str | os.PathLike | None, vertices: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    if template is None:
        from softras.shapes import fibonacci_sphere

        v, f = fibonacci_sphere(vertices, radius=TEMPLATE_RADIUS)
        return v, f, f"fibonacci_sphere({vertices})"
    mesh = _load_mesh(template, "template")
    v, _, _ = _normalize(mesh.vertices[0], TEMPLATE_RADIUS)
    return v, mesh.faces[0].long(), str(template)


def run_deform(
    target: str | os.PathLike | None = None,
    *,
    target_images: str | os.PathLike | None = None,
    target_cameras: str | os.PathLike | None = None,
    template: str | os.PathLike | None = None,
    template_vertices: int = TEMPLATE_VERTICES,
    out_dir: str | os.PathLike = "out/deform",
    iters: int = DEFAULT_ITERS,
    image_size: ImageSize | None = None,
    views: int | None = None,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    snapshot_every: int | None = None,
    backend: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    coverage: dict[str, Any] | None = None,
) -> DeformResult:
    """Deform a template so that its silhouettes match the targets; write GIF, OBJ, PNGs, summary.

    Targets are either a mesh (``target``: a file, or ``None`` for :func:`builtin_target`),
    centred and scaled to radius 0.65 and rendered from :func:`camera_grid` (``views`` cameras at
    distance 2.732), or the original demo's pair of ``.npy`` files (``target_images`` uint8
    ``[N, 4, H, W]``, ``target_cameras`` ``[N, 3]``).

    Every iteration renders the current mesh from ``batch_size`` views drawn at random (default
    40; ``None``: all, as the original) and takes one Adam step on
    ``1 - mean soft IoU + 0.03 Laplacian + 0.0003 flatten``.

    Files in ``out_dir``: ``deform.gif`` (every ``snapshot_every`` iterations: per view the
    silhouette overlap with the target -- grey both, red missed, blue extra -- above a shaded
    render), ``deformed.obj``, ``comparison.png`` (target / final silhouette / overlap / shaded
    for 8 views), ``views.png`` (overlap for every view), ``summary.json``, and for mesh targets
    ``target_images.npy`` + ``target_cameras.npy`` (the targets in the ``.npy`` format).

    Args:
        target: target mesh file; ``None`` (and no ``.npy`` files) for the built-in car-like mesh.
        target_images: the ``.npy`` target images (with ``target_cameras``; not with ``target``).
        target_cameras: the ``.npy`` target cameras (with ``target_images``).
        template: template mesh file (centred, scaled to radius 0.5; must be manifold); ``None``
            for :func:`softras.shapes.fibonacci_sphere` with ``template_vertices`` vertices.
        template_vertices: vertices of the default template (1352, the original's resolution).
        out_dir: output folder.
        iters: optimisation steps.
        image_size: silhouette size, S (S × S) or (H, W) (default 64; for ``.npy`` targets it must
            match the images).
        views: number of target views for mesh targets (default 120).
        batch_size: views rendered per step (default :data:`DEFAULT_BATCH_SIZE`; ``None`` or at
            least the number of views: all of them, in order).
        seed: seed of the view sampling when ``batch_size`` < views.
        snapshot_every: iterations between GIF frames (default: ``iters // 40``, at least 1).
        backend: rasterizer backend (``None``: the default for the device).
        device: ``'cpu'``, ``'cuda'``, ... (default: CUDA if available, else CPU).
        progress: show a progress bar with loss, batch IoU and it/s.
        coverage: the optimisation renderer's coverage family as SoftRenderer keywords
            (``distribution``, ``squared_distance``, ``dist_shape``, ``dist_shift``,
            ``aggr_func_alpha``, ``t_conorm_p``, ``sigma_val``; docs/families.md); ``None``:
            SoftRas's. The IoU is always measured with SoftRas's renderer.

    Raises:
        UsageError (a ``ValueError``): bad arguments or bad target/template files.
    """
    t_start = time.perf_counter()
    iters = check_int("iters", iters, 0)
    seed = check_int("seed", seed, 0)
    template_vertices = check_int("template_vertices", template_vertices, 4)
    if backend is not None and backend not in available_backends():
        raise UsageError(f"backend: expected one of {available_backends()}, got {backend!r}")
    npy = target_images is not None or target_cameras is not None
    if npy and (target_images is None or target_cameras is None):
        raise UsageError("target_images and target_cameras: expected both .npy files or neither")
    if npy and target is not None:
        raise UsageError("give either a target mesh or target .npy files, not both")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path exists and is not a folder: {out}")
    try:
        dev = resolve_device(device)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    backend_name = backend or default_backend(dev)
    torch.manual_seed(seed)

    # ---- targets -------------------------------------------------------------------------
    t0 = time.perf_counter()
    normalization: dict[str, object] | None = None
    if npy:
        images_np, cams_np = load_target_files(target_images, target_cameras)  # type: ignore[arg-type]
        h, w = images_np.shape[-2:]
        size: ImageSize = h if h == w else (h, w)
        if image_size is not None and image_hw(check_image_size("image_size", image_size, 1)) != (h, w):
            raise UsageError(
                f"image_size: {image_size} does not match the {w}x{h} (WxH) target images in {target_images}"
            )
        if views is not None and check_int("views", views, 1) != len(images_np):
            raise UsageError(f"views: {views} does not match the {len(images_np)} target images in {target_images}")
        image_size, cameras = size, torch.from_numpy(cams_np)
        source = f"{target_images} + {target_cameras}"
    else:
        image_size = check_image_size("image_size", DEFAULT_IMAGE_SIZE if image_size is None else image_size, 1)
        views = check_int("views", DEFAULT_VIEWS if views is None else views, 1)
        if target is None:
            tv, tf = builtin_target()
            source = "built-in car-like mesh (softras.apps.deform.builtin_target)"
        else:
            mesh = _load_mesh(target, "target")
            tv, tf = mesh.vertices[0], mesh.faces[0].long()
            source = str(target)
        tv, centre, scale = _normalize(tv, TARGET_RADIUS)
        normalization = {"center": [round(float(x), 6) for x in centre], "scale": round(scale, 6)}
        cameras = camera_grid(views)
        images_np = render_targets(tv.to(dev), tf.to(dev), cameras, image_size, backend)
    n = len(cameras)
    batch = n if batch_size is None else min(check_int("batch_size", batch_size, 1), n)
    every = max(1, iters // 40) if snapshot_every is None else check_int("snapshot_every", snapshot_every, 1)
    target_alpha = torch.from_numpy(images_np[:, 3].astype(np.float32) / 255.0).to(dev)  # [N, H, W]
    cameras = cameras.to(dev)
    target_seconds = time.perf_counter() - t0

    # ---- model ---------------------------------------------------------------------------
    tv0, faces, template_source = _template(template, template_vertices)
    if float(tv0.abs().max()) >= 1:
        raise UsageError("template: coordinates must lie inside (-1, 1)")
    try:
        model = DeformModel(tv0, faces).to(dev)
    except ValueError as exc:
        raise UsageError(f"template {template_source}: {exc}") from exc
    renderer = _silhouette_renderer(image_size, backend, dev, coverage=coverage)
    viewer = _silhouette_renderer(image_size, backend, dev)  # evaluation and snapshots: SoftRas's family
    display_size = tuple(2 * x for x in image_hw(image_size))
    gif_idx = sorted({round(float(x)) for x in np.linspace(0, n - 1, min(GIF_VIEWS, n))})
    faces_dev = model.faces
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=BETAS)
    generator = torch.Generator().manual_seed(seed)

    def evaluate(vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Silhouettes [N, H, W] (CPU) and hard IoU [N] of ``vertices`` [V, 3] from every view."""
        alpha = _render_views(viewer, vertices, faces_dev, cameras)[:, 3]
        return alpha, hard_iou(alpha, target_alpha.cpu()).double()

    def snapshot(vertices: torch.Tensor, it: int, loss: float, iou_value: float) -> np.ndarray:
        alpha = _render_views(viewer, vertices, faces_dev, cameras[gif_idx])[:, 3].numpy()
        shaded = _display_views(vertices, faces_dev, cameras[gif_idx], display_size, backend)
        tgt = target_alpha[gif_idx].cpu().numpy()
        row1 = [_upscale(_overlay(a, t), 2) for a, t in zip(alpha, tgt, strict=True)]
        row2 = [_shaded_image(x) for x in shaded]
        return _label(_grid([row1, row2]), f"iter {it:5d}  loss {loss:.4f}  IoU {iou_value:.3f}")

    with torch.no_grad():
        v_init = model()[0][0]
    _, init_iou = evaluate(v_init)
    frames: list[np.ndarray] = []
    losses: list[float] = []
    all_cams = batch == n
    if all_cams:
        _set_cameras(renderer, cameras)
    t_opt = time.perf_counter()
    bar = progress_bar(range(iters), desc="deform", unit="it", quiet=not progress)
    last_iou = float(init_iou.mean())
    for it in bar:
        if all_cams:
            idx = None
            tgt = target_alpha
        else:
            idx = torch.randperm(n, generator=generator)[:batch].to(dev)
            _set_cameras(renderer, cameras[idx])
            tgt = target_alpha[idx]
        vertices, lap, flat = model()
        mesh = Mesh(vertices.expand(batch, -1, -1), faces_dev[None].expand(batch, -1, -1))
        alpha = renderer.render_mesh(mesh)[:, 3]
        loss = neg_iou_loss(alpha, tgt) + LAPLACIAN_WEIGHT * lap + FLATTEN_WEIGHT * flat
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_value = float(loss.detach())
        losses.append(loss_value)
        with torch.no_grad():
            last_iou = float(hard_iou(alpha.detach(), tgt).mean())
        bar.set_postfix(loss=f"{loss_value:.4f}", iou=f"{last_iou:.3f}", refresh=False)
        if it % every == 0:
            frames.append(snapshot(vertices.detach()[0], it, loss_value, last_iou))
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss became {loss_value} at iteration {it}")
    bar.close()
    optimize_seconds = time.perf_counter() - t_opt

    # ---- final evaluation and files ------------------------------------------------------
    with torch.no_grad():
        v_final = model()[0][0].detach()
    final_alpha, final_iou = evaluate(v_final)
    mean_iou = float(final_iou.mean())
    final_loss = losses[-1] if losses else float("nan")
    frames.append(snapshot(v_final, iters, final_loss, mean_iou))

    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    from softras.apps.render import save_gif

    files["gif"] = save_gif(np.stack(frames), out / "deform.gif", fps=10.0)
    mesh_out = Mesh(v_final.cpu(), model.faces.cpu())
    files["mesh"] = out / "deformed.obj"
    mesh_out.save_obj(files["mesh"])
    cmp_idx = sorted({round(float(x)) for x in np.linspace(0, n - 1, min(COMPARISON_VIEWS, n))})
    tgt_np = target_alpha.cpu().numpy()
    fin_np = final_alpha.numpy()
    shaded = _display_views(v_final, faces_dev, cameras[cmp_idx], display_size, backend)
    comparison = _grid(
        [
            [_upscale(_alpha_image(tgt_np[i]), 2) for i in cmp_idx],
            [_upscale(_alpha_image(fin_np[i]), 2) for i in cmp_idx],
            [_upscale(_overlay(fin_np[i], tgt_np[i]), 2) for i in cmp_idx],
            [_shaded_image(x) for x in shaded],
        ]
    )
    comparison = _label(
        comparison, f"rows: target, final, overlap, shaded; red: missed, blue: extra; mean IoU {mean_iou:.3f}"
    )
    from PIL import Image

    files["comparison"] = out / "comparison.png"
    Image.fromarray(comparison).save(files["comparison"], optimize=True)
    cols = 24 if n >= 48 else min(n, 8)
    tiles = [_overlay(fin_np[i], tgt_np[i]) for i in range(n)]
    files["views"] = out / "views.png"
    Image.fromarray(_grid([tiles[i : i + cols] for i in range(0, n, cols)], gap=1)).save(files["views"], optimize=True)
    if not npy:
        files["target_images"] = out / "target_images.npy"
        files["target_cameras"] = out / "target_cameras.npy"
        np.save(files["target_images"], images_np)
        np.save(files["target_cameras"], cameras.cpu().numpy().astype(np.float32))
    files["summary"] = out / "summary.json"
    seconds = time.perf_counter() - t_start

    cams_list = cameras.cpu().tolist()
    summary: dict[str, object] = {
        "softras_version": __version__,
        "mean_iou": round(mean_iou, 6),
        "initial_mean_iou": round(float(init_iou.mean()), 6),
        "min_view_iou": round(float(final_iou.min()), 6),
        "iterations": iters,
        "seconds": round(seconds, 3),
        "optimize_seconds": round(optimize_seconds, 3),
        "seconds_per_iteration": round(optimize_seconds / iters, 5) if iters else None,
        "target_seconds": round(target_seconds, 3),
        "loss_first": round(losses[0], 6) if losses else None,
        "loss_final": round(final_loss, 6) if losses else None,
        "target": {"source": source, "views": n, "normalization": normalization},
        "template": {
            "source": template_source,
            "num_vertices": int(tv0.shape[0]),
            "num_faces": int(faces.shape[0]),
        },
        "settings": {
            "image_size": image_size,
            "views": n,
            "batch_size": batch,
            "sigma": SIGMA,
            "viewing_angle": VIEWING_ANGLE,
            "aggr_func_rgb": "hard",
            "dist_eps": 1e-10,
            "lr": LEARNING_RATE,
            "betas": list(BETAS),
            "laplacian_weight": LAPLACIAN_WEIGHT,
            "flatten_weight": FLATTEN_WEIGHT,
            "snapshot_every": every,
            "seed": seed,
            "backend": backend_name,
            "device": str(dev),
        },
        "per_view": [
            {
                "distance": round(c[0], 4),
                "elevation": round(c[1], 4),
                "azimuth": round(c[2], 4),
                "iou": round(float(x), 6),
            }
            for c, x in zip(cams_list, final_iou.tolist(), strict=True)
        ],
        "losses_every_snapshot": [round(x, 6) for x in losses[::every]],
        "environment": environment(),
        "files": {k: p.name for k, p in files.items()},
    }
    files["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return DeformResult(
        mean_iou=mean_iou,
        per_view_iou=[float(x) for x in final_iou.tolist()],
        initial_mean_iou=float(init_iou.mean()),
        losses=losses,
        vertices=v_final.cpu(),
        faces=model.faces.cpu(),
        cameras=cameras.cpu(),
        files=files,
        seconds=seconds,
        optimize_seconds=optimize_seconds,
        summary=summary,
    )


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``softras deform``."""
    parser.add_argument(
        "--target", metavar="MESH", default=None,
        help="target mesh (.obj .ply .stl .off .glb .gltf), rendered from --views cameras; "
        "default: a built-in car-like mesh",
    )  # fmt: skip
    parser.add_argument(
        "--target-images", metavar="IMAGES.npy", default=None,
        help="target silhouettes in the original demo's format: uint8 [N, 4, S, S], alpha in channel 3",
    )  # fmt: skip
    parser.add_argument(
        "--target-cameras", metavar="CAMERAS.npy", default=None,
        help="cameras of --target-images: [N, 3] distance, elevation, azimuth (degrees)",
    )  # fmt: skip
    parser.add_argument(
        "--template", metavar="MESH", default=None,
        help="template mesh (manifold; scaled to radius 0.5); default: a sphere of --template-vertices",
    )  # fmt: skip
    parser.add_argument(
        "--template-vertices", type=positive_int, default=TEMPLATE_VERTICES, metavar="N",
        help="vertices of the default sphere template (the original's 1352; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--iters", type=_non_negative_int, default=DEFAULT_ITERS, help="iterations (default: %(default)s)"
    )
    parser.add_argument("--out", "-o", default="out/deform", metavar="DIR", help="output folder (default: %(default)s)")
    add_image_size_argument(
        parser, None, 1, f"silhouette size (default: {DEFAULT_IMAGE_SIZE}, or the size of --target-images)"
    )
    parser.add_argument(
        "--views", type=positive_int, default=None, metavar="N",
        help=f"target views rendered from a mesh target (default: {DEFAULT_VIEWS}: 5 elevations x 24 azimuths)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, metavar="B",
        help="views rendered per iteration, sampled at random (default: %(default)s; the number of "
        "views or more: all of them, as the original)",
    )  # fmt: skip
    parser.add_argument(
        "--snapshot-every", type=positive_int, default=None, metavar="K",
        help="iterations between GIF frames (default: iters/40)",
    )  # fmt: skip
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--backend", choices=available_backends(), default=None,
        help="rasterizer backend (default: the fastest one for the device)",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """``softras deform``: optimise and print the result and the files written."""
    if (args.target_images is None) != (args.target_cameras is None):
        raise UsageError("--target-images and --target-cameras must be given together")
    if args.target is not None and args.target_images is not None:
        raise UsageError("--target cannot be combined with --target-images/--target-cameras")
    result = run_deform(
        args.target,
        target_images=args.target_images,
        target_cameras=args.target_cameras,
        template=args.template,
        template_vertices=args.template_vertices,
        out_dir=args.out,
        iters=args.iters,
        image_size=args.image_size,
        views=args.views,
        batch_size=args.batch_size,
        seed=args.seed,
        snapshot_every=args.snapshot_every,
        backend=args.backend,
        device=args.device,
        progress=not args.quiet,
    )
    s = result.summary
    print(
        f"softras deform: mean IoU {result.mean_iou:.4f} over {len(result.per_view_iou)} views "
        f"(template {result.initial_mean_iou:.4f}), {s['iterations']} iterations in "
        f"{result.optimize_seconds:.1f} s ({s['settings']['backend']} backend), total {result.seconds:.1f} s"  # type: ignore[index]
    )
    for path in result.files.values():
        print(f"  {path}")
    return 0


COMMAND = Command(
    "deform",
    "deform a sphere into a mesh matching multi-view target silhouettes (the paper's demo)",
    add_arguments,
    run,
    order=10,
)
