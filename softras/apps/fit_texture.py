"""Recover a texture image from multi-view photos of a textured mesh, with the soft renderer.

The built-in scene is a UV sphere (:func:`softras.shapes.uv_sphere`) wearing a known texture
image (:func:`builtin_texture`: hue bands and a fine checker). Its "photos" are anti-aliased
renders (2 × 2 supersampled, mip-mapped lookup) from ``views`` cameras around it. The fit starts
from a flat grey image and minimises the photometric error of the soft renders of the training
views with Adam, once per texture filter:

* ``bilinear``: each pixel reads the base level only. Where the texture is minified (more
  texels than pixels), a pixel's gradient reaches only the 4 texels around its sample point, so
  the texels between the samples never change;
* ``trilinear``: mip-mapped. A pixel reads the level whose texels match its footprint, and the
  gradient of every level flows back to the base image, so every texel the pixel covers learns.

Reported per filter: the PSNR of the recovered texture against the truth over the texels seen by
at least one training view (analytically, from the sphere: the surface point's normal within 75°
of the view direction), and the PSNR of re-rendered held-out views (their covered pixels).
``refine_vertices=True`` also fits per-vertex offsets, starting from a sphere with radial noise.

Python API::

    from softras.apps.fit_texture import run_fit_texture

    result = run_fit_texture(out_dir="out/fit_texture")
    print(result.texture_psnr, result.held_out_psnr)    # {'bilinear': ..., 'trilinear': ...}

CLI: ``softras fit-texture [--iters N] [--image-size S] [--refine-vertices] ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from softras import __version__
from softras._validation import resolve_device
from softras.apps import Command
from softras.apps.figures import label_panels
from softras.cameras import LookAtCamera
from softras.functional import get_points_from_angles
from softras.io.images import composite, save_gif
from softras.progress import progress as progress_bar
from softras.raster import RasterSettings, available_backends, default_backend, rasterize_channels, uv_maps
from softras.shapes import uv_sphere

from ._checks import check_int, environment, positive_int

__all__ = [
    "DEFAULT_ITERS",
    "FILTERS",
    "FitTextureResult",
    "TextureScene",
    "builtin_scene",
    "builtin_texture",
    "fit_texture",
    "render_views",
    "run_fit_texture",
    "visible_texels",
]

DEFAULT_ITERS = 150
DEFAULT_VIEWS = 24
DEFAULT_HELD_OUT = 4
DEFAULT_IMAGE_SIZE = 64
DEFAULT_TEXTURE_SIZE = (128, 256)
DEFAULT_BATCH_SIZE = 8
CAMERA_DISTANCE = 2.6
VISIBLE_ANGLE_DEG = 75.0
FILTERS = ("bilinear", "trilinear")
#: σ and γ of the fit's renders (sharp edges: the geometry is known, only colours are fitted).
SIGMA, GAMMA = 1e-5, 1e-4


def builtin_texture(height: int = DEFAULT_TEXTURE_SIZE[0], width: int = DEFAULT_TEXTURE_SIZE[1]) -> torch.Tensor:
    """The built-in texture [height, width, 3] in [0, 1]: hue running once around in u, brightness
    bands in v, and a checker of 8 × 8-texel cells (fine detail that a minified lookup aliases)."""
    v, u = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
    hue = 2 * math.pi * u
    base = np.stack([0.5 + 0.35 * np.cos(hue - k * 2 * math.pi / 3) for k in range(3)], -1)
    bands = 0.75 + 0.25 * np.cos(6 * math.pi * v)[..., None]
    checker = ((np.arange(height)[:, None] // 8 + np.arange(width)[None] // 8) % 2)[..., None]
    return torch.from_numpy(np.clip(base * bands * (0.7 + 0.3 * checker), 0, 1)).float()


@dataclass
class TextureScene:
    """A textured mesh and its cameras.

    Attributes:
        vertices: [V, 3]; faces: [F, 3]; uv: [F, 3, 2] per-corner UVs.
        texture: [H, W, 3] the true texture image.
        train_eyes: [B_train, 3] the training cameras' positions (looking at the origin, +y up);
        held_out_eyes: [B_held, 3] the held-out ones'.
        image_size: the photos' S (S × S).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor
    texture: torch.Tensor
    train_eyes: torch.Tensor
    held_out_eyes: torch.Tensor
    image_size: int


def _view_angles(views: int) -> tuple[np.ndarray, np.ndarray]:
    """(elevation, azimuth) in degrees of ``views`` cameras: azimuths evenly around, elevations
    alternating between −25° and 35° so that both poles' neighbourhoods are seen."""
    azimuth = np.arange(views) * (360.0 / views)
    elevation = np.where(np.arange(views) % 2 == 0, 35.0, -25.0)
    return elevation, azimuth


def builtin_scene(
    views: int = DEFAULT_VIEWS,
    held_out: int = DEFAULT_HELD_OUT,
    image_size: int = DEFAULT_IMAGE_SIZE,
    texture_size: tuple[int, int] = DEFAULT_TEXTURE_SIZE,
    device: torch.device | str = "cpu",
) -> TextureScene:
    """The built-in scene: a 24 × 48 UV sphere with :func:`builtin_texture`, ``views`` cameras at
    distance 2.6 of which every ``views // held_out``-th is held out."""
    vertices, faces, uv = uv_sphere(24, 48)
    elevation, azimuth = _view_angles(views)
    step = max(1, views // max(held_out, 1))
    held = np.zeros(views, dtype=bool)
    if held_out:
        held[step // 2 :: step][:held_out] = True

    def eyes(mask: np.ndarray) -> torch.Tensor:
        distance = torch.full((int(mask.sum()),), CAMERA_DISTANCE)
        return get_points_from_angles(distance, torch.from_numpy(elevation[mask]), torch.from_numpy(azimuth[mask]))

    return TextureScene(
        vertices.to(device), faces.to(device), uv.to(device), builtin_texture(*texture_size).to(device),
        eyes(~held).float().to(device), eyes(held).float().to(device), image_size,
    )  # fmt: skip


def render_views(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    texture: torch.Tensor,
    eyes: torch.Tensor,
    image_size: int,
    texture_filter: str,
    backend: str | None = None,
    supersample: int = 1,
) -> torch.Tensor:
    """Unlit RGBA renders [B, 4, S, S] of the textured mesh seen from each of the B cameras at ``eyes``
    [B, 3] looking at the origin (vertices [V, 3] or [B, V, 3], faces [F, 3], uv [F, 3, 2], texture
    [H, W, 3]); ``supersample`` k renders at k·S and averages k × k blocks (anti-aliased photos)."""
    b = eyes.shape[0]
    size = image_size * supersample
    points = vertices.expand(b, *vertices.shape[-2:])
    face_vertices = LookAtCamera(eye=eyes).to_screen(points)[:, faces]
    settings = RasterSettings.create(size, sigma_val=SIGMA, gamma_val=GAMMA, near=0.1, far=10.0)
    maps = uv_maps(uv, texture, texture_filter=texture_filter)
    result = rasterize_channels(face_vertices, settings, uv=maps, backend=backend)
    rgba = torch.cat([result.channels, result.alpha], 1)
    return F.avg_pool2d(rgba, supersample) if supersample > 1 else rgba


def visible_texels(eyes: torch.Tensor, texture_size: tuple[int, int], max_angle_deg: float = VISIBLE_ANGLE_DEG):
    """[H, W] bool: the texels of the unit sphere's equirectangular map (:func:`softras.shapes.uv_sphere`)
    whose surface point some camera at ``eyes`` [B, 3] sees within ``max_angle_deg`` of its normal."""
    h, w = texture_size
    v, u = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
    lon, lat = 2 * math.pi * u, math.pi * ((1 - v) - 0.5)  # image row 0 is v = 1
    point = torch.stack([lat.cos() * lon.sin(), lat.sin(), -lat.cos() * lon.cos()], -1).to(eyes)
    to_eye = eyes[:, None, None] - point[None]
    cos = (to_eye * point[None]).sum(-1) / to_eye.norm(dim=-1)
    return (cos > math.cos(math.radians(max_angle_deg))).any(0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """10·log10(1 / MSE) of values in [0, 1]."""
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@dataclass
class FitResult:
    """One fit: the recovered texture [H, W, 3], vertices [V, 3], loss per iteration, the frames
    of its progress (uint8 [H, W, 3] texture images) and its time."""

    texture: torch.Tensor
    vertices: torch.Tensor
    losses: list[float]
    frames: list[np.ndarray]
    seconds: float


def fit_texture(
    scene: TextureScene,
    photos: torch.Tensor,
    texture_filter: str,
    *,
    iters: int = DEFAULT_ITERS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = 0.1,
    start_vertices: torch.Tensor | None = None,
    vertex_lr: float = 0.0,
    seed: int = 0,
    backend: str | None = None,
    frames: int = 30,
    progress: bool = True,
) -> FitResult:
    """Fit the texture (sigmoid of a logit image, from flat grey) and, with ``vertex_lr`` > 0, per-vertex
    offsets from ``start_vertices`` to the training ``photos`` [B_train, 4, S, S] with Adam."""
    h, w, _ = scene.texture.shape
    logits = torch.zeros(h, w, 3, device=photos.device, requires_grad=True)
    start = scene.vertices if start_vertices is None else start_vertices
    offsets = torch.zeros_like(start, requires_grad=True)
    groups = [{"params": [logits], "lr": lr}]
    if vertex_lr > 0:
        groups.append({"params": [offsets], "lr": vertex_lr})
    optimizer = torch.optim.Adam(groups)
    generator = torch.Generator().manual_seed(seed)
    n = photos.shape[0]
    losses, snapshots = [], []
    every = max(1, iters // max(frames, 1))
    t0 = time.perf_counter()
    for it in progress_bar(range(iters), desc=f"fit {texture_filter}", unit="iter", quiet=not progress):
        pick = torch.randperm(n, generator=generator)[: min(batch_size, n)]
        texture = torch.sigmoid(logits)
        rendered = render_views(
            start + offsets, scene.faces, scene.uv, texture, scene.train_eyes[pick.to(photos.device)], scene.image_size,
            texture_filter, backend,
        )  # fmt: skip
        target = photos[pick.to(photos.device)]
        loss = F.mse_loss(rendered[:, :3], target[:, :3]) + F.mse_loss(rendered[:, 3], target[:, 3])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if it % every == 0 or it == iters - 1:
            snapshots.append((texture.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8))
    texture = torch.sigmoid(logits).detach()
    return FitResult(texture, (start + offsets).detach(), losses, snapshots, time.perf_counter() - t0)


@dataclass
class FitTextureResult:
    """What :func:`run_fit_texture` measured and wrote.

    Attributes:
        texture_psnr: per filter, PSNR (dB) of the recovered texture on the visible texels.
        held_out_psnr: per filter, PSNR (dB) of the held-out views' covered pixels.
        start_texture_psnr: the flat grey start's texture PSNR on the same texels.
        visible_fraction: the share of texels counted as visible.
        vertex_rms: per filter, RMS distance of the fitted vertices to the truth (refine_vertices), else {}.
        seconds: per filter, the fit's time; total: the run's.
        files: name -> path of every file written.
    """

    texture_psnr: dict[str, float]
    held_out_psnr: dict[str, float]
    start_texture_psnr: float
    visible_fraction: float
    vertex_rms: dict[str, float]
    seconds: dict[str, float]
    total_seconds: float
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)


def run_fit_texture(
    out_dir: str | Path = "out/fit_texture",
    *,
    iters: int = DEFAULT_ITERS,
    image_size: int = DEFAULT_IMAGE_SIZE,
    views: int = DEFAULT_VIEWS,
    held_out: int = DEFAULT_HELD_OUT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    texture_size: tuple[int, int] = DEFAULT_TEXTURE_SIZE,
    filters: tuple[str, ...] = FILTERS,
    refine_vertices: bool = False,
    seed: int = 0,
    backend: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> FitTextureResult:
    """Render the built-in scene's photos, fit its texture once per filter, and write
    ``textures.png`` (truth, start, each fit), ``held_out.png`` (photo vs re-render per filter),
    ``fit.gif`` (the last filter's texture as it is fitted) and ``summary.json``."""
    iters = check_int("iters", iters, 1)
    image_size = check_int("image_size", image_size, 8)
    views = check_int("views", views, 2)
    held_out = check_int("held_out", held_out, 1)
    if held_out >= views:
        raise ValueError(f"held_out: expected fewer held-out views than views ({views}), got {held_out}")
    for name in filters:
        if name not in ("nearest", *FILTERS):
            raise ValueError(f"filters: expected names from ('nearest', 'bilinear', 'trilinear'), got {name!r}")
    device = resolve_device(device)
    backend = backend or default_backend(device)
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = builtin_scene(views, held_out, image_size, texture_size, device)
    with torch.no_grad():
        photos = render_views(
            scene.vertices, scene.faces, scene.uv, scene.texture, scene.train_eyes, image_size, "trilinear", backend, 2
        )
        held_photos = render_views(
            scene.vertices,
            scene.faces,
            scene.uv,
            scene.texture,
            scene.held_out_eyes,
            image_size,
            "trilinear",
            backend,
            2,
        )
    visible = visible_texels(scene.train_eyes, texture_size).to(device)
    start_vertices = None
    if refine_vertices:
        g = torch.Generator().manual_seed(seed + 1)
        noise = 1 + 0.03 * torch.randn(scene.vertices.shape[0], 1, generator=g).to(device)
        start_vertices = scene.vertices * noise
    fits: dict[str, FitResult] = {}
    texture_psnr, held_psnr, vertex_rms = {}, {}, {}
    for name in filters:
        fit = fit_texture(
            scene, photos, name, iters=iters, batch_size=batch_size, start_vertices=start_vertices,
            vertex_lr=2e-3 if refine_vertices else 0.0, seed=seed, backend=backend, progress=progress,
        )  # fmt: skip
        fits[name] = fit
        texture_psnr[name] = psnr(fit.texture[visible], scene.texture[visible])
        with torch.no_grad():
            again = render_views(
                fit.vertices, scene.faces, scene.uv, fit.texture, scene.held_out_eyes, image_size, name, backend
            )
        covered = held_photos[:, 3] > 0.5
        held_psnr[name] = psnr(
            again[:, :3].permute(0, 2, 3, 1)[covered], held_photos[:, :3].permute(0, 2, 3, 1)[covered]
        )
        if refine_vertices:
            vertex_rms[name] = float((fit.vertices - scene.vertices).norm(dim=1).pow(2).mean().sqrt())
    grey = torch.full_like(scene.texture, 0.5)
    start_psnr = psnr(grey[visible], scene.texture[visible])

    files = _write_figures(out, scene, fits, photos=held_photos, backend=backend, texture_psnr=texture_psnr)
    total = time.perf_counter() - t_start
    summary = {
        "softras": __version__,
        "scene": {
            "mesh": "uv_sphere(24, 48)", "faces": int(scene.faces.shape[0]), "texture_size": list(texture_size),
            "views": views, "held_out": held_out, "image_size": image_size,
            "photos": "2x2 supersampled, trilinear (mip-mapped) lookup",
        },
        "settings": {
            "iters": iters, "batch_size": batch_size, "lr": 0.1, "sigma": SIGMA, "gamma": GAMMA, "backend": backend,
            "device": str(device), "refine_vertices": refine_vertices, "seed": seed,
        },
        "texture_psnr_db": texture_psnr,
        "held_out_psnr_db": held_psnr,
        "start_texture_psnr_db": start_psnr,
        "visible_texel_fraction": float(visible.float().mean()),
        "vertex_rms": vertex_rms,
        "fit_seconds": {k: f.seconds for k, f in fits.items()},
        "total_seconds": total,
        "environment": environment(),
    }  # fmt: skip
    files["summary"] = out / "summary.json"
    files["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    return FitTextureResult(
        texture_psnr, held_psnr, start_psnr, float(visible.float().mean()), vertex_rms,
        {k: f.seconds for k, f in fits.items()}, total, files, summary,
    )  # fmt: skip


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def _write_figures(
    out: Path,
    scene: TextureScene,
    fits: dict[str, FitResult],
    *,
    photos: torch.Tensor,
    backend: str,
    texture_psnr: dict[str, float],
) -> dict[str, Path]:
    import imageio.v3 as iio

    files = {}
    panels = [_uint8(scene.texture), _uint8(torch.full_like(scene.texture, 0.5))]
    labels = ["truth", "start (grey)"]
    for name, fit in fits.items():
        panels.append(_uint8(fit.texture))
        labels.append(f"{name}: {texture_psnr[name]:.1f} dB")
    files["textures"] = out / "textures.png"
    iio.imwrite(files["textures"], label_panels(panels, labels))
    rows = [composite(photos[:, :4])]
    row_labels = ["held-out photos"]
    for name, fit in fits.items():
        with torch.no_grad():
            again = render_views(
                fit.vertices, scene.faces, scene.uv, fit.texture, scene.held_out_eyes, scene.image_size, name, backend
            )
        rows.append(composite(again))
        row_labels.append(f"re-rendered, {name}")
    strips = [np.concatenate(list(r), axis=1) for r in rows]
    files["held_out"] = out / "held_out.png"
    iio.imwrite(files["held_out"], label_panels(strips, row_labels))
    last = fits[list(fits)[-1]]
    files["gif"] = save_gif(np.stack(last.frames), out / "fit.gif", fps=10)
    return files


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``softras fit-texture``."""
    add = parser.add_argument
    add("--iters", type=positive_int, default=DEFAULT_ITERS, help="iterations per filter (default: %(default)s)")
    add(
        "--image-size",
        type=positive_int,
        default=DEFAULT_IMAGE_SIZE,
        metavar="S",
        help="photos' S (default: %(default)s)",
    )
    add("--views", type=positive_int, default=DEFAULT_VIEWS, help="cameras around the mesh (default: %(default)s)")
    add("--held-out", type=positive_int, default=DEFAULT_HELD_OUT, help="of which held out (default: %(default)s)")
    add(
        "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="views per iteration (default: %(default)s)"
    )
    add(
        "--filters", nargs="+", default=list(FILTERS), choices=["nearest", *FILTERS],
        help="texture filters to fit with, one fit each (default: %(default)s)",
    )  # fmt: skip
    add("--refine-vertices", action="store_true", help="also fit per-vertex offsets, from a noisy sphere")
    add("--out", "-o", default="out/fit_texture", metavar="DIR", help="output folder (default: %(default)s)")
    add("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    add("--backend", choices=available_backends(), default=None, help="rasterizer backend (default: the device's)")
    add("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    add("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """``softras fit-texture``: fit and print the PSNRs and the files written."""
    result = run_fit_texture(
        args.out, iters=args.iters, image_size=args.image_size, views=args.views, held_out=args.held_out,
        batch_size=args.batch_size, filters=tuple(args.filters), refine_vertices=args.refine_vertices,
        seed=args.seed, backend=args.backend, device=args.device, progress=not args.quiet,
    )  # fmt: skip
    print(f"softras fit-texture: start (grey) texture PSNR {result.start_texture_psnr:.2f} dB "
          f"on {100 * result.visible_fraction:.0f} % visible texels")  # fmt: skip
    for name in result.texture_psnr:
        extra = f", vertex RMS {result.vertex_rms[name]:.4f}" if name in result.vertex_rms else ""
        print(f"  {name:9s}: texture {result.texture_psnr[name]:.2f} dB, held-out views "
              f"{result.held_out_psnr[name]:.2f} dB, {result.seconds[name]:.1f} s{extra}")  # fmt: skip
    print(f"  total {result.total_seconds:.1f} s")
    for path in result.files.values():
        print(f"  {path}")
    return 0


COMMAND = Command(
    "fit-texture",
    "recover a texture image from multi-view photos of a textured mesh (UV textures, mip-mapping)",
    add_arguments,
    run,
    order=40,
)
