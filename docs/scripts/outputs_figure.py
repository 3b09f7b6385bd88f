"""Draw docs/images/outputs.png: every output of softras.render for one mesh, from one call.

Run from the repository root:  python docs/scripts/outputs_figure.py [--out docs/images/outputs.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw

import softras
from softras.apps.figures import font
from softras.cameras import LookAtCamera

SIZE = (240, 320)  # (H, W)
LABEL = 26


def colormap(values: np.ndarray) -> np.ndarray:
    """[H, W] values in [0, 1] -> [H, W, 3] viridis colours."""
    return colormaps["viridis"](values)[..., :3]


def depth_image(depth: np.ndarray, shown: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Near = yellow, far = dark blue; pixels not ``shown`` are black."""
    rgb = colormap(np.clip((hi - depth) / (hi - lo), 0.0, 1.0))
    return np.where(shown[..., None], rgb, 0.0)


def face_colours(face_id: np.ndarray, num_faces: int) -> np.ndarray:
    """A random colour per face id (seeded), black where empty (−1)."""
    palette = np.random.default_rng(0).uniform(0.15, 1.0, size=(num_faces, 3))
    return np.where(face_id[..., None] >= 0, palette[np.maximum(face_id, 0)], 0.0)


def panels() -> list[tuple[str, np.ndarray]]:
    vertices, faces = softras.shapes.torus(0.62, 0.3, 32, 16)  # 1024 faces: each face spans many pixels
    vertices = vertices.double()
    angle = torch.atan2(vertices[:, 1], vertices[:, 0])[:, None]  # hue around the ring
    colours = 0.55 + 0.45 * torch.cos(angle + torch.tensor([0.0, 2.1, 4.2], dtype=torch.float64))
    mesh = softras.Mesh(vertices, faces, colours, texture_type="vertex")
    camera = LookAtCamera.from_angles(2.1, 40.0, 25.0, image_size=SIZE)
    out = softras.render(
        mesh,
        camera,
        lights=softras.Lighting(intensity_ambient=0.55, intensity_directionals=0.6, directions=(0.3, 1.0, -0.6)),
        outputs=softras.rendering.OUTPUTS,
        features=mesh.vertices,  # world positions as a 3-channel feature
        backend="reference",
        sigma_val=3e-5,
        gamma_val=1e-4,
    )
    o = {name: t[0].detach().numpy() for name, t in out.as_dict().items()}
    covered = o["face_id"] >= 0
    touched = o["alpha"][0] > 1e-3
    hard = o["hard_depth"][0]
    lo, hi = float(hard[covered].min()), float(hard[covered].max())
    return [
        ("rgba (lit colour)", o["rgba"][:3].transpose(1, 2, 0)),
        ("alpha", np.repeat(o["alpha"][0][..., None], 3, axis=-1)),
        ("depth (soft)", depth_image(o["depth"][0], touched, lo, hi)),
        ("hard_depth (z-buffer)", depth_image(hard, covered, lo, hi)),
        ("normals (camera, (n+1)/2)", np.where(covered[..., None], (o["normals"].transpose(1, 2, 0) + 1) / 2, 0.0)),
        ("features = world xyz", np.where(touched[..., None], (o["features"].transpose(1, 2, 0) + 1) / 2, 0.0)),
        ("face_id (random colours)", face_colours(o["face_id"], mesh.num_faces)),
        ("barycentrics", o["barycentrics"].transpose(1, 2, 0)),
    ]


def sheet(items: list[tuple[str, np.ndarray]], columns: int = 4) -> Image.Image:
    h, w = SIZE
    rows = (len(items) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * w, rows * (h + LABEL)), "white")
    draw = ImageDraw.Draw(canvas)
    face = font(18)
    for i, (label, image) in enumerate(items):
        x, y = (i % columns) * w, (i // columns) * (h + LABEL)
        tile = Image.fromarray((np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8))
        canvas.paste(tile, (x, y + LABEL))
        draw.text((x + 6, y + 3), label, fill="black", font=face)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/outputs.png"))
    args = parser.parse_args()
    torch.manual_seed(0)
    sheet(panels()).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
