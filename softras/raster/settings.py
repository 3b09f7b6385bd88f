"""`RasterSettings`: every option of the soft rasterizer, validated once."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .._validation import (
    check_bool,
    check_choice,
    check_dist_eps,
    check_gamma,
    check_number,
    check_sigma,
    image_hw,
    item_values,
)
from . import model
from .contract import DistFunc, RgbAggregation

__all__ = [
    "ALPHA_AGGREGATIONS",
    "DISTRIBUTIONS",
    "DIST_FUNCS",
    "FAMILY_OPTIONS",
    "RGB_AGGREGATIONS",
    "TEXTURE_TYPES",
    "RasterSettings",
]

DIST_FUNCS = tuple(m.name.lower() for m in DistFunc)
RGB_AGGREGATIONS = tuple(m.name.lower() for m in RgbAggregation)
ALPHA_AGGREGATIONS = model.ALPHA_AGGREGATIONS
"""``hard``, ``sum``, ``prod`` and every T-conorm of the model (``probabilistic`` is ``prod``), read
from the registry at every use (a registered T-conorm is in it)."""
DISTRIBUTIONS = model.DISTRIBUTION_NAMES
"""Every coverage distribution, ``heaviside`` first, read from the registry at every use."""
FAMILY_OPTIONS = ("distribution", "squared_distance", "dist_shape", "dist_shift", "t_conorm_p")
"""The options of GenDR's coverage families (beyond the original's ``aggr_func_alpha``)."""
TEXTURE_TYPES = ("surface", "vertex")


def _color3(name: str, value: object) -> tuple[float, float, float]:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected 3 numbers (r, g, b), got {value!r}")
    try:
        vals = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except TypeError as exc:
        raise TypeError(f"{name}: expected 3 numbers (r, g, b), got {value!r}") from exc
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{name}: expected 3 finite numbers (r, g, b), got {value!r}")
    return vals  # type: ignore[return-value]


@dataclass(frozen=True)
class RasterSettings:
    """Options of :func:`softras.functional.soft_rasterize` (same names and defaults as the original).

    Attributes:
        image_height, image_width: output size in pixels (``image_size`` in the constructor
            helper :meth:`create` may be an int or ``(height, width)``).
        background_color: RGB of pixels no face covers.
        near, far: depth range; faces whose interpolated depth is outside it add no colour
            (they still add coverage to alpha).
        fill_back: double-sided faces, i.e. back-facing triangles also contribute colour.
        eps: background "depth" in the softmax: the background weight is exp(eps / gamma).
        sigma_val: scale σ of the coverage: D = F(sign·x/σ), sign = +1 strictly inside the face,
            x = d² (``squared_distance``) or d; SoftRas's D = sigmoid(sign·d²/σ) by default.
            A number, or one value per item of the batch (a 1-D sequence, NumPy array or tensor
            of B values, stored as a tuple of floats): each item is then rendered with its own σ,
            exactly as if rendered alone (:mod:`softras.raster.per_item`). σ is not differentiable
            (a tensor that requires grad is refused).
        dist_func: the distance d: ``'hard'`` (D ∈ {0, 1}, the closed triangle),
            ``'barycentric'`` (d = min barycentric) or ``'euclidean'`` (screen distance to the
            triangle).
        dist_eps: coverage below which a (pixel, face) pair is culled: pairs further outside
            than the distance where D falls to dist_eps (:func:`softras.raster.model.cull_z`;
            θ = σ·log(1/dist_eps − 1) for SoftRas's logistic on d²).
        gamma_val: temperature γ of the depth softmax; a number or one value per item, as
            ``sigma_val``.
        aggr_func_rgb: ``'hard'`` (z-buffer) or ``'softmax'``.
        aggr_func_alpha: ``'hard'``, ``'sum'`` (mean of D), ``'prod'`` (1 − Π(1 − D), also
            called ``'probabilistic'``) or a T-conorm of :data:`softras.raster.model.T_CONORMS`
            (``'max'``, ``'einstein'``, ``'hamacher'``, ``'frank'``, ``'yager'``,
            ``'aczel_alsina'``, ``'dombi'``, ``'schweizer_sklar'``); see docs/families.md.
        texture_type: ``'surface'`` (R×R texels per face) or ``'vertex'`` (3 colours per face);
            used by the original's entry points, which pass colours as ``textures``.
        with_depth: also aggregate the soft depth (see :class:`~softras.raster.contract.RasterResult`).
        with_zbuffer: also compute the z-buffer's face id, barycentrics and depth.
        distribution: the coverage distribution F (GenDR's families, :data:`DISTRIBUTIONS`):
            ``'logistic'`` (SoftRas, the default), ``'uniform'``, ``'gaussian'``, ...;
            ``'heaviside'`` is ``dist_func='hard'``.
        squared_distance: x = d² (True, SoftRas) or d (False, GenDR's default).
        dist_shape: the shape of ``'gamma'`` / ``'gamma_rev'`` (required there, > 0).
        dist_shift: the shift of the one-sided families (exponential, gamma, levy and their
            ``_rev`` forms), in units of σ; None is 0.
        t_conorm_p: the parameter of the parametrised T-conorms (see each one's range).
        perspective_correct: interpolate vertex attributes (colours, features, normals) with the
            perspective-correct barycentrics b_k = c_k/z_k / Σ_m c_m/z_m of the pair's clipped,
            renormalised screen barycentrics c_k (:func:`softras.raster.model.texture.perspective_weights`),
            as a camera sees a surface. False (the original's rule, its default): with c_k
            themselves, linear in screen space. UV textures are always perspective-correct.
    """

    image_height: int = 256
    image_width: int = 256
    background_color: tuple[float, float, float] = (0.0, 0.0, 0.0)
    near: float = 1.0
    far: float = 100.0
    fill_back: bool = True
    eps: float = 1e-3
    sigma_val: float | tuple[float, ...] = 1e-5
    dist_func: str = "euclidean"
    dist_eps: float = 1e-4
    gamma_val: float | tuple[float, ...] = 1e-4
    aggr_func_rgb: str = "softmax"
    aggr_func_alpha: str = "prod"
    texture_type: str = "surface"
    with_depth: bool = False
    with_zbuffer: bool = False
    distribution: str = "logistic"
    squared_distance: bool = True
    dist_shape: float | None = None
    dist_shift: float | None = None
    t_conorm_p: float | None = None
    perspective_correct: bool = False
    # Derived, filled by __post_init__.
    cull_threshold: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h, w = image_hw((self.image_height, self.image_width))
        object.__setattr__(self, "image_height", h)
        object.__setattr__(self, "image_width", w)
        object.__setattr__(self, "background_color", _color3("background_color", self.background_color))
        near = check_number("near", self.near)
        far = check_number("far", self.far)
        if not (math.isfinite(near) and math.isfinite(far)) or far <= near:
            raise ValueError(f"near/far: expected finite near < far, got near={self.near}, far={self.far}")
        object.__setattr__(self, "near", near)
        object.__setattr__(self, "far", far)
        for name in ("fill_back", "with_depth", "with_zbuffer", "squared_distance", "perspective_correct"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        object.__setattr__(self, "eps", check_number("eps", self.eps))
        object.__setattr__(self, "sigma_val", item_values("sigma_val", self.sigma_val, check_sigma))
        object.__setattr__(self, "gamma_val", item_values("gamma_val", self.gamma_val, check_gamma))
        object.__setattr__(self, "dist_eps", check_dist_eps("dist_eps", self.dist_eps))
        check_choice("dist_func", self.dist_func, DIST_FUNCS)
        check_choice("aggr_func_rgb", self.aggr_func_rgb, RGB_AGGREGATIONS)
        check_choice("aggr_func_alpha", self.aggr_func_alpha, ALPHA_AGGREGATIONS)
        check_choice("texture_type", self.texture_type, TEXTURE_TYPES)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        if self.aggr_func_alpha == "probabilistic":
            object.__setattr__(self, "aggr_func_alpha", "prod")
        for name in ("dist_shape", "dist_shift", "t_conorm_p"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_number(name, getattr(self, name)))
        if self.distribution == "heaviside":
            object.__setattr__(self, "dist_func", "hard")
        model.check_family(self.distribution, self.dist_shape, self.dist_shift, self.aggr_func_alpha, self.t_conorm_p)
        object.__setattr__(self, "cull_threshold", self._cull_threshold())

    @property
    def softras_coverage(self) -> bool:
        """Whether the coverage is SoftRas's own, D = sigmoid(sign·d²/σ) (or the hard test): the
        kernels' dedicated path, whose numbers the original's scripts keep."""
        return self.dist_func == "hard" or (self.distribution == "logistic" and self.squared_distance)

    @property
    def family(self) -> tuple[int, float, float, float]:
        """(distribution code, shape, shift, t_conorm_p) as the model's functions take them: the
        code of :data:`softras.raster.model.DISTRIBUTIONS` (logistic for SoftRas's coverage), and
        0 for each parameter the family does not take."""
        name = "logistic" if self.distribution == "heaviside" else self.distribution
        return (
            model.DISTRIBUTIONS[name].code,
            float(self.dist_shape or 0.0),
            float(self.dist_shift or 0.0),
            float(self.t_conorm_p or 0.0),
        )

    @property
    def per_item(self) -> bool:
        """Whether ``sigma_val`` or ``gamma_val`` holds one value per item (a tuple). Such settings
        are split into groups of scalar settings before any backend runs
        (:func:`softras.raster.per_item.groups`)."""
        return isinstance(self.sigma_val, tuple) or isinstance(self.gamma_val, tuple)

    def _cull_threshold(self) -> float:
        """θ: pairs outside a face whose squared distance reaches θ are culled (D <= dist_eps).
        Per-item σ: the largest item's θ (each group of items is rasterized with its own)."""
        sigma = max(self.sigma_val) if isinstance(self.sigma_val, tuple) else self.sigma_val
        if self.softras_coverage:
            return sigma * math.log(1.0 / self.dist_eps - 1.0)
        _, shape, shift, _ = self.family
        z = model.cull_z(self.distribution, self.dist_eps, shape, shift)
        reach = max(-z, 0.0) * sigma  # x at the cull point
        return reach if self.squared_distance else reach * reach

    @property
    def cull_radius(self) -> float:
        """√θ: how far (in NDC units) outside its bounding box a face can still cover a pixel."""
        return math.sqrt(self.cull_threshold)

    @classmethod
    def create(cls, image_size: int | Sequence[int] = 256, **kwargs: object) -> RasterSettings:
        """Build settings from the original's argument names (``image_size`` int or (H, W))."""
        h, w = image_hw(image_size)
        return cls(image_height=h, image_width=w, **kwargs)  # type: ignore[arg-type]
