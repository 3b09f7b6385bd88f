"""Draw the coverage-family grids of docs/families.md: every distribution at three σ, and every
T-conorm at a few p, as the alpha of one scene (two overlapping triangles) on the cpu backend.

Run from the repository root:  python docs/scripts/families_figure.py [--out docs/images]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from softras.apps.figures import font
from softras.raster import model, soft_rasterize

CELL = 96
LABEL_W = 170
SIGMAS = (0.003, 0.01, 0.03)


def scene() -> tuple[torch.Tensor, torch.Tensor]:
    """Two overlapping triangles (screen space) and grey vertex colours."""
    fv = torch.tensor(
        [[[[-0.7, -0.6, 2.0], [0.3, -0.6, 2.0], [-0.2, 0.6, 2.0]],
          [[-0.1, -0.4, 2.5], [0.8, -0.1, 2.5], [0.2, 0.7, 2.5]]]],
        dtype=torch.float64,
    )
    return fv, torch.full((1, 2, 3, 3), 0.8, dtype=torch.float64)


def alpha(**kwargs: object) -> np.ndarray:
    fv, tex = scene()
    image = soft_rasterize(fv, tex, CELL, texture_type="vertex", dist_eps=1e-6, backend="cpu", **kwargs)
    return image[0, 3].numpy()


def grid(rows: list[tuple[str, list[np.ndarray]]], columns: list[str]) -> Image.Image:
    """Label column + one cell per image, a header row with the column titles."""
    header = 24
    out = Image.new("RGB", (LABEL_W + CELL * len(columns), header + CELL * len(rows)), "white")
    draw = ImageDraw.Draw(out)
    small = font(14)
    for j, title in enumerate(columns):
        draw.text((LABEL_W + j * CELL + 6, 4), title, fill="black", font=small)
    for i, (label, images) in enumerate(rows):
        draw.text((6, header + i * CELL + CELL // 2 - 8), label, fill="black", font=small)
        for j, a in enumerate(images):
            cell = Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)).convert("RGB")
            out.paste(cell, (LABEL_W + j * CELL, header + i * CELL))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/images", help="folder for the two PNGs (default: %(default)s)")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, spec in model.DISTRIBUTIONS.items():
        extra = {"dist_shape": 2.0} if spec.shape else {}
        rows.append((name, [alpha(distribution=name, squared_distance=False, sigma_val=s, **extra) for s in SIGMAS]))
    grid(rows, [f"sigma = {s}" for s in SIGMAS]).save(out / "families_distributions.png")
    ps = (0.5, 2.0, 8.0)
    rows = []
    for name, tc in model.T_CONORMS.items():
        values = [p for p in ps if tc.p_valid is None or tc.p_valid(p)] if tc.p_valid else [None]
        if name == "schweizer_sklar":
            values = [-8.0, -2.0, 0.5]
        images = [alpha(aggr_func_alpha=name, t_conorm_p=p, sigma_val=0.06, squared_distance=False) for p in values]
        label = name if values == [None] else f"{name}\np = " + ", ".join(f"{p:g}" for p in values)
        rows.append((label, images + [np.zeros((CELL, CELL))] * (3 - len(images))))
    grid(rows, ["1st p", "2nd p", "3rd p"]).save(out / "families_tconorms.png")


if __name__ == "__main__":
    main()
