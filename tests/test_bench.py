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

from softras.bench import (
    PeakRSS,
    backends_for_device,
    build_cases,
    count_pairs,
    format_report,
    run_benchmarks,
    write_json,
)
from softras.cli import main


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
    assert "reference: 2/8 views, scaled" in format_report(quick_report)


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
