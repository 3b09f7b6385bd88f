"""Picture helpers of the apps: one font, one text label, and loss curves drawn with matplotlib.

Images are uint8 NumPy arrays [H, W, 3]. Labels use Pillow's default font (ASCII: it has no Greek
letters); plots use matplotlib's Agg canvas, with no pyplot state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["LossPlot", "draw_loss_curve", "font", "label", "label_panels"]

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
_DARK_INK: RGB = (30, 30, 30)
_LIGHT_INK: RGB = (230, 230, 230)
_LINE_GAP = 3  # pixels between label lines
_MARGIN = 2  # pixels around a label's text


def font(size: int):  # -> PIL.ImageFont.FreeTypeFont
    """Pillow's default font at ``size`` pixels."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    """``text`` as one line if it ``fits``, else split at ``"; "`` and then greedily between words."""
    if fits(text):
        return [text]
    lines: list[str] = []
    for part in text.split("; "):
        line = ""
        for word in re.findall(r"\S+\s*", part):  # a word with the spaces after it
            if line and not fits((line + word).rstrip()):
                lines.append(line.rstrip())
                line = ""
            line += word
        lines.append(line.rstrip())
    return lines


def label(
    images: Sequence[np.ndarray],
    texts: Sequence[str],
    *,
    size: int,
    above: bool = False,
    align: str = "center",
    background: RGB = WHITE,
) -> list[np.ndarray]:
    """Each image [H, W, 3] with its text on a band of ``background`` below (or ``above``) it.

    Text wider than its image is split into lines at ``"; "``, then between words; every band has
    the height of the most lines, so the results line up. ``align`` is ``'center'`` or ``'left'``;
    the ink is dark on a light background and light on a dark one.

    Returns:
        uint8 images [H + band, W, 3], one per input.
    """
    from PIL import Image, ImageDraw

    face = font(size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [
        _wrap(text, lambda t, w=image.shape[1]: measure.textlength(t, font=face) <= w - 2 * _MARGIN)
        for image, text in zip(images, texts, strict=True)
    ]
    band = max(len(lines) for lines in wrapped) * (size + _LINE_GAP) + 2 * _MARGIN
    ink = _DARK_INK if sum(background) > 384 else _LIGHT_INK
    out = []
    for image, lines in zip(images, wrapped, strict=True):
        h, w = image.shape[:2]
        canvas = Image.new("RGB", (w, h + band), background)
        canvas.paste(Image.fromarray(np.ascontiguousarray(image)), (0, band if above else 0))
        draw = ImageDraw.Draw(canvas)
        top = _MARGIN if above else h + _MARGIN
        for k, line in enumerate(lines):
            x = max(_MARGIN, (w - draw.textlength(line, font=face)) / 2) if align == "center" else _MARGIN + 1
            draw.text((x, top + k * (size + _LINE_GAP)), line, fill=ink, font=face)
        out.append(np.asarray(canvas))
    return out


def label_panels(panels: Sequence[np.ndarray], labels: Sequence[str], gap: int = 4) -> np.ndarray:
    """uint8 images [H, W, 3] side by side on white, ``gap`` pixels apart, each with its label above."""
    h = max(p.shape[0] for p in panels)
    size = max(10, min(14, h // 9))
    tall = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in panels]
    tiles = label(tall, labels, size=size, above=True)
    spacer = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
    row: list[np.ndarray] = []
    for tile in tiles:
        row += [spacer, tile] if row else [tile]
    return np.concatenate(row, axis=1)


class LossPlot:
    """Loss curves on a log scale, drawn up to a given iteration (for animations).

    The axes cover the whole range of all curves from the first frame, so the curves grow frame by
    frame; the current iteration of each curve is marked with a dot.

    Args:
        curves: one sequence of losses per line ([iters] each).
        colors: an RGB colour (0-255) per curve.
        size: (width, height) of the picture in pixels.
    """

    _DPI = 100

    def __init__(self, curves: Sequence[np.ndarray], colors: Sequence[RGB], size: tuple[int, int]) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._curves = [np.maximum(np.asarray(c, dtype=np.float64), 1e-12) for c in curves]
        width, height = size
        self._figure = Figure(figsize=(width / self._DPI, height / self._DPI), dpi=self._DPI)
        self._canvas = FigureCanvasAgg(self._figure)
        ax = self._figure.add_axes((0.03, 0.03, 0.94, 0.94))
        ax.set_yscale("log")
        ax.set_xlim(0, max(1, max(len(c) for c in self._curves) - 1))
        lo = min(float(c.min()) for c in self._curves)
        hi = max(float(c.max()) for c in self._curves)
        pad = (hi / lo) ** 0.05 if hi > lo else 10.0  # 5 % of the log range on either side
        ax.set_ylim(lo / pad, hi * pad)
        ax.tick_params(which="both", labelleft=False, labelbottom=False, length=0)
        ax.grid(True, which="major", color="0.9", linewidth=0.5)
        for spine in ax.spines.values():
            spine.set_color("0.7")
        rgb = [tuple(v / 255 for v in c) for c in colors]
        self._lines = [ax.plot([], [], color=c, linewidth=1)[0] for c in rgb]
        self._dots = [ax.plot([], [], "o", color=c, markersize=3, clip_on=False)[0] for c in rgb]

    def frame(self, upto: int) -> np.ndarray:
        """The plot with every curve drawn up to iteration ``upto`` -> uint8 [H, W, 3]."""
        for curve, line, dot in zip(self._curves, self._lines, self._dots, strict=True):
            k = min(upto + 1, len(curve))
            line.set_data(np.arange(k), curve[:k])
            dot.set_data([k - 1] if k else [], [curve[k - 1]] if k else [])
        self._canvas.draw()
        return np.asarray(self._canvas.buffer_rgba())[..., :3].copy()


def draw_loss_curve(
    curves: Sequence[np.ndarray], upto: int, size: tuple[int, int], colors: Sequence[RGB]
) -> np.ndarray:
    """One frame of :class:`LossPlot` -> uint8 [H, W, 3] (for many frames, make one LossPlot)."""
    return LossPlot(curves, colors, size).frame(upto)
