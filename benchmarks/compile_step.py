"""Time a render step compiled with ``torch.compile(fullgraph=True)`` against the same step eager.

Run: ``.venv/bin/python benchmarks/compile_step.py [--level 3] [--size 64] [--backend cpu] [--compiler inductor]``

The step: a ``SoftRenderer`` renders a translated icosphere (float32), an L2 loss against a
fixed target, and its backward (outside the compiled function: Dynamo does not trace
``backward()``). The compiled function is the forward and the loss, one graph (``--fullgraph``,
the default); the graph breaks are counted with ``torch._dynamo.explain`` first. Rounds of 5
steps alternate between eager and compiled (so both see the same machine load); the minimum
and median of the rounds are printed, and the compile time (the first compiled call).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import softras as sr
from softras import shapes


def make_loss(level: int, size: int, backend: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """(the forward and loss as a function of the offset [3], the number of faces)."""
    v, f = shapes.icosphere(level)
    v, f = 0.8 * v[None].float(), f[None]
    renderer = sr.SoftRenderer(image_size=size, sigma_val=1e-4, camera_mode="look_at", backend=backend)
    renderer.transform.set_eyes_from_angles(2.732, 20.0, 30.0)
    target = torch.rand(1, 4, size, size, generator=torch.Generator().manual_seed(0))

    def loss(offset: torch.Tensor) -> torch.Tensor:
        return (renderer(v + offset, f) - target).square().mean()

    return loss, f.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=3, help="icosphere level (3: 1280 faces)")
    parser.add_argument("--size", type=int, default=64, help="image size")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--compiler", default="inductor", help="torch.compile backend")
    parser.add_argument("--fullgraph", action=argparse.BooleanOptionalAction, default=True,
                        help="fullgraph=True (--no-fullgraph: allow graph breaks, as before the op)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds of 5 steps, each mode")
    args = parser.parse_args()
    loss, faces = make_loss(args.level, args.size, args.backend)
    explained = torch._dynamo.explain(loss)(torch.zeros(3, requires_grad=True))
    print(f"{faces} faces at {args.size}², {args.backend} backend, {torch.get_num_threads()} threads: "
          f"{explained.graph_count} graph(s), {explained.graph_break_count} graph break(s)")  # fmt: skip
    torch._dynamo.reset()
    compiled = torch.compile(loss, fullgraph=args.fullgraph, backend=args.compiler)

    def step(fn: Callable) -> Callable:
        def run(offset: torch.Tensor) -> None:
            fn(offset).backward()

        return run

    steps = {"eager": step(loss), "compiled": step(compiled)}
    start = time.perf_counter()
    steps["compiled"](torch.zeros(3, requires_grad=True))
    print(f"compile ({args.compiler}): {time.perf_counter() - start:.1f} s")
    steps["eager"](torch.zeros(3, requires_grad=True))  # warm-up: kernels, allocator
    rounds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, fn in steps.items():
            offset = torch.tensor([0.05, -0.03, 0.02], requires_grad=True)
            start = time.perf_counter()
            for _ in range(5):
                fn(offset)
            rounds[name].append(time.perf_counter() - start)
    for name, times in rounds.items():
        print(
            f"{name:>9}: 5 steps in {1e3 * min(times):.1f} ms (min), {1e3 * statistics.median(times):.1f} ms (median)"
        )


if __name__ == "__main__":
    main()
