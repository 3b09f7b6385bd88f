"""The import graph of the ``softras`` package has no cycle and runs only downwards through its layers.

The graph is read from the source with :mod:`ast` (nothing is imported):

- Nodes: every ``.py`` file under ``softras/``, named as its module (``softras/io/formats.py`` is
  ``softras.io.formats``; a package's ``__init__.py`` is the package, ``softras.io``).
- Edges: every ``import`` / ``from ... import`` statement that names a softras module, wherever it
  stands (module level, inside a function or method, inside ``try``), except those under
  ``if TYPE_CHECKING:``, which never run. Relative imports are resolved against the file.
  ``import a.b.c`` points at the deepest softras module of ``a.b.c``; ``from p import x`` points at
  ``p.x`` when that is a module, else at the module that defines ``x``: a package ``p`` whose
  ``__init__`` only re-exports ``x`` from one of its submodules (``from softras.io import
  load_mesh``) points at that submodule (``softras.io.formats``), so the edge names the code that
  is really used. The parent packages that Python initialises before a submodule are not edges.
- Re-exports: the edges from a package ``__init__`` to modules inside that package (its
  re-exports, e.g. ``softras/__init__.py`` importing ``softras.mesh``) are left out of the cycle
  check: Python always runs a package's ``__init__`` before any of its submodules, so such an edge
  cannot make a submodule depend on itself.

Rule (a): the remaining graph has no cycle at all (no two modules import each other, directly or
through others, even lazily inside functions).

Rule (b): every module belongs to one layer of :data:`LAYERS` (lowest first) and imports only
modules of its own layer or of lower ones; package ``__init__`` re-exports (above) are exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "softras"

#: The layers, lowest first; a module may import its own layer and the ones before it. A name
#: matches the module itself and every module inside it (``softras.raster`` covers the package),
#: except ``softras``, which is the package ``__init__`` (the public API) alone.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # helpers with no softras imports
    ("foundation", ("softras._validation", "softras._precision", "softras._state", "softras._jit_cache",
                    "softras._errors", "softras._optional", "softras.rotations", "softras.progress")),
    # the rasterizer and its backends, and the memory bound of a raster request
    ("raster", ("softras.raster", "softras._memory")),
    # tensors in, tensors out: geometry, files, textures, clipping, built-in shapes, losses
    ("data", ("softras.functional", "softras.io", "softras.clipping", "softras._pytorch3d", "softras.shapes",
              "softras.losses", "softras.metrics", "softras.uv_texture")),
    # the objects of a scene
    ("scene", ("softras.mesh", "softras.cameras", "softras.transform", "softras.lighting")),
    # softras objects to and from other libraries' objects
    ("conversion", ("softras.interop",)),
    ("rendering", ("softras.rendering", "softras.rasterizer", "softras.renderer", "softras.articulated")),
    ("api", ("softras",)),
    # programs built on the library
    ("workflows", ("softras.recon", "softras.bench", "softras.roofline")),
    # command-line front ends
    ("apps", ("softras.apps", "softras.cli")),
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


FILES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
PACKAGES = {name for name, path in FILES.items() if path.name == "__init__.py"}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in FILES.items()}


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if module in PACKAGES else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _deepest(dotted: str) -> str | None:
    while dotted and dotted not in FILES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _defined_in(package: str, name: str, seen: frozenset[str] = frozenset()) -> str:
    """The module that defines ``name`` when ``package``'s ``__init__`` re-exports it, else ``package``."""
    if package not in PACKAGES or package in seen:
        return package
    for node in TREES[package].body:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            source = _absolute(package, node)
            original = next(a.name for a in node.names if (a.asname or a.name) == name)
            if f"{source}.{original}" in FILES:
                return f"{source}.{original}"
            target = _deepest(source)
            if target is not None and target.startswith(package + "."):
                return _defined_in(target, original, seen | {package})
            return package
    return package


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {t for alias in node.names if (t := _deepest(alias.name)) is not None}
    source = _absolute(module, node)
    if _deepest(source) is None:
        return set()
    out = set()
    for alias in node.names:
        if f"{source}.{alias.name}" in FILES:
            out.add(f"{source}.{alias.name}")
        elif source in FILES:
            out.add(_defined_in(source, alias.name))
        else:
            out.add(_deepest(source))
    return out


def _reexport(module: str, target: str) -> bool:
    return module in PACKAGES and target.startswith(module + ".")


def import_graph() -> dict[str, set[str]]:
    """Module -> the softras modules it imports (no self-edges, no package re-exports)."""
    graph: dict[str, set[str]] = {}
    for module, tree in TREES.items():
        targets = set()
        for node in _runtime_imports(tree):
            targets |= _targets(module, node)
        graph[module] = {t for t in targets if t != module and not _reexport(module, t)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [m0, m1, ..., m0], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def layer_of(module: str) -> int:
    best, index = "", -1
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            inside = module.startswith(name + ".") and name != "softras"
            if (module == name or inside) and len(name) > len(best):
                best, index = name, i
    return index


def test_every_module_has_a_layer():
    missing = [m for m in FILES if layer_of(m) < 0]
    assert not missing, f"add these modules to LAYERS in {Path(__file__).name}: {missing}"


def test_graph_sees_lazy_and_reexported_imports():
    """The parser finds imports inside functions, skips TYPE_CHECKING and resolves re-exports (guards the rules)."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from softras.apps import Command\n"
        "def f():\n    from .io import load_mesh\n"
        "class C:\n    def m(self):\n        import softras.raster.cpu\n"
    )
    nodes = _runtime_imports(ast.parse(source))
    targets = set().union(*(_targets("softras.mesh", node) for node in nodes))
    assert targets == {"softras.io.formats", "softras.raster.cpu"}
    graph = import_graph()
    assert "softras.io.formats" in graph["softras.mesh"]  # ``from .io import load_mesh`` inside a method
    assert "softras.io.obj" in graph["softras.functional"]  # ``from ..io.obj import load_obj``
    assert "softras.apps" in graph["softras.apps._checks"]  # ``from . import UsageError``, defined in apps


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_run_down_the_layers():
    upward = []
    for module, targets in import_graph().items():
        for target in sorted(targets):
            if layer_of(target) > layer_of(module):
                upward.append(
                    f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
                )
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("softras.raster", "softras.apps"),
        ("softras.recon", "softras.apps"),
        ("softras.bench", "softras.apps"),
        ("softras.io", "softras.interop"),
        ("softras.mesh", "softras.recon"),
    ],
)
def test_layer_order(low, high):
    """The order the layers promise: lower layers never import these higher ones."""
    assert layer_of(low) < layer_of(high)
