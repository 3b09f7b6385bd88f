"""Procedural shape classes for a download-free reconstruction dataset.

Five classes with class-specific structure, each built from watertight parametric parts (boxes,
surfaces of revolution, extruded convex polygons). Like ShapeNet's classes, each one mixes several
*kinds* of object (sub-types with different parts and part counts) and varies every proportion
continuously, so two instances of a class are rarely near-duplicates:

* ``chair`` -- four-legged (square/round/splayed legs, optional stretchers), swivel (column and
  star base), solid-base (armchair) and sled (side runners) chairs, or stools; round or square
  seats; panel, slatted, ladder, open-frame or no backrest; no, bar or panel arm rests;
* ``table`` -- rectangular, square or round tops of dining, coffee or bar height on four legs
  (optional apron and lower shelf), a pedestal (disk or cross foot), two trestles, two solid side
  panels, or a desk with a drawer block;
* ``airplane`` -- airliners, business jets, propeller planes and delta-wing fighters: tapered and
  swept wings at low/mid/high position with dihedral, 0/2/4 wing engines or 2 rear engines,
  conventional, T- or twin tails;
* ``car`` -- sedan, hatchback, SUV, pickup, van and sports car body styles (side profiles with
  sloped hood, windscreen and rear), wheels of varying size and track, optional spoiler or
  roof rack;
* ``lamp`` -- floor lamps, tripods, desk lamps with a jointed arm, table lamps with a vase body,
  pendants hanging from a canopy, and multi-arm lamps; cone, drum, dome or globe shades.

The classes use the ShapeNet ids of the matching NMR classes, so tables print in the paper's
layout. Coordinates follow ShapeNet: ``+y`` up, the front along ``+z``; the builder later
centres and scales every mesh into the unit cube. Parts are separate closed, outward-wound
meshes (their union is the shape), so the solid voxelization fills each part's interior.
Everything is drawn from a ``numpy`` generator seeded by the instance number: deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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


Vec = Sequence[float] | np.ndarray


def _rot(axis: str, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


class _Builder:
    """Collects closed parts with a colour each and merges them into one mesh."""

    def __init__(self) -> None:
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.colors: list[np.ndarray] = []
        self.count = 0

    def add(self, vertices: np.ndarray, faces: np.ndarray, color: np.ndarray) -> None:
        self.vertices.append(np.asarray(vertices, np.float64))
        self.faces.append(faces + self.count)
        self.colors.append(np.tile(np.clip(color, 0, 1), (len(faces), 1)))
        self.count += len(vertices)

    def box(self, center: Vec, size: Vec, color: np.ndarray, rotation: np.ndarray | None = None) -> None:
        """Axis-aligned (before ``rotation`` [3, 3] about ``center``) box of extents ``size``."""
        idx = np.arange(8)
        corners = np.stack([idx & 1, (idx >> 1) & 1, (idx >> 2) & 1], 1).astype(np.float64) - 0.5
        v = corners * np.asarray(size, np.float64)
        if rotation is not None:
            v = v @ rotation.T
        quads = [(1, 3, 7, 5), (0, 4, 6, 2), (2, 6, 7, 3), (0, 1, 5, 4), (4, 5, 7, 6), (0, 2, 3, 1)]
        f = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], np.int64)
        self.add(v + np.asarray(center, np.float64), f, color)

    def beam(self, start: Vec, end: Vec, thickness: float, color: np.ndarray, depth: float | None = None) -> None:
        """Box of square (or ``thickness`` × ``depth``) section from ``start`` to ``end``."""
        p0, p1 = np.asarray(start, np.float64), np.asarray(end, np.float64)
        w = p1 - p0
        length = float(np.linalg.norm(w))
        w /= length
        helper = np.array([1.0, 0.0, 0.0]) if abs(w[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = np.cross(helper, w)
        u /= np.linalg.norm(u)
        v = np.cross(w, u)
        rot = np.stack([u, v, w], 1)  # columns: local x, y, z -> world
        self.box((p0 + p1) / 2, (thickness, depth or thickness, length), color, rotation=rot)

    def lathe(self, start: Vec, end: Vec, radii: Sequence[float], color: np.ndarray, segments: int = 16) -> None:
        """Closed surface of revolution about the segment ``start``-``end``: ring ``k`` of radius
        ``radii[k]`` (> 0) at fraction ``k / (len(radii) - 1)`` along it, capped at both ends."""
        p0, p1 = np.asarray(start, np.float64), np.asarray(end, np.float64)
        axis = p1 - p0
        w = axis / float(np.linalg.norm(axis))
        helper = np.array([1.0, 0.0, 0.0]) if abs(w[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = np.cross(w, helper)
        u /= np.linalg.norm(u)
        v = np.cross(w, u)  # (u, v, w) right-handed
        n, k = segments, len(radii)
        ang = np.arange(n) * (2 * math.pi / n)
        ring = np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v  # CCW seen from +w
        ts = np.linspace(0.0, 1.0, k)
        rings = [p0 + t * axis + max(r, 1e-4) * ring for t, r in zip(ts, radii, strict=True)]
        verts = np.concatenate([*rings, [p0, p1]])
        i = np.arange(n)
        j = (i + 1) % n
        faces = []
        for r in range(k - 1):
            a, b = r * n, (r + 1) * n
            faces += [np.stack([a + i, a + j, b + j], 1), np.stack([a + i, b + j, b + i], 1)]
        faces.append(np.stack([np.full(n, k * n), j, i], 1))
        faces.append(np.stack([np.full(n, k * n + 1), (k - 1) * n + i, (k - 1) * n + j], 1))
        self.add(verts, np.concatenate(faces).astype(np.int64), color)

    def frustum(
        self, start: Vec, end: Vec, r_start: float, r_end: float, color: np.ndarray, segments: int = 16
    ) -> None:
        """Closed truncated cone (a cylinder when ``r_start == r_end``) from ``start`` to ``end``."""
        self.lathe(start, end, (r_start, r_end), color, segments)

    def sphere(self, center: Vec, radius: float, color: np.ndarray, segments: int = 16) -> None:
        """A globe (lathe of a half circle) about the vertical axis."""
        c = np.asarray(center, np.float64)
        t = np.linspace(0.0, math.pi, 9)[1:-1]
        ys = -np.cos(t) * radius
        radii = np.sin(t) * radius
        # rings at uneven heights: build as a lathe between the first and last ring, then move rings
        self.lathe(c + np.array([0.0, ys[0], 0.0]), c + np.array([0.0, ys[-1], 0.0]), list(radii), color, segments)
        verts = self.vertices[-1]
        for r, y in enumerate(ys):
            verts[r * segments : (r + 1) * segments, 1] = c[1] + y

    def prism(
        self,
        polygon: Sequence[Sequence[float]],
        axes: tuple[Vec, Vec],
        t0: float,
        t1: float,
        color: np.ndarray,
        origin: Vec = (0, 0, 0),
        rotation: np.ndarray | None = None,
    ) -> None:
        """Extrusion of a convex polygon ``[(a, b), ...]`` given in the plane spanned by
        ``axes = (u, v)`` (points ``origin + a u + b v``), from ``t0`` to ``t1`` along ``u × v``,
        optionally rotated by ``rotation`` about ``origin``. Either winding of the polygon."""
        poly = np.asarray(polygon, np.float64)
        area = 0.5 * np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
        if area < 0:
            poly = poly[::-1]
        u, v = np.asarray(axes[0], np.float64), np.asarray(axes[1], np.float64)
        w = np.cross(u, v)
        flat = poly[:, :1] * u + poly[:, 1:] * v
        verts = np.concatenate([flat + t0 * w, flat + t1 * w])
        if rotation is not None:
            verts = verts @ rotation.T
        verts = verts + np.asarray(origin, np.float64)
        n = len(poly)
        i = np.arange(n)
        j = (i + 1) % n
        side = np.concatenate([np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)])
        fan = np.arange(1, n - 1)
        top = np.stack([np.full(n - 2, n), n + fan, n + fan + 1], 1)
        bottom = np.stack([np.zeros(n - 2, np.int64), fan + 1, fan], 1)
        self.add(verts, np.concatenate([side, top, bottom]).astype(np.int64), color)

    def build(self) -> ProceduralMesh:
        return ProceduralMesh(
            np.concatenate(self.vertices).astype(np.float32),
            np.concatenate(self.faces).astype(np.int64),
            np.concatenate(self.colors).astype(np.float32),
        )


def _color(rng: np.random.Generator, base: Sequence[float], jitter: float = 0.15) -> np.ndarray:
    return np.clip(np.asarray(base, np.float64) + rng.uniform(-jitter, jitter, 3), 0.05, 0.95)


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    names = list(options)
    p = np.asarray([options[k] for k in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


_PALETTE = [(0.7, 0.2, 0.2), (0.2, 0.4, 0.7), (0.8, 0.8, 0.75), (0.25, 0.25, 0.25), (0.3, 0.6, 0.35), (0.55, 0.35, 0.2)]


# --------------------------------------------------------------------------------------- chair
def chair(rng: np.random.Generator) -> ProceduralMesh:
    """Chairs of several kinds: legs / swivel / solid base / sled, optional back and arms."""
    b = _Builder()
    wood = _color(rng, (0.55, 0.35, 0.2))
    cloth = _color(rng, _PALETTE[rng.integers(len(_PALETTE))])
    frame = wood if rng.random() < 0.6 else _color(rng, (0.6, 0.6, 0.62), 0.1)
    base = _pick(rng, {"legs": 0.5, "swivel": 0.2, "solid": 0.15, "sled": 0.15})
    w, d = rng.uniform(0.7, 1.3), rng.uniform(0.65, 1.2)
    h = rng.uniform(0.55, 1.0) if base != "solid" else rng.uniform(0.4, 0.7)
    t = rng.uniform(0.05, 0.2) if base != "solid" else rng.uniform(0.15, 0.35)
    round_seat = base in ("legs", "swivel") and rng.random() < 0.2
    if round_seat:
        r = min(w, d) / 2
        b.frustum((0, h - t, 0), (0, h, 0), r, r * rng.uniform(0.9, 1.05), cloth, segments=20)
    else:
        b.box((0, h - t / 2, 0), (w, t, d), cloth)
    y_seat = h - t
    if base == "legs":
        leg = rng.uniform(0.035, 0.12)
        splay = rng.uniform(0.0, 0.15) if rng.random() < 0.4 else 0.0
        round_leg = rng.random() < 0.4
        ix, iz = (w / 2 - leg) * (0.7 if round_seat else 1), (d / 2 - leg) * (0.7 if round_seat else 1)
        for sx in (-1, 1):
            for sz in (-1, 1):
                top = (sx * ix, y_seat, sz * iz)
                foot = (sx * (ix + splay), 0.0, sz * (iz + splay))
                if round_leg:
                    b.frustum(foot, top, leg / 2 * rng.uniform(0.6, 1.0), leg / 2, frame, segments=10)
                else:
                    b.beam(foot, top, leg, frame)
        if rng.random() < 0.4:  # stretchers between the legs
            ys = y_seat * rng.uniform(0.15, 0.45)
            f = ys / y_seat
            ox, oz = ix + splay * (1 - f), iz + splay * (1 - f)
            for sx in (-1, 1):
                b.beam((sx * ox, ys, -oz), (sx * ox, ys, oz), leg * 0.6, frame)
            if rng.random() < 0.5:
                b.beam((-ox, ys, 0), (ox, ys, 0), leg * 0.6, frame)
    elif base == "swivel":
        col_r = rng.uniform(0.03, 0.07)
        foot_h = rng.uniform(0.05, 0.12)
        b.frustum((0, foot_h, 0), (0, y_seat, 0), col_r, col_r, frame, segments=12)
        arms = int(rng.integers(4, 6))
        reach = rng.uniform(0.3, 0.55) * max(w, d)
        a0 = rng.uniform(0, 2 * math.pi)
        for k in range(arms):
            a = a0 + 2 * math.pi * k / arms
            b.beam((0, foot_h / 2, 0), (reach * math.sin(a), foot_h / 2, reach * math.cos(a)), foot_h, frame)
    elif base == "solid":
        b.box((0, y_seat / 2, 0), (w * rng.uniform(0.85, 1.0), y_seat, d * rng.uniform(0.85, 1.0)), cloth * 0.85)
    else:  # sled: a closed runner loop on each side
        bar = rng.uniform(0.03, 0.06)
        zf, zb = d / 2 * rng.uniform(0.7, 1.0), -d / 2 * rng.uniform(0.7, 1.0)
        for sx in (-1, 1):
            x = sx * (w / 2 - bar)
            b.beam((x, bar / 2, zb - 0.1), (x, bar / 2, zf + 0.1), bar, frame)
            b.beam((x, bar / 2, zf), (x, y_seat, zf * 0.9), bar, frame)
            b.beam((x, bar / 2, zb), (x, y_seat, zb * 0.9), bar, frame)
    # backrest
    back = _pick(
        rng, {"panel": 0.4, "slats": 0.2, "ladder": 0.15, "frame": 0.1, "none": 0.15 if base != "solid" else 0}
    )
    if back != "none":
        back_h = rng.uniform(0.4, 1.3)
        tilt = rng.uniform(0.0, 0.3)
        bt = rng.uniform(0.05, 0.15) if back != "panel" or base != "solid" else rng.uniform(0.15, 0.3)
        bw = w * rng.uniform(0.75, 1.0)
        z0 = -d / 2 + bt / 2
        rot = _rot("x", -tilt)
        up = rot @ np.array([0.0, 1.0, 0.0])
        origin = np.array([0.0, h, z0])

        def at(x: float, s: float) -> np.ndarray:  # point on the back plane: x, fraction s of its height
            return origin + np.array([x, 0, 0]) + up * back_h * s

        if back == "panel":
            if rng.random() < 0.7:
                b.box(at(0, 0.5), (bw, back_h, bt), cloth, rotation=rot)
            else:  # panel on two posts, gap under it
                post = rng.uniform(0.03, 0.07)
                s0 = rng.uniform(0.2, 0.5)
                for sx in (-1, 1):
                    b.beam(at(sx * (bw / 2 - post / 2), 0), at(sx * (bw / 2 - post / 2), 1), post, frame)
                b.box(at(0, (1 + s0) / 2), (bw, back_h * (1 - s0), bt), cloth, rotation=rot)
        else:
            post = rng.uniform(0.03, 0.08)
            for sx in (-1, 1):
                b.beam(at(sx * (bw / 2 - post / 2), 0), at(sx * (bw / 2 - post / 2), 1), post, frame)
            rail = rng.uniform(0.05, 0.15) * back_h
            b.box(at(0, 1 - rail / back_h / 2), (bw, rail, post), frame, rotation=rot)
            if back == "slats":
                n = int(rng.integers(1, 6))
                sw = rng.uniform(0.03, 0.1)
                for k in range(n):
                    x = (k + 1) / (n + 1) * (bw - 2 * post) - (bw / 2 - post)
                    b.beam(at(x, 0), at(x, 1 - rail / back_h), sw, frame, depth=post * 0.6)
            elif back == "ladder":
                n = int(rng.integers(1, 4))
                for k in range(n):
                    s = (k + 1) / (n + 1) * (1 - rail / back_h)
                    b.box(at(0, s), (bw, rail * 0.7, post * 0.6), frame, rotation=rot)
    # arm rests
    arms = _pick(rng, {"none": 0.55, "bar": 0.3, "panel": 0.15})
    if base == "solid" and arms == "bar":
        arms = "panel"
    if arms == "bar":
        arm_h = rng.uniform(0.15, 0.35)
        at_ = rng.uniform(0.03, 0.07)
        for sx in (-1, 1):
            x = sx * (w / 2 - at_ / 2)
            b.box((x, h + arm_h, -0.05 * d), (at_ * 1.4, at_, d * rng.uniform(0.7, 0.95)), frame)
            b.beam((x, h - 0.01, d * 0.35), (x, h + arm_h, d * 0.35), at_, frame)
    elif arms == "panel":
        arm_h = rng.uniform(0.15, 0.4)
        at_ = rng.uniform(0.08, 0.2)
        for sx in (-1, 1):
            top = h + arm_h
            b.box((sx * (w / 2 + at_ / 2), top / 2, 0), (at_, top, d), cloth)
    return b.build()


# --------------------------------------------------------------------------------------- table
def table(rng: np.random.Generator) -> ProceduralMesh:
    """Tables: several top shapes and heights on legs, a pedestal, trestles, panels or a desk block."""
    b = _Builder()
    topc = _color(rng, (0.6, 0.45, 0.3)) if rng.random() < 0.7 else _color(rng, (0.85, 0.85, 0.85), 0.1)
    legc = _color(rng, (0.3, 0.25, 0.2)) if rng.random() < 0.6 else _color(rng, (0.6, 0.6, 0.62), 0.1)
    kind = _pick(rng, {"dining": 0.5, "coffee": 0.3, "bar": 0.2})
    h = {"dining": rng.uniform(0.65, 0.95), "coffee": rng.uniform(0.3, 0.55), "bar": rng.uniform(1.0, 1.3)}[kind]
    shape = _pick(rng, {"rect": 0.55, "square": 0.2, "round": 0.25})
    t = rng.uniform(0.03, 0.14)
    if shape == "round":
        r = rng.uniform(0.4, 0.9)
        w = d = 2 * r
        b.frustum((0, h - t, 0), (0, h, 0), r, r, topc, segments=24)
    else:
        w = rng.uniform(0.9, 2.6) if shape == "rect" else rng.uniform(0.7, 1.3)
        d = w * rng.uniform(0.35, 0.8) if shape == "rect" else w
        b.box((0, h - t / 2, 0), (w, t, d), topc)
    y = h - t
    support = _pick(
        rng,
        {
            "legs": 0.45,
            "pedestal": 0.25 if shape != "rect" or w < 1.4 else 0.05,
            "trestle": 0.1 if shape == "rect" else 0,
            "panels": 0.1 if shape != "round" else 0,
            "desk": 0.1 if shape == "rect" and kind == "dining" else 0,
        },
    )
    if support == "legs":
        leg = rng.uniform(0.04, 0.13)
        inset = rng.uniform(0.0, 0.2) * min(w, d)
        round_leg = rng.random() < 0.4
        splay = rng.uniform(0.0, 0.1) if rng.random() < 0.3 else 0.0
        fx = (w / 2 - leg / 2 - inset) * (0.7 if shape == "round" else 1)
        fz = (d / 2 - leg / 2 - inset) * (0.7 if shape == "round" else 1)
        corners = [(sx, sz) for sx in (-1, 1) for sz in (-1, 1)]
        if shape == "round" and rng.random() < 0.4:  # three legs
            corners = [(math.sin(a) * 1.41, math.cos(a) * 1.41) for a in np.arange(3) * 2 * math.pi / 3]
        for sx, sz in corners:
            top = (sx * fx, y, sz * fz)
            foot = (sx * (fx + splay), 0.0, sz * (fz + splay))
            if round_leg:
                b.frustum(foot, top, leg / 2 * rng.uniform(0.5, 1.0), leg / 2, legc, segments=10)
            else:
                b.beam(foot, top, leg, legc)
        if shape != "round" and rng.random() < 0.4:  # apron under the top
            ah = rng.uniform(0.05, 0.15)
            b.box((0, y - ah / 2, 0), (2 * fx, ah, 2 * fz), legc)
        if rng.random() < 0.3:  # lower shelf
            ys = rng.uniform(0.1, 0.35) * h
            if shape == "round":
                b.frustum((0, ys, 0), (0, ys + 0.03, 0), 0.8 * fx * 1.41, 0.8 * fx * 1.41, topc, segments=20)
            else:
                b.box((0, ys, 0), (2 * fx + leg, 0.03, 2 * fz + leg), topc)
    elif support == "pedestal":
        pr = rng.uniform(0.04, 0.14)
        prof = [pr * rng.uniform(0.8, 1.6), pr, pr, pr * rng.uniform(0.8, 1.4)]
        b.lathe((0, 0.03, 0), (0, y, 0), prof, legc, segments=12)
        if rng.random() < 0.6:
            fr = rng.uniform(0.2, 0.45) * max(w, 1.0)
            b.frustum((0, 0, 0), (0, rng.uniform(0.03, 0.08), 0), fr, fr * rng.uniform(0.5, 0.95), legc, segments=20)
        else:  # cross / star foot
            n = int(rng.integers(3, 5))
            reach = rng.uniform(0.3, 0.45) * max(w, d)
            for k in range(n):
                a = 2 * math.pi * k / n + math.pi / 4
                b.beam((0, 0.03, 0), (reach * math.cos(a), 0.03, reach * math.sin(a)), 0.06, legc)
    elif support == "trestle":
        pt = rng.uniform(0.05, 0.12)
        xs = w / 2 * rng.uniform(0.6, 0.85)
        for sx in (-1, 1):
            x = sx * xs
            b.box((x, y / 2, 0), (pt, y, pt * 1.2), legc)
            b.box((x, 0.03, 0), (pt, 0.06, d * rng.uniform(0.6, 0.9)), legc)
            b.box((x, y - 0.03, 0), (pt, 0.06, d * rng.uniform(0.6, 0.9)), legc)
        b.beam((-xs, y * rng.uniform(0.3, 0.6), 0), (xs, y * rng.uniform(0.3, 0.6), 0), pt * 0.8, legc)
    elif support == "panels":
        pt = rng.uniform(0.04, 0.12)
        xs = w / 2 - pt / 2 - rng.uniform(0.0, 0.1) * w
        for sx in (-1, 1):
            b.box((sx * xs, y / 2, 0), (pt, y, d * rng.uniform(0.8, 1.0)), legc)
        if rng.random() < 0.5:  # modesty panel at the back
            b.box((0, y * 0.65, -d * 0.4), (2 * xs, y * 0.5, pt * 0.6), legc)
    else:  # desk: a drawer block on one side, two legs on the other
        bw = w * rng.uniform(0.25, 0.4)
        side = 1 if rng.random() < 0.5 else -1
        b.box((side * (w / 2 - bw / 2), y / 2, 0), (bw, y, d * 0.95), legc)
        leg = rng.uniform(0.04, 0.1)
        for sz in (-1, 1):
            b.beam(
                (-side * (w / 2 - leg), 0, sz * (d / 2 - leg)),
                (-side * (w / 2 - leg), y, sz * (d / 2 - leg)),
                leg,
                legc,
            )
    return b.build()


# ------------------------------------------------------------------------------------ airplane
def _wing(
    b: _Builder,
    rng: np.random.Generator,
    root: np.ndarray,
    half_span: float,
    root_chord: float,
    taper: float,
    sweep: float,
    thickness: float,
    dihedral: float,
    color: np.ndarray,
    vertical: bool = False,
) -> None:
    """A pair of tapered, swept wings from ``root`` (leading edge at ``root``; front = +z)
    or, with ``vertical``, one fin."""
    tip_chord = root_chord * taper
    le_tip = -sweep * half_span  # leading edge moves back (-z) towards the tip
    planform = [(0.0, 0.0), (0.0, -root_chord), (half_span, le_tip - tip_chord), (half_span, le_tip)]
    if vertical:
        # fin: spanwise along +y, chordwise along z; thickness along x
        b.prism(planform, ((0, 1, 0), (0, 0, 1)), -thickness / 2, thickness / 2, color, origin=root)
        return
    for s in (-1, 1):
        poly = [(s * a, c) for a, c in planform]
        rot = _rot("z", s * dihedral)
        # plane (x, z) with normal x × z = -y: thickness from -t/2 to t/2 is symmetric anyway
        b.prism(poly, ((1, 0, 0), (0, 0, 1)), -thickness / 2, thickness / 2, color, origin=root, rotation=rot)


def airplane(rng: np.random.Generator) -> ProceduralMesh:
    """Airliners, business jets, propeller planes and delta-wing fighters (nose towards +z)."""
    b = _Builder()
    kind = _pick(rng, {"airliner": 0.4, "bizjet": 0.2, "prop": 0.2, "fighter": 0.2})
    body = _color(rng, (0.85, 0.85, 0.88), 0.08) if kind != "fighter" else _color(rng, (0.5, 0.55, 0.6), 0.1)
    wingc = _color(rng, (0.55, 0.6, 0.7), 0.12)
    length = rng.uniform(1.6, 3.2)
    r = length * (rng.uniform(0.04, 0.075) if kind != "airliner" else rng.uniform(0.045, 0.065))
    nose_l = length * rng.uniform(0.08, 0.2)
    tail_l = length * rng.uniform(0.15, 0.3)
    z0, z1 = -length / 2, length / 2
    nose_tip = r * (0.15 if kind != "fighter" else 0.05)
    b.lathe((0, 0, z1 - nose_l), (0, 0, z1), [r, r * 0.85, r * 0.55, nose_tip], body, segments=14)
    b.frustum((0, 0, z0 + tail_l), (0, 0, z1 - nose_l), r, r, body, segments=14)
    tail_up = r * rng.uniform(0.0, 0.6)  # tail cone rises towards the end
    b.frustum((0, 0, z0 + tail_l), (0, tail_up, z0), r, r * rng.uniform(0.2, 0.5), body, segments=14)
    # main wing
    if kind == "fighter":
        half_span = length * rng.uniform(0.2, 0.35)
        root_chord = length * rng.uniform(0.35, 0.55)
        taper = rng.uniform(0.05, 0.3)
        sweep = rng.uniform(0.6, 1.4)
        wz = z0 + tail_l * 0.6 + root_chord
    else:
        half_span = length * rng.uniform(0.35, 0.6)
        root_chord = length * rng.uniform(0.1, 0.22)
        taper = rng.uniform(0.25, 1.0) if kind == "prop" else rng.uniform(0.2, 0.5)
        sweep = rng.uniform(0.0, 0.15) if kind == "prop" else rng.uniform(0.25, 0.8)
        wz = rng.uniform(0.0, 0.25) * length + root_chord / 2
    wy = {"low": -0.6 * r, "mid": 0.0, "high": 0.7 * r}[_pick(rng, {"low": 0.5, "mid": 0.2, "high": 0.3})]
    thick = rng.uniform(0.015, 0.04) * length * 0.5
    dihedral = rng.uniform(-0.05, 0.12)
    _wing(b, rng, np.array([0.0, wy, wz]), half_span, root_chord, taper, sweep, thick, dihedral, wingc)
    # engines
    if kind == "airliner":
        n_eng = 2 if rng.random() < 0.65 else 4
        er = r * rng.uniform(0.35, 0.6)
        el = root_chord * rng.uniform(0.6, 1.1)
        fracs = [rng.uniform(0.3, 0.4)] if n_eng == 2 else [rng.uniform(0.25, 0.35), rng.uniform(0.55, 0.7)]
        for f in fracs:
            for s in (-1, 1):
                x = s * f * half_span
                zle = wz - sweep * f * half_span
                yc = wy + math.tan(dihedral) * f * half_span - er - thick
                b.frustum((x, yc, zle - el * 0.6), (x, yc, zle + el * 0.5), er * 0.8, er, body, segments=12)
    elif kind == "bizjet" or (kind == "fighter" and rng.random() < 0.3):
        er = r * rng.uniform(0.3, 0.5)
        el = length * rng.uniform(0.1, 0.18)
        zc = z0 + tail_l + el * 0.3
        for s in (-1, 1):
            x = s * (r + er * 1.1)
            b.frustum((x, r * 0.3, zc - el / 2), (x, r * 0.3, zc + el / 2), er * 0.8, er, body, segments=12)
    elif kind == "prop":
        n_eng = 1 if rng.random() < 0.5 else 2
        if n_eng == 1:
            b.frustum((0, 0, z1 - 0.01), (0, 0, z1 + 0.04), r * 0.3, r * 0.2, wingc, segments=10)
            b.box((0, 0, z1 + 0.02), (r * 3.5, 0.04, 0.015), wingc)
        else:
            for s in (-1, 1):
                x = s * half_span * rng.uniform(0.3, 0.45)
                yc = wy + math.tan(dihedral) * abs(x)
                b.frustum(
                    (x, yc, wz - root_chord * 1.1),
                    (x, yc, wz + root_chord * 0.4),
                    r * 0.35,
                    r * 0.45,
                    body,
                    segments=12,
                )
    # tail
    tail = (
        "fin"
        if kind == "fighter" and rng.random() < 0.4
        else _pick(rng, {"conventional": 0.6, "t": 0.25, "twin": 0.15})
    )
    fin_h = length * rng.uniform(0.1, 0.2)
    fin_c = tail_l * rng.uniform(0.6, 1.0)
    fin_sweep = rng.uniform(0.2, 1.0)
    fz = z0 + fin_c + tail_l * 0.05
    hs_span = half_span * rng.uniform(0.25, 0.45)
    hs_chord = fin_c * rng.uniform(0.5, 0.8)
    if tail == "twin":
        for s in (-1, 1):
            _wing(
                b,
                rng,
                np.array([s * hs_span * 0.8, tail_up, fz]),
                fin_h,
                fin_c,
                0.6,
                fin_sweep,
                thick * 0.8,
                0,
                wingc,
                vertical=True,
            )
        _wing(b, rng, np.array([0.0, tail_up, fz]), hs_span, hs_chord, 0.6, fin_sweep * 0.5, thick * 0.8, 0, wingc)
    else:
        _wing(
            b,
            rng,
            np.array([0.0, tail_up + r * 0.5, fz]),
            fin_h,
            fin_c,
            rng.uniform(0.4, 0.8),
            fin_sweep,
            thick * 0.8,
            0,
            wingc,
            vertical=True,
        )
        if tail == "conventional":
            _wing(
                b,
                rng,
                np.array([0.0, tail_up, fz]),
                hs_span,
                hs_chord,
                0.6,
                fin_sweep * 0.5,
                thick * 0.8,
                rng.uniform(0, 0.1),
                wingc,
            )
        elif tail == "t":
            zt = fz - fin_sweep * fin_h
            _wing(
                b,
                rng,
                np.array([0.0, tail_up + r * 0.5 + fin_h, zt]),
                hs_span,
                hs_chord * 0.8,
                0.6,
                fin_sweep * 0.5,
                thick * 0.8,
                0,
                wingc,
            )
    return b.build()


# ------------------------------------------------------------------------------------------ car
def car(rng: np.random.Generator) -> ProceduralMesh:
    """Car body styles from a side profile (extruded across the width), wheels along x (front: +z)."""
    b = _Builder()
    style = _pick(rng, {"sedan": 0.25, "hatchback": 0.2, "suv": 0.2, "pickup": 0.12, "van": 0.1, "sports": 0.13})
    paint = _color(
        rng,
        [(0.8, 0.1, 0.1), (0.1, 0.3, 0.8), (0.9, 0.9, 0.9), (0.15, 0.15, 0.15), (0.9, 0.7, 0.1), (0.2, 0.55, 0.3)][
            rng.integers(6)
        ],
        0.08,
    )
    glass = _color(rng, (0.35, 0.45, 0.55), 0.05)
    tyre = np.array([0.1, 0.1, 0.1])
    L = rng.uniform(1.7, 2.8) if style not in ("van", "pickup") else rng.uniform(2.1, 3.0)
    W = rng.uniform(0.75, 1.05)
    big = style in ("suv", "pickup", "van")
    wheel_r = L * (rng.uniform(0.09, 0.13) if big else rng.uniform(0.07, 0.1))
    clear = wheel_r * (rng.uniform(0.6, 1.0) if big else rng.uniform(0.4, 0.7))  # body bottom
    body_h = L * ({"sports": rng.uniform(0.07, 0.1), "van": rng.uniform(0.15, 0.22)}.get(style, rng.uniform(0.1, 0.16)))
    cab_h = L * {
        "sports": rng.uniform(0.07, 0.1),
        "van": rng.uniform(0.14, 0.22),
        "suv": rng.uniform(0.13, 0.18),
        "pickup": rng.uniform(0.13, 0.18),
    }.get(style, rng.uniform(0.1, 0.14))
    zf, zr = L / 2, -L / 2
    y0, y1 = clear, clear + body_h
    bevel_f, bevel_r = body_h * rng.uniform(0.1, 0.5), body_h * rng.uniform(0.05, 0.4)
    hood_drop = body_h * rng.uniform(0.0, 0.3) if style != "van" else 0.0
    body = [
        (zr, y0 + bevel_r * 0.5),
        (zr + bevel_r, y0),
        (zf - bevel_f, y0),
        (zf, y0 + bevel_f),
        (zf, y1 - hood_drop),
        (zr, y1),
    ]
    if style == "van":
        body = [(zr, y0), (zf - bevel_f, y0), (zf, y0 + bevel_f), (zf, y1), (zr, y1)]
    b.prism(body, ((0, 0, 1), (0, 1, 0)), -W / 2, W / 2, paint)
    # cabin profile (z, y) over the body top
    cw = W * rng.uniform(0.8, 0.95)
    if style == "van":
        front = zf - L * rng.uniform(0.0, 0.12)
        cab = [(zr, y1), (front + 0.05 * L, y1), (front - L * 0.05, y1 + cab_h), (zr, y1 + cab_h)]
    elif style == "pickup":
        rear = zr + L * rng.uniform(0.35, 0.5)
        front = rear + L * rng.uniform(0.25, 0.35)
        cab = [(rear, y1), (front, y1), (front - L * rng.uniform(0.05, 0.12), y1 + cab_h), (rear, y1 + cab_h)]
        wall = rng.uniform(0.02, 0.05) * L
        bh = cab_h * rng.uniform(0.25, 0.5)
        for sx in (-1, 1):
            b.box((sx * (W / 2 - wall / 2), y1 + bh / 2, (zr + rear) / 2), (wall, bh, rear - zr), paint)
        b.box((0, y1 + bh / 2, zr + wall / 2), (W, bh, wall), paint)
    else:
        rear_ext = {"hatchback": rng.uniform(0.0, 0.06), "suv": rng.uniform(0.0, 0.08)}.get(
            style, rng.uniform(0.15, 0.3)
        )
        rear = zr + L * rear_ext
        front = zf - L * rng.uniform(0.25, 0.42)
        ws = L * (rng.uniform(0.1, 0.22) if style != "suv" else rng.uniform(0.05, 0.12))  # windscreen slope
        rs = L * (rng.uniform(0.08, 0.25) if style in ("sedan", "sports") else rng.uniform(0.0, 0.06))
        room = front - rear - 0.12 * L  # keep a roof at least 0.12 L long
        if ws + rs > room:
            ws, rs = ws * room / (ws + rs), rs * room / (ws + rs)
        cab = [(rear, y1), (front, y1), (front - ws, y1 + cab_h), (rear + rs, y1 + cab_h)]
    b.prism(cab, ((0, 0, 1), (0, 1, 0)), -cw / 2, cw / 2, glass)
    if style == "sports" and rng.random() < 0.5:  # rear spoiler
        sh = body_h * rng.uniform(0.3, 0.8)
        for sx in (-1, 1):
            b.box((sx * W * 0.3, y1 + sh / 2, zr + 0.06 * L), (0.03, sh, 0.03), paint)
        b.box((0, y1 + sh, zr + 0.06 * L), (W * 0.9, 0.02, 0.1 * L), paint)
    if style == "suv" and rng.random() < 0.4:  # roof rack
        for sx in (-1, 1):
            b.box((sx * cw * 0.35, y1 + cab_h + 0.02, -0.05 * L), (0.03, 0.04, L * 0.4), tyre)
    ww = W * rng.uniform(0.12, 0.22)
    base = L * rng.uniform(0.28, 0.38)
    offset = L * rng.uniform(-0.04, 0.04)
    for zc in (offset + base, offset - base):
        for sx in (-1, 1):
            x = sx * (W / 2 - ww / 2 - rng.uniform(0.0, 0.04))  # in the wheel wells
            b.frustum((x - ww / 2, wheel_r, zc), (x + ww / 2, wheel_r, zc), wheel_r, wheel_r, tyre, segments=16)
    return b.build()


# ----------------------------------------------------------------------------------------- lamp
def _shade(
    b: _Builder,
    rng: np.random.Generator,
    top: np.ndarray,
    size: float,
    color: np.ndarray,
    direction: np.ndarray | None = None,
) -> None:
    """A shade hanging from / sitting on ``top``: cone, drum, dome or globe of about ``size``."""
    kind = _pick(rng, {"cone": 0.35, "drum": 0.25, "dome": 0.25, "globe": 0.15})
    d = np.array([0.0, -1.0, 0.0]) if direction is None else direction / np.linalg.norm(direction)
    hgt = size * rng.uniform(0.6, 1.3)
    if kind == "globe":
        b.sphere(top + d * size * 0.5, size * 0.5, color)
    elif kind == "dome":
        prof = [size * 0.15, size * 0.55, size * 0.8, size * 0.95, size]
        b.lathe(top, top + d * hgt * 0.7, prof, color, segments=18)
    elif kind == "drum":
        rr = size * rng.uniform(0.6, 1.0)
        b.frustum(top - d * hgt * 0.2, top + d * hgt * 0.8, rr, rr, color, segments=18)
    else:
        b.frustum(top - d * hgt * 0.2, top + d * hgt * 0.8, size * rng.uniform(0.3, 0.6), size, color, segments=18)


def lamp(rng: np.random.Generator) -> ProceduralMesh:
    """Floor, tripod, desk, table, pendant and multi-arm lamps."""
    b = _Builder()
    kind = _pick(rng, {"floor": 0.2, "tripod": 0.12, "desk": 0.2, "table": 0.2, "pendant": 0.13, "multi": 0.15})
    metal = _color(rng, (0.6, 0.6, 0.6), 0.15) if rng.random() < 0.7 else _color(rng, (0.2, 0.2, 0.2), 0.05)
    shade_c = _color(
        rng,
        [(0.95, 0.9, 0.7), (0.8, 0.3, 0.2), (0.3, 0.6, 0.4), (0.9, 0.9, 0.9), (0.2, 0.3, 0.6)][rng.integers(5)],
        0.08,
    )
    pole_r = rng.uniform(0.015, 0.045)

    def foot(radius: float) -> float:
        fh = rng.uniform(0.03, 0.1)
        if rng.random() < 0.7:
            b.frustum((0, 0, 0), (0, fh, 0), radius, radius * rng.uniform(0.6, 1.0), metal, segments=20)
        else:
            b.box((0, fh / 2, 0), (radius * 1.7, fh, radius * 1.7), metal)
        return fh

    if kind == "floor":
        height = rng.uniform(1.3, 2.2)
        fh = foot(rng.uniform(0.15, 0.35))
        b.frustum((0, fh, 0), (0, height, 0), pole_r, pole_r, metal, segments=10)
        _shade(b, rng, np.array([0.0, height + 0.1, 0.0]), rng.uniform(0.18, 0.4), shade_c)
    elif kind == "tripod":
        height = rng.uniform(1.0, 1.8)
        spread = rng.uniform(0.2, 0.45)
        apex = np.array([0.0, height * rng.uniform(0.65, 0.85), 0.0])
        a0 = rng.uniform(0, 2 * math.pi)
        for k in range(3):
            a = a0 + 2 * math.pi * k / 3
            b.frustum((spread * math.cos(a), 0, spread * math.sin(a)), tuple(apex), pole_r, pole_r, metal, segments=8)
        b.frustum(tuple(apex), (0, height, 0), pole_r, pole_r, metal, segments=8)
        _shade(b, rng, np.array([0.0, height + 0.15, 0.0]), rng.uniform(0.2, 0.45), shade_c)
    elif kind == "desk":
        fh = foot(rng.uniform(0.12, 0.25))
        l1, l2 = rng.uniform(0.4, 0.8), rng.uniform(0.35, 0.7)
        a1 = rng.uniform(-0.5, 0.5)  # lean of the lower arm
        a2 = rng.uniform(0.6, 1.8)  # upper arm angle from vertical
        p0 = np.array([0.0, fh, 0.0])
        p1 = p0 + l1 * np.array([0.0, math.cos(a1), math.sin(a1)])
        p2 = p1 + l2 * np.array([0.0, math.cos(a2), math.sin(a2)])
        b.frustum(tuple(p0), tuple(p1), pole_r, pole_r, metal, segments=8)
        b.frustum(tuple(p1), tuple(p2), pole_r, pole_r, metal, segments=8)
        b.sphere(p1, pole_r * 2, metal, segments=8)
        tilt = rng.uniform(0.0, 1.0)
        _shade(b, rng, p2, rng.uniform(0.12, 0.25), shade_c, direction=np.array([0.0, -math.cos(tilt), math.sin(tilt)]))
    elif kind == "table":
        bh = rng.uniform(0.3, 0.8)
        br = rng.uniform(0.1, 0.25)
        prof = [
            br * rng.uniform(0.5, 0.9),
            br,
            br * rng.uniform(0.7, 1.1),
            br * rng.uniform(0.3, 0.6),
            br * rng.uniform(0.2, 0.4),
        ]
        b.lathe((0, 0, 0), (0, bh, 0), prof, _color(rng, _PALETTE[rng.integers(len(_PALETTE))]), segments=16)
        neck = rng.uniform(0.05, 0.3)
        b.frustum((0, bh, 0), (0, bh + neck, 0), pole_r, pole_r, metal, segments=8)
        _shade(b, rng, np.array([0.0, bh + neck + 0.2, 0.0]), rng.uniform(0.2, 0.4), shade_c)
    elif kind == "pendant":
        top = rng.uniform(1.0, 2.0)
        cr = rng.uniform(0.08, 0.2)
        b.frustum((0, top, 0), (0, top + 0.04, 0), cr, cr, metal, segments=16)
        drop = rng.uniform(0.4, 1.2)
        b.frustum((0, top - drop, 0), (0, top, 0), pole_r * 0.5, pole_r * 0.5, metal, segments=6)
        _shade(b, rng, np.array([0.0, top - drop, 0.0]), rng.uniform(0.2, 0.5), shade_c)
    else:  # multi-arm
        height = rng.uniform(0.6, 1.8)
        fh = foot(rng.uniform(0.15, 0.3))
        b.frustum((0, fh, 0), (0, height, 0), pole_r, pole_r, metal, segments=10)
        n = int(rng.integers(2, 5))
        reach = rng.uniform(0.2, 0.5)
        rise = rng.uniform(-0.1, 0.3)
        a0 = rng.uniform(0, 2 * math.pi)
        size = rng.uniform(0.08, 0.18)
        for k in range(n):
            a = a0 + 2 * math.pi * k / n
            y = height * rng.uniform(0.8, 1.0)
            end = np.array([reach * math.cos(a), y + rise, reach * math.sin(a)])
            b.frustum((0, y, 0), tuple(end), pole_r * 0.7, pole_r * 0.7, metal, segments=8)
            up = rng.random() < 0.5
            _shade(
                b,
                rng,
                end + np.array([0.0, size * 0.3 if up else 0.0, 0.0]),
                size,
                shade_c,
                direction=np.array([0.0, 1.0 if up else -1.0, 0.0]),
            )
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
