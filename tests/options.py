"""The SoftRas options the rasterizer suites iterate, from the registries of :mod:`softras.raster.settings`.

``settings.ALPHA_AGGREGATIONS`` also holds GenDR's T-conorms (``max``, ``einstein``, ...; some need
a ``t_conorm_p``) and the alias ``probabilistic``: tests/test_families.py covers those. The suites
here iterate SoftRas's own three alpha aggregations, the registered names whose alpha code is
below ``max``'s.
The order of every tuple is the registries' (tests seed their scenes by an option's index).
"""

from __future__ import annotations

import itertools

from softras.raster import model
from softras.raster.settings import ALPHA_AGGREGATIONS, DIST_FUNCS, RGB_AGGREGATIONS, TEXTURE_TYPES

__all__ = [
    "AGGREGATIONS",
    "COMBOS",
    "COMBO_IDS",
    "DIST_FUNCS",
    "RGB_AGGREGATIONS",
    "SOFTRAS_ALPHA_AGGREGATIONS",
    "TEXTURE_TYPES",
]

SOFTRAS_ALPHA_AGGREGATIONS = tuple(
    name for name in ALPHA_AGGREGATIONS if name != "probabilistic" and model.alpha_code(name) < model.alpha_code("max")
)
"""``hard``, ``sum``, ``prod``."""
assert set(SOFTRAS_ALPHA_AGGREGATIONS) <= set(ALPHA_AGGREGATIONS)

AGGREGATIONS = list(itertools.product(DIST_FUNCS, RGB_AGGREGATIONS, SOFTRAS_ALPHA_AGGREGATIONS))
"""Every (dist_func, aggr_func_rgb, aggr_func_alpha): 18."""
COMBOS = list(itertools.product(DIST_FUNCS, RGB_AGGREGATIONS, SOFTRAS_ALPHA_AGGREGATIONS, TEXTURE_TYPES))
"""Every (dist_func, aggr_func_rgb, aggr_func_alpha, texture_type): 36."""
COMBO_IDS = ["-".join(c) for c in COMBOS]
