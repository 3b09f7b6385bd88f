"""Benchmark the rasterization backends: the same harness as ``softras bench``.

Run: ``.venv/bin/python benchmarks/run.py --workload W1 [--backend cpu reference] [--json out.json]``
(``--help`` for every option; docs/benchmarks.md describes the workloads and the measurement).
"""

from __future__ import annotations

import sys

from softras.bench import main

if __name__ == "__main__":
    sys.exit(main())
