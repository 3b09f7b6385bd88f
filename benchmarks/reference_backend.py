"""Reference backend cost on the core issue's scene: 64 views of a 5k-face mesh at 128².

Run: ``.venv/bin/python benchmarks/reference_backend.py [--views 64] [--size 128]``.
Prints forward and forward+backward wall time (median of --repeat runs after a warm-up),
the number of (pixel, face) pairs inside the grown boxes, and the process's peak RSS
(which includes ~0.3-0.4 GB of PyTorch itself, printed separately as the baseline).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

import softras as sr
from softras.raster.reference import count_box_pairs


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    baseline = peak_rss_gb()
    v, f = sr.shapes.bumpy_sphere(level=4)
    b = args.views
    verts = (v * 0.7)[None].repeat(b, 1, 1)
    faces = f[None].repeat(b, 1, 1)
    renderer = sr.SoftRenderer(image_size=args.size, camera_mode="look_at", backend="reference")
    renderer.transform.set_eyes_from_angles(
        torch.full((b,), 2.732), torch.full((b,), 30.0), torch.arange(b) * 360.0 / b
    )

    with torch.no_grad():
        mesh = renderer.transform(renderer.lighting(sr.Mesh(verts, faces)))
        pairs = count_box_pairs(mesh.face_vertices, renderer.rasterizer.settings())

    def forward() -> None:
        with torch.no_grad():
            renderer(verts, faces)

    def forward_backward() -> None:
        x = verts.clone().requires_grad_(True)
        renderer(x, faces)[:, 3].sum().backward()

    results = {}
    for name, fn in (("forward", forward), ("forward+backward", forward_backward)):
        fn()
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        results[name] = statistics.median(times)

    print(f"scene: {b} views x {f.shape[0]} faces at {args.size}^2, threads={torch.get_num_threads()}")
    print(f"candidate (pixel, face) pairs in grown boxes: {pairs:,} ({pairs / results['forward'] / 1e6:.1f} M/s fwd)")
    for name, t in results.items():
        print(f"{name:>17}: {t * 1e3:8.0f} ms")
    print(f"peak RSS: {peak_rss_gb():.2f} GB (PyTorch baseline {baseline:.2f} GB)")


if __name__ == "__main__":
    main()
