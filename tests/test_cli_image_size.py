"""``--image-size`` takes S, H W or WxH in every command that has it, and non-square runs work."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from softras.apps import UsageError
from softras.apps._checks import check_image_size, join_image_size_values
from softras.cli import build_parser, main

COMMANDS = ("render", "deform", "fit-pose", "fit-articulated")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [(["48"], 48), (["24", "40"], (24, 40)), (["40x24"], (24, 40)), (["40X24"], (24, 40)), (["24 40"], (24, 40))],
)
def test_every_command_parses_the_three_forms(command: str, value: list[str], expected: object) -> None:
    args = build_parser().parse_args([command, "--image-size", *value])
    assert args.image_size == expected


def test_h_w_form_leaves_a_following_positional_alone() -> None:
    args = build_parser().parse_args(["render", "--image-size", "24", "40", "mesh.obj"])
    assert args.image_size == (24, 40) and args.mesh == "mesh.obj"
    args = build_parser().parse_args(["render", "--image-size", "24", "mesh.obj"])
    assert args.image_size == 24 and args.mesh == "mesh.obj"
    assert join_image_size_values(["--out", "1", "2"]) == ["--out", "1", "2"]


@pytest.mark.parametrize("value", ["0", "10x0", "axb", "3x4x5", "-4", "2.5"])
def test_bad_image_sizes_are_one_line_errors(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["render", "--image-size", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softras: error:") and "--image-size" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["fit-pose", "--image-size", "4"])  # the fitting apps need at least 8 px


def test_check_image_size() -> None:
    assert check_image_size("image_size", 16, 1) == 16
    assert check_image_size("image_size", (np.int64(8), 12), 1) == (8, 12)
    with pytest.raises(UsageError, match=r"image_size \(width\)"):
        check_image_size("image_size", (8, 0), 1)
    with pytest.raises(UsageError, match="image_size: expected an integer or"):
        check_image_size("image_size", (8, 9, 10), 1)


def test_render_command_non_square(tmp_path: Path) -> None:
    out = tmp_path / "render"
    assert main(["render", "-o", str(out), "--image-size", "20x12", "--step", "180", "--sweep-frames", "1", "-q"]) == 0
    frames = iio.imread(out / "turntable.gif", index=None)
    assert frames.shape[1:3] == (12, 20)
    assert json.loads((out / "summary.json").read_text())["settings"]["image_size"] == [12, 20]


def test_fit_pose_and_deform_commands_non_square(tmp_path: Path) -> None:
    out = tmp_path / "pose"
    args = ["fit-pose", "--starts", "1", "--iters", "2", "--image-size", "16", "24", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert (out / "fit_pose.gif").is_file()
    out = tmp_path / "deform"
    assert main(["deform", "--iters", "2", "--image-size", "24x16", "--views", "2", "--out", str(out), "-q"]) == 0
    assert np.load(out / "target_images.npy").shape == (2, 4, 16, 24)
    # the written .npy targets are accepted back, and a mismatching --image-size is refused
    again = ["deform", "--target-images", str(out / "target_images.npy"), "--target-cameras",
             str(out / "target_cameras.npy"), "--iters", "1", "--out", str(tmp_path / "again"), "-q"]  # fmt: skip
    assert main(again) == 0
    assert main([*again, "--image-size", "16"]) == 2
