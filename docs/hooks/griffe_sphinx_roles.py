"""Griffe extension: turn the Sphinx roles of softras' docstrings into mkdocstrings cross-references.

The docstrings use Google sections with Sphinx-style references (:func:`render`,
:class:`~softras.raster.contract.RasterResult`) and reST literal-block markers (``Example::``).
and reST simple tables (columns under ``=====`` rules). Markdown knows none of them, so before a
docstring is parsed every simple table becomes a Markdown table, every role an autorefs link
``[`name`][full.path]`` (the target resolved in the object's scope, as Sphinx would) and a
trailing ``::`` becomes ``:``. A role whose softras target cannot be resolved stays a link to
the name as written, so ``mkdocs build --strict`` reports it; names outside softras (the
standard library, torch, tqdm) become plain code, since the build has no inventory to link them.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):`(~?)([^`<>]+?)`")
LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)
TABLE_RULE = re.compile(r"^ *=+( +=+)+ *$")


def simple_tables(text: str) -> str:
    """``text`` with each reST simple table (rule, header, rule, rows, rule) as a Markdown table."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        rules = [j for j in range(i, len(lines)) if TABLE_RULE.match(lines[j])][:3]
        if len(rules) < 3 or rules[0] != i or rules[1] != i + 2:
            out.append(lines[i])
            i += 1
            continue
        spans = [m.span() for m in re.finditer(r"=+", lines[i])]
        spans[-1] = (spans[-1][0], None)  # the last column runs to the end of the line

        rows = [lines[i + 1], *(row for row in lines[rules[1] + 1 : rules[2]] if row.strip())]
        cells = ["| " + " | ".join(row[a:b].strip() for a, b in spans) + " |" for row in rows]
        out.extend([cells[0], "|" + "---|" * len(spans), *cells[1:]])
        i = rules[2] + 1
    return "\n".join(out)


def resolve(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` as seen from ``obj`` (itself, its parents, their imports)."""
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        if scope.is_class and head in scope.all_members:  # inherited members too
            member = scope.all_members[head]
            inherited_from_private = member.is_alias and member.target_path.split(".")[-2].startswith("_")
            # a private base class is not documented: its members are (as inherited ones) on the subclass
            base = member.target_path if member.is_alias and not inherited_from_private else f"{scope.path}.{head}"
        else:
            try:
                base = scope.resolve(head)
            except (griffe.NameResolutionError, AttributeError, KeyError):
                scope = scope.parent
                continue
            return canonical(obj, f"{base}.{rest}" if rest else base)
        return f"{base}.{rest}" if rest else base
    return canonical(obj, target)  # a full path (softras.Mesh.x): nothing in scope names its head


def canonical(obj: griffe.Object, path: str) -> str:
    """Where ``path`` is defined (``softras.Mesh.x`` -> ``softras.mesh.Mesh.x``), or ``path`` if unknown."""
    try:
        return obj.modules_collection[path].canonical_path
    except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return path


def convert(obj: griffe.Object, text: str) -> str:
    """``text`` with its simple tables in Markdown, its roles as autorefs links and ``::`` as ``:``."""

    def link(match: re.Match[str]) -> str:
        short, target = match.group(1) == "~", match.group(2).strip()
        title = target.rsplit(".", 1)[-1] if short else target
        path = resolve(obj, target)
        return f"[`{title}`][{path}]" if path.split(".")[0] == "softras" else f"`{title}`"

    return LITERAL_MARKER.sub(":", ROLE.sub(link, simple_tables(text)))


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring once the whole package is loaded (so names resolve)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: object) -> None:
        self._walk(pkg)

    def _walk(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member)
