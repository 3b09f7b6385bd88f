"""The articulated model (softras.articulated) and the fit-articulated app at tiny sizes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from softras.apps import UsageError
from softras.apps.fit_articulated import (
    OCCLUDED_PART,
    ArticulatedScene,
    FitArticulatedResult,
    fit_articulated,
    run_fit_articulated,
    target_angles,
)
from softras.articulated import humanoid
from softras.cli import main

SIZE = 32


@pytest.fixture(scope="module")
def model():
    return humanoid()


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> FitArticulatedResult:
    out = tmp_path_factory.mktemp("fit_articulated")
    return run_fit_articulated(out, iters=4, image_size=SIZE, quiet=True)


def test_model_shapes_and_rest_pose(model) -> None:
    j, p = model.num_joints, model.num_parts
    assert j == 10 and p == 10
    a = model.rest_angles()[None]
    v = model.vertices(a)
    assert v.shape == (1, 8 * p, 3)
    assert model.faces.shape == (12 * p, 3) and model.textures.shape == (12 * p, 1, 3)
    assert int(model.faces.max()) == 8 * p - 1
    mesh = model.mesh(a.expand(3, -1))
    assert mesh.batch_size == 3 and mesh.num_faces == 12 * p
    assert model.joints_of([OCCLUDED_PART]) == [model.joint_names.index("r_hand.0")]


def test_forward_kinematics_moves_only_the_subtree(model) -> None:
    a = model.rest_angles()[None]
    b = a.clone()
    b[0, model.joint_names.index("r_forearm.0")] += 0.5
    names = [p.name for p in model.parts]
    ca, cb = model.part_centers(a)[0], model.part_centers(b)[0]
    moved = (ca - cb).norm(dim=1) > 1e-5
    assert moved[names.index("r_forearm")] and moved[names.index("r_hand")]
    assert not moved[names.index("r_upper_arm")] and not moved[names.index("torso")]
    assert not moved[names.index("l_hand")]


def test_gradients_reach_every_joint(model) -> None:
    scene = ArticulatedScene(model, image_size=SIZE)
    a = target_angles(model)[None].clone().requires_grad_(True)
    img = scene.render(a, 1e-3, 3e-2, board=False)
    (img * torch.linspace(0, 1, SIZE)).sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    assert (a.grad.abs() > 0).all()


def test_hidden_hand_moves_towards_the_truth_with_soft_colours(model) -> None:
    """Easy case: only the hidden wrist is off (by 20°); the soft fit reduces its error, the hard one cannot."""
    scene = ArticulatedScene(model, image_size=SIZE)
    truth = target_angles(model)
    names = [p.name for p in model.parts]
    hand = model.part_centers(truth[None])[0, names.index(OCCLUDED_PART)]
    scene.board_center = (float(hand[0]), float(hand[1]))
    start = truth.clone()
    wrist = model.joints_of([OCCLUDED_PART])[0]
    start[wrist] += math.radians(20.0)
    assert scene.visible_pixels(truth[None]) == 0 and scene.visible_pixels(start[None]) == 0
    soft = fit_articulated(scene, truth, start, "soft", 25, lr=0.03, frames=2)
    assert float(soft.angle_err[-1, wrist]) < 0.5 * float(soft.angle_err[0, wrist])
    assert float(soft.losses[-1]) < float(soft.losses[0])
    hard = fit_articulated(scene, truth, start, "hard", 25, lr=0.03, frames=2)
    assert float(hard.angle_err[-1, wrist]) > 0.8 * float(hard.angle_err[0, wrist])


def test_outputs_written(result: FitArticulatedResult) -> None:
    assert {p.name for p in result.files.values()} == {"fit_articulated.gif", "articulated_strip.png", "summary.json"}
    for path in result.files.values():
        assert path.is_file() and path.stat().st_size > 0
    summary = json.loads(result.files["summary"].read_text(encoding="utf-8"))
    assert set(summary["errors"]) == {"soft", "hard"}
    assert {"occluded_init_deg", "occluded_final_deg", "visible_init_deg", "visible_final_deg"} <= set(
        summary["errors"]["soft"]
    )
    assert summary["hand_visible_pixels"] == {"target": 0, "start": 0}
    assert summary["settings"]["occluded_joints"] == ["r_hand.0"]


def test_bad_arguments(tmp_path) -> None:
    with pytest.raises(UsageError):
        run_fit_articulated(tmp_path, iters=0, quiet=True)
    with pytest.raises(UsageError):
        run_fit_articulated(tmp_path, modes=("zbuffer",), quiet=True)


def test_cli_help_and_small_run(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fit-articulated", "--help"])
    assert exc.value.code == 0
    assert "--perturb" in capsys.readouterr().out
    out = tmp_path / "cli"
    args = ["fit-articulated", "--iters", "2", "--image-size", str(SIZE), "--out", str(out), "--modes", "soft", "-q"]
    assert main(args) == 0
    assert "occluded wrist error" in capsys.readouterr().out
    assert (out / "summary.json").is_file() and (out / "fit_articulated.gif").is_file()


def test_pictures_have_no_dark_halo(model) -> None:
    # z-buffer colour is the (black) background outside the faces; composited with the soft alpha
    # it drew a dark rim around every part. The pictures composite it with the z-buffer coverage.
    from softras.apps.render import composite

    scene = ArticulatedScene(model, image_size=SIZE)
    angles = target_angles(model)[None]
    raw = scene.render(angles, 1e-3, 1e-2, aggr_rgb="hard")
    rim = (raw[:, 3] > 0.05) & (raw[:, :3].amax(1) == 0)
    assert int(rim.sum()) > 10  # the raw render has the problem ...
    shown = composite(scene.picture(angles, 1e-3, 1e-2, aggr_rgb="hard"))[0]
    assert (shown[rim[0].numpy()] == 255).all()  # ... the picture shows background there
    soft = scene.picture(angles, 1e-3, 1e-2)
    assert float(soft[:, 3].amin()) == 0.0 and float(soft[:, 3].amax()) == 1.0
