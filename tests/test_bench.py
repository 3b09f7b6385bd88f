"""The benchmark harness (``softras bench``) in quick mode with the reference backend only.

No wall-clock assertions: only that the measurements are there and self-consistent.
"""

from __future__ import annotations

import json
import math
import mmap
import time

import pytest
import torch

from softras import roofline
from softras.bench import (
    REFERENCE_PAIRS,
    PeakRSS,
    backends_for_device,
    build_cases,
    count_kept_pairs,
    count_pairs,
    format_report,
    run_benchmarks,
    write_json,
)
from softras.cli import main
from softras.raster import BACKENDS, RasterSettings
from softras.raster.contract import RasterInputs, kernel_params
from softras.raster.cpu_kernels import flops_per_pair


@pytest.fixture(scope="module")
def quick_report():
    """One quick run of every workload on the reference backend (shared by the tests below).

    One torch thread: on a shared, loaded machine two OpenMP threads stall each other.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield run_benchmarks(["W1", "W2", "W3"], ["reference"], repeat=1, warmup=1, quick=True)
    finally:
        torch.set_num_threads(threads)


def test_quick_results_are_sane(quick_report) -> None:
    results = quick_report.results
    assert [r.case for r in results] == [c["case"] for c in quick_report.cases]
    assert {r.workload for r in results} == {"W1", "W2", "W3"}
    assert sum(r.workload == "W3" for r in results) == 3
    for r in results:
        assert r.error is None
        assert r.backend == "reference"
        assert r.dtype == "float32"
        assert r.forward_ms > 0 and r.forward_backward_ms > 0
        assert len(r.forward_ms_runs) == r.repeat == 1
        assert r.pairs > 0
        assert r.pairs_per_s == pytest.approx(r.pairs / (r.forward_ms / 1e3))
        assert r.speedup_forward == 1.0 and r.speedup_forward_backward == 1.0
        assert r.threads == 1
        if r.peak_mb_forward_backward is not None:  # None only without /proc
            assert r.peak_mb_forward_backward >= 0
    # Quick W1 renders 2 of its 8 views with the reference and scales the times by 4.
    w1 = next(r for r in results if r.workload == "W1")
    assert (w1.measured_batch, w1.batch, w1.scale) == (2, 8, 4.0)
    assert w1.forward_ms == pytest.approx(sorted(w1.forward_ms_runs)[0] * 4)
    text = format_report(quick_report)
    assert "reference: 2/8 views, scaled" in text
    # The single-image rows render a face subset, scaled by the pair counts.
    for case in quick_report.cases:
        r = next(r for r in results if r.case == case["case"])
        if case["reference_face_step"] > 1:
            assert r.scale == pytest.approx(case["pairs"] / case["reference_pairs"])
            assert f"reference: 1 face in {case['reference_face_step']} " in text
    # The reference has no flop model: no roofline figures, an n/a line per row.
    assert all(r.gflops is None and r.kept_pairs is None for r in results)
    assert text.count("roofline reference: n/a") == len(quick_report.cases)


def test_json_written_and_parseable(quick_report, tmp_path) -> None:
    path = write_json(quick_report, tmp_path / "sub" / "bench.json")
    data = json.loads(path.read_text())
    assert set(data) == {"meta", "cases", "results"}
    meta = data["meta"]
    for key in ("torch", "numba", "torch_threads", "loadavg", "cpu", "platform", "dtype", "repeat", "warmup"):
        assert key in meta
    row = data["results"][0]
    for key in ("workload", "backend", "dtype", "forward_ms", "forward_backward_ms", "pairs", "pairs_per_s",
                "peak_mb_forward_backward", "speedup_forward", "threads"):  # fmt: skip
        assert key in row
    assert row["speedup_forward"] == 1.0


def test_pairs_scale_with_the_batch() -> None:
    (case,) = build_cases("W1", quick=True)
    full = count_pairs(case.face_vertices, case.settings)
    half = count_pairs(case.face_vertices[:4], case.settings)
    assert 0 < half < full
    # A subset fraction overrides the workload's default.
    (case,) = build_cases("W1", quick=True, reference_subset=0.5)
    assert case.reference_batch == 4


def test_reference_subset_scales_with_the_workload() -> None:
    """By default the reference renders about REFERENCE_PAIRS pairs per row, whatever the row's size:
    a part of the batch, or one face in s of a single image, s growing with the mesh."""
    (w1,) = build_cases("W1")
    assert w1.pairs > 10 * REFERENCE_PAIRS
    assert w1.reference_batch == round(REFERENCE_PAIRS / w1.pairs * w1.batch)
    assert w1.reference_scale == w1.batch / w1.reference_batch
    w3 = build_cases("W3")
    steps = [c.reference_face_step for c in w3]
    assert steps == sorted(steps) and steps[0] < steps[-1]
    for case in [w1, *w3]:
        assert REFERENCE_PAIRS / 2 < case.reference_pairs < 2 * REFERENCE_PAIRS
        assert case.reference_pairs * case.reference_scale == pytest.approx(case.pairs, rel=0.05)
    (w2,) = build_cases("W2")  # small enough: all of it
    assert (w2.reference_batch, w2.reference_face_step, w2.reference_scale) == (1, 1, 1.0)


def test_kept_pairs_hard_are_the_pixels_inside() -> None:
    """With the hard test the kept pairs are the pixel centres inside the closed triangle."""
    size = 16
    fv = torch.tensor([[[[-0.7, -0.6, 2.0], [0.8, -0.5, 2.0], [0.1, 0.9, 2.0]]]], dtype=torch.float64)
    settings = RasterSettings.create(size, dist_func="hard")
    centres = (torch.arange(size, dtype=torch.float64) * 2 + 1) / size - 1
    px, py = torch.meshgrid(centres, centres, indexing="xy")
    (a, b, c) = fv[0, 0, :, :2]

    def side(p, q, x, y):  # > 0 on the left of p -> q
        return (q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0])

    inside = (side(a, b, px, py) >= 0) & (side(b, c, px, py) >= 0) & (side(c, a, px, py) >= 0)
    assert 0 < count_kept_pairs(fv, settings) == int(inside.sum()) < count_pairs(fv, settings)


def test_peak_gflops_is_measured_once() -> None:
    peak = roofline.peak_gflops()
    assert math.isfinite(peak) and peak > 0
    t0 = time.perf_counter()
    assert roofline.peak_gflops() == peak  # cached for this process and thread count
    assert time.perf_counter() - t0 < 0.01


def test_fma_loop_runs_packed_fmas() -> None:
    """The peak loop is vectorised: its unrolled body is CHAINS × STEPS packed FMAs on ymm/zmm."""
    simd = roofline.host_simd()
    if simd is None:
        pytest.skip("the host CPU has neither AVX2 nor AVX-512")
    counts = roofline.packed_fma_counts(roofline.fma_asm())
    assert sum(counts.values()) >= roofline.CHAINS * roofline.STEPS, counts
    if simd == "avx2":
        assert "ymm" in counts  # LLVM may also choose ymm on AVX-512 hosts (prefer-256-bit tuning)


def test_roofline_fields(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A backend with a flop model gets the roofline figures, in the JSON and as a text line.
    (The reference is given the cpu kernels' model here, so that no Numba kernel is compiled.)"""
    import dataclasses

    monkeypatch.setitem(
        BACKENDS,
        "reference",
        dataclasses.replace(BACKENDS["reference"], flops_entry="softras.raster.cpu_kernels:flops_per_pair"),
    )
    report = run_benchmarks(["W2"], ["reference"], repeat=1, warmup=0, quick=True, quiet=True)
    data = json.loads(write_json(report, tmp_path / "bench.json").read_text())
    (case,), (row,) = data["cases"], data["results"]
    assert data["meta"]["peak_gflops"] == pytest.approx(roofline.peak_gflops())
    assert 0 < row["kept_pairs"] == case["kept_pairs"] < row["pairs"]
    (c,) = build_cases("W2", quick=True)
    params = kernel_params(RasterInputs.from_textures(c.face_vertices, c.textures, c.settings), c.settings)
    assert row["flops_per_pair"] == flops_per_pair(params) == 108
    assert row["gflops"] == pytest.approx(row["kept_pairs"] * 108 / (row["forward_ms"] / 1e3) / 1e9)
    assert row["peak_fraction"] == pytest.approx(row["gflops"] / row["peak_gflops"])
    line = f"roofline reference: 108 flops/kept pair × {row['kept_pairs']:,} kept pairs"
    assert line in format_report(report)


def test_progress_bar_per_case_and_backend(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("SOFTRAS_PROGRESS", "1")
    run_benchmarks(["W2"], ["reference"], repeat=1, warmup=0, quick=True, echo=print)
    captured = capsys.readouterr()
    assert "1/1" in captured.err and "W2 colour, reference" in captured.err
    assert "W2 colour" in captured.out and "roofline reference: n/a" in captured.out
    run_benchmarks(["W2"], ["reference"], repeat=1, warmup=0, quick=True, quiet=True)
    assert capsys.readouterr().err == ""


def test_reference_budget_stops_the_timed_calls() -> None:
    """A budget cuts a measurement short once its timed calls took that long (at least one call)."""
    from softras.bench import _times

    def call() -> None:
        time.sleep(0.02)

    assert 1 <= len(_times(call, 0, 10, torch.device("cpu"), budget=0.1)) <= 5  # each call >= 20 ms
    assert len(_times(call, 0, 10, torch.device("cpu"), budget=0.001)) == 1
    assert len(_times(call, 0, 4, torch.device("cpu"))) == 4


def test_backends_for_device() -> None:
    names = backends_for_device(torch.device("cpu"))
    assert names[-1] == "reference" and "cuda" not in names


def _touched_mapping(mib: int) -> mmap.mmap:
    """``mib`` MiB of fresh anonymous memory with every page written, so resident. Made with mmap,
    not torch or NumPy: malloc may hand back pages that earlier tests left resident."""
    buf = mmap.mmap(-1, mib * 2**20)
    for offset in range(0, len(buf), mmap.PAGESIZE):
        buf[offset] = 1
    return buf


def test_peak_rss_sees_a_brief_allocation() -> None:
    """The kernel's high-water mark sees a peak that is gone before the block ends."""
    with PeakRSS() as sampler:
        _touched_mapping(16).close()  # unmapped again: RSS is back down on exit
    if not sampler.exact:
        pytest.skip("/proc/self/clear_refs is not writable here: PeakRSS samples instead")
    assert sampler.peak_mb is not None and sampler.peak_mb >= 15


def test_peak_rss_sampling_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the resettable high-water mark, the sampling thread sees memory held long enough."""
    import softras.bench as bench

    if bench._rss_bytes() is None:
        pytest.skip("no /proc here")
    monkeypatch.setattr(bench, "_reset_hwm", lambda: False)
    with PeakRSS(interval=0.001) as sampler:
        assert not sampler.exact
        buf = _touched_mapping(16)
        deadline = time.monotonic() + 30  # a generous bound: the thread samples every 1 ms
        while (sampler.peak_mb or 0) < 15 and time.monotonic() < deadline:
            time.sleep(0.001)
        seen_while_held = sampler.peak_mb
        buf.close()
    assert seen_while_held is not None and seen_while_held >= 15


def test_bad_options_raise() -> None:
    from softras.apps import UsageError

    with pytest.raises(UsageError, match="backend"):
        run_benchmarks(["W1"], ["no-such-backend"], quick=True)
    with pytest.raises(UsageError, match="reference-subset"):
        run_benchmarks(["W1"], ["reference"], quick=True, reference_subset=2.0)


def test_cli_bad_device_exits_2(capsys) -> None:
    assert main(["bench", "--quick", "--workload", "W1", "--device", "gpu0"]) == 2
    assert "device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu0'" in capsys.readouterr().err


def test_cli_help(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--workload", "--backend", "--repeat", "--warmup", "--json", "--reference-subset", "--quick"):
        assert option in out


def test_cli_quick_w1_writes_json(tmp_path, capsys) -> None:
    path = tmp_path / "w1.json"
    argv = ["bench", "--quick", "--workload", "W1", "--backend", "reference", "--json", str(path), "--repeat", "1"]
    threads = torch.get_num_threads()
    try:
        assert main([*argv, "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "torch threads" in out and "load average" in out and "reference: 2/8 views, scaled" in out
    data = json.loads(path.read_text())
    (row,) = data["results"]
    assert row["workload"] == "W1" and row["backend"] == "reference"
    assert row["forward_ms"] > 0 and row["pairs"] > 0 and math.isclose(row["speedup_forward"], 1.0)


def test_cli_unknown_backend_is_a_usage_error(capsys) -> None:
    assert main(["bench", "--quick", "--workload", "W1", "--backend", "nope"]) == 2
    assert "backend" in capsys.readouterr().err
