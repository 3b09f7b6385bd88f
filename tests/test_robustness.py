"""Bad input gets clear errors; degenerate but legal scenes give finite images and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import softras as sr
from softras.raster import soft_rasterize

from .options import DIST_FUNCS, RGB_AGGREGATIONS, SOFTRAS_ALPHA_AGGREGATIONS, TEXTURE_TYPES
from .scenes import random_scene


def _tri(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.0, 0.5, 2.0], [0.5, -0.5, 2.0]]]], dtype=dtype)
    return fv, torch.ones(1, 1, 1, 3, dtype=dtype)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma_val": 0.0}, "sigma_val"),
        ({"sigma_val": -1e-4}, "sigma_val"),
        ({"gamma_val": 0}, "gamma_val"),
        ({"gamma_val": float("nan")}, "gamma_val"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": (4, 0)}, "image_size"),
        ({"dist_func": "manhattan"}, "dist_func"),
        ({"aggr_func_rgb": "max"}, "aggr_func_rgb"),
        ({"aggr_func_alpha": "min"}, "aggr_func_alpha"),
        ({"texture_type": "uv"}, "texture_type"),
        ({"dist_eps": 0.7}, "dist_eps"),
        ({"near": 5, "far": 1}, "near/far"),
        ({"background_color": (1, 0)}, "background_color"),
        ({"backend": "opengl"}, "backend"),
    ],
)
def test_bad_settings_name_the_argument(kwargs: dict, match: str) -> None:
    fv, tex = _tri()
    kwargs = dict(kwargs)
    size = kwargs.pop("image_size", 8)
    with pytest.raises((ValueError, TypeError), match=match):
        soft_rasterize(fv, tex, size, **kwargs)


def test_bad_tensors_name_the_argument() -> None:
    fv, tex = _tri()
    with pytest.raises(ValueError, match=r"face_vertices: expected shape \[B, F, 3, 3\]"):
        soft_rasterize(fv[0], tex, 8)
    with pytest.raises(TypeError, match="face_vertices: expected a floating dtype"):
        soft_rasterize(fv.long(), tex, 8)
    with pytest.raises(ValueError, match="face_vertices: expected finite"):
        soft_rasterize(fv.clone().fill_(float("nan")), tex, 8)
    with pytest.raises(ValueError, match="face_vertices: expected at least one"):
        soft_rasterize(fv[:, :0], tex[:, :0], 8)
    with pytest.raises(ValueError, match="textures"):
        soft_rasterize(fv, torch.ones(1, 1, 3, 3), 8)  # 3 texels is not R*R
    with pytest.raises(ValueError, match="textures"):
        soft_rasterize(fv, torch.ones(1, 2, 1, 3), 8)  # F mismatch
    with pytest.raises(ValueError, match="vertex"):
        soft_rasterize(fv, tex, 8, texture_type="vertex")
    with pytest.raises(TypeError, match=r"face_vertices: expected a torch\.Tensor"):
        soft_rasterize(fv.numpy(), tex, 8)
    with pytest.raises(ValueError, match="textures: expected finite"):
        soft_rasterize(fv, tex * float("inf"), 8)


def test_bad_meshes_name_the_argument() -> None:
    v = torch.rand(4, 3)
    f = torch.tensor([[0, 1, 2], [1, 2, 3]])
    with pytest.raises(ValueError, match=r"faces: indices must lie in \[0, 3\]"):
        sr.Mesh(v, f + 1)
    with pytest.raises(ValueError, match="faces: indices"):
        sr.Mesh(v, f - 1)
    with pytest.raises(ValueError, match="vertices: expected a non-empty"):
        sr.Mesh(torch.zeros(0, 3), f)
    with pytest.raises(ValueError, match="faces: expected at least one face"):
        sr.Mesh(v, torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="vertices: expected finite"):
        sr.Mesh(v * float("nan"), f)
    with pytest.raises(ValueError, match=r"vertices: expected shape"):
        sr.Mesh(torch.rand(4, 2), f)
    with pytest.raises(TypeError, match="faces: expected integer"):
        sr.Mesh(v, f.float() + 0.5)
    with pytest.raises(ValueError, match="textures: expected surface textures"):
        sr.Mesh(v, f, torch.ones(1, 2, 3, 3))
    with pytest.raises(ValueError, match="textures: expected vertex textures"):
        sr.Mesh(v, f, torch.ones(1, 3, 3), texture_type="vertex")
    with pytest.raises(ValueError, match="texture_type"):
        sr.Mesh(v, f, texture_type="texel")
    with pytest.raises(TypeError, match=r"texture_type='uv' needs a softras\.UVTexture"):
        sr.Mesh(v, f, torch.ones(1, 3, 3), texture_type="uv")
    with pytest.raises(ValueError, match="camera_mode"):
        sr.SoftRenderer(camera_mode="fisheye")
    with pytest.raises(ValueError, match="P: camera_mode='projection' needs"):
        sr.Projection(None)  # an explicit projection camera needs P (SoftRenderer() has a default camera)
    with pytest.raises(ValueError, match="light_mode"):
        sr.Lighting(light_mode="point")
    r = sr.SoftRenderer(camera_mode="look_at")
    with pytest.raises(ValueError, match="eye: expected shape"):
        r.transform.set_eyes(torch.zeros(2, 4))
        r(v, f)
    with pytest.raises(ValueError, match="sigma_val"):
        r.set_sigma(-1.0)
    with pytest.raises(TypeError, match=r"mesh: expected a softras\.Mesh"):
        r.render_mesh(v)


def test_device_mismatch_is_reported() -> None:
    fv, tex = _tri()
    meta = tex.to("meta")
    with pytest.raises(ValueError, match="textures: expected device cpu"):
        soft_rasterize(fv, meta, 8)


_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(
    seed=st.integers(0, 10_000),
    faces=st.integers(1, 5),
    dist_func=st.sampled_from(DIST_FUNCS),
    aggr_rgb=st.sampled_from(RGB_AGGREGATIONS),
    aggr_alpha=st.sampled_from(SOFTRAS_ALPHA_AGGREGATIONS),
    texture_type=st.sampled_from(TEXTURE_TYPES),
    degenerate=st.sampled_from(["none", "collinear", "point", "zero_depth"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    sigma=st.sampled_from([1e-6, 1e-4, 1e-2]),
    gamma=st.sampled_from([1e-5, 1e-4, 1e-1]),
    backend=st.sampled_from(["reference", "cpu"]),
)
def test_property_finite_images_and_gradients(
    seed: int, faces: int, dist_func: str, aggr_rgb: str, aggr_alpha: str, texture_type: str,
    degenerate: str, dtype: torch.dtype, sigma: float, gamma: float, backend: str,
) -> None:  # fmt: skip
    """Random small screen-space scenes: depths behind the camera, straddling near, zero-area
    triangles, vertices at z = 0 — images and gradients stay finite."""
    fv, tex = random_scene(batch=2, faces=faces, texture_type=texture_type, seed=seed, dtype=dtype, z_range=(-1.0, 4.0))
    if degenerate == "collinear":
        fv[:, 0, 2, :2] = 0.5 * (fv[:, 0, 0, :2] + fv[:, 0, 1, :2])
    elif degenerate == "point":
        fv[:, 0, 1] = fv[:, 0, 0]
        fv[:, 0, 2] = fv[:, 0, 0]
    elif degenerate == "zero_depth":
        fv[:, 0, 0, 2] = 0.0
    fv.requires_grad_(True)
    tex.requires_grad_(True)
    img = soft_rasterize(
        fv, tex, 8, sigma_val=sigma, gamma_val=gamma, dist_func=dist_func, aggr_func_rgb=aggr_rgb,
        aggr_func_alpha=aggr_alpha, texture_type=texture_type, near=0.1, far=3.0, backend=backend,
    )  # fmt: skip
    assert torch.isfinite(img).all()
    assert (img[:, 3] >= 0).all() and (img[:, 3] <= 1 + 1e-6).all()
    weights = torch.linspace(-1, 1, img.numel(), dtype=dtype).reshape(img.shape)
    (img * weights).sum().backward()
    for grad in (fv.grad, tex.grad):  # None: no path (e.g. hard coverage + z-buffer + texels)
        assert grad is None or torch.isfinite(grad).all()


@_settings
@given(seed=st.integers(0, 10_000), eye_z=st.floats(-0.6, 0.6), angle=st.floats(5, 60))
def test_property_pipeline_with_camera_inside_mesh(seed: int, eye_z: float, angle: float) -> None:
    """A camera inside/next to the mesh: vertices behind it and faces straddling near."""
    v, f = sr.shapes.icosphere(1)
    v = (v * 0.5).double()[None].requires_grad_(True)
    g = torch.Generator().manual_seed(seed)
    eye = torch.tensor([[0.05, 0.1, eye_z]], dtype=torch.float64) + 0.1 * torch.rand(
        1, 3, generator=g, dtype=torch.float64
    )
    eye.requires_grad_(True)
    r = sr.SoftRenderer(image_size=8, camera_mode="look_at", eye=eye, viewing_angle=angle, near=0.05, sigma_val=1e-4)
    img = r(v, f[None])
    assert torch.isfinite(img).all()
    img.sum().backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(eye.grad).all()


def test_numpy_inputs_are_accepted_like_the_original() -> None:
    v, f = sr.shapes.icosphere(1)
    r = sr.SoftRenderer(image_size=16, camera_mode="look_at")
    img = r(v.numpy()[None], f.numpy()[None])
    assert img.shape == (1, 4, 16, 16) and img[0, 3].sum() > 10
    eye = np.array([0.0, 0.0, -(1 / np.tan(np.radians(30)) + 1)])  # the default eye
    r2 = sr.SoftRenderer(image_size=16, camera_mode="look_at", eye=eye)
    torch.testing.assert_close(r2(v[None], f[None]), img)


def test_mesh_out_of_view_still_backpropagates() -> None:
    """An optimisation whose mesh leaves the view must not crash at backward()."""
    v, f = sr.shapes.icosphere(1)
    v = (v * 0.2 + torch.tensor([50.0, 0.0, 0.0]))[None].requires_grad_(True)
    r = sr.SoftRenderer(image_size=16, camera_mode="look_at", sigma_val=1e-4)
    img = r(v, f[None])
    assert img[:, 3].sum() == 0
    (1 - img[:, 3]).sum().backward()
    assert v.grad is not None and (v.grad == 0).all()


def test_resolve_device_names_the_argument() -> None:
    from softras._validation import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="camera_device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu0'"):
        resolve_device("gpu0", name="camera_device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: cuda requested but CUDA is not available"):
            resolve_device("cuda")
