"""Peak memory and time of softras.io.load_obj against trimesh's OBJ loader on a generated OBJ.

Run:  python benchmarks/obj_memory.py [--vertices 1000000]

Each loader runs in its own process; the peak is tracemalloc's (Python and NumPy allocations) and
the rise of the process's maximum RSS, both relative to the final arrays (float32 vertices, int64
faces). The file has V random vertices and 2V random triangles.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_MEASURE = """
import resource, sys, time, tracemalloc
import numpy as np
which, path = sys.argv[1], sys.argv[2]
if which == "trimesh":
    import trimesh
else:
    from softras.io import load_obj
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
start = time.perf_counter()
if which == "trimesh":
    mesh = trimesh.load(path, force="mesh", process=False, maintain_order=True)
    v, f = np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces, dtype=np.int64)
else:
    v, f = (t.numpy() for t in load_obj(path))
seconds = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory()
rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
final = v.size * 4 + f.size * 8
print(f"{which:8s} {seconds:7.1f} s  final {final / 2**20:6.0f} MiB  tracemalloc peak {peak / final:5.2f}x  "
      f"RSS rise {rss / final:5.2f}x")
"""


def write_obj(path: Path, vertices: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        np.savetxt(fh, rng.random((vertices, 3)), fmt="v %.5f %.5f %.5f")
        np.savetxt(fh, rng.integers(1, vertices + 1, (2 * vertices, 3)), fmt="f %d %d %d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.obj"
        write_obj(path, args.vertices)
        print(f"{path.stat().st_size / 2**20:.0f} MiB OBJ, {args.vertices} vertices, {2 * args.vertices} faces")
        for which in ("softras", "trimesh"):
            subprocess.run([sys.executable, "-c", _MEASURE, which, str(path)], check=True)


if __name__ == "__main__":
    main()
