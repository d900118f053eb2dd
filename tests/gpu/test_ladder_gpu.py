"""A precision ladder on a real GPU, launched as the dashboard's Run ladder does: planned against this
machine's capability matrix, every step a job on the real job system (a fresh process each), read back
with the verdict. Prints the verdict and one line per rung (run with ``-s``).

Marked ``gpu`` (skipped without a GPU and torch_tensorrt); skipped too where ModelOpt is not installed.
"""

from __future__ import annotations

import math
import time

import pytest

from engine import capabilities
from engine.quantization import schemes
from engine.quantization.schemes import RTX_INT8_ACTIVATIONS
from engine.studies import ladder
from engine.studies.ladder.figure import LadderFigure

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not schemes.modelopt_installed(), reason="NVIDIA ModelOpt is not installed"),
]

# 4 job processes of ~20-40 s each, one after another on the GPU worker, plus ModelOpt building its CUDA
# extension (~50 s) in the first quantized job: about 3 minutes; past this the ladder is cancelled and fails
LADDER_S = 330.0
LADDER_ID = "gpu_resnet18_b8"


def test_resnet18_ladder_runs_through_the_queue_and_reads_back_with_its_verdict(system):
    caps = capabilities.detect()
    base = ladder.ladder_base(
        {
            "model": {"source": "resnet18", "batch_size": 8},
            "compile": {"quant_base_precision": "fp16", "calibration_batches": 2},
            "measure": {"warmup_iters": 10, "timed_iters": 30, "layer_profile": False},
        }
    )
    plan = ladder.plan_ladder(base, caps, schemes=["int8", "int8_weight_only", "fp8"], ladder_id=LADDER_ID)
    skipped = dict(plan.skipped)
    print(
        f"\nladder on {caps.gpus[0].name}, {schemes.FLAVOUR_NAMES[caps.flavour]}: "
        f"{[s.label for s in plan.steps]}, refused {skipped}"
    )
    if caps.flavour == "tensorrt_rtx":
        assert skipped == {"int8": RTX_INT8_ACTIVATIONS}  # W8A8 refused before anything runs
    expected = [
        "fp32",
        "fp16",
        *(ladder.step_label(s, "fp16") for s in ("int8", "int8_weight_only", "fp8") if s not in skipped),
    ]
    assert [s.label for s in plan.steps] == expected
    assert "int8_weight_only/fp16" in expected and ladder.plan_problem(plan, caps) is None

    system.ensure_workers()
    execution = ladder.LadderExecution(plan, system.store, system.submit, system.get, system.cancel)
    t0 = time.monotonic()
    execution.start()
    try:
        execution.wait(poll_s=0.5, timeout_s=LADDER_S)
    except TimeoutError:
        execution.cancel()
        pytest.fail(
            f"{execution.status_text()} after {LADDER_S:.0f} s: " + "; ".join(p.text for p in execution.progress())
        )
    failed = [
        f"{p.step.label}: {p.job.state} {p.job.error} {p.hint}" for p in execution.progress() if p.job.state != "done"
    ]
    assert not failed, failed
    print(f"{execution.status_text()} in {time.monotonic() - t0:.0f} s")

    rungs = ladder.load_ladder(system.store, LADDER_ID)
    assert sorted(r.label for r in rungs) == sorted(expected)
    where = f"{caps.gpus[0].name}, {schemes.FLAVOUR_NAMES[caps.flavour]}"
    for r in rungs:
        assert r.runtime == "tensorrt" and r.where == where, (r.label, r.runtime, r.where)
        assert 0 < r.p10_ms <= r.median_ms <= r.p90_ms, r
        assert r.build_s is not None and r.build_s > 0 and (r.engine_bytes or 0) > 0, r
    for r in (r for r in rungs if r.quantized):
        q = r.quantization
        assert q is not None and q.scheme == r.scheme and q.base_precision == "fp16"
        # the three-way accuracy: eager fp32 -> fake-quantized model -> engine, all three measured
        assert q.fake_quant_vs_eager is not None and q.engine_vs_fake_quant is not None
        assert q.engine_vs_eager is not None and math.isfinite(q.fake_quant_vs_eager.rel_l2)
        assert r.calibration_s is not None and q.calibration_batches == 2
    wo = next(r for r in rungs if r.scheme == "int8_weight_only")
    # tests/gpu/test_quant_gpu.py: fake-quant < 0.1 from eager, engine < 0.05 from fake-quant (resnet18, batch 8)
    assert wo.rel_l2 is not None and wo.rel_l2 < 0.15 and not wo.conversion_problem

    v = ladder.verdict(rungs)
    print(v.markdown())
    for row in ladder.ladder_table(rungs).itertuples():
        print(
            f"{row.label:>24}: median {row.median_ms:.3f} ms (p10 {row.p10_ms:.3f}, p90 {row.p90_ms:.3f}) | build "
            f"{row.build_s:.1f} s | calibration {row.calibration_s or 0:.1f} s | engine "
            f"{row.engine_bytes / 2**20:.1f} MiB | rel. L2 {row.rel_l2} | fake-quant {row.fake_quant_rel_l2} | "
            f"conversion {row.conversion_rel_l2} | conversion problem {row.conversion_problem}"
        )
    assert v.reference is not None and v.reference.label in ("fp32", "fp16")
    if v.best is None:
        assert v.headline.startswith("No scheme stays within the accuracy tolerance")
    elif (fig := LadderFigure.of(rungs)).ms(v.best) < fig.ms(v.reference):  # on the figure the verdict judges
        assert v.headline.startswith(f"{v.best.label} is the fastest within tolerance")
    else:
        assert v.headline.startswith(f"No scheme beats {v.reference.label} on {where}")
