"""External oracle for UV textures: a trimesh-made textured sphere, through OBJ, against ray casting.

The mesh and its texture are made with trimesh (a UV sphere with a seam, its image a smooth
colour gradient plus a coarse checker made with NumPy) and exported to OBJ + MTL + PNG; softras
loads that file (``Mesh.from_file(..., texture_type='uv')``) and renders it with a z-buffer
(``aggr_func_rgb='hard'``, unlit). The reference is independent of softras: trimesh casts the ray
through each pixel centre of the Pinhole camera (OpenCV convention: pixel (row r, column c) is
(u, v) = (c, r)), its barycentrics on the hit triangle (``trimesh.triangles.points_to_barycentric``,
in 3-D, hence perspective-correct) interpolate the corners' UVs, and a NumPy lookup reads the
image: texel (column i, row j) of a W × H image is centred at u = (i + ½)/W, v = 1 − (j + ½)/H
(v up, row 0 at the top), bilinear between the 4 nearest centres, repeating beyond [0, 1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import softras
from softras.cameras import Pinhole, rodrigues
from softras.raster.backends import BACKENDS

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("rtree")
Image = pytest.importorskip("PIL.Image")

F64 = torch.float64
SIZE = 64  # the rendered image is SIZE × SIZE
IMAGE_HW = (48, 64)  # the texture: not square, so that a swap of u and v or W and H shows
TOLERANCE = 1 / 255
MIN_AGREEMENT = 0.995

UV_BACKENDS = [b.name for b in BACKENDS.values() if b.uv_textures and b.available() and b.runs_on(torch.device("cpu"))]


def uv_sphere(n_lat: int = 12, n_lon: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices [V, 3], faces [F, 3], uv [V, 2]) of a unit latitude-longitude sphere, outward-wound.

    Column j has u = j / n_lon and row i has v = 1 − i / n_lat, so the seam column is there twice
    (u = 0 and u = 1) and each pole once per column; the faces at the poles are triangles.
    """
    i, j = np.meshgrid(np.arange(n_lat + 1), np.arange(n_lon + 1), indexing="ij")
    theta, phi = np.pi * i / n_lat, 2 * np.pi * j / n_lon
    xyz = np.stack([np.sin(theta) * np.cos(phi), np.cos(theta), -np.sin(theta) * np.sin(phi)], -1)
    uv = np.stack([j / n_lon, 1.0 - i / n_lat], -1).astype(np.float64)
    index = np.arange((n_lat + 1) * (n_lon + 1)).reshape(n_lat + 1, n_lon + 1)
    a, b = index[:-1, :-1], index[1:, :-1]  # corners of each quad: a top-left, b below it
    c, d = index[1:, 1:], index[:-1, 1:]
    upper = np.stack([a, b, d], -1)[1:]  # at the north pole a and d coincide
    lower = np.stack([d, b, c], -1)[:-1]  # at the south pole b and c coincide
    faces = np.concatenate([upper.reshape(-1, 3), lower.reshape(-1, 3)])
    return xyz.reshape(-1, 3), faces, uv.reshape(-1, 2)


def texture_image() -> np.ndarray:
    """[H, W, 3] uint8: red grows to the right, green downwards, blue a checker of 8-pixel squares."""
    h, w = IMAGE_HW
    r, c = np.mgrid[0:h, 0:w]
    image = np.stack([c / (w - 1), r / (h - 1), 0.25 + 0.5 * (((r // 8) + (c // 8)) % 2)], -1)
    return np.round(image * 255).astype(np.uint8)


def camera() -> Pinhole:
    K = torch.tensor([[1.3 * SIZE, 0.0, (SIZE - 1) / 2 + 0.7], [0.0, 1.3 * SIZE, (SIZE - 1) / 2 - 1.1], [0, 0, 1]])
    R = rodrigues(torch.tensor([0.3, -0.5, 0.1], dtype=F64))
    return Pinhole(K.to(F64), R, torch.tensor([0.05, -0.02, 3.2], dtype=F64), image_size=(SIZE, SIZE))


def lookup(image: np.ndarray, u: np.ndarray, v: np.ndarray, texture_filter: str) -> np.ndarray:
    """[N, C] the image read at (u, v) [N], repeating (the convention of the module docstring)."""
    h, w = image.shape[:2]
    x, y = u * w - 0.5, (1.0 - v) * h - 0.5  # column and row positions of the texel centres
    if texture_filter == "nearest":
        return image[np.mod(np.floor(y + 0.5), h).astype(int), np.mod(np.floor(x + 0.5), w).astype(int)]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    c0, c1 = np.mod(x0, w).astype(int), np.mod(x0 + 1, w).astype(int)
    r0, r1 = np.mod(y0, h).astype(int), np.mod(y0 + 1, h).astype(int)
    top = (1 - fx) * image[r0, c0] + fx * image[r0, c1]
    bottom = (1 - fx) * image[r1, c0] + fx * image[r1, c1]
    return (1 - fy) * top + fy * bottom


def ray_traced(mesh: trimesh.Trimesh, cam: Pinhole, image: np.ndarray, texture_filter: str) -> np.ndarray:
    """[SIZE, SIZE, 3] the texture seen through each pixel centre (NaN where the ray misses)."""
    K, R, t = (x[0].numpy() for x in (cam.K, cam.R, cam.t))
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    pixels = np.stack([cols.ravel(), rows.ravel(), np.ones(SIZE * SIZE)], 1)
    directions = pixels @ np.linalg.inv(K).T @ R  # Rᵀ K⁻¹ (c, r, 1), as rows
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    origins = np.broadcast_to(-R.T @ t, directions.shape)
    tri, ray, points = mesh.ray.intersects_id(origins, directions, multiple_hits=False, return_locations=True)
    bary = trimesh.triangles.points_to_barycentric(mesh.triangles[tri], points)  # [N, 3]
    uv = (np.asarray(mesh.visual.uv)[mesh.faces[tri]] * bary[:, :, None]).sum(1)  # [N, 2]
    colour = np.full((SIZE * SIZE, 3), np.nan)
    colour[ray] = lookup(image / 255.0, uv[:, 0], uv[:, 1], texture_filter)
    return colour.reshape(SIZE, SIZE, 3)


@pytest.fixture(scope="module")
def sphere_obj(tmp_path_factory: pytest.TempPathFactory) -> tuple[trimesh.Trimesh, str]:
    """The textured trimesh sphere and the OBJ it was exported to (with its MTL and PNG)."""
    vertices, faces, uv = uv_sphere()
    visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(texture_image()))
    mesh = trimesh.Trimesh(vertices, faces, visual=visual, process=False)
    assert mesh.volume > 0  # outward winding: the front faces are the ones seen
    path = tmp_path_factory.mktemp("uv_oracle") / "sphere.obj"
    mesh.export(path)
    return mesh, str(path)


@pytest.mark.parametrize("backend", UV_BACKENDS)
@pytest.mark.parametrize("texture_filter", ["bilinear", "nearest"])
def test_render_matches_ray_traced_texture(
    sphere_obj: tuple[trimesh.Trimesh, str], backend: str, texture_filter: str
) -> None:
    mesh, path = sphere_obj
    loaded = softras.Mesh.from_file(path, texture_type="uv", dtype=F64)
    assert loaded.texture_type == "uv" and loaded.textures.images[0].shape == (*IMAGE_HW, 3)
    cam = camera()
    out = softras.render(
        loaded, cam, lights=None, aggr_func_rgb="hard", texture_filter=texture_filter,
        outputs=("rgba", "face_id"), backend=backend,
    )  # fmt: skip
    ours = out.rgba[0, :3].permute(1, 2, 0).numpy()
    theirs = ray_traced(mesh, cam, texture_image(), texture_filter)
    both = (out.face_id[0].numpy() >= 0) & ~np.isnan(theirs[..., 0])
    error = np.abs(ours - theirs).max(-1)[both]
    agreement = float((error <= TOLERANCE).mean())
    print(
        f"UV oracle ({backend}, {texture_filter}): {both.sum()} pixels covered by both, "
        f"{100 * agreement:.2f} % within 1/255, max error {error.max():.3g}"
    )
    assert both.sum() > 0.4 * SIZE * SIZE  # the sphere fills much of the image
    assert agreement >= MIN_AGREEMENT
