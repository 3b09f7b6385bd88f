"""``softras bench``: time the rasterization backends on the standard workloads.

The implementation lives in :mod:`softras.bench` (also run by ``benchmarks/run.py``); see
docs/benchmarks.md for the workloads and how the numbers are measured.
"""

from __future__ import annotations

from softras.apps import Command
from softras.bench import add_arguments, run

__all__ = ["COMMAND"]

COMMAND = Command(
    "bench",
    "benchmark the rasterization backends on the standard workloads (W1 recon, W2 colour, W3 scale)",
    add_arguments,
    run,
    order=200,
)
