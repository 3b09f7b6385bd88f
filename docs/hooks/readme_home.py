"""MkDocs hook: the site's home page is README.md, with its links made relative to docs/.

docs/index.md is a stub so that MkDocs knows the page; its content is replaced by README.md's,
where ``](docs/x)`` links and images become ``](x)``, so README stays the one source.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.pages import Page

README = Path(__file__).resolve().parents[2] / "README.md"
DOCS_LINK = re.compile(r"\]\(docs/")


def readme_as_home() -> str:
    """README.md's text with ``docs/`` links rewritten for a page at the root of docs/."""
    return DOCS_LINK.sub("](", README.read_text(encoding="utf-8"))


def on_page_markdown(markdown: str, page: Page, **kwargs: object) -> str:
    """MkDocs hook: README's text for the home page, every other page unchanged."""
    return readme_as_home() if page.file.src_uri == "index.md" else markdown
