"""Every fenced Python block of README.md and docs/ runs, as a reader would paste it.

The blocks of one page run in order, in one namespace, in a fresh temporary folder. A block
tagged ```` ```python notest ```` (pytest-markdown-docs' convention) is skipped; the text just
before it must say why ("not run by the tests: ...", or a first line "# notest: why"), and at
most 10 % of the blocks may be skipped. Every fenced block must name its language, so that an
untagged Python block cannot slip through.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
PYTHON = {"python", "py"}
# languages whose blocks are shown, not run: shell sessions, outputs, formulas, file formats
NOT_PYTHON = {"bash", "console", "text", "yaml", "toml", "json", "ini", "csv", "math"}
NOTEST_REASON = "not run by the tests"
MAX_NOTEST_SHARE = 0.10


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, first line (1-based), language, flags and code."""

    page: Path
    line: int
    language: str
    flags: tuple[str, ...]
    code: str
    before: str  # the page's text above the block (for the notest reason)

    @property
    def notest(self) -> bool:
        return "notest" in self.flags

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        words = match["info"].strip().split()
        start, body = i, []
        i += 1
        closing = re.compile(rf"^ {{0,{indent + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while i < len(lines) and not closing.match(lines[i]):
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())  # un-indent list items
            i += 1
        i += 1
        language = words[0].lower() if words else ""
        code, before = "\n".join(body) + "\n", "\n".join(lines[:start])
        found.append(Block(page, start + 1, language, tuple(words[1:]), code, before))
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.language in PYTHON]
PAGES_WITH_PYTHON = sorted({b.page for b in PYTHON_BLOCKS if not b.notest})


def test_blocks_are_found() -> None:
    assert len(PYTHON_BLOCKS) >= 10, [b.where() for b in PYTHON_BLOCKS]
    assert ROOT / "README.md" in PAGES_WITH_PYTHON


def test_every_block_names_its_language() -> None:
    unknown = [(b.where(), b.language) for b in ALL_BLOCKS if b.language not in PYTHON | NOT_PYTHON]
    assert not unknown, f"fenced blocks need a language among {sorted(PYTHON | NOT_PYTHON)}: {unknown}"


def test_notest_blocks_are_few_and_explained() -> None:
    skipped = [b for b in PYTHON_BLOCKS if b.notest]
    assert len(skipped) <= MAX_NOTEST_SHARE * len(PYTHON_BLOCKS), [b.where() for b in skipped]
    for block in skipped:
        paragraph = block.before.rstrip().rsplit("\n\n", 1)[-1]
        first_line = block.code.lstrip().split("\n", 1)[0]
        assert NOTEST_REASON in paragraph or first_line.startswith("# notest: "), (
            f"{block.where()}: say why it is {NOTEST_REASON!r} just before it, or in a first line '# notest: why'"
        )


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's Python blocks, in order, in one namespace, from an empty folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(os.environ, "MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in (b for b in PYTHON_BLOCKS if b.page == page and not b.notest):
        try:
            exec(compile(block.code, block.where(), "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"{block.where()}: the block fails: {type(err).__name__}: {err}") from err


def test_backends_page_table_is_current() -> None:
    from softras.raster.backends import backend_table

    assert backend_table() in (ROOT / "docs" / "backends.md").read_text(encoding="utf-8"), (
        "docs/backends.md's table is stale: paste softras.raster.backends.backend_table()"
    )
