"""Draw the pictures of docs/textures.md.

* ``textures_uv_vs_texels.png``: a UV-textured sphere rendered from its image, and from the
  original's R×R texels per face made from it (R = 2 and 6);
* ``textures_mip.png``: a checkered ground plane at low resolution, bilinear vs trilinear
  (mip-mapped) lookup;
* ``textures_fit.png`` and ``textures_fit_views.png``: ``softras fit-texture``'s recovered
  textures and re-rendered held-out views (its default run).

Run from the repository root:  python docs/scripts/textures_figures.py [--out docs/images] [--skip-fit]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

import softras as sr
from softras.apps.figures import label_panels
from softras.apps.fit_texture import builtin_texture, run_fit_texture
from softras.cameras import LookAtCamera
from softras.io.images import composite
from softras.shapes import uv_sphere

BACKEND: str | None = None  # the device's default; --backend overrides


def _rgb(rgba: torch.Tensor) -> np.ndarray:
    return composite(rgba.detach()[:1])[0]


def uv_vs_texels(out: Path, size: int = 256) -> None:
    vertices, faces, uv = uv_sphere(12, 24)  # a face spans ~10 texels: more than a checker cell
    mesh = sr.Mesh(vertices, faces, sr.UVTexture(builtin_texture(), uv=uv))
    camera = LookAtCamera(eye=[1.2, 0.9, -2.2], image_size=(size, size))
    panels, labels = [], []
    for r in (2, 6):
        surface = mesh.to_texture_type("surface", texture_res=r)
        panels.append(_rgb(sr.render(surface, camera, backend=BACKEND).rgba))
        labels.append(f"R x R texels per face, R = {r}")
    panels.append(_rgb(sr.render(mesh, camera, texture_filter="bilinear", backend=BACKEND).rgba))
    labels.append("UV image, bilinear")
    iio.imwrite(out / "textures_uv_vs_texels.png", label_panels(panels, labels))


def mip_vs_bilinear(out: Path, size: int = 96) -> None:
    vertices = torch.tensor([[-4.0, -1.0, 1.5], [4.0, -1.0, 1.5], [4.0, -1.0, 40.0], [-4.0, -1.0, 40.0]])
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]])
    uv = torch.tensor([[0.0, 0.0], [4.0, 0.0], [4.0, 20.0], [0.0, 20.0]])
    cells = (np.indices((64, 64)).sum(0) // 8) % 2  # an 8-texel checker, repeated 4 × 20 times
    image = torch.from_numpy(np.stack([0.15 + 0.7 * cells] * 3, -1)).float()
    mesh = sr.Mesh(vertices, faces, sr.UVTexture(image, (uv, faces)))
    camera = LookAtCamera(eye=[0.0, 0.2, 0.0], at=[0.0, -0.4, 10.0], image_size=(size, size))
    panels, labels = [], []
    for name in ("bilinear", "trilinear"):
        rgba = sr.render(
            mesh, camera, texture_filter=name, sigma_val=1e-6, near=0.1, far=100.0, backend=BACKEND
        ).rgba
        panels.append(np.kron(_rgb(rgba), np.ones((3, 3, 1), dtype=np.uint8)))  # shown 3× larger, pixels kept
        labels.append(f"{name}, {size} x {size} px" + (" (mip-mapped)" if name == "trilinear" else ""))
    iio.imwrite(out / "textures_mip.png", label_panels(panels, labels))


def fit(out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_fit_texture(tmp, progress=True, backend=BACKEND)
        shutil.copy(result.files["textures"], out / "textures_fit.png")
        shutil.copy(result.files["held_out"], out / "textures_fit_views.png")
        return result.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--skip-fit", action="store_true", help="draw the two rendering figures only")
    parser.add_argument("--backend", default=None)
    args = parser.parse_args()
    global BACKEND
    BACKEND = args.backend
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    uv_vs_texels(out)
    mip_vs_bilinear(out)
    if not args.skip_fit:
        print(json.dumps(fit(out), indent=2))


if __name__ == "__main__":
    main()
