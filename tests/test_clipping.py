"""Near/far clipping in softras.render (softras.clipping), on every backend.

External oracle: trimesh ray casting through the pixel centres of a Pinhole camera, keeping the
nearest hit at camera depth in [near, far], on scenes that cross the camera plane (a floor
running under the camera, a room around it). Then: geometry behind the camera renders nothing,
faces beyond far are dropped, gradients are exact (gradcheck) and equal on every backend, the
attributes, texels and z-buffer outputs of clipped faces refer to the original faces, and the
original's entry points keep its semantics unless ``clip=True``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import softras as sr
from softras.cameras import LookAtCamera, Orthographic, Pinhole, ProjectionCamera, rodrigues
from softras.clipping import clip_faces
from softras.raster import available_backends
from softras.shapes import icosphere

from .helpers import assert_grad_close
from .test_render_trimesh import ray_cast

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("rtree")

D = torch.float64
BACKENDS = available_backends()
NEAR, FAR = 1.0, 100.0


def _grid(corner: np.ndarray, du: np.ndarray, dv: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """A flat n × m grid of quads (two triangles each) spanning corner + [0, 1]·du + [0, 1]·dv."""
    s, t = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, m + 1), indexing="ij")
    vertices = corner + s.reshape(-1, 1) * du + t.reshape(-1, 1) * dv
    i, j = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    a = (i * (m + 1) + j).ravel()
    b, c, d = a + m + 1, a + m + 2, a + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return vertices, faces


def floor() -> tuple[torch.Tensor, torch.Tensor]:
    """The floor y = 1 under the camera, x ∈ [−30, 30], z ∈ [−5, 20] (it crosses the camera plane)."""
    v, f = _grid(np.array([-30.0, 1.0, -5.0]), np.array([60.0, 0, 0]), np.array([0, 0, 25.0]), 6, 5)
    return torch.from_numpy(v), torch.from_numpy(f)


def room() -> tuple[torch.Tensor, torch.Tensor]:
    """The six walls of an 8 × 6 × 10 box around the origin, each a 3 × 3 grid of quads."""
    parts, offset = [], 0
    half = np.array([4.0, 3.0, 5.0])
    for axis in range(3):
        u, w = (axis + 1) % 3, (axis + 2) % 3
        for side in (-1.0, 1.0):
            corner = -half.copy()
            corner[axis] = side * half[axis]
            du, dv = np.zeros(3), np.zeros(3)
            du[u], dv[w] = 2 * half[u], 2 * half[w]
            v, f = _grid(corner, du, dv, 3, 3)
            parts.append((v, f + offset))
            offset += len(v)
    return torch.from_numpy(np.concatenate([p[0] for p in parts])), torch.from_numpy(
        np.concatenate([p[1] for p in parts])
    )


def _pinhole(size: tuple[int, int], f: float, rvec=(0.0, 0.0, 0.0), t=(0.0, 0.0, 0.0)) -> Pinhole:
    h, w = size
    K = torch.tensor([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]], dtype=D)
    return Pinhole(K, rodrigues(torch.tensor(rvec, dtype=D)), torch.tensor(t, dtype=D), image_size=size)


SCENES = {
    "floor": (floor, _pinhole((32, 32), 16.0)),
    "floor_tilted": (floor, _pinhole((40, 48), 20.0, rvec=(0.3, 0.4, 0.05))),
    "room": (room, _pinhole((36, 36), 14.0, rvec=(0.2, 0.7, -0.1), t=(0.5, -0.3, 0.2))),
    "room_looking_up": (room, _pinhole((32, 40), 12.0, rvec=(-1.1, 0.3, 0.0))),
}


def _render(vertices: torch.Tensor, faces: torch.Tensor, camera, backend: str, **options) -> sr.RenderOutput:
    mesh = sr.Mesh(vertices[None].to(D), faces[None])
    outputs = ("rgba", "face_id", "barycentrics", "hard_depth")
    return sr.render(mesh, camera, outputs=outputs, backend=backend, near=NEAR, far=FAR, **options)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scene", sorted(SCENES))
def test_crossing_scenes_agree_with_ray_casting(scene: str, backend: str) -> None:
    make, camera = SCENES[scene]
    vertices, faces = make()
    out = _render(vertices, faces, camera, backend)
    theirs, hit, _, _ = ray_cast(vertices.numpy(), faces.numpy(), camera, NEAR, FAR)
    ours = out.face_id[0].numpy()
    covered = (ours >= 0) | (theirs >= 0)
    agree = float((ours == theirs)[covered].mean())
    assert covered.sum() > 0.2 * ours.size
    assert agree >= 0.999, f"{scene} on {backend}: face ids agree on {agree:.4%} of {covered.sum()} pixels"
    alpha = out.alpha[0, 0].numpy()
    assert not ((alpha > 0.5) & (theirs < 0)).any(), "alpha > 0.5 where no ray hits the mesh"
    both = (ours >= 0) & (ours == theirs)
    R, t = camera.R[0].numpy(), camera.t[0].numpy()
    z = (hit @ R.T + t)[..., 2]
    np.testing.assert_allclose(out.hard_depth[0, 0].numpy()[both], z[both], rtol=1e-9)
    corners = vertices.numpy()[faces.numpy()[np.where(both, theirs, 0)]]
    bary = trimesh.triangles.points_to_barycentric(corners[both], hit[both])
    np.testing.assert_allclose(out.barycentrics[0].permute(1, 2, 0).numpy()[both], bary, atol=1e-8)


@pytest.mark.parametrize(
    "camera",
    [
        Pinhole([[40.0, 0, 15.5], [0, 40.0, 15.5], [0, 0, 1]], torch.eye(3), [0.0, 0.0, -3.0], image_size=32),
        LookAtCamera(eye=(0.0, 0.0, -3.0), at=(0.0, 0.0, -6.0)),
        ProjectionCamera(P=[[40.0, 0, 16, 0], [0, 40.0, 16, 0], [0, 0, 1, -3.0]], orig_size=32),
        Orthographic([[10.0, 0, 15.5], [0, 10.0, 15.5], [0, 0, 1]], torch.eye(3), [0.0, 0.0, -3.0], image_size=32),
    ],
    ids=["pinhole", "look_at", "projection", "orthographic"],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_geometry_behind_the_camera_renders_nothing(camera, backend: str) -> None:
    v, f = icosphere(1)
    mesh = sr.Mesh(v[None].to(D), f[None])
    out = sr.render(mesh, camera, outputs=("rgba", "face_id", "depth"), backend=backend, image_size=32)
    assert float(out.alpha.sum()) == 0.0
    assert bool((out.face_id < 0).all())
    assert float(out.rgba[:, :3].abs().sum()) == 0.0  # black background


@pytest.mark.parametrize("backend", BACKENDS)
def test_faces_beyond_far_are_dropped_from_alpha_too(backend: str) -> None:
    v, f = icosphere(1)
    mesh = sr.Mesh(v[None].to(D), f[None])
    camera = _pinhole((24, 24), 30.0, t=(0.0, 0.0, 8.0))
    kept = sr.render(mesh, camera, backend=backend, far=10.0).alpha
    dropped = sr.render(mesh, camera, backend=backend, far=6.5).alpha  # every corner at depth 7 to 9
    assert float(kept.sum()) > 20
    assert float(dropped.sum()) == 0.0


def test_sum_alpha_divides_by_the_mesh_face_count() -> None:
    # one face in front and one wholly behind: 'sum' alpha is ΣD / 2, the front face's own / 2
    front = torch.tensor([[-0.5, -0.5, 3.0], [0.0, 0.6, 3.0], [0.6, -0.4, 3.0]], dtype=D)
    behind = front * torch.tensor([1.0, 1.0, -1.0], dtype=D)
    camera = _pinhole((16, 16), 10.0)
    two = sr.Mesh(torch.cat([front, behind])[None], torch.tensor([[[0, 1, 2], [3, 4, 5]]]))
    one = sr.Mesh(front[None], torch.tensor([[[0, 1, 2]]]))
    options = dict(backend="reference", aggr_func_alpha="sum", sigma_val=1e-3)
    both = sr.render(two, camera, **options).alpha
    alone = sr.render(one, camera, **options).alpha
    torch.testing.assert_close(both, alone / 2, rtol=0, atol=1e-15)


def _crossing_triangles() -> tuple[torch.Tensor, torch.Tensor]:
    """Two triangles, one with a corner behind the camera, one with two: both are clipped."""
    v = torch.tensor(
        [[-0.6, -0.5, 2.5], [0.7, -0.3, 3.0], [0.1, 0.4, -0.7], [-0.2, 0.1, 4.0], [0.5, 0.6, 0.2], [-0.7, 0.5, 0.4]],
        dtype=D,
    )
    return v, torch.tensor([[0, 1, 2], [3, 4, 5]])


def test_clipping_gradients_are_exact() -> None:
    v, f = _crossing_triangles()
    camera = _pinhole((8, 8), 5.0)
    colours = torch.rand(1, 6, 3, dtype=D, generator=torch.Generator().manual_seed(0))

    def image(vertices: torch.Tensor) -> torch.Tensor:
        mesh = sr.Mesh(vertices[None], f[None], textures=colours, texture_type="vertex")
        options = dict(backend="reference", sigma_val=3e-2, gamma_val=3e-1, near=NEAR, far=10.0)
        return sr.render(mesh, camera, outputs=("rgba", "depth"), **options).rgba

    assert clip_faces(v[f][None, :, :, 2], NEAR, 10.0) is not None
    torch.autograd.gradcheck(image, (v.clone().requires_grad_(True),), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "reference"])
def test_clipped_scenes_match_the_reference_with_gradients(backend: str) -> None:
    vertices, faces = room()
    camera = SCENES["room"][1]
    g = torch.Generator().manual_seed(1)
    features = torch.rand(vertices.shape[0], 4, dtype=D, generator=g)

    def run(name: str) -> tuple[dict, torch.Tensor, torch.Tensor]:
        v = vertices.to(D).clone().requires_grad_(True)
        feats = features.clone().requires_grad_(True)
        out = sr.render(
            sr.Mesh(v[None], faces[None]), camera, outputs=("rgba", "features", "depth", "normals"),
            features=feats, backend=name, sigma_val=1e-3, gamma_val=1e-2,
        )  # fmt: skip
        weights = torch.rand(out.features.shape, dtype=D, generator=torch.Generator().manual_seed(2))
        loss = (out.features * weights).sum() + out.rgba.sum() + out.depth.sum() + out.normals.sum()
        loss.backward()
        return out.as_dict(), v.grad, feats.grad

    ref, ours = run("reference"), run(backend)
    for name, value in ref[0].items():
        torch.testing.assert_close(ours[0][name], value, rtol=0, atol=1e-10, msg=name)
    for a, b in zip(ours[1:], ref[1:], strict=True):
        assert_grad_close(a, b, 1e-8, floor=1.0)


@pytest.mark.parametrize("perspective_correct", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_vertex_just_behind_the_camera_plane_agrees_on_every_backend(backend: str, perspective_correct: bool) -> None:
    # One triangle with a corner 1.2 mm behind the camera plane (its projection would be ~1e12
    # pixels away), seen by a distorted Pinhole at 5 × 4 pixels: the backends used to disagree.
    # Perspective-correct weights c_k / z_k meet the clipped corners at z = near = 1e-3 beside
    # corners at z ~ 3: rounding grows by up to that ratio, hence the wider output tolerance.
    K = torch.tensor([[3.0, 0.0, 2.0], [0.0, 3.0, 1.5], [0.0, 0.0, 1.0]], dtype=D)
    camera = Pinhole(
        K, torch.eye(3, dtype=D), torch.zeros(3, dtype=D), image_size=(4, 5), dist_coeffs=[0.02, 0, 0, 0, 0]
    )
    v = torch.tensor([[-0.4, -0.3, 2.0], [0.6, -0.2, 3.0], [0.1, 0.5, -0.0012]], dtype=D)
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=D)

    def run(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        vv = v.clone().requires_grad_(True)
        out = sr.render(
            sr.Mesh(vv[None], torch.tensor([[[0, 1, 2]]])), camera, outputs=("features",), features=feats,
            backend=name, near=1e-3, sigma_val=1e-2, perspective_correct=perspective_correct,
        )  # fmt: skip
        out.features.sum().backward()
        return out.features, vv.grad

    (ref, ref_grad), (got, grad) = run("reference"), run(backend)
    assert float(ref.detach().abs().sum()) > 0
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-10 if perspective_correct else 1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_clipped_faces_keep_their_attributes_texels_and_ids() -> None:
    v, f = _crossing_triangles()
    depth = v[f][None, :, :, 2]
    clip = clip_faces(depth, NEAR, FAR)
    assert clip is not None
    assert clip.face_index.tolist() == [[0, 0, 1]]  # face 0 loses one corner (2 triangles), face 1 two
    # the clipped corners lie on the near plane, and the weights reproduce them from the face's corners
    corners = clip.corners(v[f][None])
    assert bool((corners[..., 2] >= NEAR - 1e-12).all())
    assert float((corners[..., 2] - NEAR).abs().amin(-1).max()) < 1e-12
    # winding kept: each clipped triangle's normal points the way of its face's
    normals = torch.linalg.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :])
    original = torch.linalg.cross(v[f][:, 1] - v[f][:, 0], v[f][:, 2] - v[f][:, 0])[clip.face_index[0]]
    assert bool(((normals[0] * original).sum(-1) > 0).all())
    # a face that is not clipped keeps its texels exactly; a clipped one takes texels of its face
    r = 4
    texels = torch.rand(1, 2, r * r, 3, dtype=D)
    mixed = torch.cat([v, torch.tensor([[0.0, 0.0, 5.0], [1.0, 0.0, 5.0], [0.0, 1.0, 5.0]], dtype=D)])
    faces3 = torch.cat([f, torch.tensor([[6, 7, 8]])])
    clip3 = clip_faces(mixed[faces3][None, :, :, 2], NEAR, FAR)
    third = torch.rand(1, 1, r * r, 3, dtype=D)
    moved = clip3.texels(torch.cat([texels, third], 1))
    assert clip3.face_index[0, -1] == 2
    assert torch.equal(moved[0, -1], third[0, 0])
    whole = clip3.texels(torch.arange(3 * r * r, dtype=D).reshape(1, 3, r * r, 1))
    assert whole[0, -1, :, 0].tolist() == list(range(2 * r * r, 3 * r * r))
    for slot in range(3):  # every texel of a clipped face is one of its own face's texels
        face = int(clip3.face_index[0, slot])
        assert set(whole[0, slot, :, 0].long().tolist()) <= set(range(face * r * r, (face + 1) * r * r))


def test_clipped_faces_take_the_colour_of_the_face_the_ray_hits() -> None:
    # One colour per face (R = 1): every z-buffer pixel, clipped faces included, has the colour of
    # the face trimesh's ray hits. (With R > 1 the original's texel lookup uses screen-space
    # barycentrics, which differ from the ray's perspective-correct ones on any tilted face.)
    vertices, faces = floor()
    camera = SCENES["floor"][1]
    colours = torch.rand(1, faces.shape[0], 1, 3, dtype=D, generator=torch.Generator().manual_seed(3))
    mesh = sr.Mesh(vertices[None].to(D), faces[None], textures=colours, texture_type="surface")
    out = sr.render(mesh, camera, outputs=("rgba",), aggr_func_rgb="hard", backend="reference")
    theirs = ray_cast(vertices.numpy(), faces.numpy(), camera, NEAR, FAR)[0]
    hit = torch.from_numpy(theirs >= 0)
    expected = colours[0, torch.from_numpy(theirs)[hit], 0]
    got = out.rgba[0, :3].permute(1, 2, 0)[hit]
    assert float((got - expected).abs().amax(-1).gt(1e-12).double().mean()) <= 1e-3


def test_the_original_entry_points_keep_their_semantics_unless_clip() -> None:
    v, f = icosphere(1)
    camera = Pinhole([[40.0, 0, 15.5], [0, 40.0, 15.5], [0, 0, 1]], torch.eye(3), [0.0, 0.0, -3.0], image_size=32)
    legacy = sr.SoftRenderer(image_size=32, backend="reference")(v[None], f[None], camera=camera)
    clipped = sr.SoftRenderer(image_size=32, backend="reference", clip=True)(v[None], f[None], camera=camera)
    assert float(legacy[:, 3].sum()) > 100  # the original: coverage ignores depth
    assert float(clipped[:, 3].sum()) == 0.0
    front = camera.replace(t=torch.tensor([0.0, 0.0, 3.0]))
    for mode in ("surface", "vertex"):
        textures = torch.rand(1, f.shape[0], 4, 3) if mode == "surface" else torch.rand(1, v.shape[0], 3)
        a = sr.SoftRenderer(image_size=32, backend="reference")(
            v[None], f[None], textures, texture_type=mode, camera=front
        )
        b = sr.SoftRenderer(image_size=32, backend="reference", clip=True)(
            v[None], f[None], textures, texture_type=mode, camera=front
        )
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_near_must_be_positive_for_perspective_cameras() -> None:
    v, f = icosphere(1)
    mesh = sr.Mesh(v[None], f[None])
    with pytest.raises(ValueError, match="near: expected a near plane > 0"):
        sr.render(mesh, _pinhole((8, 8), 5.0, t=(0.0, 0.0, 3.0)), near=0.0)
    ortho = Orthographic([[3.0, 0, 3.5], [0, 3.0, 3.5], [0, 0, 1]], torch.eye(3), [0.0, 0.0, 0.5], image_size=8)
    out = sr.render(mesh, ortho, near=-2.0, backend="reference")  # orthographic: any near
    assert float(out.alpha.sum()) > 10


def test_render_image_size_rescales_a_camera_with_its_own_size() -> None:
    v, f = icosphere(2)
    mesh = sr.Mesh(v[None].to(D), f[None])
    small = _pinhole((32, 32), 40.0, t=(0.2, 0.0, 3.0))
    K = small.K.clone()
    K[:, :2, :2] *= 2
    K[:, :2, 2] = (K[:, :2, 2] + 0.5) * 2 - 0.5  # the same camera for a 64 × 64 image
    big = Pinhole(K, small.R, small.t, image_size=64)
    scaled = sr.render(mesh, small, image_size=64, backend="reference").alpha
    torch.testing.assert_close(scaled, sr.render(mesh, big, backend="reference").alpha, rtol=0, atol=1e-12)
    legacy = sr.SoftRenderer(image_size=64, backend="reference")(v[None].to(D), f[None], camera=small)[:, 3:]
    torch.testing.assert_close(scaled, legacy, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"image_size: the camera.s image_size .* other aspect ratios"):
        sr.render(mesh, small, image_size=(32, 64))
