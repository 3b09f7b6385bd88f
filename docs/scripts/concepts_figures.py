"""docs/images/concepts_*.png: what σ and γ do, and the stipple at shared edges (docs/concepts.md).

Run from the repository root:  python docs/scripts/concepts_figures.py [--out docs/images]

Writes concepts_sigma_sweep.png (RGB and alpha for σ from 1e-6 to 1e-2), concepts_gamma_sweep.png
(RGB for γ from 1e-4 to 1) and concepts_stipple.png (a 4× zoom of α < 1 along shared edges and
three settings that hide it), and prints the numbers quoted on the page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import softras as sr
from softras.shapes import demo_mesh

SIZE = 160  # pixels per panel
SIGMAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
GAMMAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
WHITE = (1.0, 1.0, 1.0)


def demo_scene() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The demo mesh as (vertices [1, V, 3], faces [1, F, 3], vertex colours [1, V, 3])."""
    vertices, faces, colours = demo_mesh()
    return vertices[None], faces[None], colours[None]


def render(size: int, **options: object) -> np.ndarray:
    """RGBA [H, W, 4] of the demo mesh (vertex colours, default lights) from elevation 40°, azimuth 20°."""
    vertices, faces, colours = demo_scene()
    renderer = sr.SoftRenderer(image_size=size, camera_mode="look_at", texture_type="vertex", **options)
    renderer.transform.set_eyes_from_angles(2.6, 40.0, 20.0)
    with torch.no_grad():
        image = renderer(vertices, faces, colours, texture_type="vertex")
    return image[0].permute(1, 2, 0).numpy()


def over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite RGBA over white: rgb·α + (1 − α)."""
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def to_image(rgb: np.ndarray, zoom: int = 1) -> Image.Image:
    """[H, W, 3] (or [H, W]) floats in [0, 1] as a PIL image, enlarged ``zoom``× without smoothing."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8))
    return image.resize((image.width * zoom, image.height * zoom), Image.NEAREST) if zoom > 1 else image


def sheet(rows: list[list[Image.Image]], captions: list[str], row_labels: list[str] | None = None) -> Image.Image:
    """Panels in a grid with one caption per column and an optional label per row."""
    w, h = rows[0][0].size
    gap, band, left = 6, 16, 0 if row_labels is None else 44
    out = Image.new("RGB", (left + len(rows[0]) * (w + gap) + gap, len(rows) * (h + gap) + band + gap), "white")
    draw = ImageDraw.Draw(out)
    for j, text in enumerate(captions):
        draw.text((left + gap + j * (w + gap), 3), text, fill=(0, 0, 0))
    for i, row in enumerate(rows):
        y = band + gap + i * (h + gap)
        if row_labels is not None:
            draw.text((4, y + h // 2 - 6), row_labels[i], fill=(0, 0, 0))
        for j, panel in enumerate(row):
            x = left + gap + j * (w + gap)
            out.paste(panel, (x, y))
            draw.rectangle([x - 1, y - 1, x + w, y + h], outline=(190, 190, 190))
    return out


def sigma_sweep() -> Image.Image:
    """RGB (over white) and alpha for each σ, γ = 1e-4."""
    renders = [render(SIZE, sigma_val=s, gamma_val=1e-4, background_color=WHITE) for s in SIGMAS]
    rows = [[to_image(over_white(r)) for r in renders], [to_image(1.0 - r[..., 3]) for r in renders]]
    return sheet(rows, [f"sigma = {s:g}" for s in SIGMAS], ["RGB", "alpha\n(black 1)"])


def gamma_sweep() -> Image.Image:
    """RGB (over white) for each γ, σ = 1e-5."""
    renders = [render(SIZE, sigma_val=1e-5, gamma_val=g, background_color=WHITE) for g in GAMMAS]
    return sheet([[to_image(over_white(r)) for r in renders]], [f"gamma = {g:g}" for g in GAMMAS])


def interior_patch(alpha: np.ndarray, n: int) -> tuple[slice, slice]:
    """The n × n window inside the silhouette (alpha > 0.5 everywhere) with the most pixels at alpha < 0.99."""
    best, where = -1, (0, 0)
    for r in range(0, alpha.shape[0] - n, 4):
        for c in range(0, alpha.shape[1] - n, 4):
            window = alpha[r : r + n, c : c + n]
            if window.min() > 0.5 and (count := int((window < 0.99).sum())) > best:
                best, where = count, (r, c)
    return slice(where[0], where[0] + n), slice(where[1], where[1] + n)


def stipple() -> tuple[Image.Image, dict[str, float]]:
    """A 4× zoom of one region: the stipple, its alpha, and three settings that hide it."""
    size, zoom = 256, 4
    base = render(size, sigma_val=1e-5, gamma_val=1e-4, background_color=WHITE)
    crop = interior_patch(base[..., 3], 40)
    hard = render(size, sigma_val=1e-5, gamma_val=1e-4, background_color=WHITE, aggr_func_alpha="hard")
    blurry = render(size, sigma_val=1e-3, gamma_val=1e-4, background_color=WHITE)
    alpha = base[crop][..., 3]
    stretched = np.clip((alpha - 0.75) / 0.25, 0, 1)  # 0.75 (black) .. 1 (white)
    panels = [
        to_image(over_white(base)[crop], zoom),
        to_image(stretched, zoom),
        to_image(over_white(hard)[crop], zoom),
        to_image(base[crop][..., :3], zoom),
        to_image(over_white(blurry)[crop], zoom),
    ]
    captions = [
        "rgb*a + white*(1-a)", "alpha: 0.75 black, 1 white", "aggr_func_alpha='hard'",
        "rgb as rendered", "sigma = 1e-3",
    ]
    covered = base[..., 3] > 0.5
    interior = covered.copy()  # covered, and so are the pixels 2 away in each direction
    for shift, axis in ((2, 0), (-2, 0), (2, 1), (-2, 1)):
        interior &= np.roll(covered, shift, axis)
    numbers = {
        "min interior alpha": float(base[..., 3][interior].min()),
        "share of interior pixels with alpha < 0.99": float((base[..., 3][interior] < 0.99).mean()),
        "min interior alpha, hard": float(hard[..., 3][interior].min()),
        "min interior alpha, sigma 1e-3": float(blurry[..., 3][interior].min()),
    }
    return sheet([panels], captions), numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sigma_sweep().save(args.out / "concepts_sigma_sweep.png", optimize=True)
    gamma_sweep().save(args.out / "concepts_gamma_sweep.png", optimize=True)
    picture, numbers = stipple()
    picture.save(args.out / "concepts_stipple.png", optimize=True)
    for name, value in numbers.items():
        print(f"{name}: {value:.4f}")
    print(f"wrote {args.out}/concepts_sigma_sweep.png, concepts_gamma_sweep.png, concepts_stipple.png")


if __name__ == "__main__":
    main()
