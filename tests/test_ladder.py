"""Precision ladder: planning against the capability matrix, and verdicts from real CPU measurements
(eager fp32 / fp16 and ModelOpt fake-quantized models, timed with the project's own harness)."""

import dataclasses
import importlib.util

import pytest
import torch

from engine import capabilities, runner
from engine.errors import ConfigError
from engine.profiling.accuracy import compare_outputs
from engine.profiling.latency import time_inference
from engine.quantization import fake_quant, schemes
from engine.result import QuantizationReport
from engine.settings.request import MeasureSettings, ModelSpec, RunRequest
from engine.studies import ladder
from tests.test_quantization import gpu_caps, quant_request, tiny_model

HAVE_MODELOPT = importlib.util.find_spec("modelopt") is not None
WARMUP, TIMED = 3, 25


# -- planning ------------------------------------------------------------------------------------
def test_plan_on_rtx_h200_skips_int8_activations_and_fp4(monkeypatch):
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    caps = gpu_caps("tensorrt_rtx", "9.0")
    base = RunRequest(model=ModelSpec(source="resnet50", batch_size=8))
    plan = ladder.plan_ladder(base, caps, ladder_id="r50")
    assert [s.label for s in plan.steps] == ["fp32", "fp16", "int8_weight_only/fp16", "fp8/fp16"]
    skipped = dict(plan.skipped)
    assert set(skipped) == {"int8", "int8_smoothquant", "int4_awq", "nvfp4"}
    assert skipped["int4_awq"] == schemes.TORCH_TRT_INT4
    assert skipped["int8"].startswith("TensorRT-RTX does not support int8 activation quantization")
    assert "compute capability 10.0" in skipped["nvfp4"]
    assert plan.tags == ["ladder:r50"]
    for step in plan.steps:
        assert step.request.backend == "tensorrt" and step.request.model.batch_size == 8
        runner.check_request(step.request, caps)  # every planned step passes validation here
    fp8 = plan.steps[3].request.compile
    assert (fp8.quantization, fp8.quant_base_precision, fp8.precision) == ("fp8", "fp16", "fp16")


def test_plan_over_fp32_activations_and_without_modelopt(monkeypatch):
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    plan = ladder.plan_ladder(
        RunRequest(), gpu_caps("tensorrt", "10.0"), base_precision="fp32", schemes=["int8_weight_only", "nvfp4"]
    )
    assert [s.label for s in plan.steps] == ["fp32", "fp16", "int8_weight_only/fp32", "nvfp4/fp32"]
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: False)
    plan = ladder.plan_ladder(RunRequest(), gpu_caps("tensorrt", "10.0"))
    assert [s.label for s in plan.steps] == ["fp32", "fp16"]
    assert all("pip install nvidia-modelopt" in why for _, why in plan.skipped) and len(plan.skipped) == 6


# -- real CPU measurements -----------------------------------------------------------------------
def _rung(label, scheme, precision, runtime, fn, batch, *, accuracy=None, report=None, calibration_s=None):
    latency, _ = time_inference(fn, device="cpu", warmup_iters=WARMUP, timed_iters=TIMED, batch_size=batch)
    return ladder.Rung(
        label=label,
        scheme=scheme,
        precision=precision,
        runtime=runtime,
        median_ms=latency.median_ms,
        p10_ms=latency.p10_ms,
        p90_ms=latency.p90_ms,
        rel_l2=accuracy.rel_l2 if accuracy else 0.0,
        top1_agreement=accuracy.top1_agreement if accuracy else None,
        calibration_s=calibration_s,
        quantization=report,
    )


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
        q = fake_quant.prepare_quantized(
            quant_request(scheme, quant_base_precision="fp32", calibration_batches=4), model, "cpu", stages=stages
        )
        report = q.report()
        rungs[scheme] = _rung(
            f"{scheme}/fp32",
            scheme,
            "fp32",
            "fake_quant",
            lambda q=q: q.module(*q.inputs),
            batch,
            accuracy=report.fake_quant_vs_eager,
            report=report,
            calibration_s=stages["calibration_s"],
        )
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
    assert (
        f"{reference.median_ms / best.median_ms:.2f}×" in v.headline
        or f"{best.median_ms / reference.median_ms:.2f}× slower" in v.headline
    )
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
        pytest.skip(
            f"measured here, fp16 ({fp16.median_ms:.3f} ms) was not slower than the fastest fake-quantized "
            f"model within tolerance ({best.label + f' {best.median_ms:.3f} ms' if best else 'none'})"
        )
    v = ladder.verdict(rungs, tolerance_rel_l2=0.05)
    speedup = fp16.median_ms / best.median_ms
    assert v.reference is fp16 and v.best is best
    assert v.headline.startswith(f"{best.label} is the fastest within tolerance (rel. L2 ≤ 0.05): ")
    assert f"against fp16 {ladder.format_ms(fp16.median_ms)}, {speedup:.2f}× faster" in v.headline


def test_verdict_when_no_scheme_beats_the_reference_says_why(cpu_rungs):
    fp32 = cpu_rungs["fp32"]
    slower = [
        r
        for r in cpu_rungs.values()
        if r.quantized and r.median_ms >= fp32.median_ms and ladder.within_tolerance(r, 0.05)
    ]
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
    q = fake_quant.prepare_quantized(
        quant_request("int8", quant_base_precision="fp32", calibration_batches=2), model, "cpu"
    )
    with torch.no_grad():
        other_weights = tiny_model(seed=1).module(*model.example_inputs)  # output a broken conversion would give
    report = q.report(engine_output=other_weights)
    fastest = cpu_rungs["fp32"]  # the broken rung is faster than every other one: still never chosen
    broken = ladder.Rung(
        label="int8/fp32",
        scheme="int8",
        precision="fp32",
        runtime="tensorrt",
        median_ms=fastest.median_ms / 100,
        p10_ms=fastest.p10_ms / 100,
        p90_ms=fastest.p90_ms / 100,
        rel_l2=0.0,
        quantization=report,
    )
    v = ladder.verdict([cpu_rungs["fp32"], cpu_rungs["fp16"], broken], tolerance_rel_l2=10.0)
    assert v.best is None
    assert any("Conversion problem, not a quantization one" in line for line in v.lines)
    table = ladder.ladder_table([cpu_rungs["fp32"], broken])
    assert table.loc[0, "label"] == "int8/fp32" and bool(table.loc[0, "conversion_problem"])


def test_ladder_table_and_markdown(cpu_rungs):
    table = ladder.ladder_table(cpu_rungs.values())
    assert list(table["median_ms"]) == sorted(r.median_ms for r in cpu_rungs.values())
    assert {
        "p10_ms",
        "p90_ms",
        "calibration_s",
        "engine_bytes",
        "fake_quant_rel_l2",
        "conversion_rel_l2",
        "top1_agreement",
    } <= set(table.columns)
    assert table.set_index("label").loc["int8/fp32", "fake_quant_rel_l2"] == cpu_rungs["int8"].rel_l2
    md = ladder.verdict(list(cpu_rungs.values())).markdown()
    assert md.startswith("**") and "- Reference: " in md


def test_verdict_needs_an_unquantized_rung(cpu_rungs):
    with pytest.raises(Exception, match="no fp32 or fp16 run"):
        ladder.verdict([cpu_rungs["int8"]])


def test_stored_runs_read_back_as_rungs(store):
    request = RunRequest(
        model=ModelSpec(source="mobilenet_v3_small", batch_size=1),
        device="cpu",
        measure=MeasureSettings(warmup_iters=1, timed_iters=5, layer_profile=False),
    )
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
    assert v.headline == (
        "No scheme beats fp16 on NVIDIA H200, TensorRT-RTX: the fastest within tolerance, "
        "int8_weight_only/fp32, takes 1.460 ms against 0.790 ms (1.85× slower)."
    )
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
    at = AppTest.from_file(str(root / "pages" / "sweep.py"), default_timeout=600)
    at.session_state["sweeps_tab"] = "Precision ladder"  # only the open tab is computed
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    lid = ladder.list_ladders(store)[0]
    rungs = ladder.load_ladder(store, lid)
    assert ladder.verdict(rungs).headline in text
    fig = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Precision ladder" in c.proto.spec)
    assert list(fig["data"][0]["x"]) == list(ladder.ladder_table(rungs)["label"])  # fastest first


# -- launching a ladder: the base request, the machine check, the group on a queue -----------------------
H200_RTX = capabilities.Capabilities(
    torch_version="2.11.0",
    cuda_available=True,
    gpus=(capabilities.Gpu(0, "NVIDIA H200", 140 * 2**30, "9.0"),),
    torch_tensorrt_version="2.11.0",
    flavour="tensorrt_rtx",
    tensorrt_version="1.4.0.76",
)
NO_GPU = capabilities.Capabilities(torch_version="2.11.0", cuda_available=False)
GPU_WITHOUT_TRT = capabilities.Capabilities(
    torch_version="2.11.0",
    cuda_available=True,
    gpus=H200_RTX.gpus,
    tensorrt_unavailable_reason="No module named 'torch_tensorrt'.",
)
SAMPLE_LADDER = "resnet50_b8_h200"  # recorded on the H200 with TensorRT-RTX: fp32, fp16, int8_weight_only, fp8


class FakeQueue:
    """engine.jobs' submit / get / cancel as a test double: a job moves only when the test moves it."""

    def __init__(self):
        self.requests: list[RunRequest] = []
        self.jobs: dict[str, dict] = {}
        self.cancelled: list[str] = []

    def submit(self, request, gpu=None):
        job_id = f"job{len(self.requests)}"
        self.requests.append(request)
        self.jobs[job_id] = {"state": "queued", "run_id": None, "error": None, "hint": "", "detail": ""}
        return job_id

    def get(self, job_id):
        return dict(self.jobs[job_id])

    def cancel(self, job_id):
        self.cancelled.append(job_id)
        if self.jobs[job_id]["state"] in ("queued", "running"):
            self.jobs[job_id]["state"] = "cancelled"

    def job_of(self, label: str) -> str:
        for i, r in enumerate(self.requests):
            c = r.compile
            if (
                ladder.step_label(c.quantization, c.quant_base_precision if c.quantization != "none" else c.precision)
                == label
            ):
                return f"job{i}"
        raise KeyError(label)

    def move(self, label: str, **values) -> None:
        self.jobs[self.job_of(label)].update(values)


def sample_runs(store) -> dict[str, str]:
    """Step label -> run id of the bundled H200 ladder (real recorded runs)."""
    store.import_samples()
    if SAMPLE_LADDER not in ladder.list_ladders(store):
        pytest.skip(f"the bundled samples hold no ladder {SAMPLE_LADDER!r}")
    return {r.label: r.run_id for r in ladder.load_ladder(store, SAMPLE_LADDER)}


def test_plan_with_no_scheme_picked_runs_fp32_and_fp16_only(monkeypatch):
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    assert [s.label for s in ladder.plan_ladder(RunRequest(), H200_RTX, schemes=[]).steps] == ["fp32", "fp16"]
    # None: every scheme the matrix allows
    assert len(ladder.plan_ladder(RunRequest(), H200_RTX, schemes=None).steps) == 4


def test_ladder_base_is_a_tensorrt_request_with_the_ladder_measurement():
    base = ladder.ladder_base(
        {
            "model": {"source": "resnet18", "batch_size": 4},
            "backend": "eager",
            "measure": {"timed_iters": 30, "compare_eager": True, "accuracy": False},
        }
    )
    assert base.backend == "tensorrt" and base.model.batch_size == 4 and base.measure.timed_iters == 30
    assert not base.measure.compare_eager and base.measure.accuracy
    with pytest.raises(ConfigError) as e:
        ladder.ladder_base({"model": {"source": "resnet18", "batch_size": 0}})
    assert e.value.field == "model.batch_size" and "below the minimum 1" in e.value.message
    with pytest.raises(ConfigError) as e:
        ladder.ladder_base({"compile": {"calibration_batches": 0}})
    assert e.value.field == "compile.calibration_batches"


def test_plan_problem_names_what_this_machine_lacks(monkeypatch, store):
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    base = ladder.ladder_base({"model": {"source": "resnet18"}})
    assert ladder.plan_problem(ladder.plan_ladder(base, H200_RTX), H200_RTX) is None
    problem = ladder.plan_problem(ladder.plan_ladder(base, NO_GPU), NO_GPU)
    assert problem.field == "backend" and "needs an NVIDIA GPU with Torch-TensorRT installed" in problem.message
    problem = ladder.plan_problem(ladder.plan_ladder(base, GPU_WITHOUT_TRT), GPU_WITHOUT_TRT)
    assert problem.field == "backend" and "No module named 'torch_tensorrt'" in problem.message
    # never the Profile page's way out (the eager backend): a ladder is TensorRT builds, and no ".;"
    assert "eager backend" not in problem.message and ".;" not in problem.message
    assert problem.message.startswith("a precision ladder builds TensorRT engines")
    # a calibration file that is not there: only the quantized steps read it, and they are refused before running
    missing = base.with_changes(**{"compile.calibration_data": "file:nowhere.pt"})
    problem = ladder.plan_problem(ladder.plan_ladder(missing, H200_RTX, schemes=["fp8"]), H200_RTX)
    assert problem.field == "compile.calibration_data" and "nowhere.pt" in problem.message
    assert ladder.plan_problem(ladder.plan_ladder(missing, H200_RTX, schemes=[]), H200_RTX) is None


def test_execution_submits_the_plan_tags_what_finishes_and_cancels_the_rest(monkeypatch, store):
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    runs = sample_runs(store)
    plan = ladder.plan_ladder(
        ladder.ladder_base({"model": {"source": "resnet50", "batch_size": 8}}),
        H200_RTX,
        schemes=["int8_weight_only", "fp8"],
        ladder_id="launched",
    )
    q = FakeQueue()
    execution = ladder.LadderExecution(plan, store, q.submit, q.get, q.cancel)
    execution.start()
    assert q.requests == [s.request for s in plan.steps]
    assert [p.text for p in execution.progress()] == [f"{s.label}: queued" for s in plan.steps]
    assert execution.status_text() == "Ladder launched: 0/4 finished · 4 queued"

    q.move("fp32", state="done", run_id=runs["fp32"])
    q.move("fp16", state="running", detail="build 40%")
    q.move("fp8/fp16", state="failed", error="export failed", hint="Pick another scheme.")
    progress = {p.step.label: p for p in execution.progress()}
    assert progress["fp16"].text == "fp16: running (build 40%)"
    assert progress["fp8/fp16"].job.error == "export failed" and progress["fp8/fp16"].hint == "Pick another scheme."
    assert execution.fraction_finished == 0.5 and not execution.finished
    assert f"ladder:{plan.ladder_id}" in store.get(runs["fp32"]).tags
    assert SAMPLE_LADDER in ladder.list_ladders(store)  # the run keeps the tags it had

    assert execution.cancel() == 2  # fp16 and int8_weight_only
    assert sorted(q.cancelled) == sorted([q.job_of("fp16"), q.job_of("int8_weight_only/fp16")])
    execution.poll()
    assert execution.finished and execution.counts() == {"done": 1, "cancelled": 2, "failed": 1}
    assert [r.label for r in ladder.load_ladder(store, "launched")] == ["fp32"]


# -- the Precision ladder tab of the Sweeps page ---------------------------------------------------------
@pytest.fixture
def ladder_page(tmp_path, monkeypatch):
    """The Sweeps page on a faked H200 with TensorRT-RTX and ModelOpt, the bundled samples in its store and the
    job system's submit / get / cancel replaced by a FakeQueue (the real queue is tested in test_jobs.py)."""
    from streamlit.testing.v1 import AppTest

    from engine import jobs
    from engine.store import RunStore

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    monkeypatch.setattr(capabilities, "detect", lambda: H200_RTX)
    q = FakeQueue()
    for name in ("submit", "get", "cancel"):
        monkeypatch.setattr(jobs, name, getattr(q, name))
    monkeypatch.setattr(jobs, "ensure_workers", lambda *a, **k: [])
    store = RunStore(tmp_path / "data")
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.session_state["sweeps_tab"] = "Precision ladder"  # only the open tab is computed
    return at, q, store


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
# what the form holds before anyone touches it (the page's defaults), as a ladder_base input
FORM_DEFAULTS = {
    "model": {"source": "resnet50", "batch_size": 8},
    "device": "auto",
    "compile": {"quant_base_precision": "fp16", "calibration_data": "random", "calibration_batches": 8},
    "measure": {"warmup_iters": 20, "timed_iters": 100, "layer_profile": True, "profile_iters": 20},
}


def _texts(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def _run_button(at):
    return next(b for b in at.button if b.label == "Run ladder")


def test_tab_lists_refused_schemes_with_reasons_and_plans_what_plan_ladder_plans(ladder_page):
    at, q, _ = ladder_page
    at.run()
    assert not at.exception, at.exception
    picker = at.multiselect(key="ladder:schemes")
    assert picker.value == ["int8_weight_only", "fp8"]  # only what the matrix allows
    assert not any(o.startswith(("int8 ", "int8_smoothquant", "int4_awq", "nvfp4")) for o in picker.options)
    text = _texts(at)
    assert f"- **int8** (INT8 (W8A8)): {schemes.RTX_INT8_ACTIVATIONS}" in text
    assert f"- **int8_smoothquant** (INT8 SmoothQuant (W8A8)): {schemes.RTX_INT8_ACTIVATIONS}" in text
    assert "- **nvfp4** (NVFP4): NVFP4 needs compute capability 10.0 or newer" in text

    picker.set_value(["fp8", "int8_weight_only"])
    at.number_input(key="ladder:model.batch_size").set_value(4)
    at.selectbox(key="ladder:compile.quant_base_precision").set_value("fp32")
    at.run()
    raw = {
        **FORM_DEFAULTS,
        "model": {"source": "resnet50", "batch_size": 4},
        "compile": {**FORM_DEFAULTS["compile"], "quant_base_precision": "fp32"},
    }
    plan = ladder.plan_ladder(ladder.ladder_base(raw), H200_RTX, schemes=["int8_weight_only", "fp8"])
    assert [s.label for s in plan.steps] == ["fp32", "fp16", "int8_weight_only/fp32", "fp8/fp32"]  # matrix order
    assert f"**4 runs**, one job each: {'; '.join(s.label for s in plan.steps)}" in _texts(at)
    assert not _run_button(at).disabled and not at.warning and q.requests == []


def test_run_submits_the_plan_shows_progress_and_opens_the_finished_ladder(ladder_page):
    at, q, store = ladder_page
    at.run()
    at.multiselect(key="ladder:schemes").set_value(["int8_weight_only", "fp8"])
    at.number_input(key="ladder:compile.calibration_batches").set_value(2)
    at.number_input(key="ladder:measure.timed_iters").set_value(50)
    at.run()
    _run_button(at).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    raw = {
        **FORM_DEFAULTS,
        "compile": {**FORM_DEFAULTS["compile"], "calibration_batches": 2},
        "measure": {**FORM_DEFAULTS["measure"], "timed_iters": 50},
    }
    expected = ladder.plan_ladder(ladder.ladder_base(raw), H200_RTX, schemes=["int8_weight_only", "fp8"])
    assert q.requests == [s.request for s in expected.steps]  # exactly the plan, one job each
    execution = at.session_state["ladder_execution"]
    lid = execution.ladder.ladder_id
    assert _run_button(at).disabled  # one ladder at a time
    (bar,) = at.get("progress")
    assert bar.proto.text == f"Ladder {lid}: 0/4 finished · 4 queued"

    runs = sample_runs(store)
    q.move("fp32", state="done", run_id=runs["fp32"])
    q.move("fp16", state="running", detail="timing")
    at.run()
    (bar,) = at.get("progress")
    assert bar.proto.text == f"Ladder {lid}: 1/4 finished · 1 done, 1 running, 2 queued"
    assert bar.proto.value == 25
    assert any("fp16: running (timing)" in c.value for c in at.caption)

    for label in ("fp16", "int8_weight_only/fp16", "fp8/fp16"):
        q.move(label, state="done", run_id=runs[label])
    at.run()
    assert not at.exception, at.exception
    assert at.query_params["ladder"] in (lid, [lid])
    assert "ladder_execution" not in at.session_state and not at.get("progress")
    assert at.selectbox(key="ladder_id").value == lid
    rungs = ladder.load_ladder(store, lid)
    assert sorted(r.run_id for r in rungs) == sorted(runs.values())
    assert ladder.verdict(rungs).markdown() in _texts(at)
    assert ladder.verdict(rungs).headline.startswith("No scheme beats fp16 on NVIDIA H200, TensorRT-RTX")


def test_a_failed_step_is_explained_and_cancel_stops_the_rest(ladder_page):
    at, q, store = ladder_page
    runs = sample_runs(store)
    at.run()
    at.multiselect(key="ladder:schemes").set_value(["int8_weight_only", "fp8"])
    _run_button(at).click().run()
    q.move("fp32", state="done", run_id=runs["fp32"])
    q.move("fp8/fp16", state="failed", error="the FP8 export failed", hint="Try int8_weight_only.")
    q.move("fp16", state="running", detail="build")
    at.run()
    failure = "**fp8/fp16** failed: the FP8 export failed\n\nTry int8_weight_only."
    assert [e.value for e in at.error] == [failure]
    next(b for b in at.button if b.label == "Cancel ladder").click().run()
    assert sorted(q.cancelled) == sorted([q.job_of("fp16"), q.job_of("int8_weight_only/fp16")])
    at.run()  # the next poll sees every job finished: the ladder opens
    lid = at.query_params["ladder"]
    lid = lid[0] if isinstance(lid, list) else lid
    assert [r.label for r in ladder.load_ladder(store, lid)] == ["fp32"]
    assert at.selectbox(key="ladder_id").value == lid
    assert [e.value for e in at.error] == [failure]  # still said under the ladder
    assert f"Ladder {lid}: 4/4 finished · 1 done, 2 cancelled, 1 failed" in [c.value for c in at.caption]
    assert "No quantization scheme was measured on NVIDIA H200, TensorRT-RTX; fp32 is the fastest build." in _texts(at)


@pytest.mark.parametrize(
    "caps, needed",
    [
        (
            NO_GPU,
            "**backend**: a precision ladder builds TensorRT engines, which this machine cannot do (tensorrt "
            "needs an NVIDIA GPU with Torch-TensorRT installed)",
        ),
        (
            GPU_WITHOUT_TRT,
            "**backend**: a precision ladder builds TensorRT engines, which this machine cannot do "
            "(tensorrt Torch-TensorRT unavailable: No module named 'torch_tensorrt')",
        ),
    ],
)
def test_without_gpu_or_torch_tensorrt_run_is_disabled_with_the_reason(ladder_page, monkeypatch, caps, needed):
    at, q, _ = ladder_page
    monkeypatch.setattr(capabilities, "detect", lambda: caps)
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: False)
    at.run()
    assert not at.exception, at.exception
    (warning,) = [w for w in at.warning if needed in w.value]
    assert caps.banner()[1] in warning.value  # what to install, or where to go
    button = _run_button(at)
    assert button.disabled and needed.split(": ", 1)[1] in button.help
    assert at.multiselect(key="ladder:schemes").options == []
    assert _texts(at).count(f"install it with `{schemes.INSTALL_COMMAND}`") == 6  # every scheme
    assert "**2 runs**, one job each: fp32; fp16" in _texts(at)
    assert q.requests == []


def test_a_shared_link_opens_its_ladder_and_picking_another_updates_the_link(ladder_page):
    at, _, store = ladder_page
    store.import_samples()
    ids = ladder.list_ladders(store)
    if len(ids) < 2:
        pytest.skip("needs two bundled ladders")
    at.query_params["ladder"] = ids[1]
    at.run()
    assert at.selectbox(key="ladder_id").value == ids[1]
    assert ladder.verdict(ladder.load_ladder(store, ids[1])).headline in _texts(at)
    at.selectbox(key="ladder_id").set_value(ids[0]).run()
    assert at.query_params["ladder"] in (ids[0], [ids[0]])
    assert ladder.verdict(ladder.load_ladder(store, ids[0])).headline in _texts(at)
    at.query_params["ladder"] = "no_such_ladder"
    at.run()
    assert any("No stored run belongs to ladder 'no_such_ladder'" in e.value for e in at.error)


def test_a_rung_whose_output_is_not_finite_says_so_and_is_never_within_tolerance(store):
    runs = sample_runs(store)
    fp8 = next(r for r in ladder.load_ladder(store, SAMPLE_LADDER) if r.run_id == runs["fp8/fp16"])
    assert fp8.rel_l2 is None and fp8.quantization.engine_vs_eager is not None  # NaN output, stored as null
    v = ladder.verdict(ladder.load_ladder(store, SAMPLE_LADDER))
    (line,) = [line for line in v.lines if line.startswith("fp8/fp16: ")]
    assert "rel. L2 not finite (the output holds NaN or inf), top-1 0%, outside tolerance" in line
    fresh = dataclasses.replace(fp8, rel_l2=float("nan"), quantization=None)  # as measured, before storing
    assert not ladder.within_tolerance(fresh, 10.0)
    assert "rel. L2 not finite" in ladder.verdict([fresh, *ladder.load_ladder(store, SAMPLE_LADDER)[:1]]).markdown()


def test_a_ladder_whose_reference_output_is_zero_is_judged_by_latency_only(tmp_path):
    """A model whose eager fp32 output is ~0 (torchvision's ViT with random weights starts its head at zero) reads
    rel. L2 0 everywhere: the verdict must not call anything accurate, and never picks a rung whose engine output
    is broken. Built from the bundled resnet50 ladder (its fp8 rung's engine output holds NaN) with every rung
    marked as measured against such a reference, the way ``rungs`` marks it from the run's warning."""
    import dataclasses

    from engine.store import RunStore

    store = RunStore(tmp_path / "data")
    store.import_samples()
    if "resnet50_b8_h200" not in ladder.list_ladders(store):
        pytest.skip("the bundled resnet50 ladder is not there")
    measured = ladder.load_ladder(store, "resnet50_b8_h200")
    assert not any(r.reference_degenerate for r in measured)  # a real reference: judged on accuracy
    assert any(r.conversion_problem for r in measured)  # the fp8 rung: NaN out of the engine
    rungs = [dataclasses.replace(r, reference_degenerate=True) for r in measured]
    v = ladder.verdict(rungs)
    assert v.best is None and v.headline.startswith("Accuracy cannot be judged")
    sound = [r for r in rungs if r.quantized and not r.conversion_problem]
    assert sound and not any(r.label.startswith("fp8") for r in sound)
    fastest = min(sound, key=lambda r: r.gpu_ms)  # every rung has GPU time: judged on it
    assert f"latency alone (schemes with sound output) {fastest.label}" in v.headline
    assert any("reference output is ~0" in line for line in v.lines)


# -- GPU time: precision and quantization change kernels, so a ladder is judged on it ------------------------
def _gpu_rung(label, scheme, precision, e2e_ms, gpu_ms, plan, rel_l2=0.0):
    return ladder.Rung(
        label,
        scheme,
        precision,
        "tensorrt",
        e2e_ms,
        e2e_ms * 0.95,
        e2e_ms * 1.5,
        rel_l2=rel_l2,
        where="NVIDIA H200, TensorRT-RTX",
        gpu_ms=gpu_ms,
        gpu_low_ms=gpu_ms * 0.999,
        gpu_high_ms=gpu_ms * 1.001,
        kernels=73,
        plan=plan,
        gpu_problem="",  # busy time that passed its checks (engine.profiling.invariants)
        replay_problem="not attempted",
    )


def test_a_ladder_is_judged_on_gpu_time_and_names_rungs_of_one_plan_first():
    fp32 = _gpu_rung("fp32", "none", "fp32", 1.20, 1.0000, "p32")
    fp16 = _gpu_rung("fp16", "none", "fp16", 0.60, 0.3900, "p16")
    wo = _gpu_rung("int8_weight_only/fp16", "int8_weight_only", "fp16", 0.90, 0.3901, "p16", rel_l2=0.01)
    v = ladder.verdict([fp32, fp16, wo])
    assert v.lines[0] == (
        "fp16 and int8_weight_only/fp16 built the same engine plan: the same kernels, so any "
        "latency gap between them is noise (the quantization changed nothing TensorRT runs)."
    )
    assert v.lines[1].startswith(
        "Reference: fp16, the fastest unquantized build, GPU time 0.3900 ms (trace windows 0.3896–0.3904 ms; "
        "end-to-end 0.600 ms), 73 kernels (2.56× faster than fp32)"
    )
    assert v.headline == (
        "No scheme beats fp16 on NVIDIA H200, TensorRT-RTX: the fastest within tolerance, "
        "int8_weight_only/fp16, takes 0.3901 ms against 0.3900 ms (1.00× slower on GPU time)."
    )
    assert "Why: int8_weight_only/fp16 built the same engine plan as fp16" in v.markdown()
    assert "the same engine plan: no difference" in v.lines[2]

    # fp8 ran other kernels, 1.3x faster in GPU time though its end-to-end median came out slower than fp16's
    fp8 = _gpu_rung("fp8/fp16", "fp8", "fp16", 0.70, 0.3000, "p8", rel_l2=0.02)
    v = ladder.verdict([fp32, fp16, wo, fp8])
    assert v.best is fp8 and v.speedup == pytest.approx(0.39 / 0.30)
    assert v.headline == (
        "fp8/fp16 is the fastest within tolerance (rel. L2 ≤ 0.05) on NVIDIA H200, TensorRT-RTX: "
        "0.3000 ms against fp16 0.3900 ms, 1.30× faster on GPU time."
    )
    table = ladder.ladder_table([fp32, fp16, wo, fp8])
    assert list(table["label"]) == ["fp8/fp16", "fp16", "int8_weight_only/fp16", "fp32"]  # by GPU time

    # one rung without GPU time: end-to-end judges, and the verdict says why
    old = dataclasses.replace(fp8, gpu_ms=None, gpu_problem="not measured (recorded before GPU time existed)")
    v = ladder.verdict([fp32, fp16, wo, old])
    assert (
        "Judged on end-to-end latency: no CUDA-graph replay (not attempted) for these runs; GPU time not fit to "
        "judge (not measured (recorded before GPU time existed)) for 1 of these runs. End-to-end latency swings "
        "between fresh processes far more than a device figure." in v.lines
    )
    assert "GPU time" not in v.headline
    # a GPU time that failed its checks (a stored kernel sum, windows apart) is no figure to judge either
    summed = dataclasses.replace(fp8, gpu_problem="a kernel-duration sum recorded before busy time")
    assert "GPU time" not in ladder.verdict([fp32, fp16, wo, summed]).headline


def test_a_ladder_is_judged_on_graph_replay_when_every_rung_captured_one():
    def replayed(rung, graph_ms):
        return dataclasses.replace(
            rung, graph_ms=graph_ms, graph_low_ms=graph_ms * 0.99, graph_high_ms=graph_ms * 1.01, replay_problem=""
        )

    # GPU time says int8 weight-only is slower (kernels overlapped), the replay says faster: the replay judges
    fp16 = replayed(_gpu_rung("fp16", "none", "fp16", 1.75, 1.57, "p16"), 1.574)
    wo = replayed(_gpu_rung("int8_weight_only/fp16", "int8_weight_only", "fp16", 1.59, 2.74, "pw", rel_l2=0.01), 1.452)
    v = ladder.verdict([fp16, wo])
    assert v.best is wo and v.speedup == pytest.approx(1.574 / 1.452)
    assert v.headline.endswith("1.08× faster on CUDA-graph replay.")
    table = ladder.ladder_table([fp16, wo])
    assert list(table["label"]) == ["int8_weight_only/fp16", "fp16"]
    assert set(table["judged"]) == {"CUDA-graph replay"} and list(table["judged_ms"]) == [1.452, 1.574]
    # a broken rung without a replay does not take the figure from the others
    broken = dataclasses.replace(_gpu_rung("fp8/fp16", "fp8", "fp16", 1.0, 0.9, "p8"), replay_problem="outputs differ")
    report = QuantizationReport("fp8", "fp16", "random tensors", 1, False, conversion_problem=True)
    broken = dataclasses.replace(broken, quantization=report)
    v = ladder.verdict([fp16, wo, broken])
    assert "on CUDA-graph replay" in v.headline
    assert any(
        line.startswith("fp8/fp16: end-to-end 1.000 ms (no CUDA-graph replay: outputs differ)") for line in v.lines
    )
