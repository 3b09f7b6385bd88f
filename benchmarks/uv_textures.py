"""UV texture vs the original's R×R texels per face: time and peak memory on a large mesh.

A UV sphere of ~200k faces, one 512² view, softmax RGB, float32: the same colours given as a
UV texture image (one image, bilinear or trilinear lookup) or as R×R surface texels per face
(R = 8 by default: F·R²·3 floats). Forward and forward+backward (the gradient of the texture:
image or texels), median of ``--repeat`` calls, and the peak resident memory the call added.

    python benchmarks/uv_textures.py [--backend cpu] [--rings 250 --segments 400] [--texels 8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from softras.bench import PeakRSS
from softras.cameras import from_angles
from softras.raster import RasterSettings, rasterize_channels, uv_maps
from softras.shapes import uv_sphere


def _timed(fn, repeat: int) -> tuple[float, float | None]:
    """(median seconds, peak extra MB of the first call) of ``fn()``."""
    with PeakRSS() as peak:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), peak.peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--rings", type=int, default=250)
    parser.add_argument("--segments", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--texture", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    parser.add_argument("--texels", type=int, default=8, help="R of the texel form")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    vertices, faces, uv = uv_sphere(args.rings, args.segments)
    camera = from_angles(2.2, 20.0, 30.0)
    fv = camera.to_screen(vertices[None])[:, faces].contiguous()
    settings = RasterSettings.create(args.image_size, sigma_val=1e-5, gamma_val=1e-4, near=0.1, far=10.0)
    image = torch.rand(*args.texture, 3)
    texels = torch.rand(1, faces.shape[0], args.texels**2, 3)
    grad_out = torch.rand(1, 3, args.image_size, args.image_size)
    print(
        f"{faces.shape[0]} faces at {args.image_size}², backend {args.backend}, float32; texture "
        f"{args.texture[0]}×{args.texture[1]}×3 ({image.numel() * 4 / 2**20:.0f} MB) vs texels R = {args.texels} "
        f"({texels.numel() * 4 / 2**20:.0f} MB)"
    )

    def uv_case(texture_filter: str, backward: bool):
        def run() -> None:
            leaf = image.clone().requires_grad_(backward)
            maps = uv_maps(uv, leaf, texture_filter=texture_filter)
            out = rasterize_channels(fv, settings, uv=maps, backend=args.backend).channels
            if backward:
                out.backward(grad_out)

        return run

    def texel_case(backward: bool):
        def run() -> None:
            leaf = texels.clone().requires_grad_(backward)
            out = rasterize_channels(fv, settings, surface=leaf, backend=args.backend).channels
            if backward:
                out.backward(grad_out)

        return run

    print("| form | pass | median time | peak extra memory |\n|---|---|---|---|")
    for name, make in (
        (f"texels R = {args.texels}", texel_case),
        ("UV, bilinear", lambda b: uv_case("bilinear", b)),
        ("UV, trilinear", lambda b: uv_case("trilinear", b)),
    ):
        for backward in (False, True):
            seconds, mb = _timed(make(backward), args.repeat)
            memory = "n/a" if mb is None else f"{mb:.0f} MB"
            print(f"| {name} | {'forward+backward' if backward else 'forward'} | {seconds * 1e3:.0f} ms | {memory} |")


if __name__ == "__main__":
    main()
