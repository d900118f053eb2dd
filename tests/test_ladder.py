"""Precision ladder: planning against the capability matrix, and verdicts from real CPU measurements
(eager fp32 / fp16 and ModelOpt fake-quantized models, timed with the project's own harness)."""

import importlib.util

import pytest
import torch

from engine import capabilities, ladder, quantization, runner
from engine.config import MeasureSettings, ModelSpec, RunRequest
from engine.profiling.accuracy import compare_outputs
from engine.profiling.latency import time_inference
from tests.test_quantization import gpu_caps, quant_request, tiny_model

HAVE_MODELOPT = importlib.util.find_spec("modelopt") is not None
WARMUP, TIMED = 3, 25


# -- planning ------------------------------------------------------------------------------------
def test_plan_on_rtx_h200_skips_int8_activations_and_fp4(monkeypatch):
    monkeypatch.setattr(quantization, "modelopt_installed", lambda: True)
    caps = gpu_caps("tensorrt_rtx", "9.0")
    base = RunRequest(model=ModelSpec(source="resnet50", batch_size=8))
    plan = ladder.plan_ladder(base, caps, ladder_id="r50")
    assert [s.label for s in plan.steps] == ["fp32", "fp16", "int8_weight_only/fp16", "fp8/fp16", "int4_awq/fp16"]
    skipped = dict(plan.skipped)
    assert set(skipped) == {"int8", "int8_smoothquant", "nvfp4"}
    assert skipped["int8"].startswith("TensorRT-RTX does not support int8 activation quantization")
    assert "compute capability 10.0" in skipped["nvfp4"]
    assert plan.tags == ["ladder:r50"]
    for step in plan.steps:
        assert step.request.backend == "tensorrt" and step.request.model.batch_size == 8
        capabilities.check_request(step.request, caps)   # every planned step passes validation here
    fp8 = plan.steps[3].request.compile
    assert (fp8.quantization, fp8.quant_base_precision, fp8.precision) == ("fp8", "fp16", "fp16")


def test_plan_over_fp32_activations_and_without_modelopt(monkeypatch):
    monkeypatch.setattr(quantization, "modelopt_installed", lambda: True)
    plan = ladder.plan_ladder(RunRequest(), gpu_caps("tensorrt", "10.0"), base_precision="fp32",
                              schemes=["int8_weight_only", "nvfp4"])
    assert [s.label for s in plan.steps] == ["fp32", "fp16", "int8_weight_only/fp32", "nvfp4/fp32"]
    monkeypatch.setattr(quantization, "modelopt_installed", lambda: False)
    plan = ladder.plan_ladder(RunRequest(), gpu_caps("tensorrt", "10.0"))
    assert [s.label for s in plan.steps] == ["fp32", "fp16"]
    assert all("pip install nvidia-modelopt" in why for _, why in plan.skipped) and len(plan.skipped) == 6


# -- real CPU measurements -----------------------------------------------------------------------
def _rung(label, scheme, precision, runtime, fn, batch, *, accuracy=None, report=None, calibration_s=None):
    latency, _ = time_inference(fn, device="cpu", warmup_iters=WARMUP, timed_iters=TIMED, batch_size=batch)
    return ladder.Rung(label=label, scheme=scheme, precision=precision, runtime=runtime,
                       median_ms=latency.median_ms, p10_ms=latency.p10_ms, p90_ms=latency.p90_ms,
                       rel_l2=accuracy.rel_l2 if accuracy else 0.0,
                       top1_agreement=accuracy.top1_agreement if accuracy else None,
                       calibration_s=calibration_s, quantization=report)


@pytest.fixture(scope="module")
def cpu_rungs():
    """fp32 and fp16 eager, and INT8 / INT8 weight-only / FP8 fake-quantized over fp32, measured here."""
    if not HAVE_MODELOPT:
        pytest.skip("nvidia-modelopt not installed: the quantized rungs need ModelOpt's fake quantization")
    model = tiny_model()
    x = model.example_inputs[0]
    batch = x.shape[0]
    with torch.no_grad():
        ref = model.module(x)
    rungs = {"fp32": _rung("fp32", "none", "fp32", "eager", lambda: model.module(x), batch)}
    half = tiny_model().module.half()
    xh = x.half()
    with torch.no_grad():
        acc16 = compare_outputs(half(xh), ref, "eager fp32")
    rungs["fp16"] = _rung("fp16", "none", "fp16", "eager", lambda: half(xh), batch, accuracy=acc16)
    for scheme in ("int8", "int8_weight_only", "fp8"):
        stages = {}
        q = quantization.prepare_quantized(quant_request(scheme, quant_base_precision="fp32", calibration_batches=4),
                                           model, "cpu", stages=stages)
        report = q.report()
        rungs[scheme] = _rung(f"{scheme}/fp32", scheme, "fp32", "fake_quant", lambda q=q: q.module(*q.inputs), batch,
                              accuracy=report.fake_quant_vs_eager, report=report,
                              calibration_s=stages["calibration_s"])
    return rungs


def _expected_best(rungs, tolerance):
    ok = [r for r in rungs if r.quantized and ladder.within_tolerance(r, tolerance)]
    return min(ok, key=lambda r: r.median_ms) if ok else None


def test_verdict_on_the_full_cpu_ladder(cpu_rungs):
    rungs = list(cpu_rungs.values())
    tolerance = 0.05
    v = ladder.verdict(rungs, tolerance_rel_l2=tolerance, where="CPU (eager)")
    reference = min((cpu_rungs["fp32"], cpu_rungs["fp16"]), key=lambda r: r.median_ms)
    assert v.reference is reference
    best = _expected_best(rungs, tolerance)
    assert v.best is best and best is not None
    assert v.speedup == pytest.approx(reference.median_ms / best.median_ms)
    if best.median_ms < reference.median_ms:
        assert v.headline.startswith(f"{best.label} is the fastest within tolerance (rel. L2 ≤ 0.05) on CPU (eager)")
    else:
        assert v.headline.startswith(f"No scheme beats {reference.label} on CPU (eager)")
        assert any(line.startswith("Why: the quantized model ran in PyTorch") for line in v.lines)
    assert f"{reference.median_ms / best.median_ms:.2f}×" in v.headline or \
        f"{best.median_ms / reference.median_ms:.2f}× slower" in v.headline
    assert any("Calibrated on random tensors" in line for line in v.lines)
    for scheme in ("int8", "int8_weight_only", "fp8"):
        r = cpu_rungs[scheme]
        status = "within tolerance" if r.rel_l2 <= tolerance else "outside tolerance"
        assert any(line.startswith(f"{r.label}: ") and status in line for line in v.lines), scheme


def test_verdict_when_fp16_is_the_reference_and_a_scheme_beats_it(cpu_rungs):
    fp16 = cpu_rungs["fp16"]
    rungs = [r for name, r in cpu_rungs.items() if name != "fp32"]
    best = _expected_best(rungs, 0.05)
    if best is None or best.median_ms >= fp16.median_ms:
        pytest.skip(f"measured here, fp16 ({fp16.median_ms:.3f} ms) was not slower than the fastest fake-quantized "
                    f"model within tolerance ({best.label + f' {best.median_ms:.3f} ms' if best else 'none'})")
    v = ladder.verdict(rungs, tolerance_rel_l2=0.05)
    speedup = fp16.median_ms / best.median_ms
    assert v.reference is fp16 and v.best is best
    assert v.headline.startswith(f"{best.label} is the fastest within tolerance (rel. L2 ≤ 0.05): ")
    assert f"against fp16 {ladder.fmt_ms(fp16.median_ms)}, {speedup:.2f}× faster" in v.headline


def test_verdict_when_no_scheme_beats_the_reference_says_why(cpu_rungs):
    fp32 = cpu_rungs["fp32"]
    slower = [r for r in cpu_rungs.values() if r.quantized and r.median_ms >= fp32.median_ms
              and ladder.within_tolerance(r, 0.05)]
    if not slower:
        pytest.skip("every fake-quantized model ran faster than fp32 on this CPU")
    v = ladder.verdict([fp32, *slower], tolerance_rel_l2=0.05)
    assert v.headline.startswith("No scheme beats fp32: the fastest within tolerance")
    assert "Why: the quantized model ran in PyTorch: ModelOpt's fake quantization simulates" in v.markdown()


def test_verdict_when_nothing_is_within_tolerance(cpu_rungs):
    errors = [r.rel_l2 for r in cpu_rungs.values() if r.quantized]
    assert min(errors) > 0
    v = ladder.verdict(list(cpu_rungs.values()), tolerance_rel_l2=min(errors) / 2, min_top1=0.9)
    assert v.best is None and v.headline.startswith("No scheme stays within the accuracy tolerance (rel. L2 ≤")
    assert "top-1 agreement ≥ 90%" in v.headline
    assert sum("outside tolerance" in line for line in v.lines) == 3


def test_conversion_problem_rung_is_flagged_and_never_chosen(cpu_rungs):
    model = tiny_model()
    q = quantization.prepare_quantized(quant_request("int8", quant_base_precision="fp32", calibration_batches=2),
                                       model, "cpu")
    with torch.no_grad():
        other_weights = tiny_model(seed=1).module(*model.example_inputs)   # output a broken conversion would give
    report = q.report(engine_output=other_weights)
    base = cpu_rungs["int8"]
    broken = ladder.Rung(label="int8/fp32", scheme="int8", precision="fp32", runtime="tensorrt",
                         median_ms=base.median_ms / 100, p10_ms=base.p10_ms / 100, p90_ms=base.p90_ms / 100,
                         rel_l2=0.0, quantization=report)
    v = ladder.verdict([cpu_rungs["fp32"], cpu_rungs["fp16"], broken], tolerance_rel_l2=10.0)
    assert v.best is None
    assert any("Conversion problem, not a quantization one" in line for line in v.lines)
    table = ladder.ladder_table([cpu_rungs["fp32"], broken])
    assert table.loc[0, "label"] == "int8/fp32" and bool(table.loc[0, "conversion_problem"])


def test_ladder_table_and_markdown(cpu_rungs):
    table = ladder.ladder_table(cpu_rungs.values())
    assert list(table["median_ms"]) == sorted(r.median_ms for r in cpu_rungs.values())
    assert {"p10_ms", "p90_ms", "calibration_s", "engine_bytes", "fake_quant_rel_l2", "conversion_rel_l2",
            "top1_agreement"} <= set(table.columns)
    assert table.set_index("label").loc["int8/fp32", "fake_quant_rel_l2"] == cpu_rungs["int8"].rel_l2
    md = ladder.verdict(list(cpu_rungs.values())).markdown()
    assert md.startswith("**") and "- Reference: " in md


def test_verdict_needs_an_unquantized_rung(cpu_rungs):
    with pytest.raises(Exception, match="no fp32 or fp16 run"):
        ladder.verdict([cpu_rungs["int8"]])


def test_stored_runs_read_back_as_rungs(store):
    request = RunRequest(model=ModelSpec(source="mobilenet_v3_small", batch_size=1), device="cpu",
                         measure=MeasureSettings(warmup_iters=1, timed_iters=5, layer_profile=False))
    fp32 = runner.execute(request, store).result
    fp16 = runner.execute(request.with_changes(**{"compile.precision": "fp16"}), store).result
    for r in (fp32, fp16):
        store.set_tags(r.run_id, ["ladder:cpu-check"])
    rungs = {r.label: r for r in ladder.load_ladder(store, "cpu-check")}
    assert set(rungs) == {"fp32", "fp16"}
    assert rungs["fp32"].rel_l2 == 0.0 and rungs["fp32"].median_ms == fp32.latency.median_ms
    assert rungs["fp16"].rel_l2 == fp16.accuracy.rel_l2 and rungs["fp16"].runtime == "eager"
    v = ladder.verdict(list(rungs.values()))
    assert rungs["fp32"].where == fp32.env["device_name"] and rungs["fp32"].where.startswith("CPU: ")
    assert v.headline.startswith(f"No quantization scheme was measured on {fp32.env['device_name']}")
    with pytest.raises(Exception, match="no runs are tagged with ladder 'missing'"):
        ladder.load_ladder(store, "missing")


def test_verdict_on_the_h200_weight_only_figures():
    # medians recorded on the H200 with TensorRT-RTX 1.4, resnet50 batch 8 (../shared/gpu-kit/README.md):
    # fp16 0.79 ms; INT8 weight-only over fp32 activations 1.46 ms, rel. error 0.017. No spread was recorded.
    fp16 = ladder.Rung("fp16", "none", "fp16", "tensorrt", 0.79, 0.79, 0.79)
    wo = ladder.Rung("int8_weight_only/fp32", "int8_weight_only", "fp32", "tensorrt", 1.46, 1.46, 1.46, rel_l2=0.017)
    v = ladder.verdict([fp16, wo], where="NVIDIA H200, TensorRT-RTX")
    assert v.headline == ("No scheme beats fp16 on NVIDIA H200, TensorRT-RTX: the fastest within tolerance, "
                          "int8_weight_only/fp32, takes 1.460 ms against 0.790 ms (1.85× slower).")
    assert "Why: INT8 weight-only over fp32 activations: the arithmetic still runs in fp32" in v.markdown()


def test_sweep_page_shows_the_bundled_h200_ladders(tmp_path, monkeypatch):
    """The recorded resnet50 / vit_b_16 batch-8 ladders open on a machine without a GPU, with their verdict."""
    import json
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from engine.store import RunStore

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    root = Path(__file__).resolve().parent.parent
    store = RunStore(tmp_path / "data")
    store.import_samples()
    if not ladder.list_ladders(store):
        pytest.skip("no ladder among the bundled samples")
    at = AppTest.from_file(str(root / "pages" / "sweep.py"), default_timeout=60).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    lid = ladder.list_ladders(store)[0]
    rungs = ladder.load_ladder(store, lid)
    assert ladder.verdict(rungs).headline in text
    fig = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Precision ladder" in c.proto.spec)
    assert list(fig["data"][0]["x"]) == list(ladder.ladder_table(rungs)["label"])   # fastest first
