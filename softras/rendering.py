"""`render`: a mesh and a camera in, any set of G-buffer outputs out, in one rasterization call.

:func:`render` builds exactly one call to :func:`softras.raster.rasterize_channels` holding only
the channels the requested outputs need, and splits its result into a :class:`RenderOutput`:

============== ================= ======= =====================================================
output         shape             dtype   meaning
============== ================= ======= =====================================================
rgba           [B, 4, H, W]      float   colour (optionally lit) and alpha, soft-aggregated
alpha          [B, 1, H, W]      float   coverage (always returned)
depth          [B, 1, H, W]      float   camera depth, aggregated with the colour's weights
hard_depth     [B, 1, H, W]      float   z-buffer depth (0 where empty)
normals        [B, 3, H, W]      float   vertex or face normals, camera or world frame
features       [B, C, H, W]      float   per-vertex features, aggregated like colour
face_id        [B, H, W]         int64   z-buffer face index (−1 where empty)
barycentrics   [B, 3, H, W]      float   perspective-correct barycentrics of the z-buffer face
============== ================= ======= =====================================================

See docs/outputs.md for the semantics, the background values and pictures.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from . import functional as srf
from ._memory import RequestTooLargeError
from ._precision import result_dtype, upcast
from ._validation import check_bool, check_choice, check_finite, image_hw
from .clipping import ClippedFaces, project_faces
from .lighting import AmbientLighting, DirectionalLighting, Lighting, accumulate_light
from .mesh import Mesh
from .raster import RasterResult, RasterSettings, rasterize_channels
from .raster.uv import TEXTURE_FILTERS, TEXTURE_WRAPS, UVMaps
from .uv_texture import UVTexture

__all__ = [
    "HARD_OUTPUTS",
    "OUTPUTS",
    "RASTER_OPTIONS",
    "CameraLike",
    "RenderOutput",
    "compute_mesh",
    "corner_light",
    "render",
    "shade",
    "vertex_light",
]

OUTPUTS = ("rgba", "alpha", "depth", "hard_depth", "normals", "features", "face_id", "barycentrics")
"""Every name accepted in ``outputs=``."""
HARD_OUTPUTS = frozenset({"hard_depth", "face_id", "barycentrics"})
"""The z-buffer outputs (``RasterSettings.with_zbuffer``); not differentiable."""
_DERIVED = {"image_height", "image_width", "texture_type", "with_depth", "with_zbuffer", "cull_threshold"}
RASTER_OPTIONS = tuple(sorted(({f.name for f in dataclasses.fields(RasterSettings)} - _DERIVED) | {"anti_aliasing"}))
"""Keyword options of :func:`render` passed on to :class:`~softras.raster.RasterSettings`
(``anti_aliasing`` renders at twice the size and average-pools 2×2)."""
NORMAL_KINDS = ("vertex", "face")
NORMAL_FRAMES = ("camera", "world")

Light = Lighting | AmbientLighting | DirectionalLighting


@runtime_checkable
class CameraLike(Protocol):
    """What :func:`render` needs of a camera (every :mod:`softras.cameras` class has it).

    ``image_size`` is ``(H, W)`` or ``None``; ``to_screen`` maps world points [B, N, 3] to
    screen space [B, N, 3] (x, y NDC with y up: x = (2u + 1 − W)/W, y = (H − 1 − 2v)/H for
    the pixel (u, v); z the camera depth); ``world_to_camera`` maps them to the camera frame,
    whose z is the camera depth, affine in world coordinates (:mod:`softras.clipping` clips
    faces at z = near with it, and ``normals_frame='camera'`` rotates normals into it). A
    camera may say ``perspective = False`` (orthographic: any ``near``, not only > 0).
    """

    image_size: tuple[int, int] | None

    def to_screen(self, points: torch.Tensor, image_size: tuple[int, int] | None = None) -> torch.Tensor: ...

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class RenderOutput:
    """The outputs of :func:`render`; those not asked for are ``None`` (``alpha`` is always set).

    Attributes:
        rgba: [B, 4, H, W] colour (soft-aggregated) and alpha; differentiable.
        alpha: [B, 1, H, W] coverage (``aggr_func_alpha``); differentiable.
        depth: [B, 1, H, W] soft depth: the perspective-correct camera depth aggregated with the
            colour's weights (background 0); differentiable.
        hard_depth: [B, 1, H, W] the z-buffer's camera depth (0 where empty); not differentiable.
        normals: [B, 3, H, W] normals aggregated like colour (background 0, not renormalised);
            differentiable.
        features: [B, C, H, W] the ``features=`` channels aggregated like colour (background 0);
            differentiable.
        face_id: [B, H, W] int64 per-item index of the z-buffer face, −1 where empty.
        barycentrics: [B, 3, H, W] perspective-correct barycentrics of the z-buffer face w.r.t.
            its vertices 0, 1, 2 (0 where empty); not differentiable.
    """

    rgba: torch.Tensor | None = None
    alpha: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    hard_depth: torch.Tensor | None = None
    normals: torch.Tensor | None = None
    features: torch.Tensor | None = None
    face_id: torch.Tensor | None = None
    barycentrics: torch.Tensor | None = None

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The outputs that are set, by name (in :data:`OUTPUTS` order)."""
        return {name: getattr(self, name) for name in OUTPUTS if getattr(self, name) is not None}


# ---- argument checks ---------------------------------------------------------------------
def _check_outputs(outputs: object) -> frozenset[str]:
    if isinstance(outputs, str):
        outputs = (outputs,)
    if not isinstance(outputs, Sequence | set | frozenset) or not outputs:
        raise TypeError(f"outputs: expected a non-empty sequence of names from {OUTPUTS}, got {outputs!r}")
    for name in outputs:
        if name not in OUTPUTS:
            raise ValueError(f"outputs: unknown output {name!r}; valid outputs are {', '.join(OUTPUTS)}")
    return frozenset(outputs)


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    for key in options:
        if key in _DERIVED:
            why = {
                "with_depth": "ask for outputs=('depth', ...) instead",
                "with_zbuffer": "ask for outputs=('face_id' | 'barycentrics' | 'hard_depth', ...) instead",
                "texture_type": "it is the mesh's texture_type",
            }.get(key, "pass image_size=(H, W) or give the camera an image_size")
            raise TypeError(f"render: option {key!r} is set by render itself ({why})")
        if key not in RASTER_OPTIONS:
            near = difflib.get_close_matches(key, RASTER_OPTIONS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise TypeError(f"render: unknown option {key!r}{hint} (raster options: {', '.join(RASTER_OPTIONS)})")
    return options


def render_size(
    camera: object, image_size: object, name: str = "image_size"
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the rendered (H, W), the (H, W) to pass to ``camera.to_screen``) for ``image_size``.

    A camera with its own ``image_size`` (K refers to that image) rendered at another size of
    the same aspect ratio keeps its field of view: its image is scaled, as if K were rescaled to
    the new size. Another aspect ratio (more than a pixel off) raises ``ValueError`` naming
    ``name`` (``'image_size'`` for :func:`render`, ``'camera'`` for a renderer's per-call camera).
    This is the rule of :func:`render` and of ``SoftRenderer(camera=...)``.
    """
    own = getattr(camera, "image_size", None)
    own = None if own is None else image_hw(own, "camera.image_size")
    if image_size is None:
        if own is None:
            raise ValueError(
                f"image_size: the camera ({type(camera).__name__}) has no image_size; pass image_size=(H, W)"
            )
        return own, own
    size = image_hw(image_size)
    if own is None:
        return size, size
    if abs(own[0] * size[1] - own[1] * size[0]) > max(own[1], size[1]):
        raise ValueError(
            f"{name}: the camera's image_size {own} and the rendered {size} (H, W) have other aspect ratios; a "
            "camera can be rendered at another resolution of its own aspect ratio only"
        )
    return size, own


def compute_mesh(mesh: Mesh) -> tuple[Mesh, torch.dtype | None]:
    """(``mesh`` with vertices and textures in their compute dtype, the dtype to cast outputs to).

    The entry of every render pipeline (:func:`render`, ``SoftRenderer.render_mesh``): a half
    mesh (float16 / bfloat16 vertices) is lit, transformed, clipped and rasterized in float32,
    and its outputs are cast to the returned dtype (the vertices' dtype; float32 inside
    ``torch.autocast``), as the rasterizer does (``softras._precision``). Float32 and float64
    vertices: the dtype is ``None`` (the outputs are left as they are), and the mesh is returned
    as it is unless its textures are half.
    """
    vertices = upcast(mesh.vertices)
    textures = mesh.textures.upcast() if isinstance(mesh.textures, UVTexture) else upcast(mesh.textures)
    out = None if vertices is mesh.vertices else result_dtype(mesh.vertices.dtype, mesh.device)
    if vertices is mesh.vertices and textures is mesh.textures:
        return mesh, out
    return mesh.replace(vertices=vertices, textures=textures), out


def _check_camera(camera: object) -> None:
    for method in ("to_screen", "world_to_camera"):
        if not callable(getattr(camera, method, None)):
            raise TypeError(
                f"camera: expected a camera with a {method}() method (see softras.rendering.CameraLike), "
                f"got {type(camera).__name__}"
            )


def _check_near(camera: object, near: float) -> None:
    if getattr(camera, "perspective", True) and near <= 0:
        raise ValueError(
            f"near: expected a near plane > 0 for a perspective camera ({type(camera).__name__}), got {near}; "
            "faces are clipped at camera depth z = near"
        )


def _check_features(features: object, mesh: Mesh) -> torch.Tensor:
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"features: expected a [B, V, C] or [V, C] torch.Tensor, got {type(features).__name__}")
    f = features[None] if features.ndim == 2 else features
    b, v = mesh.batch_size, mesh.num_vertices
    if f.ndim != 3 or f.shape[1] != v or f.shape[0] not in (1, b) or f.shape[2] < 1:
        raise ValueError(f"features: expected shape [{b}, {v}, C] or [{v}, C] with C >= 1, got {tuple(features.shape)}")
    if not f.is_floating_point():
        raise TypeError(f"features: expected a floating dtype, got {f.dtype}")
    if f.device != mesh.device:
        raise ValueError(f"features: expected device {mesh.device} (as the mesh), got {f.device}")
    check_finite("features", f)
    return f.expand(b, -1, -1)


def _light_terms(lights: object) -> list[AmbientLighting | DirectionalLighting]:
    """The ambient and directional terms of ``lights``, in the order they are applied."""
    if isinstance(lights, Lighting):
        return [lights.ambient, *lights.directionals]
    if isinstance(lights, AmbientLighting | DirectionalLighting):
        return [lights]
    if isinstance(lights, Sequence) and not isinstance(lights, str):
        return [term for light in lights for term in _light_terms(light)]
    raise TypeError(
        "lights: expected None, a softras.Lighting, an AmbientLighting / DirectionalLighting, "
        f"or a sequence of them, got {type(lights).__name__}"
    )


# ---- channels ----------------------------------------------------------------------------
def shade(mesh: Mesh, lights: Light | Sequence[Light] | None, smooth_shading: bool = False) -> torch.Tensor:
    """The mesh's colours, lit: surface [B, F, R*R, 3] or vertex [B, V, 3].

    Lighting follows :class:`softras.Lighting` (which :class:`softras.SoftRenderer` uses): the
    light starts at 0, each term adds to it (ambient: intensity·colour; directional:
    intensity·colour·max(0, n·direction) with world-space unit normals n, per face for surface
    textures and per vertex for vertex colours), and the colours are multiplied by it. A
    :class:`Lighting`'s ``light_mode`` is not consulted: shading follows the mesh's
    ``texture_type``, as in ``SoftRenderer.render_mesh``. ``lights=None``: the colours as they are.

    ``smooth_shading=True`` with surface textures returns the texels unlit: their light is the
    per-vertex :func:`vertex_light`, which :func:`render` interpolates across each face and
    multiplies in after rasterization. Vertex colours are lit per vertex either way.

    Raises:
        ValueError: a ``'uv'`` mesh: its colour is looked up per pixel, so :func:`render` lights it
            after rasterization with :func:`corner_light`.
    """
    if mesh.texture_type == "uv":
        raise ValueError(
            "mesh: a UV-textured mesh is lit after rasterization (softras.render multiplies its colour by "
            "the aggregated corner_light); shade() returns pre-lit colours of surface or vertex textures only"
        )
    if lights is None:
        return mesh.textures
    terms = _light_terms(lights)
    surface = mesh.texture_type == "surface"
    if surface and smooth_shading:
        return mesh.textures
    light = accumulate_light(terms, mesh.surface_normals if surface else mesh.vertex_normals)
    return mesh.textures * (light[:, :, None, :] if surface else light)


def vertex_light(mesh: Mesh, lights: Light | Sequence[Light]) -> torch.Tensor:
    """[B, V, 3] light at every vertex from its (area-weighted, unit) vertex normal (see :func:`shade`)."""
    return accumulate_light(_light_terms(lights), mesh.vertex_normals)


def corner_light(mesh: Mesh, lights: Light | Sequence[Light], smooth_shading: bool = False) -> torch.Tensor:
    """[B, F, 3, 3] the light at every face corner, to aggregate as a vertex attribute.

    Flat (``smooth_shading=False``): each face's light from its unit face normal, the same at its 3
    corners; smooth: :func:`vertex_light` at the corners. The terms add up as in :func:`shade`.
    """
    if smooth_shading:
        return srf.face_vertices(vertex_light(mesh, lights), mesh.faces)
    light = accumulate_light(_light_terms(lights), mesh.surface_normals)  # [B, F, 3]
    return light[:, :, None, :].expand(-1, -1, 3, -1)


def _normals(mesh: Mesh, camera: CameraLike, kind: str, frame: str) -> torch.Tensor:
    """Per-corner unit normals [B, F, 3, 3] in ``frame`` (face normals: the same at the 3 corners)."""
    n = mesh.vertex_normals if kind == "vertex" else mesh.surface_normals
    if frame == "camera":  # a rigid world_to_camera moves directions by its rotation
        origin = n.new_zeros(n.shape[0], 1, 3)
        n = camera.world_to_camera(n) - camera.world_to_camera(origin)
    if kind == "vertex":
        return srf.face_vertices(n, mesh.faces)
    return n[:, :, None, :].expand(-1, -1, 3, -1)


#: The channels of the interpolated vertex light (smooth shading of surface textures).
_LIGHT = "light"


@dataclass(frozen=True)
class _Plan:
    """The channels of one rasterization call and where each output sits in them."""

    surface: torch.Tensor | None  # [B, F, T, Cs]
    vertex: torch.Tensor | None  # [B, F, 3, Cv]
    background: tuple[float, ...]
    slices: dict[str, slice]  # output name -> channels of RasterResult.channels
    uv: UVMaps | None = None  # the UV texture's RGB, channels Cs + Cv to Cs + Cv + 3


@dataclass(frozen=True)
class _TextureOptions:
    """How a UV texture is looked up (``texture_filter``, ``texture_wrap`` of :func:`render`)."""

    filter: str = "bilinear"
    wrap: str = "repeat"


def _plan(
    mesh: Mesh,
    camera: CameraLike,
    asked: frozenset[str],
    lights: Light | Sequence[Light] | None,
    features: torch.Tensor | None,
    normals: str,
    normals_frame: str,
    background_color: tuple[float, ...],
    smooth_shading: bool,
    texture: _TextureOptions,
) -> _Plan:
    surface, vertex, background, slices, start, uv = None, [], [], {}, 0, None

    def add(name: str, values: torch.Tensor, bg: Sequence[float]) -> None:
        nonlocal start
        vertex.append(values)
        background.extend(bg)
        slices[name] = slice(start, start + values.shape[-1])
        start += values.shape[-1]

    if "rgba" in asked and mesh.texture_type == "uv":
        uv = mesh.textures.rgb().maps(texture.filter, texture.wrap)
        if lights is not None:  # light 1 on the background keeps its colour
            add(_LIGHT, corner_light(mesh, lights, smooth_shading), (1.0,) * 3)
    elif "rgba" in asked:
        colours = shade(mesh, lights, smooth_shading)
        if mesh.texture_type == "surface":
            surface = colours
            background.extend(background_color)
            slices["rgba"] = slice(0, 3)
            start = 3
            if smooth_shading and lights is not None:  # light 1 on the background keeps its colour
                add(_LIGHT, srf.face_vertices(vertex_light(mesh, lights), mesh.faces), (1.0,) * 3)
        else:
            add("rgba", srf.face_vertices(colours, mesh.faces), background_color)
    if "normals" in asked:
        add("normals", _normals(mesh, camera, normals, normals_frame), (0.0,) * 3)
    if "features" in asked:
        per_face = srf.face_vertices(features.to(mesh.vertices.dtype), mesh.faces)
        add("features", per_face, (0.0,) * per_face.shape[-1])
    if uv is not None:  # the UV channels come after the surface and vertex ones
        background.extend(background_color)
        slices["rgba"] = slice(start, start + 3)
    return _Plan(surface, torch.cat(vertex, dim=-1) if vertex else None, tuple(background), slices, uv)


def _split(result: RasterResult, plan: _Plan, asked: frozenset[str]) -> RenderOutput:
    out: dict[str, torch.Tensor | None] = {"alpha": result.alpha}
    for name, where in plan.slices.items():
        out[name] = result.channels[:, where]
    light = out.pop(_LIGHT, None)
    if "rgba" in asked:
        rgb = out["rgba"] if light is None else out["rgba"] * light
        out["rgba"] = torch.cat([rgb, result.alpha], dim=1)
    if "depth" in asked:
        out["depth"] = result.depth
    for name in HARD_OUTPUTS & asked:
        out[name] = getattr(result, name)
    return RenderOutput(**out)


def _named_by_caller(error: RequestTooLargeError, asked: frozenset[str]) -> RequestTooLargeError:
    """``error`` naming what the caller of :func:`render` passed instead of the rasterizer's channel
    arguments: the surface channels are the mesh's textures, the vertex channels hold ``features``
    (when asked, by far the widest), else the colours and normals of ``outputs``."""
    argument, _, rest = str(error).partition(": ")
    caller = {"surface": "mesh.textures", "uv": "mesh.textures"}
    caller["vertex"] = "features" if "features" in asked else "outputs"
    return RequestTooLargeError(f"{caller.get(argument, argument)}: {rest}")


def _clip_plan(plan: _Plan, clip: ClippedFaces) -> _Plan:
    """The plan's attributes moved onto the clipped faces."""
    surface = None if plan.surface is None else clip.texels(plan.surface)
    vertex = None if plan.vertex is None else clip.corners(plan.vertex)
    uv = plan.uv
    if uv is not None:  # UVs are affine in world space on a face, like the clip's corners
        uv = uv._replace(uv=clip.corners(uv.uv), material=uv.material.gather(1, clip.face_index))
    return dataclasses.replace(plan, surface=surface, vertex=vertex, uv=uv)


def item_alpha(alpha: torch.Tensor, mesh: Mesh, aggr_func_alpha: str) -> torch.Tensor:
    """Alpha [B, 1, H, W] of a padded list of meshes (``mesh.is_padded``) with ``'sum'`` taken over each
    item's own faces: the rasterizer divided Σ D by the padded count F (its padding faces have no
    area and add nothing), so item b's alpha is scaled by F / F_b. Other aggregations: as given."""
    if not mesh.is_padded or aggr_func_alpha != "sum":
        return alpha
    scale = mesh.num_faces / mesh.face_counts.to(alpha.device, alpha.dtype)
    return alpha * scale[:, None, None, None]


def _unclip_result(result: RasterResult, clip: ClippedFaces, settings: RasterSettings) -> RasterResult:
    """The rasterization of clipped faces in terms of the mesh's faces: z-buffer face ids and
    barycentrics of the original faces, and ``sum`` alpha divided by the mesh's face count."""
    changes: dict[str, torch.Tensor] = {}
    if settings.aggr_func_alpha == "sum" and clip.count != clip.num_faces:
        changes["alpha"] = result.alpha * (clip.count / clip.num_faces)
    if result.face_id is not None:
        if result.barycentrics is not None:
            changes["barycentrics"] = clip.barycentrics(result.face_id, result.barycentrics)
        changes["face_id"] = clip.face_id(result.face_id)
    return result._replace(**changes)


def _pool(output: RenderOutput) -> RenderOutput:
    """2×2 average pooling of every (soft) image of ``output`` (anti-aliasing)."""
    return RenderOutput(**{k: F.avg_pool2d(v, kernel_size=2, stride=2) for k, v in output.as_dict().items()})


def _cast(output: RenderOutput, dtype: torch.dtype | None) -> RenderOutput:
    """``output`` with its floating images in ``dtype`` (``face_id`` stays int64); None: as it is."""
    if dtype is None:
        return output
    return RenderOutput(**{k: v.to(dtype) if v.is_floating_point() else v for k, v in output.as_dict().items()})


# ---- entry point -------------------------------------------------------------------------
def render(
    mesh: Mesh,
    camera: CameraLike,
    *,
    lights: Light | Sequence[Light] | None = None,
    outputs: Sequence[str] = ("rgba",),
    backend: str | None = None,
    features: torch.Tensor | None = None,
    normals: str = "vertex",
    normals_frame: str = "camera",
    image_size: int | Sequence[int] | None = None,
    smooth_shading: bool = False,
    texture_filter: str | None = None,
    texture_wrap: str | None = None,
    **raster_options: Any,
) -> RenderOutput:
    """Render ``mesh`` seen by ``camera`` into the requested ``outputs``, in one rasterization.

    Args:
        mesh: a :class:`softras.Mesh` in world space (B items; its colours are the textures:
            surface, vertex or UV).
        camera: any camera of :mod:`softras.cameras` (or an object with the :class:`CameraLike`
            methods). A camera with ``batch_size`` B > 1 (e.g. :class:`~softras.cameras.Pinhole`
            with [B, ...] parameters, a LookAtCamera with [B, 3] eyes) renders a mesh of batch 1 B times.
        lights: ``None`` (colours unlit), a :class:`softras.Lighting`, an
            :class:`~softras.AmbientLighting` / :class:`~softras.DirectionalLighting`, or a
            sequence of them (their light adds up); see :func:`shade`. Lights shade ``rgba``
            only: normals and features are rendered as they are.
        outputs: names from :data:`OUTPUTS`; only these are computed.
        backend: a name from :func:`softras.available_backends`, or None for the device's default.
        features: [B, V, C] or [V, C] per-vertex values, needed for (and only used by) ``'features'``.
        normals: ``'vertex'`` (area-weighted vertex normals, interpolated) or ``'face'``
            (constant per face).
        normals_frame: ``'camera'`` (the camera's ``world_to_camera`` frame, which must be rigid)
            or ``'world'``.
        image_size: (H, W) or S; defaults to the camera's ``image_size``.
        smooth_shading: light surface textures with the vertex normals, interpolated across each
            face (Gouraud shading), instead of one face normal per face; the light is aggregated
            like the colour and multiplied with it after rasterization. Vertex colours are lit
            per vertex either way. See :func:`shade`.
        texture_filter: how a UV-textured mesh's images are looked up at each (pixel, face) pair:
            ``'bilinear'`` (the default), ``'nearest'`` or ``'trilinear'`` (mip-mapped, the level
            of detail from the pair's UV derivatives); see :mod:`softras.raster.uv`. Only for
            ``texture_type='uv'`` meshes (others raise ``ValueError`` when it is given).
        texture_wrap: which texel a UV outside [0, 1) reads: ``'repeat'`` (the default) or
            ``'clamp'``. Only for UV meshes, as ``texture_filter``.
        **raster_options: any of :data:`RASTER_OPTIONS` (see :class:`~softras.raster.RasterSettings`;
            ``background_color`` is the background of ``rgba``). Unknown names raise.
            ``perspective_correct`` defaults to True here: vertex colours, features, normals
            and the corner light are interpolated with perspective-correct weights, as a
            camera sees a surface (the original's entry points, ``SoftRenderer`` and
            ``SoftRasterizer``, keep its screen-space weights; ``perspective_correct=False``
            gives them here too). UVs are always perspective-correct.
            ``sigma_val`` and ``gamma_val`` take a number or one value per item of the batch (a
            1-D sequence or tensor of B values, B the mesh's or the camera's batch): each item
            is then rendered with its own σ and γ, exactly as if rendered alone.

    A UV-textured mesh (:class:`softras.UVTexture`) is looked up per (pixel, face) pair inside
    the aggregation; ``rgba`` shows its images' channels 0-2 (channel 0 as grey when C < 3). Its
    colour varies across a face, so the light cannot be multiplied in per face before
    rasterization: the light of each face corner (:func:`corner_light`: flat, the face's light at
    its 3 corners; smooth, the vertex light) is aggregated as 3 more vertex channels, with the
    same weights as the colour, and the two aggregates are multiplied after rasterization. Under
    ``aggr_func_rgb='softmax'`` a pixel's colour is thus the product of the aggregated texture
    colour and the aggregated light, not the aggregate of per-face products (they agree where
    one face dominates the pixel, and exactly under ``'hard'``). ``lights=None`` renders the
    texture unlit. Gradients reach the images, the UVs and the vertices.

    Returns:
        :class:`RenderOutput` with the requested outputs set (and ``alpha``), in the dtype of
        ``mesh.vertices`` (float32 inside ``torch.autocast``). A float16 / bfloat16 mesh is
        lit, projected, clipped and rasterized in float32 (:func:`compute_mesh`).

    Raises:
        ValueError: unknown output name, missing image size, bad shapes, z-buffer outputs with
            ``anti_aliasing=True`` (an average of face ids means nothing), or ``texture_filter`` /
            ``texture_wrap`` for a mesh without a UV texture.
        TypeError: unknown or render-controlled option, wrong argument types.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a softras.Mesh, got {type(mesh).__name__}")
    asked = _check_outputs(outputs)
    check_choice("normals", normals, NORMAL_KINDS)
    check_choice("normals_frame", normals_frame, NORMAL_FRAMES)
    smooth_shading = check_bool("smooth_shading", smooth_shading)
    if "features" in asked and features is None:
        raise ValueError("features: outputs asks for 'features' but no features=[B, V, C] tensor was given")
    if features is not None:
        features = _check_features(features, mesh)
    options = _check_options(dict(raster_options))
    options.setdefault("perspective_correct", True)
    anti_aliasing = check_bool("anti_aliasing", options.pop("anti_aliasing", False))
    if anti_aliasing and asked & HARD_OUTPUTS:
        raise ValueError(f"anti_aliasing: cannot average the z-buffer outputs {sorted(asked & HARD_OUTPUTS)}")
    texture = _texture_options(mesh, texture_filter, texture_wrap)
    _check_camera(camera)
    mesh, dtype = compute_mesh(mesh)
    (h, w), camera_size = render_size(camera, image_size)
    settings = RasterSettings.create(
        (2 * h, 2 * w) if anti_aliasing else (h, w),
        texture_type="vertex" if mesh.texture_type == "vertex" else "surface",
        with_depth="depth" in asked,
        with_zbuffer=bool(asked & HARD_OUTPUTS),
        **options,
    )
    cameras = getattr(camera, "batch_size", 1)
    if isinstance(cameras, int) and cameras > 1 and mesh.batch_size == 1:
        mesh = _broadcast(mesh, cameras)
        features = None if features is None else features.expand(cameras, -1, -1)
    _check_near(camera, settings.near)
    faces, clip = project_faces(mesh.vertices, mesh.faces, camera, camera_size, settings.near, settings.far)
    plan = _plan(
        mesh, camera, asked, lights, features, normals, normals_frame, settings.background_color, smooth_shading,
        texture,
    )  # fmt: skip
    if clip is not None:
        plan = _clip_plan(plan, clip)
    try:
        result = rasterize_channels(
            faces, settings, surface=plan.surface, vertex=plan.vertex, background=plan.background, backend=backend,
            uv=plan.uv,
        )  # fmt: skip
    except RequestTooLargeError as error:
        raise _named_by_caller(error, asked) from None
    if clip is not None:
        result = _unclip_result(result, clip, settings)
    result = result._replace(alpha=item_alpha(result.alpha, mesh, settings.aggr_func_alpha))
    output = _split(result, plan, asked)
    return _cast(_pool(output) if anti_aliasing else output, dtype)


def _broadcast(mesh: Mesh, batch: int) -> Mesh:
    """A mesh of batch 1 repeated ``batch`` times (views, no copies)."""
    if isinstance(mesh.textures, UVTexture):
        textures = mesh.textures.expand(batch)
    else:
        textures = mesh.textures.expand(batch, *([-1] * (mesh.textures.ndim - 1)))
    return mesh.replace(
        vertices=mesh.vertices.expand(batch, -1, -1), faces=mesh.faces.expand(batch, -1, -1), textures=textures
    )


def _texture_options(mesh: Mesh, texture_filter: object, texture_wrap: object) -> _TextureOptions:
    """The UV lookup options of :func:`render` (defaults for None), checked; refused for a mesh without UVs."""
    given = {name: value for name, value in (("texture_filter", texture_filter), ("texture_wrap", texture_wrap))
             if value is not None}  # fmt: skip
    if mesh.texture_type != "uv":
        if given:
            name = next(iter(given))
            raise ValueError(
                f"{name}: applies to UV-textured meshes only (softras.UVTexture); this mesh has "
                f"texture_type={mesh.texture_type!r}"
            )
        return _TextureOptions()
    options = _TextureOptions(**{name.removeprefix("texture_"): value for name, value in given.items()})
    check_choice("texture_filter", options.filter, TEXTURE_FILTERS)
    check_choice("texture_wrap", options.wrap, TEXTURE_WRAPS)
    return options
