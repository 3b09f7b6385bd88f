"""softras.apps.figures: the apps' one label helper and the matplotlib loss plot."""

from __future__ import annotations

import numpy as np

from softras.apps.figures import LossPlot, font, label, label_panels

BLUE, RED = (30, 100, 220), (220, 60, 30)


def _count(image: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> int:
    return int((np.abs(image.astype(int) - colour).max(axis=-1) < tol).sum())


def test_font_grows_with_size() -> None:
    small, big = font(9).getbbox("Hg"), font(18).getbbox("Hg")
    assert big[3] - big[1] > 1.5 * (small[3] - small[1])


def test_labels_wrap_to_the_image_width_and_line_up() -> None:
    images = [np.zeros((40, 90, 3), np.uint8), np.zeros((40, 90, 3), np.uint8)]
    short, long_ = label(images, ["ok", "sigma=1e-5, gamma=1e-4 and more words"], size=10)
    one_line = label(images[:1], ["ok"], size=10)[0]
    assert short.shape == long_.shape and short.shape[0] > one_line.shape[0] > 40  # bands of the most lines
    band = long_[40:]
    assert (band < 128).any(axis=-1).sum() > 0 and np.array_equal(long_[:40], images[1])  # text below the image
    ink_cols = np.flatnonzero((band < 128).any(axis=(0, 2)))
    assert ink_cols.max() < 90  # every line fits the width
    above = label(images[:1], ["ok"], size=10, above=True)[0]
    assert np.array_equal(above[-40:], images[0])


def test_label_panels_places_panels_side_by_side() -> None:
    panels = [np.full((30, 20, 3), 80, np.uint8), np.full((30, 25, 3), 160, np.uint8)]
    strip = label_panels(panels, ["a", "b"], gap=4)
    assert strip.shape[1] == 20 + 4 + 25 and strip.shape[0] > 30
    assert (strip[-30:, :20] == 80).all() and (strip[-30:, 24:] == 160).all() and (strip[:, 20:24] == 255).all()


def test_loss_plot_draws_the_curves_up_to_the_iteration() -> None:
    falling = np.exp(-np.linspace(0, 6, 100))
    flat = np.full(100, 0.3)
    plot = LossPlot([falling, flat], [BLUE, RED], (160, 100))
    early, late = plot.frame(10), plot.frame(99)
    assert early.shape == late.shape == (100, 160, 3) and early.dtype == np.uint8
    assert 0 < _count(early, BLUE) < _count(late, BLUE) and 0 < _count(early, RED) < _count(late, RED)
    rows = np.flatnonzero((np.abs(late.astype(int) - BLUE).max(-1) < 40).any(axis=1))
    cols_top = np.flatnonzero(np.abs(late[rows[0]].astype(int) - BLUE).max(-1) < 40)
    cols_bottom = np.flatnonzero(np.abs(late[rows[-1]].astype(int) - BLUE).max(-1) < 40)
    assert cols_top.mean() < cols_bottom.mean()  # the falling curve starts high on the left, ends low on the right
