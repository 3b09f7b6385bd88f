"""Batches of different meshes with UV textures: ``sr.Mesh([v1, v2], [f1, f2], [uv_texture1, uv_texture2])``.

The items' textures merge into one UVTexture; each item renders as it would alone (float64: equal
within 1e-12, outputs and gradients to vertices, UVs and images) and comes back as it was given.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch

import softras as sr
from softras.cameras import LookAtCamera
from softras.shapes import icosphere, torus

F64 = torch.float64
EYES = torch.tensor([[0.0, 0.4, -2.5], [1.5, 1.0, -1.5]], dtype=F64)
OPTIONS = {"lights": None, "backend": "reference", "image_size": 20, "sigma_val": 1e-3, "gamma_val": 1e-2}


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


class Scene(NamedTuple):
    vertices: list[torch.Tensor]
    faces: list[torch.Tensor]
    textures: list[sr.UVTexture]
    leaves: dict[str, torch.Tensor]  # what a gradient reaches: vertices, UVs and images


def _scene() -> Scene:
    """Two meshes of different sizes, each with its own UV texture: an icosphere with per-corner UVs
    and two images (8×12, 5×7), and a torus with a (uv_vertices, uv_faces) table and one 6×10 image.
    Every floating tensor is a new leaf that requires grad."""
    v1, f1 = icosphere(1, radius=0.6)
    v2, f2 = torus(major_segments=6, minor_segments=4)
    leaves = {
        "v1": v1.double(), "v2": (v2 * 0.5).double(), "uv1": _rand(len(f1), 3, 2, seed=3),
        "uv2": _rand(30, 2, seed=4), "im1": _rand(8, 12, 3, seed=1), "im2": _rand(5, 7, 3, seed=2),
        "im3": _rand(6, 10, 3, seed=5),
    }  # fmt: skip
    leaves = {name: t.requires_grad_() for name, t in leaves.items()}
    uv_faces2 = torch.randint(0, 30, (len(f2), 3), generator=torch.Generator().manual_seed(6))
    textures = [
        sr.UVTexture([leaves["im1"], leaves["im2"]], leaves["uv1"], torch.arange(len(f1)) % 2),
        sr.UVTexture(leaves["im3"], (leaves["uv2"], uv_faces2)),
    ]
    return Scene([leaves["v1"], leaves["v2"]], [f1, f2], textures, leaves)


@pytest.mark.parametrize("texture_filter", ["nearest", "bilinear", "trilinear"])
def test_each_item_renders_as_alone_outputs_and_gradients(texture_filter: str) -> None:
    scene = _scene()
    mesh = sr.Mesh(scene.vertices, scene.faces, scene.textures)
    assert mesh.texture_type == "uv" and mesh.is_padded and mesh.textures.num_materials == 3
    outputs = ("rgba", "depth")
    batch = sr.render(mesh, LookAtCamera(eye=EYES), texture_filter=texture_filter, outputs=outputs, **OPTIONS)
    weights = _rand(*batch.rgba.shape, seed=9)
    together = torch.autograd.grad((batch.rgba * weights).sum(), list(scene.leaves.values()), allow_unused=True)

    scene = _scene()  # the same values, new leaves
    loss = 0.0
    for b in range(2):
        alone = sr.render(sr.Mesh(scene.vertices[b], scene.faces[b], scene.textures[b]),
                          LookAtCamera(eye=EYES[b : b + 1]), texture_filter=texture_filter, outputs=outputs,
                          **OPTIONS)  # fmt: skip
        torch.testing.assert_close(batch.rgba[b], alone.rgba[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(batch.depth[b], alone.depth[0], rtol=0, atol=1e-12)
        loss = loss + (alone.rgba[0] * weights[b]).sum()
    apart = torch.autograd.grad(loss, list(scene.leaves.values()), allow_unused=True)
    for name, g_together, g_apart in zip(scene.leaves, together, apart, strict=True):
        if g_apart is None:  # 'nearest' has no UV gradient
            assert g_together is None or not g_together.any(), name
            continue
        assert g_apart.abs().max() > 0, name
        torch.testing.assert_close(g_together, g_apart, rtol=0, atol=1e-12, msg=name)


def test_items_indexing_and_packed_give_each_items_texture_back() -> None:
    vertices, faces, textures, _ = _scene()
    mesh = sr.Mesh(vertices, faces, textures)
    merged = mesh.textures
    assert all(a is b for a, b in zip(merged.images, [*textures[0].images, *textures[1].images], strict=True))
    for b, item in enumerate(mesh.items()):
        for got in (item.textures, mesh[b].textures, mesh[b - 2].textures):
            given = textures[b]
            assert all(x is y for x, y in zip(got.images, given.images, strict=True))
            assert len(got.images) == len(given.images)
            assert torch.equal(got.uv_vertices, given.uv_vertices) and torch.equal(got.uv_faces, given.uv_faces)
            assert torch.equal(got.material, given.material)
        assert torch.equal(item.vertices[0], vertices[b]) and torch.equal(item.faces[0], faces[b].long())
    # padding faces read a valid UV point and one of their item's images
    n = int(mesh.face_counts[1])
    assert (merged.uv_faces[1, n:] == 0).all() and (merged.material[1, n:] == 2).all()

    packed_v, packed_f, _, f_off = mesh.packed()
    packed = mesh.packed_textures()
    assert packed.batch_size == 1 and packed.num_faces == int(f_off[-1]) and packed.images is merged.images
    for b, given in enumerate(textures):
        rows = slice(int(f_off[b]), int(f_off[b + 1]))
        torch.testing.assert_close(packed.face_uv[0, rows], given.face_uv[0], rtol=0, atol=0)
        assert torch.equal(packed.material[0, rows], merged.material[b, : faces[b].shape[0]])
    joined = sr.Mesh(packed_v, packed_f, packed)  # every item joined into one mesh
    assert joined.texture_type == "uv" and joined.num_faces == int(f_off[-1])
    with pytest.raises(IndexError, match=r"index: expected an int in \[-2, 2\)"):
        mesh[2]


def _holds_only(texture: sr.UVTexture, image: torch.Tensor) -> bool:
    return len(texture.images) == 1 and texture.images[0] is image


def test_a_shared_texture_is_packed_once_and_its_gradient_sums_the_items() -> None:
    v, f = icosphere(1, radius=0.6)
    v = v.double()
    image = _rand(8, 8, 3, seed=1).requires_grad_()
    uv = _rand(len(f), 3, 2, seed=2)
    texture = sr.UVTexture(image, uv)
    # one UVTexture (batch 1) for every item of its face count, or the same one in the list
    for textures in (texture, [texture, texture]):
        mesh = sr.Mesh([v, v * 0.8], [f, f], textures)
        assert _holds_only(mesh.textures, image) and mesh.textures.material.eq(0).all()
        assert all(_holds_only(item.textures, image) for item in mesh.items())
    # different meshes holding one image tensor in their own UVTextures
    v2, f2 = torus(major_segments=6, minor_segments=4)
    other = sr.UVTexture(image, _rand(len(f2), 3, 2, seed=3))
    mesh = sr.Mesh([v, v2.double() * 0.5], [f, f2], [texture, other])
    assert _holds_only(mesh.textures, image)
    out = sr.render(mesh, LookAtCamera(eye=EYES), texture_filter="bilinear", **OPTIONS)
    (together,) = torch.autograd.grad(out.rgba.sum(), image)
    apart = torch.zeros_like(image)
    for b, item in enumerate((sr.Mesh(v, f, texture), sr.Mesh(v2.double() * 0.5, f2, other))):
        alone = sr.render(item, LookAtCamera(eye=EYES[b : b + 1]), texture_filter="bilinear", **OPTIONS)
        apart += torch.autograd.grad(alone.rgba.sum(), image)[0]
    torch.testing.assert_close(together, apart, rtol=0, atol=1e-12)
    # a UVTexture of batch B serves B items of its face count: each item reads its own row
    batch_texture = sr.UVTexture(image, torch.stack([uv, uv.flip(-1)]))
    mesh = sr.Mesh([v, v * 0.8], [f, f], batch_texture)
    assert torch.equal(mesh[1].textures.face_uv[0], uv.flip(-1))


def test_to_texture_type_keeps_the_items() -> None:
    vertices, faces, textures, _ = _scene()
    mesh = sr.Mesh([v.detach() for v in vertices], faces, textures)
    surface = mesh.to_texture_type("surface", 2)
    assert surface.face_counts.tolist() == mesh.face_counts.tolist() and surface.is_padded
    for b in range(2):
        alone = sr.Mesh(vertices[b].detach(), faces[b], textures[b]).to_texture_type("surface", 2)
        torch.testing.assert_close(surface[b].textures, alone.textures, rtol=0, atol=1e-12)
    coloured = sr.Mesh([v.detach() for v in vertices], faces, [_rand(len(v), 3, seed=7) for v in vertices],
                       texture_type="vertex")  # fmt: skip
    for converted in (coloured.to_texture_type("surface", 2), coloured.to_texture_type("uv", 2)):
        assert converted.face_counts.tolist() == [80, 48]  # 'sum' alpha divides by each item's own count


def test_bad_lists_of_uv_textures_are_refused_naming_the_argument() -> None:
    vertices, faces, (t1, t2), _ = _scene()
    v, f = [x.detach() for x in vertices], faces
    four = sr.UVTexture(torch.rand(4, 4, 4, dtype=F64), t2.uv_vertices.detach()[0, t2.uv_faces[0]])
    cases = [
        (lambda: sr.Mesh(v, f, [t1, four]), ValueError,
         r"textures\[1\]: images of 4 channels, the first item's have 3"),
        (lambda: sr.Mesh(v, f, [t1, torch.rand(len(f[1]), 1, 3)]), TypeError,
         r"textures\[1\]: expected a softras.UVTexture like textures\[0\] .*got Tensor"),
        (lambda: sr.Mesh(v, f, [torch.rand(len(f[0]), 1, 3), t2]), TypeError,
         r"textures\[1\]: expected a surface or vertex texture .*like textures\[0\].*got UVTexture"),
        (lambda: sr.Mesh(v, f, [t1]), TypeError, r"textures: with a list of 2 meshes, expected None, a list of 2 "
                                                 r"textures .*got a list of 1"),
        (lambda: sr.Mesh(v, f, [t2, t1]), ValueError, r"textures\[0\]: the UVTexture has 48 faces, its mesh 80"),
        (lambda: sr.Mesh(v, f, [t1.expand(2), t2]), ValueError, r"textures\[0\]: expected a UVTexture of batch 1"),
        (lambda: sr.Mesh(v, f, t1), ValueError, r"textures: one UVTexture of 80 faces serves a list of meshes only "
                                                r"when each has 80 faces, got face counts \[80, 48\]"),
        (lambda: sr.Mesh(v, f, [t1, t2], texture_type="vertex"), ValueError, "texture_type: a UVTexture makes a 'uv'"),
        (lambda: sr.Mesh(v, f, [torch.rand(len(f[0]), 1, 3), torch.rand(len(f[1]), 1, 3)], texture_type="uv"),
         TypeError, r"textures: texture_type='uv' needs softras.UVTexture items, got Tensor"),
        (lambda: sr.Mesh(v, f, [t1, t2.to(dtype=torch.float32)]), ValueError,
         r"textures\[1\]: UVs of torch.float32, the first item's of torch.float64"),
    ]  # fmt: skip
    for build, error, match in cases:
        with pytest.raises(error, match=match):
            build()
