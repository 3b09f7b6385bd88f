"""A/B timing of two softras installs (e.g. the previous main and this one, each in its own venv).

Rounds alternate between the two interpreters (A, B, A, B, ...), so that load on a shared
machine affects both alike; each round times the same standard workloads with
``softras.bench.measure_case`` in a fresh process of that install. The report gives the median
over rounds and the ratio new / old for forward and forward+backward, and the same for the
fastest single call of each side: on a shared or virtual machine single calls come in two
modes (a descheduled thread makes a call ~1.5× slower), and the median of a bimodal sample
flips with their proportion, while the minimum estimates the undisturbed speed.

    python benchmarks/compare_mains.py --old /path/old/.venv/bin/python --new .venv/bin/python \\
        --backend cpu --workload W1 W2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_WORKER = """
import json, sys, torch
from softras.bench import build_cases, measure_case, set_threads
workloads, backend, quick, repeat, threads, warmup = json.loads(sys.argv[1])
set_threads(threads)
out = {}
for workload in workloads:
    for case in build_cases(workload, quick=quick):
        r = measure_case(case, backend, repeat=repeat, warmup=warmup)
        out[case.name] = [r.forward_ms, r.forward_backward_ms, r.forward_ms_min, r.forward_backward_ms_min]
print("RESULT " + json.dumps(out))
"""


def run_once(
    python: str, workloads: list[str], backend: str, quick: bool, repeat: int, threads: int, warmup: int
) -> dict:
    """{case name: [forward ms, forward+backward ms (medians), the same (minima)]} from one fresh
    process of ``python``."""
    args = json.dumps([workloads, backend, quick, repeat, threads, warmup])
    # from a neutral folder: `python -c` puts the working directory first on sys.path, which would
    # make both interpreters import the checkout the script is run from
    exe = os.path.abspath(python) if os.sep in python else python
    done = subprocess.run(
        [exe, "-c", _WORKER, args], capture_output=True, text=True, check=False, cwd=tempfile.gettempdir()
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed:\n{done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="python of the baseline install")
    parser.add_argument("--new", default=sys.executable, help="python of the install under test (default: this one)")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--workload", nargs="+", default=["W1", "W2"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--warmup", type=int, default=3,
        help="untimed calls first (a fresh process's first calls also fault in the allocator's memory)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="shrunken workloads")
    args = parser.parse_args(argv)
    times: dict[str, dict[str, list[list[float]]]] = {"old": {}, "new": {}}
    for i in range(args.rounds):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        for which in order:
            python = args.old if which == "old" else args.new
            result = run_once(
                python, args.workload, args.backend, args.quick, args.repeat, args.threads, args.warmup
            )
            for case, ms in result.items():
                times[which].setdefault(case, []).append(ms)
    print(f"backend {args.backend}, {args.rounds} rounds alternating, {args.repeat} calls each (ms)")
    for label, cols, pick in (
        ("median over rounds of each round's median", (0, 1), statistics.median),
        ("fastest call of all rounds", (2, 3), min),
    ):
        print(label)
        print(f"{'case':<20} {'old fwd':>9} {'new fwd':>9} {'ratio':>6}   {'old f+b':>9} {'new f+b':>9} {'ratio':>6}")
        for case in times["old"]:
            old = [pick(t[k] for t in times["old"][case]) for k in cols]
            new = [pick(t[k] for t in times["new"][case]) for k in cols]
            print(
                f"{case:<20} {old[0]:>9.1f} {new[0]:>9.1f} {new[0] / old[0]:>6.3f}   "
                f"{old[1]:>9.1f} {new[1]:>9.1f} {new[1] / old[1]:>6.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
