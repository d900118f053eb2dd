"""GPU time, CUDA-graph replay and the plan fingerprint on a real GPU, through the runner.

Marked ``gpu``: skipped without an NVIDIA GPU and an importable torch_tensorrt. Figures are printed (``-s``).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from engine import diagnosis, runner
from engine.profiling import fingerprint, invariants
from engine.settings.request import RunRequest

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
FAST = {"warmup_iters": 20, "timed_iters": 100, "profile_iters": 10, "compare_eager": False}
RELU = "torch.ops.aten.relu.default"


def req(model="resnet18", backend="tensorrt", measure=None, **compile_knobs) -> RunRequest:
    return RunRequest.from_dict(
        {
            "model": {"source": model},
            "backend": backend,
            "compile": {"precision": "fp16", **compile_knobs},
            "measure": {**FAST, **(measure or {})},
        }
    )


def show(tag, r):
    g, gr = r.gpu_time, r.graph_replay
    print(
        f"\n[{tag}] {r.label}: e2e {r.latency.median_ms:.4f} ms | gpu {g and round(g.median_ms, 4)} ms "
        f"(windows {g and (round(g.min_ms, 4), round(g.max_ms, 4))}, spread {g and round(g.spread_pct, 2)}%, "
        f"{g and g.kernels_per_inference} kernels/inference) | graph {gr} | host overhead {r.host_overhead_ms} | "
        f"fingerprint {r.plan_fingerprint} | stages { ({k: round(v, 2) for k, v in r.stages_s.items()}) }"
    )


def kernel_counts(store, r) -> dict[str, float]:
    table = pd.read_csv(io.BytesIO(store.artifact_path(r.run_id, "gpu_kernels.csv").read_bytes()))
    return dict(zip(table["name"], table["calls_per_inference"].round(3), strict=True))


def test_single_engine_has_gpu_time_graph_replay_and_both_fingerprint_parts(store):
    r = runner.execute(req(measure={"layer_profile": True}), store).result
    show("resnet18 fp16", r)
    g = r.gpu_time
    assert g is not None and g.source == "cuda_activity" and g.windows == 5 and g.iters >= 25
    assert 0 < g.min_ms <= g.median_ms <= g.max_ms < r.latency.median_ms
    assert g.kernels_per_inference > 0
    assert g.spread_pct < 5.0  # windows of the same engine in one process
    assert r.host_overhead_ms == pytest.approx(r.latency.median_ms - g.median_ms)
    replay = r.graph_replay
    assert replay.captured, replay.reason
    # a replay runs the same kernels without host launches: at least the kernel time, at most end to end
    assert g.median_ms * 0.98 <= replay.median_ms <= r.latency.median_ms * 1.05
    parts = fingerprint.parts_of(r.plan_fingerprint)
    assert set(parts) == {"layers", "kernels"}
    assert "gpu_kernels.csv" in r.artifacts
    assert sum(kernel_counts(store, r).values()) == pytest.approx(g.kernels_per_inference, rel=1e-3)
    d = diagnosis.diagnose_result(r)
    assert d.source == "kernel_trace" and d.layer_ms == g.median_ms
    assert any(f.kind == "graph_replay" for f in d.findings)


@pytest.mark.parametrize("model", ["resnet18", "googlenet"])  # googlenet: parallel branches, several streams
def test_busy_time_is_within_end_to_end_and_graph_replay(store, model):
    r = runner.execute(req(model=model, measure={"layer_profile": False, "accuracy": False}), store).result
    show(model, r)
    g, replay = r.gpu_time, r.graph_replay
    print(
        f"[{model}] busy {g.median_ms:.4f} ms, kernel work {g.kernel_sum_ms:.4f} ms, settled {g.settled} after "
        f"{g.warmup_calls} calls (gap {g.settle_gap_pct}%), checks {[f.check for f in invariants.check(r)]}"
    )
    assert g.is_busy and g.kernel_sum_ms >= 0.999 * g.median_ms  # overlap only ever shrinks the busy time
    assert g.settled, f"not steady after {g.warmup_calls} calls: {g.settle_gap_pct}% between windows"
    assert g.median_ms <= 1.02 * r.latency.median_ms
    assert replay.captured, replay.reason
    assert replay.median_ms >= 0.98 * g.median_ms
    assert invariants.check(r) == []
    assert not any("not steady" in w or "exceeds" in w for w in r.warnings)


def test_dynamic_engine_busy_time_is_within_end_to_end_or_the_run_says_it_never_settled(store):
    image = [3, 224, 224]
    inputs = [
        {"name": "x", "dtype": "float32", "shape": [8, *image], "min_shape": [1, *image], "max_shape": [32, *image]}
    ]
    request = RunRequest.from_dict(
        {
            "model": {"source": "resnet50", "batch_size": 8, "inputs": inputs},
            "backend": "tensorrt",
            "compile": {"precision": "fp16"},
            "measure": {**FAST, "layer_profile": False, "accuracy": False},
        }
    )
    r = runner.execute(request, store).result
    show("resnet50 dynamic 1..32 at 8", r)
    g = r.gpu_time
    found = {f.check for f in invariants.check(r)}
    print(f"[dynamic] settled {g.settled} after {g.warmup_calls} calls (gap {g.settle_gap_pct}%), checks {found}")
    assert g.is_busy and g.settled is not None
    if g.settled:
        assert g.median_ms <= 1.02 * r.latency.median_ms and invariants.BUSY_WITHIN_E2E not in found
    else:  # a run that never settles says so in its warnings, with how far apart its windows were
        assert invariants.SETTLED in found and any("not steady after" in w for w in r.warnings)


def test_fragmented_module_graph_replay_is_refused_with_a_reason_or_replays_the_same_outputs(store):
    r = runner.execute(req(min_block_size=1, torch_executed_ops=[RELU], measure={"layer_profile": False}), store).result
    show("relu forced, mbs=1", r)
    assert r.engine_count == 18 and r.gpu_time is not None and r.gpu_time.kernels_per_inference > 0
    replay = r.graph_replay
    assert replay is not None
    print(f"[relu forced] graph replay captured={replay.captured} reason={replay.reason!r}")
    # the replay check compared outputs with a normal call before any figure was accepted
    assert (replay.captured and replay.median_ms > 0) or (not replay.captured and replay.reason)


def test_cudagraphs_run_is_not_recaptured_and_eager_cuda_has_gpu_time(store):
    r = runner.execute(req(enable_cudagraphs=True, measure={"layer_profile": False, "accuracy": False}), store).result
    show("cudagraphs on", r)
    assert not r.graph_replay.captured and "enable_cudagraphs" in r.graph_replay.reason
    assert r.gpu_time is not None and r.gpu_time.kernels_per_inference > 0  # graph kernels are traced too
    eager = runner.execute(req(backend="eager", measure={"layer_profile": False}), store).result
    show("eager fp16", eager)
    assert eager.gpu_time is not None and eager.gpu_time.median_ms > 0 and eager.graph_replay is None


FRESH = textwrap.dedent("""
    import json, sys, tempfile
    from pathlib import Path
    from engine import runner
    from engine.settings.request import RunRequest
    from engine.store import RunStore
    req = RunRequest.from_dict(json.loads(sys.argv[1]))
    with tempfile.TemporaryDirectory() as tmp:
        r = runner.execute(req, RunStore(Path(tmp)), use_cache=False).result
    print("RESULT_JSON " + json.dumps({"fp": r.plan_fingerprint, "gpu_ms": r.gpu_time.median_ms,
                                      "kernels": r.gpu_time.kernels_per_inference, "e2e_ms": r.latency.median_ms,
                                      "graph_ms": r.graph_replay.median_ms}))
""")


def fresh_process(request: RunRequest, tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "TRTDASH_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-c", FRESH, json.dumps(request.to_dict())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT_JSON ")), None)
    assert line, f"no result from the fresh process:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(line.removeprefix("RESULT_JSON "))


def test_same_build_in_fresh_processes_same_fingerprint_and_gpu_time_within_2pct(tmp_path):
    request = req(measure={"layer_profile": True, "accuracy": False})
    a, b = fresh_process(request, tmp_path), fresh_process(request, tmp_path)
    print(f"\n[fresh processes] {a}\n[fresh processes] {b}")
    assert a["fp"] == b["fp"] and fingerprint.same_plan(a["fp"], b["fp"]) is True
    assert a["kernels"] == b["kernels"]
    assert abs(a["gpu_ms"] - b["gpu_ms"]) / min(a["gpu_ms"], b["gpu_ms"]) < 0.02


def test_optimization_levels_same_plan_statement_matches_kernel_equality(store):
    runs = {
        level: runner.execute(
            req(optimization_level=level, measure={"layer_profile": True, "accuracy": False}), store
        ).result
        for level in (0, 5)
    }
    for level, r in runs.items():
        show(f"optimization_level {level}", r)
    a, b = runs[0], runs[5]
    same_kernels = kernel_counts(store, a) == kernel_counts(store, b)
    verdict = fingerprint.same_plan(a.plan_fingerprint, b.plan_fingerprint)
    pa, pb = fingerprint.parts_of(a.plan_fingerprint), fingerprint.parts_of(b.plan_fingerprint)
    print(
        f"[optimization_level 0 vs 5] same kernels {same_kernels}, product says same plan {verdict}, "
        f"layers part equal {pa.get('layers') == pb.get('layers')}, kernels part equal "
        f"{pa.get('kernels') == pb.get('kernels')}"
    )
    assert verdict is not None
    assert verdict == same_kernels
