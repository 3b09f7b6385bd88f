"""Render a mesh: a turntable GIF, the paper's σ/γ blur sweep, a contact sheet and a textured OBJ.

Python API::

    import softras as sr
    from softras.apps.render import render_turntable, render_sigma_gamma_sweep, save_gif, run_render

    mesh = sr.Mesh.from_file("cow.obj", texture_res=4)
    frames = render_turntable(normalize_mesh(mesh), image_size=128, step_deg=10)  # [36, 4, 128, 128]
    save_gif(frames, "cow.gif", fps=20)

    result = run_render("cow.obj", out_dir="out/cow")  # everything `softras render` writes

CLI: ``softras render [MESH] --out DIR ...`` (see ``softras render --help`` and docs/rendering.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from softras import __version__
from softras.apps import Command, UsageError
from softras.apps.figures import label
from softras.cameras import from_angles, image_hw
from softras.io.images import DEFAULT_GIF_FPS, Color, as_images, composite, save_gif
from softras.lighting import AmbientLighting, DirectionalLighting, Lighting
from softras.mesh import Mesh
from softras.progress import progress as progress_bar
from softras.raster import available_backends, default_backend
from softras.rendering import CameraLike, render

from ._checks import (
    ImageSize,
    add_image_size_argument,
    check_float,
    check_image_size,
    check_int,
    environment,
    positive_float,
    positive_int,
)

__all__ = [
    "DEFAULT_DISTANCE",
    "DEFAULT_ELEVATION",
    "RenderResult",
    "builtin_mesh",
    "composite",
    "display_alpha",
    "display_render",
    "normalize_mesh",
    "render_sigma_gamma_sweep",
    "render_turntable",
    "run_render",
    "save_gif",
    "save_strip",
    "sweep_values",
    "turntable_azimuths",
]

#: Camera distance of the original's examples: with the default 30° viewing angle a mesh
#: inside the unit sphere fills most of the frame.
DEFAULT_DISTANCE = 2.732
DEFAULT_ELEVATION = 30.0
DEFAULT_SWEEP_FRAMES = 16
DEFAULT_BATCH = 8
#: Azimuth of the sweep's fixed camera.
SWEEP_AZIMUTH = 20.0
#: Number of sweep frames in the contact sheet ``sweep_strip.png``.
STRIP_FRAMES = 5
TURNTABLE_FPS = DEFAULT_GIF_FPS
SWEEP_FPS = 8.0
#: Pictures are rendered at this many times their size per side and averaged down (anti-aliasing).
SUPERSAMPLE = 2
#: The original's viewing angle (half field of view, degrees) of ``camera_mode='look_at'``.
VIEWING_ANGLE = 30.0


# ---------------------------------------------------------------------------------------------
# meshes
# ---------------------------------------------------------------------------------------------
def _check_single(mesh: Mesh) -> None:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a softras.Mesh, got {type(mesh).__name__}")
    if mesh.batch_size != 1:
        raise ValueError(f"mesh: expected a batch of 1 mesh, got {mesh.batch_size}")


def normalize_mesh(mesh: Mesh, radius: float = 1.0) -> Mesh:
    """Centre a mesh on its bounding-box centre and scale it into a sphere of ``radius``.

    With ``radius=1`` the default camera (distance 2.732, viewing angle 30°) frames it from
    any direction. Returns a new mesh; ``mesh`` is not modified.
    """
    _check_single(mesh)
    v = mesh.vertices[0]
    center = (v.min(0).values + v.max(0).values) / 2
    extent = (v - center).norm(dim=1).max()
    scale = radius / extent if float(extent) > 0 else torch.ones_like(extent)
    return Mesh((v - center) * scale, mesh.faces[0], mesh.textures[0], texture_type=mesh.texture_type)


def builtin_mesh(texture_res: int = 4, texture_type: str = "surface") -> Mesh:
    """The built-in demo mesh (:func:`softras.shapes.demo_mesh`) with its vertex colours as textures."""
    from softras.shapes import demo_mesh, surface_colors_from_vertex_colors

    vertices, faces, colors = demo_mesh()
    if texture_type == "surface":
        textures = surface_colors_from_vertex_colors(faces, colors, texture_res)
    elif texture_type == "vertex":
        textures = colors
    else:
        raise ValueError(f"texture_type: expected 'surface' or 'vertex', got {texture_type!r}")
    return Mesh(vertices, faces, textures, texture_type=texture_type)


def _cameras(mesh: Mesh, distance: float, elevation: float, azimuths: torch.Tensor) -> CameraLike:
    """Look-at cameras [N] at ``distance`` and ``elevation`` (degrees) around the origin, one per azimuth."""
    az = azimuths.to(device=mesh.device, dtype=mesh.vertices.dtype)
    return from_angles(torch.full_like(az, float(distance)), torch.full_like(az, float(elevation)), az,
                       viewing_angle=VIEWING_ANGLE)  # fmt: skip


Light = Lighting | AmbientLighting | DirectionalLighting


def display_alpha(alpha: torch.Tensor, coverage: torch.Tensor, hard_colour: bool = False) -> torch.Tensor:
    """The alpha to composite a render with for pictures, [B, 1, H, W] in [0, 1].

    Args:
        alpha: [B, 1, H, W] the soft rasterizer's alpha (``aggr_func_alpha='prod'``).
        coverage: [B, 1, H, W] the z-buffer's coverage: 1 where a face contains the pixel centre,
            else 0 (``face_id >= 0``, or the alpha of ``aggr_func_alpha='hard'``).
        hard_colour: the colour is the z-buffer's (``aggr_func_rgb='hard'``).

    Returns:
        ``coverage`` for z-buffer colour: its colour is the background wherever no face contains
        the pixel, so the soft alpha there would composite the background colour (black) over
        the picture's background: a dark halo. Otherwise ``max(alpha, coverage)``: the soft
        colour belongs to the soft alpha, but at small σ that alpha dips below 1 on the edges two
        faces share inside the silhouette (each face alone gives sigmoid(±d²/σ), 3/4 together
        right on the edge), a stipple of background dots along every edge; the coverage is 1
        there, and outside the silhouette the soft alpha keeps the blur that σ gives.
    """
    if hard_colour:
        return coverage.clamp(0, 1)
    return torch.maximum(alpha, coverage).clamp(0, 1)


def display_render(
    mesh: Mesh,
    camera: CameraLike,
    *,
    image_size: ImageSize,
    sigma_val: float = 1e-5,
    gamma_val: float = 1e-4,
    lights: Light | Sequence[Light] | None = None,
    smooth_shading: bool = True,
    supersample: int = SUPERSAMPLE,
    backend: str | None = None,
) -> torch.Tensor:
    """Render ``mesh`` for viewing: smooth shading, the stipple-free alpha and anti-aliasing.

    Colour is the soft rasterizer's (:func:`softras.render` with ``lights``, default the
    original's :class:`~softras.Lighting`); alpha is :func:`display_alpha` of the soft alpha and
    the z-buffer coverage (no stipple on shared edges, σ's blur kept outside the silhouette).
    Rendered at ``supersample`` times the size per side and averaged down with premultiplied
    colour, so that the background under the picture does not darken its edges. No autograd.

    Args:
        mesh: world-space mesh (batch 1 with a batched camera: rendered once per camera).
        camera: a :mod:`softras.cameras` camera.
        image_size: output size, S or (H, W).
        sigma_val, gamma_val: the soft rasterizer's σ and γ.
        lights: lighting (``None``: ``softras.Lighting()``, ambient 0.5 + 0.5 from +y).
        smooth_shading: vertex-normal (Gouraud) shading instead of one normal per face.
        supersample: rendering scale per side (1: no anti-aliasing).
        backend: rasterizer backend (``None``: the default for the mesh's device).

    Returns:
        ``[B, 4, H, W]`` straight (not premultiplied) RGBA in [0, 1] on the CPU, float32.
    """
    h, w = image_hw(image_size)
    s = check_int("supersample", supersample, 1)
    with torch.no_grad():
        out = render(
            mesh,
            camera,
            lights=Lighting() if lights is None else lights,
            outputs=("rgba", "face_id"),
            image_size=(s * h, s * w),
            smooth_shading=smooth_shading,
            sigma_val=sigma_val,
            gamma_val=gamma_val,
            backend=backend,
        )
        alpha = display_alpha(out.alpha, (out.face_id >= 0)[:, None].to(out.alpha))
        rgb = out.rgba[:, :3].clamp(0, 1) * alpha  # premultiplied
        if s > 1:
            rgb, alpha = F.avg_pool2d(rgb, s), F.avg_pool2d(alpha, s)
        rgb = torch.where(alpha > 0, rgb / alpha.clamp_min(1e-12), rgb)
    return torch.cat([rgb.clamp(0, 1), alpha], dim=1).float().cpu()


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------
def turntable_azimuths(step_deg: float) -> torch.Tensor:
    """Azimuths (degrees) of a full turn in steps of about ``step_deg``: ``N = round(360 / step)``
    frames spaced exactly ``360 / N`` apart, so that the animation loops without a jump."""
    step = float(step_deg)
    if not math.isfinite(step) or step <= 0 or step > 360:
        raise ValueError(f"step_deg: expected a number in (0, 360], got {step_deg!r}")
    n = max(1, round(360.0 / step))
    return torch.arange(n, dtype=torch.float64) * (360.0 / n)


def render_turntable(
    mesh: Mesh,
    *,
    image_size: ImageSize = 256,
    distance: float = DEFAULT_DISTANCE,
    elevation: float = DEFAULT_ELEVATION,
    step_deg: float = 4.0,
    sigma_val: float = 1e-5,
    gamma_val: float = 1e-4,
    batch: int = DEFAULT_BATCH,
    smooth_shading: bool = True,
    supersample: int = SUPERSAMPLE,
    backend: str | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Render a full turn of cameras around the y axis.

    The cameras look at the origin from ``distance`` at ``elevation`` degrees, azimuths from
    :func:`turntable_azimuths`; ``batch`` cameras are rendered per call. Frames are rendered
    for viewing by :func:`display_render` (without autograd; render with
    :class:`~softras.SoftRenderer` or :func:`softras.render` directly to differentiate).

    Args:
        mesh: a single mesh (batch size 1), e.g. from :func:`normalize_mesh`.
        image_size: output size: S (S × S) or (H, W) pixels.
        distance: camera distance from the origin.
        elevation: camera elevation in degrees.
        step_deg: azimuth step in degrees.
        sigma_val: the soft rasterizer's σ (default: nearly sharp).
        gamma_val: the soft rasterizer's γ (default: nearly sharp).
        batch: cameras per rendering call (memory vs. speed).
        smooth_shading: see :func:`display_render`.
        supersample: see :func:`display_render`.
        backend: rasterizer backend (``None``: the default for the mesh's device).
        progress: show a progress bar (only on a terminal).

    Returns:
        ``[N, 4, S, S]`` straight RGBA frames in [0, 1] on the CPU, ``N = len(turntable_azimuths(step_deg))``.
    """
    _check_single(mesh)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch: expected an integer >= 1, got {batch!r}")
    azimuths = turntable_azimuths(step_deg)
    n = len(azimuths)
    frames: list[torch.Tensor] = []
    with progress_bar(total=n, desc="turntable", unit="frame", quiet=not progress) as bar:
        for start in range(0, n, batch):
            az = azimuths[start : start + batch]
            camera = _cameras(mesh, distance, elevation, az)
            frames.append(
                display_render(
                    mesh, camera, image_size=image_size, sigma_val=sigma_val, gamma_val=gamma_val,
                    smooth_shading=smooth_shading, supersample=supersample, backend=backend,
                )
            )  # fmt: skip
            bar.update(len(az))
    return torch.cat(frames)


def sweep_values(
    n: int = DEFAULT_SWEEP_FRAMES, gamma_min: float = 1e-4, gamma_max: float = 1e-2, ratio: float = 0.1
) -> tuple[list[float], list[float]]:
    """The σ/γ schedule of the blur sweep: ``n`` γ log-spaced in ``[gamma_min, gamma_max]``, σ = ratio·γ.

    Returns:
        ``(sigmas, gammas)``, each a list of ``n`` floats, sharpest first.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    gammas = [float(g) for g in np.geomspace(gamma_min, gamma_max, n)]
    return [ratio * g for g in gammas], gammas


def render_sigma_gamma_sweep(
    mesh: Mesh,
    *,
    n: int = DEFAULT_SWEEP_FRAMES,
    gammas: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    image_size: ImageSize = 256,
    distance: float = DEFAULT_DISTANCE,
    elevation: float = DEFAULT_ELEVATION,
    azimuth: float = SWEEP_AZIMUTH,
    smooth_shading: bool = True,
    supersample: int = SUPERSAMPLE,
    backend: str | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Render one view with increasingly soft σ/γ (the paper's blur illustration).

    Larger σ spreads each triangle's coverage further beyond its edges (blurry silhouettes);
    larger γ flattens the depth softmax so that occluded faces show through.

    Args:
        mesh: a single mesh (batch size 1).
        n: number of frames when ``gammas`` is not given (γ from 1e-4 to 1e-2, log-spaced).
        gammas: explicit γ values, one per frame.
        sigmas: explicit σ values (default: ``γ / 10``).
        image_size: frame size of the fixed camera: S (S × S) or (H, W) pixels.
        distance: camera distance of the fixed camera.
        elevation: camera elevation in degrees.
        azimuth: camera azimuth in degrees.
        smooth_shading: see :func:`display_render`.
        supersample: see :func:`display_render` (its alpha keeps σ's blur outside the
            silhouette and is 1 inside it).
        backend: rasterizer backend.
        progress: show a progress bar.

    Returns:
        ``[N, 4, S, S]`` straight RGBA frames on the CPU, in the order of ``gammas``.
    """
    _check_single(mesh)
    if gammas is None:
        default_sigmas, gammas = sweep_values(n)
        if sigmas is None:
            sigmas = default_sigmas
    gammas = [float(g) for g in gammas]
    sigmas = [g / 10 for g in gammas] if sigmas is None else [float(s) for s in sigmas]
    if len(sigmas) != len(gammas) or not gammas:
        raise ValueError(f"sigmas/gammas: expected equally many (>= 1), got {len(sigmas)} and {len(gammas)}")
    camera = _cameras(mesh, distance, elevation, torch.tensor([float(azimuth)], dtype=torch.float64))
    frames: list[torch.Tensor] = []
    for sigma, gamma in progress_bar(
        list(zip(sigmas, gammas, strict=True)), desc="σ/γ sweep", unit="frame", quiet=not progress
    ):
        frames.append(
            display_render(
                mesh, camera, image_size=image_size, sigma_val=sigma, gamma_val=gamma,
                smooth_shading=smooth_shading, supersample=supersample, backend=backend,
            )
        )  # fmt: skip
    return torch.cat(frames)


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------
def _annotate(images: np.ndarray, labels: Sequence[str], background: Color) -> np.ndarray:
    """Add a band with ``labels[i]`` under image ``i`` (skipped for images under 64 px wide)."""
    w = images.shape[2]
    if w < 64:
        return images
    fill = tuple(round(255 * float(c)) for c in background)
    return np.stack(label(list(images), labels, size=max(9, w // 16), background=fill))


def _sweep_labels(sigmas: Sequence[float], gammas: Sequence[float]) -> list[str]:
    # ASCII names: Pillow's default font has no Greek letters.
    return [f"sigma={s:.0e}, gamma={g:.0e}".replace("e-0", "e-") for s, g in zip(sigmas, gammas, strict=True)]


def save_strip(
    frames: torch.Tensor | np.ndarray,
    path: str | os.PathLike,
    count: int = STRIP_FRAMES,
    background: Color = (1.0, 1.0, 1.0),
    gap: int = 4,
) -> tuple[Path, list[int]]:
    """Write ``count`` evenly spaced frames side by side as one PNG (a contact sheet).

    Returns:
        ``(path, indices of the frames used)``.
    """
    from PIL import Image

    images = as_images(frames, background)
    n = len(images)
    idx = sorted({round(float(i)) for i in np.linspace(0, n - 1, min(count, n))})
    h, w = images.shape[1:3]
    fill = tuple(round(255 * float(c)) for c in background)
    sheet = Image.new("RGB", (len(idx) * w + (len(idx) - 1) * gap, h), fill)
    for k, i in enumerate(idx):
        sheet.paste(Image.fromarray(images[i]), (k * (w + gap), 0))
    path = Path(path)
    sheet.save(path, optimize=True)
    return path, idx


# ---------------------------------------------------------------------------------------------
# the whole app
# ---------------------------------------------------------------------------------------------
@dataclass
class RenderResult:
    """What :func:`run_render` did.

    Attributes:
        out_dir: the output folder.
        files: name -> path of every file written (``turntable``, ``sweep``, ``strip``, ``mesh``,
            ``mtl`` and ``texture`` for surface textures, ``summary``).
        turntable_frames, sweep_frames: frame counts of the two GIFs.
        timings: seconds per stage (``load``, ``turntable``, ``sweep``, ``write``) and ``total``.
        summary: the content of ``summary.json``.
    """

    out_dir: Path
    files: dict[str, Path]
    turntable_frames: int
    sweep_frames: int
    timings: dict[str, float]
    summary: dict[str, object] = field(repr=False)


def _load(mesh_path: str | os.PathLike | None, texture_res: int, texture_type: str) -> tuple[Mesh, str]:
    if mesh_path is None:
        return builtin_mesh(texture_res, texture_type), "built-in demo mesh (softras.shapes.demo_mesh)"
    path = Path(mesh_path)
    if not path.exists():
        raise FileNotFoundError(f"mesh file not found: {path}")
    if not path.is_file():
        raise UsageError(f"not a mesh file: {path}")
    try:
        mesh = Mesh.from_file(path, texture_res=texture_res, texture_type=texture_type)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot load {path}: {exc}") from exc
    return mesh, str(path)


def run_render(
    mesh_path: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "out/render",
    *,
    image_size: ImageSize = 256,
    distance: float = DEFAULT_DISTANCE,
    elevation: float = DEFAULT_ELEVATION,
    texture_res: int = 4,
    texture_type: str = "surface",
    step_deg: float = 4.0,
    sweep_frames: int = DEFAULT_SWEEP_FRAMES,
    smooth_shading: bool = True,
    backend: str | None = None,
    quiet: bool = False,
) -> RenderResult:
    """Load a mesh and write a turntable GIF, a σ/γ sweep GIF, a contact sheet, the mesh and a summary.

    Files in ``out_dir`` (created if needed): ``turntable.gif``, ``sigma_gamma_sweep.gif``,
    ``sweep_strip.png``, ``mesh.obj`` (+ ``mesh.mtl`` and ``mesh.png`` for surface textures),
    ``summary.json``.

    Args:
        mesh_path: OBJ/PLY/STL/OFF/GLB/GLTF file; ``None`` for the built-in demo mesh. The mesh is
            centred and scaled into the unit sphere so that the default camera frames it.
        out_dir: output folder.
        image_size: frame size: S (S × S) or (H, W) pixels.
        distance: camera distance for both GIFs.
        elevation: camera elevation (degrees) for both GIFs.
        texture_res: texels per face side when loading (surface textures).
        texture_type: ``'surface'`` or ``'vertex'``.
        step_deg: turntable azimuth step in degrees (``round(360 / step)`` frames).
        sweep_frames: frames of the sweep (γ log-spaced in [1e-4, 1e-2], σ = γ / 10).
        smooth_shading: vertex-normal (Gouraud) shading; ``False``: one normal per face, as the
            original's surface textures.
        backend: rasterizer backend (``None``: the default for the device).
        quiet: no progress bars.

    Raises:
        FileNotFoundError: ``mesh_path`` does not exist.
        UsageError: an argument is out of range or the file cannot be read as a mesh.
    """
    t_start = time.perf_counter()
    image_size = check_image_size("image_size", image_size, 1)
    texture_res = check_int("texture_res", texture_res, 1)
    sweep_frames = check_int("sweep_frames", sweep_frames, 1)
    distance = check_float("distance", distance, positive=True)
    elevation = check_float("elevation", elevation)
    step_deg = check_float("step_deg", step_deg, positive=True)
    if step_deg > 360:
        raise UsageError(f"step_deg: expected a number in (0, 360], got {step_deg!r}")
    if texture_type not in ("surface", "vertex"):
        raise UsageError(f"texture_type: expected 'surface' or 'vertex', got {texture_type!r}")
    if backend is not None and backend not in available_backends():
        raise UsageError(f"backend: expected one of {available_backends()}, got {backend!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path exists and is not a folder: {out}")

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    raw, source = _load(mesh_path, texture_res, texture_type)
    mesh = normalize_mesh(raw)
    timings["load"] = time.perf_counter() - t0
    backend_name = backend or default_backend(mesh.device)

    t0 = time.perf_counter()
    turntable = render_turntable(
        mesh,
        image_size=image_size,
        distance=distance,
        elevation=elevation,
        step_deg=step_deg,
        smooth_shading=smooth_shading,
        backend=backend,
        progress=not quiet,
    )
    timings["turntable"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sigmas, gammas = sweep_values(sweep_frames)
    sweep = render_sigma_gamma_sweep(
        mesh,
        gammas=gammas,
        sigmas=sigmas,
        image_size=image_size,
        distance=distance,
        elevation=elevation,
        smooth_shading=smooth_shading,
        backend=backend,
        progress=not quiet,
    )
    timings["sweep"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["turntable"] = save_gif(turntable, out / "turntable.gif", fps=TURNTABLE_FPS)
    labelled = _annotate(composite(sweep), _sweep_labels(sigmas, gammas), (1.0, 1.0, 1.0))
    files["sweep"] = save_gif(labelled, out / "sigma_gamma_sweep.gif", fps=SWEEP_FPS)
    files["strip"], strip_idx = save_strip(labelled, out / "sweep_strip.png")
    mesh.save_obj(out / "mesh.obj", save_texture=True, texture_res_out=16)
    files["mesh"] = out / "mesh.obj"
    for key, suffix in (("mtl", ".mtl"), ("texture", ".png")):
        if (out / f"mesh{suffix}").is_file():
            files[key] = out / f"mesh{suffix}"
    files["summary"] = out / "summary.json"
    timings["write"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    verts = raw.vertices[0]
    summary: dict[str, object] = {
        "softras_version": __version__,
        "mesh": {
            "source": source,
            "num_vertices": raw.num_vertices,
            "num_faces": raw.num_faces,
            "texture_type": raw.texture_type,
            "texture_res": raw.texture_res,
            "bbox_min": [round(float(x), 6) for x in verts.min(0).values],
            "bbox_max": [round(float(x), 6) for x in verts.max(0).values],
            "normalized_to_radius": 1.0,
        },
        "settings": {
            "image_size": image_size,
            "distance": distance,
            "elevation": elevation,
            "viewing_angle": 30.0,
            "step_deg": step_deg,
            "turntable_frames": len(turntable),
            "turntable_sigma": 1e-5,
            "turntable_gamma": 1e-4,
            "sweep_frames": len(sweep),
            "sweep_azimuth": SWEEP_AZIMUTH,
            "sweep_sigmas": [float(f"{x:.6g}") for x in sigmas],
            "sweep_gammas": [float(f"{x:.6g}") for x in gammas],
            "strip_frames": strip_idx,
            "shading": "smooth" if smooth_shading else "flat",
            "supersample": SUPERSAMPLE,
            "backend": backend_name,
            "device": str(mesh.device),
        },
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "environment": environment(),
        "files": {k: p.name for k, p in files.items()},
    }
    files["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return RenderResult(out, files, len(turntable), len(sweep), timings, summary)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _step(text: str) -> float:
    value = positive_float(text)
    if value > 360:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 360], got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``softras render``."""
    parser.add_argument(
        "mesh", nargs="?", default=None, metavar="MESH",
        help="mesh file (.obj .ply .stl .off .glb .gltf); default: the built-in demo mesh",
    )  # fmt: skip
    parser.add_argument("--out", "-o", default="out/render", metavar="DIR", help="output folder (default: %(default)s)")
    add_image_size_argument(parser, 256, 1, "frame size")
    parser.add_argument(
        "--distance", type=positive_float, default=DEFAULT_DISTANCE, help="camera distance (default: %(default)s)"
    )
    parser.add_argument(
        "--elevation", type=_finite_float, default=DEFAULT_ELEVATION, metavar="DEG",
        help="camera elevation in degrees (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--texture-res", type=positive_int, default=4, metavar="R",
        help="texels per face side when loading surface textures (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--texture-type", choices=("surface", "vertex"), default="surface", help="texture type (default: %(default)s)"
    )
    parser.add_argument(
        "--step", type=_step, default=4.0, metavar="DEG",
        help="turntable azimuth step in degrees; round(360/step) frames (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--sweep-frames", type=positive_int, default=DEFAULT_SWEEP_FRAMES, metavar="N",
        help="frames of the σ/γ sweep, γ from 1e-4 to 1e-2, σ = γ/10 (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--shading", choices=("smooth", "flat"), default="smooth",
        help="smooth: vertex normals interpolated across faces; flat: one normal per face (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=available_backends(), default=None,
        help="rasterizer backend (default: the fastest one for the device)",
    )  # fmt: skip
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """``softras render``: render and print one line per file written."""
    result = run_render(
        args.mesh,
        args.out,
        image_size=args.image_size,
        distance=args.distance,
        elevation=args.elevation,
        texture_res=args.texture_res,
        texture_type=args.texture_type,
        step_deg=args.step,
        sweep_frames=args.sweep_frames,
        smooth_shading=args.shading == "smooth",
        backend=args.backend,
        quiet=args.quiet,
    )
    t = result.timings
    notes = {
        "turntable": f"turntable GIF, {result.turntable_frames} frames",
        "sweep": f"σ/γ sweep GIF, {result.sweep_frames} frames",
        "strip": "σ/γ sweep contact sheet",
        "mesh": "mesh (normalised)",
        "mtl": "material",
        "texture": "texture atlas",
        "summary": "settings, mesh stats, timings",
    }
    print(f"softras render: wrote {len(result.files)} files to {result.out_dir}/")
    for key, path in result.files.items():
        print(f"  {path}  ({notes.get(key, key)})")
    print(
        f"done in {t['total']:.1f} s (turntable {t['turntable']:.1f} s, sweep {t['sweep']:.1f} s, "
        f"load {t['load']:.1f} s, write {t['write']:.1f} s)"
    )
    return 0


COMMAND = Command(
    "render",
    "render a mesh (default: built-in) to a turntable GIF and a σ/γ blur-sweep GIF",
    add_arguments,
    run,
    order=0,
)
