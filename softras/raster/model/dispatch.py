"""The dispatchers of the model, written from the registry: a family's code selects its functions.

:func:`source` writes, in the restricted style of :mod:`.ops`, the functions

* ``evaluate(code, z, shape, shift)``: (D, S, f) of the distribution with that code;
* ``term(code, d, s, p)``, ``dterm(code, d, s, f, p)``, ``alpha(code, g, p)``,
  ``dalpha(code, g, p)``: the four functions of the Archimedean T-conorm with that alpha code;
* ``pair_gradient(code, g, d, s, f, p)``: ∂α/∂z_j = α'(G)·∂t(S_j)/∂z_j, exact from the final G.

Each is one chain ``if code == k: return <family's function>(...)`` over the registered codes, the
last family without a test (a code outside the registry is never dispatched: the kernels take the
registry's codes only), so that a constant code folds to one call in every compiled binding. The
source is bound like the model's own (:func:`.ops.bind_sources`): compiled in the bound scope for
Python floats, tensors and Numba, rewritten and compiled as ``wp.func`` for Warp.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["NAMES", "source"]

NAMES = ("evaluate", "term", "dterm", "alpha", "dalpha", "pair_gradient")
"""The functions :func:`source` defines."""

_TCONORM_PARTS = (  # (dispatcher, its parameters after code, its docstring)
    ("term", "d, s, p", "t(S) of the Archimedean family with alpha code ``code``."),
    ("dterm", "d, s, f, p", "∂t(S)/∂z of the family ``code``."),
    ("alpha", "g, p", "α from the state G of the family ``code``."),
    ("dalpha", "g, p", "dα/dG of the family ``code``."),
)


def _chain(name: str, params: str, doc: str, targets: Sequence[tuple[int, str]]) -> str:
    """``def name(code, params)``: one test per (code, function) of ``targets``, the last untested."""
    if not targets:
        raise ValueError(f"{name}: no family to dispatch to")
    lines = [f"def {name}(code, {params}):", f'    """{doc}"""']
    for code, target in targets[:-1]:
        lines += [f"    if code == {code}:", f"        return {target}({params})"]
    lines.append(f"    return {targets[-1][1]}({params})")
    return "\n".join(lines) + "\n"


def source(distributions: Sequence[tuple[int, str]], tconorms: Sequence[tuple[int, tuple[str, str, str, str]]]) -> str:
    """The source of the dispatchers (:data:`NAMES`).

    Args:
        distributions: (code, function name) of every distribution, in code order.
        tconorms: (alpha code, (term, dterm, alpha, dalpha) function names) of every Archimedean
            T-conorm, in code order.

    Returns:
        Python source defining the functions of :data:`NAMES`; ``pair_gradient`` calls the model's
        ``_times`` (:mod:`.tconorms`).
    """
    doc = "(D, S, f) of the distribution with code ``code`` at z (a constant code folds to one call)."
    parts = [_chain("evaluate", "z, shape, shift", doc, distributions)]
    for i, (name, params, doc) in enumerate(_TCONORM_PARTS):
        parts.append(_chain(name, params, doc, [(code, functions[i]) for code, functions in tconorms]))
    parts.append(
        "def pair_gradient(code, g, d, s, f, p):\n"
        '    """∂α/∂z_j = α\'(G)·∂t(S_j)/∂z_j, exact from the final state G."""\n'
        "    return _times(dalpha(code, g, p), dterm(code, d, s, f, p))\n"
    )
    return "\n\n".join(parts)
