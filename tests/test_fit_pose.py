"""The pose-fitting app (softras.apps.fit_pose) at tiny sizes: 32² images, few starts and iterations."""

from __future__ import annotations

import itertools
import json
import math

import imageio.v3 as iio
import pytest
import torch

from softras import rotations
from softras.apps import UsageError
from softras.apps.fit_pose import (
    SHARP,
    FitPoseResult,
    PoseScene,
    blur_schedule,
    occluded_fraction,
    optimize_pose,
    random_rotations,
    rotation_error_deg,
    run_fit_pose,
    true_pose,
)
from softras.cli import main

SIZE = 32


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> FitPoseResult:
    out = tmp_path_factory.mktemp("fit_pose")
    return run_fit_pose(out, starts=2, iters=12, image_size=SIZE, max_angle=20.0, max_offset=0.05, quiet=True)


def test_rotation_helpers() -> None:
    gen = torch.Generator().manual_seed(0)
    q = random_rotations(16, 90.0, gen)
    r = rotations.quaternion_to_matrix(q)
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-9)
    assert torch.allclose(torch.linalg.det(r), torch.ones(16, dtype=r.dtype), atol=1e-9)
    assert torch.all(rotation_error_deg(q, q) < 1e-3)
    assert torch.all(rotation_error_deg(q, -q) < 1e-3)  # q and -q are the same rotation
    # composing with a 30° rotation about any axis gives a 30° geodesic error
    axis = torch.nn.functional.normalize(torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64), dim=0)
    dq = rotations.axis_angle_to_quaternion(axis * math.radians(30.0))
    err = rotation_error_deg(rotations.quaternion_multiply(dq[None], q), q)
    assert torch.allclose(err, torch.full_like(err, 30.0), atol=1e-6)
    assert float(rotation_error_deg(q[:1], q[:1]).max()) < 1e-3
    angles = rotation_error_deg(q, torch.tensor([0.0, 0, 0, 1], dtype=torch.float64))  # XYZW identity
    assert float(angles.max()) <= 90.0 + 1e-6


def test_blur_schedule_goes_from_blurry_to_sharp() -> None:
    sig, gam = blur_schedule(20)
    assert len(sig) == len(gam) == 20
    assert sig[0] == pytest.approx(1e-2) and gam[0] == pytest.approx(1e-1)
    assert sig[-1] == pytest.approx(SHARP[0]) and gam[-1] == pytest.approx(SHARP[1])
    assert all(a >= b for a, b in itertools.pairwise(sig))


def test_occluder_hides_about_half_of_the_cube() -> None:
    scene = PoseScene(image_size=SIZE)
    q, t = true_pose()
    assert 0.35 < occluded_fraction(scene, q[None], t[None]) < 0.65


def test_small_perturbation_converges() -> None:
    """From 15°/0.05 off, the scheduled fit reduces the loss and the rotation error."""
    scene = PoseScene(image_size=SIZE)
    q_true, t_true = true_pose()
    with torch.no_grad():
        target = scene.render(q_true[None], t_true[None], *SHARP)
    dq = rotations.axis_angle_to_quaternion(torch.tensor([[1.0, 1.0, 0.0]]) * (math.radians(15.0) / math.sqrt(2)))
    q0 = rotations.quaternion_multiply(dq, q_true[None])
    t0 = torch.tensor([[0.05, -0.03, 0.0]])
    sig, gam = blur_schedule(30, start=(1e-3, 1e-2), end=(1e-4, 1e-3))
    trace = optimize_pose(scene, target, q_true, t_true, q0, t0, sig, gam, lr=0.03, frames=3)
    assert trace.losses.shape == (30, 1)
    assert float(trace.losses[-5:].mean()) < 0.5 * float(trace.losses[:3].mean())
    assert float(trace.rot_err[-1, 0]) < 0.5 * float(trace.rot_err[0, 0])
    assert float(trace.trans_err[-1, 0]) < float(trace.trans_err[0, 0])
    assert trace.frames_sharp.shape == (3, 1, 4, SIZE, SIZE) == trace.frames_view.shape
    assert len(trace.frame_iters) == 3 and trace.frame_iters[-1] == 29


def test_outputs_written(result: FitPoseResult) -> None:
    assert {p.name for p in result.files.values()} == {"fit_pose.gif", "pose_strip.png", "summary.json"}
    for path in result.files.values():
        assert path.is_file() and path.stat().st_size > 0
    gif = iio.imread(result.files["gif"], index=None)
    assert gif.ndim == 4 and gif.shape[0] >= 2  # frames of target | current | view | loss, two rows
    assert gif.shape[2] > 4 * SIZE
    summary = json.loads(result.files["summary"].read_text(encoding="utf-8"))
    assert set(summary["success_rate"]) == {"schedule", "fixed"}
    assert len(summary["per_start"]) == 2
    assert {"schedule_rot_err_deg", "fixed_rot_err_deg", "init_rot_err_deg"} <= set(summary["per_start"][0])
    assert summary["timings_s"]["total"] > 0
    assert 0.0 <= result.success_rate["schedule"] <= 1.0
    assert len(result.rot_err["fixed"]) == 2


def test_bad_arguments(tmp_path) -> None:
    with pytest.raises(UsageError):
        run_fit_pose(tmp_path, starts=0, quiet=True)
    with pytest.raises(UsageError):
        run_fit_pose(tmp_path, backend="no-such-backend", quiet=True)


def test_cli_help_and_small_run(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fit-pose", "--help"])
    assert exc.value.code == 0
    assert "--starts" in capsys.readouterr().out
    out = tmp_path / "cli"
    args = ["fit-pose", "--starts", "2", "--iters", "3", "--image-size", str(SIZE), "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "schedule" in printed and "fixed" in printed
    assert (out / "summary.json").is_file() and (out / "fit_pose.gif").is_file()
