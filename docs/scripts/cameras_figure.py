"""docs/images/cameras_lookat_vs_pinhole.png: one mesh seen by a LookAt camera and by the
Pinhole camera built from the same pose (they must match), plus their difference.

Run: python docs/scripts/cameras_figure.py [--out docs/images/cameras_lookat_vs_pinhole.png]
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

import softras as sr
from softras import cameras
from softras.shapes import demo_mesh, surface_colors_from_vertex_colors

IMAGE_SIZE = (180, 300)  # (H, W): non-square on purpose


def render_pair() -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """RGBA [H, W, 4] renders of the demo mesh by a LookAtCamera and its equivalent Pinhole."""
    v, f, colors = demo_mesh()
    v, f = v.double()[None], f[None]
    textures = surface_colors_from_vertex_colors(f[0], colors, 2).double()[None]
    look_at = cameras.from_angles(2.4, 35.0, 20.0, viewing_angle=25.0)
    pinhole = look_at.to_opencv_camera(IMAGE_SIZE)
    renderer = sr.SoftRenderer(
        image_size=IMAGE_SIZE, sigma_val=1e-6, gamma_val=1e-4, background_color=(1, 1, 1), smooth_shading=True
    )
    a = renderer(v, f, textures, camera=look_at)[0].permute(1, 2, 0).numpy()
    b = renderer(v, f, textures, camera=pinhole)[0].permute(1, 2, 0).numpy()
    K, _, t, _ = pinhole.to_opencv()
    info = {"K": K[0].numpy(), "t": t[0].numpy(), "max_diff": float(np.abs(a - b).max())}
    return a, b, info


def figure(a: np.ndarray, b: np.ndarray, info: dict[str, object]) -> Image.Image:
    """Three panels with captions: LookAt, Pinhole, |difference| × 1e6."""
    h, w = a.shape[:2]
    diff = np.clip(np.abs(a - b)[..., :3].max(-1) * 1e6, 0, 1)
    panels = [a[..., :3], b[..., :3], np.repeat(1 - diff[..., None], 3, axis=-1)]
    k = info["K"]
    captions = [
        "LookAtCamera: from_angles(2.4, 35, 20), viewing_angle=25",
        f"Pinhole: fx = fy = {k[0, 0]:.2f}, c = ({k[0, 2]:.1f}, {k[1, 2]:.1f})",
        f"|difference| x 1e6 (max {info['max_diff']:.1e})",
    ]
    gap, band = 8, 22
    sheet = Image.new("RGB", (3 * w + 4 * gap, h + band + 2 * gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (img, text) in enumerate(zip(panels, captions, strict=True)):
        x = gap + i * (w + gap)
        sheet.paste(Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)), (x, gap))
        draw.rectangle([x - 1, gap - 1, x + w, gap + h], outline=(160, 160, 160))
        draw.text((x, gap + h + 5), text, fill=(0, 0, 0))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/cameras_lookat_vs_pinhole.png")
    args = parser.parse_args()
    a, b, info = render_pair()
    figure(a, b, info).save(args.out)
    print(f"wrote {args.out}: max |LookAt - Pinhole| = {info['max_diff']:.3g}")


if __name__ == "__main__":
    main()
