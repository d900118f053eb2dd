"""Checks on every GPU run's figures (engine.profiling.invariants), on the bundled H200 recordings and on
constructed figures."""

import gzip
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from engine.profiling import invariants as inv
from engine.result import BUSY, KERNEL_SUM, GpuTime, GraphReplay, RunResult

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str) -> RunResult:
    doc = json.loads(gzip.decompress((SAMPLES / f"{name}.json.gz").read_bytes()))
    return RunResult.from_dict(doc["result"], pd.read_json(io.StringIO(json.dumps(doc["layers"])), orient="split"))


def busy(median, lo=None, hi=None, settled=True, gap=0.2):
    return GpuTime(
        median,
        lo or median,
        hi or median,
        25,
        50,
        5,
        figure=BUSY,
        kernel_sum_ms=median * 1.4,
        settled=settled,
        warmup_calls=40,
        settle_gap_pct=gap,
    )


def checks(findings):
    return {f.check for f in findings}


def test_the_vit_int8_weight_only_ladder_sample_is_flagged():
    run = sample("vit_b_16_b8_ladder_int8_weight_only_fp16")
    assert run.gpu_time.figure == KERNEL_SUM and not run.gpu_time.is_busy  # stored before busy time existed
    found = {f.check: f for f in inv.check(run)}
    # kernel sum 2.744 ms against 1.589 ms end to end and 1.452 ms replayed; windows 29% apart
    assert set(found) == {inv.BUSY_MEASURED, inv.BUSY_WITHIN_E2E, inv.REPLAY_COVERS_BUSY, inv.WINDOWS_AGREE}
    assert found[inv.BUSY_WITHIN_E2E].value == pytest.approx(2.7436 / 1.5885, rel=1e-3)
    assert found[inv.REPLAY_COVERS_BUSY].value == pytest.approx(2.7436 / 1.4524, rel=1e-3)
    assert found[inv.WINDOWS_AGREE].value == pytest.approx(0.294, abs=0.005)
    assert not inv.gpu_time_fit(run)


def test_a_stored_kernel_sum_is_never_fit_even_when_it_looks_steady():
    run = sample("resnet50_fp16")  # 0.382 ms summed, 0.602 e2e, 0.407 replayed, windows within 0.1%
    assert checks(inv.check(run)) == {inv.BUSY_MEASURED}
    assert not inv.gpu_time_fit(run)


def test_the_dynamic_batch_1_sample_exceeds_its_own_end_to_end_latency():
    run = sample("resnet50_fp16_batch1_dynamic")
    assert {inv.BUSY_WITHIN_E2E, inv.WINDOWS_AGREE} <= checks(inv.check(run))


def test_runs_without_gpu_time_have_nothing_to_check():
    assert inv.check(sample("resnet18_fp16")) == []  # recorded before GPU time existed
    assert inv.check_figures(1.0, None, None) == []


def test_busy_time_bounds():
    replay = GraphReplay(True, median_ms=1.0)
    assert inv.check_figures(1.1, busy(1.0), replay) == []
    assert inv.check_figures(1.0, busy(1.019), GraphReplay(True, median_ms=1.0)) == []  # within 2% both ways
    assert checks(inv.check_figures(1.0, busy(1.03), None)) == {inv.BUSY_WITHIN_E2E}
    assert checks(inv.check_figures(2.0, busy(1.03), replay)) == {inv.REPLAY_COVERS_BUSY}
    assert inv.check_figures(None, busy(1.03), GraphReplay(False, reason="dynamic")) == []  # nothing to hold it to


def test_windows_and_settling():
    assert checks(inv.check_figures(2.0, busy(1.0, 0.99, 1.025), None)) == {inv.WINDOWS_AGREE}
    unsettled = inv.check_figures(2.0, busy(1.0, settled=False, gap=12.5), None)
    assert checks(unsettled) == {inv.SETTLED} and unsettled[0].value == pytest.approx(0.125)
    assert "not steady after 40 calls: 12.5% between windows" in unsettled[0].text
    assert inv.check_figures(2.0, busy(1.0, settled=None), None) == []  # not checked is not a failure


def test_a_stored_gpu_time_without_the_new_fields_loads_as_a_kernel_sum():
    run = sample("vit_b_16_b8_ladder_fp16")
    d = run.to_dict()
    assert d["gpu_time"]["figure"] == KERNEL_SUM
    stored = ("median_ms", "min_ms", "max_ms", "kernels_per_inference", "iters", "windows", "source")
    old = {k: v for k, v in d["gpu_time"].items() if k in stored}
    again = RunResult.from_dict({**d, "gpu_time": old}).gpu_time
    assert again.figure == KERNEL_SUM and again.kernel_sum_ms is None and again.settled is None
    fresh = RunResult.from_dict({**d, "gpu_time": {**old, "figure": BUSY, "kernel_sum_ms": 2.0, "settled": True}})
    assert fresh.gpu_time.is_busy and fresh.gpu_time.kernel_sum_ms == 2.0


def test_the_run_page_and_report_say_a_stored_sum_and_its_failed_checks():
    from engine import run_figures

    fig = run_figures.gpu_figure(sample("vit_b_16_b8_ladder_int8_weight_only_fp16"))
    assert "kernel-duration sum recorded before busy time" in fig.detail and "not judged on" in fig.detail
    assert "exceeds the end-to-end latency 1.5885 ms" in fig.detail and "29% apart" in fig.detail
    steady = run_figures.gpu_figure(sample("resnet50_fp16"))
    assert "exceeds" not in steady.detail and "apart" not in steady.detail.split(" · ", 1)[1]
