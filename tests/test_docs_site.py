"""The API reference (docs/reference/*.md, rendered by mkdocstrings) covers every public name.

A public module is one whose dotted path has no part starting with ``_``; its public names are
its ``__all__``. Each must be rendered: its module has a ``::: module`` directive that does not
restrict ``members``, or the name is re-exported by a documented package that lists it.
(The strict build itself, ``make docs``, checks the links and the docstrings.)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import softras

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: (?P<module>[\w.]+)\n(?P<options>(?:    .*\n)*)", re.MULTILINE)


def directives() -> dict[str, str]:
    """{module: its options block} for every ``::: module`` of the reference pages."""
    found: dict[str, str] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for match in DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            found[match["module"]] = match["options"]
    return found


def members_option(options: str) -> list[str] | None:
    """The ``members:`` list of a directive, [] for ``members: false``, None when unrestricted."""
    match = re.search(r"^\s*members:\s*(.*)$", options, re.MULTILINE)
    if match is None:
        return None
    value = match[1].strip()
    return [] if value == "false" else [n.strip() for n in value.strip("[]").split(",") if n.strip()]


def public_modules() -> list[str]:
    names = ["softras"]
    for info in pkgutil.walk_packages(softras.__path__, "softras."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", public_modules())
def test_every_public_name_is_in_the_reference(name: str) -> None:
    module = importlib.import_module(name)  # warp_kernels needs the gpu extra, which the test venv has
    documented = directives()
    assert name in documented, f"docs/reference: add '::: {name}'"
    shown = members_option(documented[name])
    for item in getattr(module, "__all__", []):
        value = getattr(module, item)
        if shown is None or item in shown or (inspect.ismodule(value) and value.__name__ in documented):
            continue
        assert any(
            other != name and renders(other, options, item, value) for other, options in documented.items()
        ), f"{name}.{item} is public but no reference page renders it"


def renders(module_name: str, options: str, item: str, value: object) -> bool:
    """Whether the directive ``::: module_name`` with ``options`` renders ``value`` as ``item``."""
    module = importlib.import_module(module_name)
    shown = members_option(options)
    listed = item in getattr(module, "__all__", []) if shown is None else item in shown
    return listed and getattr(module, item, None) is value


def test_the_overview_lists_every_top_level_name() -> None:
    overview = (REFERENCE / "index.md").read_text(encoding="utf-8")
    missing = [name for name in softras.__all__ if f"[`{name}`]" not in overview]
    assert not missing, f"docs/reference/index.md: add {missing} to the table"
