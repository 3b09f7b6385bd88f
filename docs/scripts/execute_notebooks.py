"""Re-execute the tutorial notebooks and store their outputs in the committed ``.ipynb`` files.

    .venv/bin/python docs/scripts/execute_notebooks.py          # every docs/tutorials/*.ipynb
    .venv/bin/python docs/scripts/execute_notebooks.py docs/tutorials/02_fit_silhouettes.ipynb
    make notebooks                                              # the same, for all of them

The docs site shows the stored outputs (it does not execute the notebooks); tests/test_notebooks.py
executes them again with :func:`run_notebook` without writing them. The kernel is the interpreter
that runs this script, so run it with the project's venv.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
CELL_TIMEOUT_S = 600


def run_notebook(nb: nbformat.NotebookNode, cwd: str | Path) -> float:
    """Execute ``nb`` in place (outputs added to its cells) in folder ``cwd``; returns the seconds taken.

    The kernel is ipykernel's native one, which runs ``sys.executable`` (no installed kernel spec
    is looked up, so a user-level ``python3`` spec pointing elsewhere cannot interfere). A cell that
    raises, or runs longer than ``CELL_TIMEOUT_S``, raises ``nbclient.exceptions.CellExecutionError``
    or ``CellTimeoutError``.
    """
    specs = KernelSpecManager(kernel_dirs=[])  # only the native kernel
    km = AsyncKernelManager(kernel_name=NATIVE_KERNEL_NAME, kernel_spec_manager=specs)
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(cwd)}}).execute()
    finally:  # a client given a kernel manager leaves the kernel running: stop it here
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    return time.perf_counter() - t0


def execute(path: Path) -> float:
    """Execute the notebook at ``path`` in its folder and write it back with its outputs; seconds taken."""
    nb = nbformat.read(path, as_version=4)
    seconds = run_notebook(nb, path.parent)
    for cell in nb.cells:  # timestamps would change on every run
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the tutorial notebooks and store their outputs.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every docs/tutorials/*.ipynb")
    args = parser.parse_args(argv)
    for path in args.notebooks or sorted(TUTORIALS.glob("*.ipynb")):
        seconds = execute(path)
        print(f"{path}: {seconds:.1f} s, {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
