"""Procedural shape classes for a download-free reconstruction dataset.

Five classes with class-specific structure, each built from watertight parametric parts
(boxes, cylinders, frustums) with random proportions per instance:

* ``chair`` -- seat, four legs, backrest, optional arm rests;
* ``table`` -- top on four legs or on a pedestal with a foot;
* ``airplane`` -- fuselage with nose cone, swept wings, tail plane and fin;
* ``car`` -- body, cabin, four wheels;
* ``lamp`` -- round foot, (possibly bent) pole, conical shade.

The classes use the ShapeNet ids of the matching NMR classes, so tables print in the paper's
layout. Coordinates follow ShapeNet: ``+y`` up; the builder later centres and scales every mesh
into the unit cube. Parts are separate closed meshes (their union is the shape), so the solid
voxelization fills each part's interior.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["PROCEDURAL_CLASSES", "ProceduralMesh", "generate"]


@dataclass
class ProceduralMesh:
    """A generated shape: vertices float32 [V, 3], faces int64 [F, 3] (outward CCW winding),
    face_colors float32 [F, 3] in [0, 1]."""

    vertices: np.ndarray
    faces: np.ndarray
    face_colors: np.ndarray


class _Builder:
    """Collects closed parts with a colour each and merges them into one mesh."""

    def __init__(self) -> None:
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.colors: list[np.ndarray] = []
        self.count = 0

    def add(self, vertices: np.ndarray, faces: np.ndarray, color: np.ndarray) -> None:
        self.vertices.append(vertices)
        self.faces.append(faces + self.count)
        self.colors.append(np.tile(np.clip(color, 0, 1), (len(faces), 1)))
        self.count += len(vertices)

    def box(
        self,
        center: tuple[float, float, float],
        size: tuple[float, float, float],
        color: np.ndarray,
        rotation: np.ndarray | None = None,
    ) -> None:
        """Axis-aligned (before ``rotation`` [3, 3] about ``center``) box of extents ``size``."""
        idx = np.arange(8)
        corners = np.stack([idx & 1, (idx >> 1) & 1, (idx >> 2) & 1], 1).astype(np.float64) - 0.5
        v = corners * np.asarray(size)
        if rotation is not None:
            v = v @ rotation.T
        quads = [(1, 3, 7, 5), (0, 4, 6, 2), (2, 6, 7, 3), (0, 1, 5, 4), (4, 5, 7, 6), (0, 2, 3, 1)]
        f = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], np.int64)
        self.add(v + np.asarray(center), f, color)

    def frustum(
        self,
        start: tuple[float, float, float],
        end: tuple[float, float, float],
        r_start: float,
        r_end: float,
        color: np.ndarray,
        segments: int = 16,
    ) -> None:
        """Closed truncated cone (a cylinder when ``r_start == r_end``) from ``start`` to ``end``."""
        p0, p1 = np.asarray(start, np.float64), np.asarray(end, np.float64)
        axis = p1 - p0
        length = float(np.linalg.norm(axis))
        w = axis / length
        helper = np.array([1.0, 0.0, 0.0]) if abs(w[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = np.cross(w, helper)
        u /= np.linalg.norm(u)
        v = np.cross(w, u)  # (u, v, w) right-handed
        ang = np.arange(segments) * (2 * math.pi / segments)
        ring = np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v  # CCW seen from +w
        verts = np.concatenate([p0 + r_start * ring, p1 + r_end * ring, [p0, p1]])
        n = segments
        i = np.arange(n)
        j = (i + 1) % n
        side = np.concatenate([np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)])
        bottom = np.stack([np.full(n, 2 * n), j, i], 1)
        top = np.stack([np.full(n, 2 * n + 1), n + i, n + j], 1)
        self.add(verts, np.concatenate([side, bottom, top]).astype(np.int64), color)

    def build(self) -> ProceduralMesh:
        return ProceduralMesh(
            np.concatenate(self.vertices).astype(np.float32),
            np.concatenate(self.faces).astype(np.int64),
            np.concatenate(self.colors).astype(np.float32),
        )


def _color(rng: np.random.Generator, base: tuple[float, float, float], jitter: float = 0.15) -> np.ndarray:
    return np.clip(np.asarray(base) + rng.uniform(-jitter, jitter, 3), 0.05, 0.95)


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def chair(rng: np.random.Generator) -> ProceduralMesh:
    """Seat on four legs with a backrest (and arm rests half the time)."""
    b = _Builder()
    w, d = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    h, t = rng.uniform(0.8, 1.1), rng.uniform(0.08, 0.16)
    back_h = rng.uniform(0.7, 1.3)
    leg = rng.uniform(0.06, 0.12)
    wood, cloth = (
        _color(rng, (0.55, 0.35, 0.2)),
        _color(rng, rng.choice([(0.7, 0.2, 0.2), (0.2, 0.4, 0.7), (0.8, 0.8, 0.75)])),
    )
    b.box((0, h, 0), (w, t, d), cloth)
    for sx in (-1, 1):
        for sz in (-1, 1):
            b.box((sx * (w - leg) / 2, h / 2, sz * (d - leg) / 2), (leg, h, leg), wood)
    tilt = rng.uniform(0.0, 0.25)
    bt = rng.uniform(0.06, 0.12)
    cy = h + back_h / 2 * math.cos(tilt)
    cz = -d / 2 + bt / 2 - back_h / 2 * math.sin(tilt)
    b.box((0, cy, cz), (w, back_h, bt), cloth, rotation=_rot_x(-tilt))
    if rng.random() < 0.5:
        arm_h = rng.uniform(0.25, 0.4)
        for sx in (-1, 1):
            b.box((sx * (w / 2 - 0.04), h + arm_h, 0), (0.08, 0.06, d * 0.9), wood)
            b.box((sx * (w / 2 - 0.04), h + arm_h / 2, d * 0.4), (0.06, arm_h, 0.06), wood)
    return b.build()


def table(rng: np.random.Generator) -> ProceduralMesh:
    """Thin top on four legs, or on a central pedestal with a round foot."""
    b = _Builder()
    w, d = rng.uniform(1.2, 2.2), rng.uniform(0.7, 1.3)
    h, t = rng.uniform(0.6, 1.0), rng.uniform(0.05, 0.12)
    top, legc = _color(rng, (0.6, 0.45, 0.3)), _color(rng, (0.3, 0.25, 0.2))
    round_top = rng.random() < 0.3
    if round_top:
        r = rng.uniform(0.5, 0.9)
        b.frustum((0, h - t, 0), (0, h, 0), r, r, top, segments=24)
    else:
        b.box((0, h - t / 2, 0), (w, t, d), top)
    if round_top or rng.random() < 0.3:
        pr = rng.uniform(0.05, 0.12)
        b.frustum((0, 0.03, 0), (0, h - t, 0), pr, pr, legc)
        fr = rng.uniform(0.25, 0.45)
        b.frustum((0, 0, 0), (0, 0.05, 0), fr, fr * 0.9, legc, segments=20)
    else:
        leg = rng.uniform(0.05, 0.12)
        inset = rng.uniform(0.0, 0.15)
        for sx in (-1, 1):
            for sz in (-1, 1):
                b.box(
                    (sx * (w / 2 - leg / 2 - inset), (h - t) / 2, sz * (d / 2 - leg / 2 - inset)),
                    (leg, h - t, leg),
                    legc,
                )
    return b.build()


def airplane(rng: np.random.Generator) -> ProceduralMesh:
    """Fuselage along z with nose and tail cones, swept main wings, tail plane and fin."""
    b = _Builder()
    length, r = rng.uniform(2.0, 3.0), rng.uniform(0.1, 0.2)
    span = rng.uniform(1.8, 3.0)
    chord, thick = rng.uniform(0.3, 0.6), 0.04
    sweep = rng.uniform(0.0, 0.6)
    body, wing = _color(rng, (0.85, 0.85, 0.88), 0.08), _color(rng, (0.5, 0.55, 0.65))
    z0, z1 = -length / 2, length / 2
    b.frustum((0, 0, z0 + 0.3), (0, 0, z1 - 0.4), r, r, body)
    b.frustum((0, 0, z1 - 0.4), (0, 0, z1), r, r * 0.15, body)  # nose (+z)
    b.frustum((0, 0, z0), (0, 0, z0 + 0.3), r * 0.4, r, body)  # tail cone
    wing_z = rng.uniform(-0.1, 0.2) * length
    for s in (-1, 1):
        b.box(
            (s * span / 4, -r * 0.3, wing_z - sweep * span / 4),
            (span / 2, thick, chord),
            wing,
            rotation=_rot_y(s * math.atan(sweep)),
        )
    tail_span = span * rng.uniform(0.25, 0.4)
    b.box((0, 0, z0 + 0.2), (tail_span, thick, chord * 0.5), wing)
    fin_h = rng.uniform(0.3, 0.6)
    b.box((0, r + fin_h / 2 - 0.02, z0 + 0.25), (thick, fin_h, chord * 0.6), wing)
    if rng.random() < 0.5:  # engines under the wings
        er = rng.uniform(0.06, 0.1)
        for s in (-1, 1):
            x = s * span * 0.22
            zc = wing_z - sweep * abs(x) + 0.1
            b.frustum((x, -r * 0.3 - er - 0.03, zc - 0.25), (x, -r * 0.3 - er - 0.03, zc + 0.2), er, er, body)
    return b.build()


def car(rng: np.random.Generator) -> ProceduralMesh:
    """Body box with a cabin on top and four wheels (cylinders along x)."""
    b = _Builder()
    length, width = rng.uniform(1.8, 2.6), rng.uniform(0.8, 1.1)
    wheel_r = rng.uniform(0.16, 0.24)
    body_h = rng.uniform(0.3, 0.5)
    cab_h, cab_l = rng.uniform(0.25, 0.45), length * rng.uniform(0.4, 0.65)
    paint = _color(
        rng, rng.choice([(0.8, 0.1, 0.1), (0.1, 0.3, 0.8), (0.9, 0.9, 0.9), (0.15, 0.15, 0.15), (0.9, 0.7, 0.1)]), 0.08
    )
    glass, tyre = _color(rng, (0.35, 0.45, 0.55), 0.05), np.array([0.1, 0.1, 0.1])
    y0 = wheel_r * 0.9
    b.box((0, y0 + body_h / 2, 0), (width, body_h, length), paint)
    b.box((0, y0 + body_h + cab_h / 2, rng.uniform(-0.15, 0.1) * length), (width * 0.88, cab_h, cab_l), glass)
    ww = rng.uniform(0.12, 0.2)
    for sz in (-1, 1):
        for sx in (-1, 1):
            z = sz * (length / 2 - wheel_r * 1.4)
            x = sx * (width / 2 - ww / 2 + 0.03)
            b.frustum((x - ww / 2, wheel_r, z), (x + ww / 2, wheel_r, z), wheel_r, wheel_r, tyre, segments=16)
    return b.build()


def lamp(rng: np.random.Generator) -> ProceduralMesh:
    """Round foot, a straight or bent pole, and a conical shade."""
    b = _Builder()
    foot_r, foot_h = rng.uniform(0.2, 0.4), rng.uniform(0.04, 0.1)
    height = rng.uniform(1.0, 2.0)
    pole_r = rng.uniform(0.02, 0.05)
    metal = _color(rng, (0.6, 0.6, 0.6), 0.1)
    shade = _color(rng, rng.choice([(0.95, 0.9, 0.7), (0.8, 0.3, 0.2), (0.3, 0.6, 0.4)]), 0.08)
    b.frustum((0, 0, 0), (0, foot_h, 0), foot_r, foot_r * 0.8, metal, segments=20)
    top = np.array([0.0, height, 0.0])
    if rng.random() < 0.5:  # bent arm
        reach = rng.uniform(0.3, 0.7)
        b.frustum((0, foot_h, 0), tuple(top), pole_r, pole_r, metal)
        end = top + np.array([0.0, rng.uniform(-0.1, 0.2), reach])
        b.frustum(tuple(top), tuple(end), pole_r, pole_r, metal)
        top = end
    else:
        b.frustum((0, foot_h, 0), tuple(top), pole_r, pole_r, metal)
    sh_h = rng.uniform(0.25, 0.5)
    r_bottom, r_top = rng.uniform(0.2, 0.4), rng.uniform(0.08, 0.2)
    lo, hi = top - np.array([0, sh_h * 0.7, 0]), top + np.array([0, sh_h * 0.3, 0])
    b.frustum(tuple(lo), tuple(hi), r_bottom, r_top, shade, segments=20)
    return b.build()


#: ShapeNet class id -> (name, generator).
PROCEDURAL_CLASSES: dict[str, tuple[str, Callable[[np.random.Generator], ProceduralMesh]]] = {
    "02691156": ("airplane", airplane),
    "02958343": ("car", car),
    "03001627": ("chair", chair),
    "03636649": ("lamp", lamp),
    "04379243": ("table", table),
}


def generate(class_id: str, seed: int) -> ProceduralMesh:
    """Instance ``seed`` of procedural class ``class_id`` (deterministic)."""
    if class_id not in PROCEDURAL_CLASSES:
        raise ValueError(f"class_id: expected one of {sorted(PROCEDURAL_CLASSES)}, got {class_id!r}")
    name = PROCEDURAL_CLASSES[class_id][0]
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    return PROCEDURAL_CLASSES[class_id][1](rng)
