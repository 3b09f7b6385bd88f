"""Which of the cpu kernels' loops vectorise: packed vs scalar float instructions in the compiled code.

Compiles the specialised forward and backward kernels of a workload (W1 or W2 of ``softras
bench``, quick size) in a fresh Numba cache with ``NUMBA_DUMP_ASSEMBLY`` on, in a child process,
and counts in the assembly of the kernels' parallel bodies (Numba's ``__numba_parfor_gufunc``
functions) and of the pair functions they call (:mod:`softras.raster.cpu_lanes`) the packed
float32 / float64 arithmetic on xmm, ymm and zmm registers against the scalar arithmetic. Prints
one table per workload; ``--save DIR`` keeps the assembly.

    python benchmarks/kernel_asm.py --workload W1 W2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

_CHILD = """
import sys, torch
from softras.bench import build_cases
from softras.raster import rasterize
(case,) = build_cases(sys.argv[1], quick=True)[:1]
fv = case.face_vertices.float().requires_grad_()
tex = case.textures.float().requires_grad_(case.texture_grad)
out = rasterize(fv, tex, case.settings, backend="cpu")
out.backward(case.grad_output.float())
"""

_ARITH = r"v(?:add|sub|mul|div|fmadd\d*|fnmadd\d*|fmsub\d*|min|max|sqrt)"
_PACKED = re.compile(rf"\b{_ARITH}(ps|pd)\s+[^\n]*%(xmm|ymm|zmm)")
_SCALAR = re.compile(rf"\b{_ARITH}(ss|sd)\s")


def function_bodies(asm: str, marker: str) -> list[str]:
    """The assembly of each compiled function whose label contains ``marker`` (from its label line up
    to the next label at column 0 that is not a local ``.L`` label), Python wrappers left out."""
    bodies, current = [], None
    for line in asm.splitlines():
        if line and not line[0].isspace() and line.endswith(":") and not line.startswith("."):
            if current is not None:
                bodies.append("\n".join(current))
            wrapper = line.startswith(("cfunc.", "__gufunc__", "_ZN7cpython"))
            current = [] if marker in line and not wrapper else None
            continue
        if current is not None:
            current.append(line)
    if current is not None:
        bodies.append("\n".join(current))
    return bodies


def parfor_bodies(asm: str) -> list[str]:
    """The assembly of each parallel body (Numba's parfor gufuncs)."""
    return function_bodies(asm, "parfor_gufunc")


def count(body: str) -> Counter:
    """Packed arithmetic by (precision, register) and scalar arithmetic by precision."""
    counts: Counter = Counter()
    for kind, register in _PACKED.findall(body):
        counts[f"packed {'f32' if kind == 'ps' else 'f64'} {register}"] += 1
    for kind in _SCALAR.findall(body):
        counts[f"scalar {'f32' if kind == 'ss' else 'f64'}"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", nargs="+", default=["W1", "W2"])
    parser.add_argument("--save", type=Path, default=None, help="folder to keep the assembly in")
    args = parser.parse_args(argv)
    for workload in args.workload:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, NUMBA_DUMP_ASSEMBLY="1", SOFTRAS_CPU_KERNELS="specialised")
            run = subprocess.run(
                [sys.executable, "-c", _CHILD, workload], env=env, capture_output=True, text=True, check=True
            )
        asm = run.stdout
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{workload}.s").write_text(asm)
        print(f"{workload}: parallel bodies, in compile order (prepare, binning, forward, backward, reduce)")
        for i, body in enumerate(parfor_bodies(asm)):
            c = count(body)
            packed = sum(v for k, v in c.items() if k.startswith("packed"))
            scalar = sum(v for k, v in c.items() if k.startswith("scalar"))
            detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
            print(f"  body {i}: {len(body.splitlines())} lines, packed {packed}, scalar {scalar} ({detail})")
        print(f"{workload}: the pair functions the kernels call (softras.raster.cpu_lanes)")
        for name in ("_coverage_lanes", "_distance_grad_lanes"):
            # one line per distinct compiled body (the dump repeats a function in every module linking it)
            shown = set()
            for body in function_bodies(asm, f"{len(name)}{name}"):
                c = count(body)
                detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                if c and detail not in shown:
                    shown.add(detail)
                    print(f"  {name}: {len(body.splitlines())} lines ({detail})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
