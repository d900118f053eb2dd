"""Sweep planning, grouping, cancellation and the verdict, on real CPU eager runs."""

from __future__ import annotations

import dataclasses
import queue
import re
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from engine.backends.base import Cancelled
from engine.charts import sweeps as sweep_charts
from engine.errors import ConfigError
from engine.latency_stats import LatencyStats
from engine.result import Recommendation, RunResult, Segmentation
from engine.runner import execute
from engine.settings.defaults import MIN_BLOCK_SIZE
from engine.settings.request import RunRequest
from engine.studies import statistics, sweeps

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "model": {"source": "resnet18", "input_shape": [3, 32, 32]},
    "device": "cpu",
    "measure": {"warmup_iters": 2, "timed_iters": 15, "layer_profile": False, "accuracy": True},
}


def tiny(**changes) -> RunRequest:
    return RunRequest.from_dict(TINY).with_changes(**changes)


class ThreadQueue:
    """A one-worker in-process queue over ``runner.execute``: the protocol the sweep runs on."""

    def __init__(self, store, use_cache: bool = True):
        self.store, self.use_cache = store, use_cache
        self.jobs: dict[str, dict] = {}
        self.todo: queue.Queue = queue.Queue()
        self.gate = threading.Event()
        self.gate.set()
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()

    def submit(self, request: RunRequest) -> str:
        job_id = uuid.uuid4().hex[:8]
        self.jobs[job_id] = {"state": "queued", "run_id": None, "error": None, "cancel": False}
        self.todo.put((job_id, request))
        return job_id

    def status(self, job_id: str) -> dict:
        return dict(self.jobs[job_id])

    def cancel(self, job_id: str) -> None:
        self.jobs[job_id]["cancel"] = True
        if self.jobs[job_id]["state"] == "queued":
            self.jobs[job_id]["state"] = "cancelled"

    def _work(self) -> None:
        while True:
            job_id, request = self.todo.get()
            job = self.jobs[job_id]
            if job["state"] == "cancelled":
                continue
            self.gate.wait()
            job["state"] = "running"

            def progress(stage, fraction=None, detail="", job=job):
                if job["cancel"]:
                    raise Cancelled()

            try:
                job["run_id"] = execute(request, self.store, progress, use_cache=self.use_cache).result.run_id
                job["state"] = "done"
            except Cancelled:
                job["state"] = "cancelled"
            except Exception as e:  # noqa: BLE001 - the job records what went wrong
                job["state"], job["error"] = "failed", str(e)


# -- planning ---------------------------------------------------------------------------------------
def test_min_block_size_values_join_default_recommendation_and_user_list():
    seg = Segmentation(
        total_ops=89,
        supported_ops=72,
        recommendations=[
            Recommendation("minimal", 30, 2),
            Recommendation("moderate", 12, 4),
            Recommendation("current", 1, 18),
        ],
    )
    assert sweeps.min_block_size_values(seg, [1, 5, 100]) == [1, 5, 12, 30, 100]
    assert sweeps.min_block_size_values(None) == [5]
    with pytest.raises(ConfigError, match="compile.min_block_size"):
        sweeps.min_block_size_values(None, [0])


def test_plan_covers_every_combination_and_validates():
    base = tiny()
    plan = sweeps.plan_sweep(
        base,
        {sweeps.OPTIMIZATION_LEVEL_KNOB: [5, None, 0, 3], sweeps.PRECISION_KNOB: ["fp16", "fp32"]},
        sweep_id="s1",
        repeats=0,
    )
    assert len(plan.points) == 8
    levels = [p.request.compile.optimization_level for p in plan.points[::2]]
    assert levels == [0, None, 3, 5]  # unset sorts beside level 3, the level it means
    assert {p.request.compile.precision for p in plan.points} == {"fp16", "fp32"}
    assert plan.tags == ["sweep:s1", "knob:compile.optimization_level", "knob:compile.precision"]
    assert any("level 3" in n for n in plan.notes)
    assert all(p.request.model == base.model for p in plan.points)

    relu = "torch.ops.aten.relu.default"
    ops = sweeps.plan_sweep(
        base,
        {sweeps.EXECUTED_OPS_KNOB: sweeps.default_values(sweeps.EXECUTED_OPS_KNOB, user_values=[[relu]])},
        repeats=0,
    )
    assert [p.request.compile.torch_executed_ops for p in ops.points] == [(), (relu,)]
    assert [p.label for p in ops.points] == ["torch_executed_ops=none (default)", "torch_executed_ops=relu"]

    with pytest.raises(ConfigError, match="compile.optimization_level"):
        sweeps.plan_sweep(base, {sweeps.OPTIMIZATION_LEVEL_KNOB: [6]})
    with pytest.raises(ConfigError, match="torch_executed_ops"):
        sweeps.plan_sweep(base, {sweeps.EXECUTED_OPS_KNOB: [("relu",)]})
    with pytest.raises(ConfigError, match="one or two knobs"):
        sweeps.plan_sweep(
            base,
            {
                k: [v]
                for k, v in [
                    (sweeps.PRECISION_KNOB, "fp32"),
                    (sweeps.RUNTIME_KNOB, True),
                    (sweeps.FRONTEND_KNOB, "dynamo"),
                ]
            },
        )
    with pytest.raises(ConfigError, match="cannot be swept"):
        sweeps.plan_sweep(base, {"measure.timed_iters": [5, 10]})


def test_the_default_point_is_repeated_between_the_others_under_its_own_identity():
    from engine import capabilities
    from engine.runner import request_key

    base = trt()
    plan = sweeps.plan_sweep(
        base, {sweeps.OPTIMIZATION_LEVEL_KNOB: sweeps.default_values(sweeps.OPTIMIZATION_LEVEL_KNOB)}, sweep_id="levels"
    )
    assert [p.label for p in plan.points] == [
        "optimization_level=default (3)",
        "optimization_level=0",
        "optimization_level=1",
        "optimization_level=2",
        "optimization_level=default (3) (repeat 1)",
        "optimization_level=3",
        "optimization_level=4",
        "optimization_level=5",
        "optimization_level=default (3) (repeat 2)",
    ]
    repeats = [p for p in plan.points if p.repeat]
    assert [p.request.measure.repeat for p in repeats] == [1, 2]
    # the same build (nothing measured changes) ...
    original = plan.points[0].request
    for p in repeats:
        assert p.request.compile == original.compile and p.request.model == original.model
        assert p.request.with_changes(**{"measure.repeat": 0}) == original
    # ... under keys of their own, so neither the store nor the queue answers a repeat with the first run
    caps = capabilities.detect()
    keys = {request_key(p.request, caps)[0] for p in plan.points}
    assert len(keys) == len(plan.points)
    # a request that never set a repeat keeps the key it had before repeats existed
    assert request_key(original, caps)[0] == request_key(original.with_changes(**{"measure.repeat": 0}), caps)[0]
    assert any("runs 3 times" in n for n in plan.notes)

    # min_block_size: the default (5) is not the first value; it goes first and its repeats spread out
    mbs = sweeps.plan_sweep(base, {sweeps.MIN_BLOCK_SIZE_KNOB: [1, 5, 12, 30]})
    assert [(dict(p.values)[sweeps.MIN_BLOCK_SIZE_KNOB], p.repeat) for p in mbs.points] == [
        (5, 0),
        (1, 0),
        (12, 0),
        (5, 1),
        (30, 0),
        (5, 2),
    ]
    # two knobs: the point with both at their default is the one repeated
    two = sweeps.plan_sweep(base, {sweeps.PRECISION_KNOB: ["fp16", "fp32"], sweeps.CUDAGRAPHS_KNOB: [True, False]})
    assert {p.values for p in two.points if p.repeat} == {
        ((sweeps.PRECISION_KNOB, "fp32"), (sweeps.CUDAGRAPHS_KNOB, False))
    }
    assert len(two.points) == 6
    with pytest.raises(ConfigError, match="more than the 64"):
        sweeps.plan_sweep(base, {sweeps.MIN_BLOCK_SIZE_KNOB: list(range(1, 64))})


def test_default_values_per_knob():
    assert sweeps.default_values(sweeps.OPTIMIZATION_LEVEL_KNOB) == [None, 0, 1, 2, 3, 4, 5]
    assert sweeps.default_values(sweeps.RUNTIME_KNOB) == [False, True]
    ops = sweeps.default_values(
        sweeps.EXECUTED_OPS_KNOB, user_values=[["torch.ops.aten.relu.default"], ("torch.ops.aten.relu.default",)]
    )
    assert ops == [(), ("torch.ops.aten.relu.default",)]
    assert sweeps.value_label(sweeps.EXECUTED_OPS_KNOB, ops[1]) == "relu"
    assert sweeps.value_label(sweeps.EXECUTED_OPS_KNOB, ()) == "none (default)"
    assert sweeps.value_label(sweeps.OPTIMIZATION_LEVEL_KNOB, None) == "default (3)"
    assert sweeps.value_label(sweeps.MIN_BLOCK_SIZE_KNOB, 30, [30]) == "30 (recommended)"


def test_median_ci_brackets_the_median_and_narrows_with_more_samples():
    few = [1.0, 1.2, 0.9, 1.1, 1.5, 1.0, 0.95]
    lo, hi = sweeps.median_ci_ms(few)
    assert lo <= 1.0 <= hi
    many = few * 40
    lo2, hi2 = sweeps.median_ci_ms(many)
    assert hi2 - lo2 < hi - lo


# -- running, grouping, verdict on real CPU runs -----------------------------------------------------
def test_sweep_runs_on_queue_is_tagged_and_judged_from_its_numbers(store):
    q = ThreadQueue(store)
    plan = sweeps.plan_sweep(tiny(), {sweeps.PRECISION_KNOB: ["bf16", "fp32"]}, sweep_id="cpu_precision")
    run = sweeps.SweepExecution(plan, store, q.submit, q.status, q.cancel)
    run.start()
    run.wait(timeout_s=600)
    assert run.counts() == {"done": 4}  # fp32 (the default) three times: two repeats, bf16 once

    listed = sweeps.list_sweeps(store)
    assert listed.loc[0, "sweep_id"] == "cpu_precision" and listed.loc[0, "runs"] == 4
    assert listed.loc[0, "knobs"] == "compile.precision"

    sweep = sweeps.load_sweep(store, "cpu_precision")
    assert sweep.knobs == (sweeps.PRECISION_KNOB,)
    t = sweep.table
    assert list(t[sweeps.PRECISION_KNOB]) == ["fp32", "fp32", "fp32", "bf16"]
    assert list(t["x_label"]) == ["fp32 (default)"] * 3 + ["bf16"]
    assert list(t["repeat"]) == [0, 1, 2, 0]
    by_run = {r.run_id: r for r in sweep.results}
    for row in t.itertuples():
        result = by_run[row.run_id]
        assert row.median_ms == result.latency.median_ms
        assert row.ci_low_ms <= row.median_ms <= row.ci_high_ms
        assert row.gpu_ms is None or pd.isna(row.gpu_ms)  # a CPU run has no GPU time
    assert t.loc[3, "rel_l2"] > 0  # bf16 against eager fp32
    # a CPU sweep is judged on end-to-end latency, and says why
    assert sweep.judging.metric == "e2e" and "needs an NVIDIA GPU" in sweep.judging.note
    fp32 = t.loc[t["precision"] == "fp32", "median_ms"]
    assert sweep.drift.fraction == pytest.approx((fp32.max() - fp32.min()) / fp32.min())
    assert sweep.drift.repeats == 3

    v = sweeps.verdict(sweep)
    (c,) = v.comparisons  # the repeats measure the noise; they are not compared
    assert c.reference_ms == t.loc[0, "median_ms"] and c.candidate_ms == t.loc[3, "median_ms"]
    ci = _ci_sum(t, c.reference_run, c.candidate_run)
    assert c.noise_ms == pytest.approx(max(ci, sweep.drift.fraction * c.reference_ms))
    text = v.markdown()
    assert sweeps.format_ms(c.reference_ms) in text and sweeps.format_ms(c.candidate_ms) in text
    assert "GPU time not fit to judge (needs an NVIDIA GPU)" in text
    if c.significant:
        assert "more than the noise" in text
    else:
        assert "within the noise" in text and "no measured difference" in text

    figs = {
        "latency": sweep_charts.latency_vs_knob(t, sweeps.PRECISION_KNOB),
        "build": sweep_charts.build_time_vs_knob(t, sweeps.PRECISION_KNOB),
        "engines": sweep_charts.engines_vs_min_block_size(t),
        "pareto": sweep_charts.pareto_latency_build(t),
    }
    band_hi, band_lo, median, repeated = figs["latency"].data
    first = t[t["repeat"] == 0]
    assert list(median.x) == ["fp32 (default)", "bf16"] and list(median.y) == list(first["median_ms"])
    assert list(band_lo.y) == list(first["p10_ms"]) and list(band_hi.y) == list(first["p90_ms"])
    assert list(repeated.y) == list(t.loc[t["repeat"] > 0, "median_ms"])
    for name in ("build", "engines", "pareto"):  # eager runs build nothing: the charts say so
        assert "eager" in figs[name].layout.annotations[0].text or "No " in figs[name].layout.annotations[0].text

    # a second sweep over the same configurations is answered from the cache and shares the runs (its repeats
    # included: the same settings repeated the same number of times)
    again = sweeps.SweepExecution(
        sweeps.plan_sweep(tiny(), {sweeps.PRECISION_KNOB: ["fp32"]}, sweep_id="again"),
        store,
        q.submit,
        q.status,
        q.cancel,
    )
    again.start()
    again.wait(timeout_s=600)
    rids = store.runs_with_tag("sweep:again")
    assert len(rids) == 3 and all("sweep:cpu_precision" in store.get(rid).tags for rid in rids)


def test_repeat_runs_of_the_same_build_set_the_noise(store):
    """Level unset and level 3 are the same build: their gap is run-to-run noise the verdict uses."""
    q = ThreadQueue(store, use_cache=False)  # eager ignores the level, so every run measures the same model
    plan = sweeps.plan_sweep(tiny(), {sweeps.OPTIMIZATION_LEVEL_KNOB: [None, 3, 5]}, sweep_id="levels")
    run = sweeps.SweepExecution(plan, store, q.submit, q.status, q.cancel)
    run.start()
    run.wait(timeout_s=600)
    sweep = sweeps.load_sweep(store, "levels")
    t = sweep.table
    assert list(t["x_label"]) == ["default (3)"] * 3 + ["3", "5"]  # unset, its two repeats, 3, 5
    # eager ignores the level: all five runs timed one build, and their spread is the drift
    assert t["build"].nunique() == 1 and sweep.drift.repeats == 5
    drift = (t["median_ms"].max() - t["median_ms"].min()) / t["median_ms"].min()
    assert sweep.drift.fraction == pytest.approx(drift)
    v = sweeps.verdict(sweep)
    assert [c.candidate_label for c in v.comparisons] == ["3", "5"]
    for c in v.comparisons:
        ci = _ci_sum(t, c.reference_run, c.candidate_run)
        assert c.noise_ms == pytest.approx(max(ci, drift * c.reference_ms))
        assert c.noise_source == ("repeat runs" if drift * c.reference_ms > ci else "bootstrap CI")
        assert c.same_build and not c.significant
    text = v.markdown()
    assert f"{sweep.drift.fraction:.1%} apart" in text and "same build as the default, so" in text
    assert "Default optimization_level=unset (3)" in text
    assert "unset is TensorRT's default, level 3" in text


def _ci_sum(t, a, b) -> float:
    rows = t.set_index("run_id").loc[[a, b]]
    return float(((rows["ci_high_ms"] - rows["ci_low_ms"]) / 2).sum())


def test_cancel_stops_the_whole_group(store):
    q = ThreadQueue(store)
    q.gate.clear()  # hold the worker so the jobs are still queued
    plan = sweeps.plan_sweep(tiny(), {sweeps.PRECISION_KNOB: ["fp32", "bf16", "fp16"]}, sweep_id="cancelled")
    run = sweeps.SweepExecution(plan, store, q.submit, q.status, q.cancel)
    run.start()
    assert run.cancel() == 5  # 3 points and 2 repeats of the default
    q.gate.set()
    run.wait(timeout_s=600)
    assert run.counts() == {"cancelled": 5}
    assert store.runs_with_tag("sweep:cancelled") == []
    assert len(store.list_runs()) <= 1  # at most the job the worker had already picked up
    with pytest.raises(Exception, match="No stored run belongs to sweep 'cancelled'"):
        sweeps.load_sweep(store, "cancelled")


def test_pareto_front_marks_undominated_runs():
    import pandas as pd

    t = pd.DataFrame({"median_ms": [1.0, 0.8, 0.9, 0.7], "build_s": [1.0, 2.0, 3.0, 5.0]})
    assert list(sweeps.pareto_front(t)) == [True, True, False, True]


def test_sweep_ids_are_readable():
    sid = sweeps.new_sweep_id(tiny(), [sweeps.MIN_BLOCK_SIZE_KNOB])
    assert re.fullmatch(r"resnet18_fp32_min_block_size_\d{8}-\d{6}", sid)


# -- the real job queue, and the page ------------------------------------------------------------------
@pytest.mark.slow
def test_sweep_on_the_job_system_runs_and_cancels_as_a_group(tmp_path, monkeypatch):
    from engine import jobs

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(jobs.QUEUE_URL_ENV, raising=False)
    system = jobs.JobSystem(tmp_path / "data")
    try:
        plan = sweeps.plan_sweep(tiny(), {sweeps.PRECISION_KNOB: ["fp32", "bf16"]}, sweep_id="queued")
        run = sweeps.SweepExecution(plan, system.store, system.submit, system.get, system.cancel)
        run.start()
        run.wait(timeout_s=600)
        assert run.counts() == {"done": 4}, [p.view.error for p in run.points]  # with 2 repeats of fp32
        assert len(sweeps.load_sweep(system.store, "queued").table) == 4

        # long runs (many iterations), cancelled together: none finishes, none is tagged
        slow = tiny(**{"measure.timed_iters": 100_000, "measure.seed": 7})
        plan = sweeps.plan_sweep(slow, {sweeps.PRECISION_KNOB: ["fp32", "bf16", "fp16"]}, sweep_id="stopped")
        run = sweeps.SweepExecution(plan, system.store, system.submit, system.get, system.cancel)
        run.start()
        deadline = time.monotonic() + 600
        while not any(p.view.state == "running" for p in run.poll()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.cancel() == 5
        run.wait(timeout_s=600)
        assert run.counts() == {"cancelled": 5}
        assert system.store.runs_with_tag("sweep:stopped") == []
    finally:
        system.stop_workers(timeout_s=5)


def test_page_shows_a_stored_sweep_with_its_verdict_and_charts(store):
    from streamlit.testing.v1 import AppTest

    q = ThreadQueue(store)
    plan = sweeps.plan_sweep(tiny(), {sweeps.PRECISION_KNOB: ["fp32", "bf16"]}, sweep_id="page_sweep")
    run = sweeps.SweepExecution(plan, store, q.submit, q.status, q.cancel)
    run.start()
    run.wait(timeout_s=600)
    expected = sweeps.verdict(sweeps.load_sweep(store, "page_sweep"))

    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.query_params["sweep"] = "page_sweep"
    at.run()
    assert not at.exception, at.exception
    texts = [m.value for m in at.markdown]
    assert expected.markdown() in texts
    charts = [el for el in at.get("plotly_chart")]
    assert any("Latency vs precision" in el.proto.spec for el in charts)
    frame = next(d.value for d in at.dataframe if "x_label" in d.value.columns)  # the sweep's table
    assert list(frame["x_label"]) == ["fp32 (default)"] * 3 + ["bf16"]  # the default and its two repeats
    assert list(frame["repeat"]) == [0, 1, 2, 0]

    at.query_params["sweep"] = "no_such_sweep"
    at.run()
    assert any("No stored run belongs to sweep 'no_such_sweep'" in e.value for e in at.error)


# -- the bundled GPU sweeps ------------------------------------------------------------------------------
SAMPLES = ROOT / "samples"


def _sample_sweeps(tmp_path):
    from engine.store import RunStore

    if not any(SAMPLES.glob("*.json.gz")):
        pytest.skip("no bundled samples in samples/ yet")
    store = RunStore(tmp_path / "data")
    store.import_samples(SAMPLES)
    listed = sweeps.list_sweeps(store)
    if listed.empty:
        pytest.skip("the bundled samples hold no sweep")
    return store, listed


def test_bundled_gpu_sweeps_are_judged_from_their_recorded_numbers(tmp_path):
    from engine.studies import batch_sweep

    store, listed = _sample_sweeps(tmp_path)
    batch = listed["knobs"] == batch_sweep.BATCH_KNOB  # the batch sweep sample: judged in test_batch_sweep
    listed = listed[~batch]
    assert batch.any() and set(listed["knobs"]) <= {sweeps.OPTIMIZATION_LEVEL_KNOB, sweeps.MIN_BLOCK_SIZE_KNOB}
    assert listed["is_sample"].all()
    for sweep_id in listed["sweep_id"]:
        sweep = sweeps.load_sweep(store, sweep_id)
        (knob,) = sweep.knobs
        by_id = {r.run_id: r for r in sweep.results}
        assert all(r.request["backend"] == "tensorrt" and r.latency.iters > 0 for r in sweep.results)
        v = sweeps.verdict(sweep)
        text = v.markdown()
        assert v.comparisons, f"{sweep_id}: nothing compared\n{text}"
        for c in v.comparisons:
            ref, cand = by_id[c.reference_run], by_id[c.candidate_run]
            ref_value = sweeps.request_value(ref.request, knob)
            assert ref_value == sweeps.knob_default(knob) or (
                knob == sweeps.OPTIMIZATION_LEVEL_KNOB and ref_value == 3
            )  # what unset means
            # judged on the figure the sweep chose: GPU time where every run measured it (kernel knobs), else e2e
            assert c.metric == sweep.judging.metric
            assert c.reference_ms == statistics.value_ms(ref, c.metric)
            assert c.candidate_ms == statistics.value_ms(cand, c.metric)
            assert c.reference_e2e_ms == ref.latency.median_ms and c.candidate_e2e_ms == cand.latency.median_ms
            assert statistics.format_ms(c.candidate_ms, c.metric) in text
            assert c.candidate_build_s == pytest.approx(cand.build_s)
            r_ref, r_cand = statistics.reading(ref, c.metric), statistics.reading(cand, c.metric)
            assert c.noise_ms >= r_ref.half_width_ms + r_cand.half_width_ms - 1e-12
            if c.metric == statistics.END_TO_END:
                lo_r, hi_r = sweeps.median_ci_ms(ref.latency_samples_ms)
                assert r_ref.half_width_ms == pytest.approx((hi_r - lo_r) / 2)
            if c.noise_by_identity:  # the same engine plan: the gap is noise whatever its size
                assert c.same_plan and ref.plan_fingerprint == cand.plan_fingerprint and not c.significant
                assert "the same engine" in text
            else:
                assert c.significant == (abs(c.delta_ms) > c.noise_ms)
            if knob == sweeps.MIN_BLOCK_SIZE_KNOB:
                assert f"{cand.engine_count} TensorRT engine" in text
            if c.same_build:  # e.g. min_block_size values that produce the same partition
                assert not c.significant
                assert sweeps.build_signature(ref) == sweeps.build_signature(cand)
        if knob == sweeps.OPTIMIZATION_LEVEL_KNOB:
            levels = [sweeps.request_value(r.request, knob) for r in sweep.results]
            assert {0, 1, 2, 3, 4, 5} <= set(levels) <= {None, 0, 1, 2, 3, 4, 5}
            # unset (TensorRT's level 3) is the default where the sweep has it, else level 3 stands in for it
            assert (
                "Default optimization_level=unset (3)" in text
                if None in levels
                else "Default optimization_level=3" in text
            )
        else:
            assert sweep.recommended_min_block_size, "the default run's segmentation carries the dryrun's advice"
            assert f"Default min_block_size={MIN_BLOCK_SIZE}" in text
            engines, subgraphs, coverage = sweep_charts.engines_vs_min_block_size(sweep.table).data
            points = sweep.table[sweep.table["repeat"] == 0]  # the chart leaves repeats out: one bar a value
            assert list(engines.y) == [by_id[i].engine_count for i in points["run_id"]]
            assert list(coverage.y) == [100 * by_id[i].segmentation.coverage for i in points["run_id"]]
        pareto = sweep_charts.pareto_latency_build(sweep.table).data[1]
        front = sweep.table[sweep.table["pareto"]]
        assert sorted(pareto.x) == sorted(front["build_s"])
        # nothing on the front is beaten on both axes (the judged figure and build time) by another point; a
        # repeat of a point measures that point's noise and is no choice of its own
        points = sweep.table[sweep.table["repeat"] == 0]
        assert not front["repeat"].any()
        for row in front.itertuples():
            assert not ((points["judged_ms"] < row.judged_ms) & (points["build_s"] < row.build_s)).any()


def test_page_runs_a_sweep_through_the_queue_and_opens_it(store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from engine import jobs

    monkeypatch.delenv(jobs.QUEUE_URL_ENV, raising=False)
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(store.root / "no-samples"))
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.run()
    at.selectbox(key="sweep:model.source").set_value("resnet18")
    at.text_input(key="sweep:model.input_shape").set_value("3,32,32")
    at.number_input(key="sweep:measure.timed_iters").set_value(10)
    at.number_input(key="sweep:measure.warmup_iters").set_value(2)
    at.selectbox(key="sweep:knob1").set_value(sweeps.PRECISION_KNOB)
    at.run()
    at.multiselect(key="sweep:axis0:values").set_value(["fp32", "bf16"])
    at.run()
    assert any(
        c.value.startswith(
            "4 runs: precision=fp32 (default); precision=fp32 (default) (repeat 1); "
            "precision=bf16; precision=fp32 (default) (repeat 2)"
        )
        for c in at.caption
    )
    try:
        next(b for b in at.button if b.label == "Run sweep").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        execution = at.session_state["sweep_execution"]
        execution.wait(timeout_s=600)
        assert execution.counts() == {"done": 4}, [p.view.error for p in execution.points]
    finally:
        jobs.stop_workers()
    at.query_params["sweep"] = execution.plan.sweep_id
    at.run()
    frame = next(d.value for d in at.dataframe if "x_label" in d.value.columns)  # the sweep's table
    assert list(frame["x_label"]) == ["fp32 (default)"] * 3 + ["bf16"]
    assert any(m.value.startswith("**precision:") for m in at.markdown)


def test_a_gap_equal_to_the_drift_is_not_significant():
    """Drift is stored as a fraction; fraction × median can land one rounding step below the gap it came from."""
    fast, slow = 1.47082037440821, 3.26955210821008
    noise = (slow - fast) / fast * fast
    assert noise < slow - fast  # the rounding this guards against
    fields = dict(
        knob="compile.optimization_level",
        series="",
        reference_label="default (3)",
        candidate_label="3",
        reference_run="a",
        candidate_run="b",
        reference_ms=fast,
        candidate_ms=slow,
        noise_ms=noise,
        noise_source="repeat runs",
        reference_build_s=None,
        candidate_build_s=None,
        reference_engines=1,
        candidate_engines=1,
        reference_pytorch_segments=0,
        candidate_pytorch_segments=0,
    )
    assert sweeps.Comparison(**fields).significant is False
    assert sweeps.Comparison(**{**fields, "candidate_ms": slow * 1.01}).significant is True


# -- CUDA graphs: a runtime knob, swept like a build knob but never a repeat of one ---------------------
def trt(**changes) -> RunRequest:
    return RunRequest.from_dict({**TINY, "backend": "tensorrt", "device": "cuda"}).with_changes(**changes)


def test_plan_a_cudagraphs_sweep():
    values = sweeps.default_values(sweeps.CUDAGRAPHS_KNOB)
    assert values == [False, True]
    plan = sweeps.plan_sweep(
        trt(),
        {sweeps.CUDAGRAPHS_KNOB: [True, False], sweeps.PRECISION_KNOB: ["fp16", "fp32"]},
        sweep_id="graphs",
        repeats=0,
    )
    assert [p.request.compile.enable_cudagraphs for p in plan.points] == [False, False, True, True]
    assert [p.label for p in plan.points[::2]] == [
        "cudagraphs=off (default), precision=fp32 (default)",
        "cudagraphs=on, precision=fp32 (default)",
    ]
    assert plan.tags == ["sweep:graphs", "knob:compile.enable_cudagraphs", "knob:compile.precision"]
    assert any("separate sweep points" in n for n in plan.notes)
    assert sweeps.knob_default(sweeps.CUDAGRAPHS_KNOB) is False


def _trt_run(run_id: str, center_ms: float, *, cudagraphs: bool | None) -> RunResult:
    """A tensorrt run as the runner stores it, with latency samples spread ±1% around ``center_ms``;
    ``cudagraphs=None`` is a run stored before the knob existed (its request has no such key)."""
    request = trt(**({} if cudagraphs is None else {"compile.enable_cudagraphs": cudagraphs})).to_dict()
    if cudagraphs is None:
        request["compile"].pop("enable_cudagraphs")
    samples = [center_ms * (1 + 0.01 * ((i * 7) % 5 - 2) / 2) for i in range(60)]
    return RunResult(
        run_id=run_id,
        key=run_id,
        created_at="2026-01-01T00:00:00+00:00",
        request=request,
        env={"device_name": "NVIDIA H200", "flavour": "tensorrt_rtx", "torch": "2.11.0"},
        model_info={},
        latency=LatencyStats.from_samples(samples, 1, "cuda_events"),
        latency_samples_ms=samples,
        stages_s={"export_s": 1.0, "compile_s": 4.0},
        engine_count=1,
    )


def test_cudagraphs_on_and_off_are_different_points_and_the_faster_one_wins():
    off, off_again, on = (
        _trt_run("off", 0.50, cudagraphs=False),
        _trt_run("off2", 0.51, cudagraphs=False),
        _trt_run("on", 0.30, cudagraphs=True),
    )
    # the same engine, but not the same measurement: on/off never count as repeats of one build
    assert sweeps.build_signature(off) == sweeps.build_signature(off_again) != sweeps.build_signature(on)
    assert sweeps.build_signature(_trt_run("old", 0.5, cudagraphs=None)) == sweeps.build_signature(off)
    sweep = sweeps.sweep_from_results("graphs", [on, off, off_again], knobs=(sweeps.CUDAGRAPHS_KNOB,))
    assert list(sweep.table["x_label"]) == ["off (default)", "off (default)", "on"]
    # the drift comes from the two off runs (2%), not from the on/off gap (40%)
    assert sweep.drift.fraction == pytest.approx(0.02)
    v = sweeps.verdict(sweep)
    by_run = {c.candidate_run: c for c in v.comparisons}
    assert by_run["on"].significant and not by_run["on"].same_build
    assert by_run["on"].delta_ms == pytest.approx(-0.20)
    assert by_run["off2"].same_build and not by_run["off2"].significant
    assert v.headline == "cudagraphs: on beats the default by 40.0% (0.500 ms → 0.300 ms)"
    assert "cudagraphs=on: 0.300 ms, 0.200 ms (40.0%) faster, more than the noise" in v.markdown()

    close = _trt_run("on_close", 0.505, cudagraphs=True)  # within the drift: no measured difference
    v = sweeps.verdict(sweeps.sweep_from_results("graphs", [off, off_again, close], knobs=(sweeps.CUDAGRAPHS_KNOB,)))
    assert v.headline == "cudagraphs: no value is measurably faster than the default"


# -- GPU time and the engine plan (runs as the backend fills them since GPU time exists) -------------------
def _gpu_run(
    run_id: str,
    e2e_ms: float,
    gpu_ms: float | None,
    plan: str | None,
    build_s: float,
    *,
    repeat: int = 0,
    kernels: float = 73,
    replay: bool = True,
    **changes,
) -> RunResult:
    """A tensorrt run on the H200 with end-to-end samples ±1% around ``e2e_ms``, GPU busy time ``gpu_ms`` over 5
    settled trace windows (-0.05%..+0.08%), a CUDA-graph replay 8 µs above it (``replay=False``: not attempted,
    as for a dynamic engine) and engine plan ``plan`` (``gpu_ms=None``: recorded before GPU time existed)."""
    from engine.result import BUSY, GpuTime, GraphReplay

    request = trt(**{"measure.repeat": repeat, **changes}).to_dict()
    samples = [e2e_ms * (1 + 0.01 * ((i * 7) % 5 - 2) / 2) for i in range(60)]
    gpu = (
        GpuTime(gpu_ms, gpu_ms * 0.9995, gpu_ms * 1.0008, kernels, 200, 5, figure=BUSY, settled=True)
        if gpu_ms is not None
        else None
    )
    dynamic = "not attempted: the engine takes dynamic shapes, and a graph records the launches of one shape only"
    graph = GraphReplay(False, dynamic) if not replay else None
    if replay and gpu_ms is not None:
        graph = GraphReplay(True, "", gpu_ms + 0.008, gpu_ms + 0.007, gpu_ms + 0.01, 100)
    return RunResult(
        run_id=run_id,
        key=run_id,
        created_at="2026-01-01T00:00:00+00:00",
        request=request,
        env={"device": "cuda", "device_name": "NVIDIA H200", "flavour": "tensorrt_rtx", "torch": "2.11.0"},
        model_info={},
        latency=LatencyStats.from_samples(samples, 1, "cuda_events"),
        latency_samples_ms=samples,
        stages_s={"export_s": 1.0, "compile_s": build_s - 1.0},
        engine_count=1,
        gpu_time=gpu,
        graph_replay=graph,
        plan_fingerprint=plan,
    )


LEVEL = sweeps.OPTIMIZATION_LEVEL_KNOB


def _levels(replay: bool = True, **extra: tuple) -> list[RunResult]:
    """The issue's H200 figures: levels 0, 3 and 5 built one plan (73 kernels, 0.3866 ms), end-to-end all over;
    ``replay=False``: no run captured a CUDA-graph replay, so GPU busy time judges."""
    runs = {
        "d": (0.601, 0.3866, "A", 5.9, 0, None),
        "d1": (1.127, 0.3868, "A", 5.8, 1, None),
        "d2": (0.750, 0.3864, "A", 5.9, 2, None),
        "l0": (0.900, 0.3866, "A", 5.6, 0, 0),
        "l3": (0.620, 0.3867, "A", 6.0, 0, 3),
        "l5": (0.800, 0.3865, "A", 6.3, 0, 5),
        **extra,
    }
    return [
        _gpu_run(rid, e2e, gpu, plan, build, repeat=rep, replay=replay, **{LEVEL: level})
        for rid, (e2e, gpu, plan, build, rep, level) in runs.items()
    ]


def test_the_same_engine_plan_is_said_first_and_settles_a_kernel_knob():
    sweep = sweeps.sweep_from_results("levels", _levels(replay=False), knobs=(LEVEL,))
    assert sweep.judging.metric == "gpu_time"
    assert (
        sweep.judging.note
        == "judged on GPU time: no CUDA-graph replay (the engine takes dynamic shapes) for these runs"
    )
    assert sweep.drift.metric == "gpu_time" and sweep.drift.fraction == pytest.approx((0.3868 - 0.3864) / 0.3864)
    assert sweep.drifts["e2e"].fraction == pytest.approx((1.127 - 0.601) / 0.601)
    v = sweeps.verdict(sweep)
    assert v.headline == (
        "optimization_level: every value built the same engine plan as the default; only build time differs (5.6–6.3 s)"
    )
    same = (
        "optimization_level 0, default (3), 3 and 5 built the same plan (73 kernels, 0.3865–0.3867 ms GPU time): "
        "the same engine, so any latency gap between them is noise; only build time differs: 5.6 / 5.9 / 6.0 / "
        "6.3 s."
    )
    assert v.lines[0].startswith("Judged on GPU time: no CUDA-graph replay")  # the figure first, then the plan
    assert v.lines[1] == same  # before any statistics
    assert v.lines[2].startswith(
        "Default optimization_level=unset (3): GPU time 0.3866 ms (trace windows 0.3864–0.3869 ms) (73 kernels), "
        "end-to-end 0.601 ms"
    )
    # end-to-end moved 50% between these runs of one engine: no verdict on it
    assert [c.significant for c in v.comparisons] == [False, False, False]
    assert all(c.same_plan and c.metric == "gpu_time" for c in v.comparisons)
    text = v.markdown()
    assert "the quickest build is optimization_level=0 (5.6 s)" in text
    assert "0.10% apart" in text and "87.5% apart (why kernel knobs are judged on a device figure)" in text
    assert "measurably" not in v.headline


def test_a_kernel_knob_is_judged_on_gpu_time_not_on_end_to_end():
    # level 1 built another plan, 2.2% slower in GPU time though end-to-end it looks faster
    slower = sweeps.verdict(
        sweeps.sweep_from_results("levels", _levels(False, l1=(0.580, 0.3950, "B", 5.7, 0, 1)), knobs=(LEVEL,))
    )
    by_run = {c.candidate_run: c for c in slower.comparisons}
    assert by_run["l1"].significant and by_run["l1"].delta_ms == pytest.approx(0.3950 - 0.3866)
    assert slower.headline == (
        "optimization_level: no value beats the default on GPU time (0, 3 and 5: the same plan; 1: 2.2% slower)"
    )
    assert "optimization_level=1: GPU time 0.3950 ms, 0.0084 ms (2.2%) slower, more than the noise" in slower.markdown()
    assert "end-to-end 0.580 ms (-3.5%, not judged)" in slower.markdown()

    # level 5 built a faster plan: the answer names it, though its end-to-end median came out slower
    faster = sweeps.verdict(
        sweeps.sweep_from_results("levels", _levels(False, l5=(0.800, 0.3700, "C", 6.3, 0, 5)), knobs=(LEVEL,))
    )
    assert faster.headline == ("optimization_level: 5 beats the default by 4.3% on GPU time (0.3866 ms → 0.3700 ms)")
    assert (
        "Fastest: optimization_level=5, 0.0166 ms (4.3%) faster than the default on GPU time for 0.4 s more "
        "build time" in faster.markdown()
    )


def test_a_kernel_knob_is_judged_on_graph_replay_where_every_run_captured_one():
    # the same runs with a replay each (8 µs above the busy time, p10-p90 3 µs wide): the replay judges
    slower = sweeps.sweep_from_results("levels", _levels(l1=(0.580, 0.3950, "B", 5.7, 0, 1)), knobs=(LEVEL,))
    assert slower.judging.metric == "graph_replay" and not slower.judging.note
    assert set(slower.table["judged"]) == {"graph_replay"}
    assert list(slower.table["judged_ms"]) == pytest.approx(list(slower.table["graph_ms"]))
    v = sweeps.verdict(slower)
    by_run = {c.candidate_run: c for c in v.comparisons}
    assert by_run["l1"].significant and by_run["l1"].delta_ms == pytest.approx(0.3950 - 0.3866)
    assert v.headline.startswith("optimization_level: no value beats the default on CUDA-graph replay")
    assert "Default optimization_level=unset (3): CUDA-graph replay 0.3946 ms (replay p10-p90 0.3936–0.3966 ms)" in (
        v.markdown()
    )
    assert "the p10-p90 bands of both runs' CUDA-graph replays" in v.markdown()


def test_a_host_knob_is_judged_end_to_end_even_on_one_engine_plan():
    off, off2 = (_gpu_run("off", 0.60, 0.3866, "A", 5.9), _gpu_run("off2", 0.62, 0.3867, "A", 5.9, repeat=1))
    on = _gpu_run("on", 0.40, 0.3866, "A", 5.9, **{sweeps.CUDAGRAPHS_KNOB: True})
    sweep = sweeps.sweep_from_results("graphs", [off, on, off2], knobs=(sweeps.CUDAGRAPHS_KNOB,))
    assert sweep.judging.metric == "e2e" and not sweep.judging.note
    v = sweeps.verdict(sweep)
    (c,) = v.comparisons
    assert c.same_plan and not c.noise_by_identity and c.significant
    assert v.lines[0] == (
        "cudagraphs off and on ran the same engine plan: what differs is how the host "
        "launches it, judged on end-to-end latency."
    )
    assert v.headline == "cudagraphs: on beats the default by 33.3% (0.600 ms → 0.400 ms)"
    assert "GPU time 0.3866 ms, 73 kernels" in v.markdown()


def test_runs_without_gpu_time_are_judged_end_to_end_and_the_verdict_says_why():
    runs = _levels()
    runs[3] = _gpu_run("l0", 0.900, None, None, 5.6, **{LEVEL: 0})  # level 0 recorded before GPU time existed
    sweep = sweeps.sweep_from_results("levels", runs, knobs=(LEVEL,))
    assert sweep.judging.metric == "e2e"
    old = "not measured (recorded before GPU time existed)"
    assert f"no CUDA-graph replay ({old}) for 1 of these runs" in sweep.judging.note
    assert f"GPU time not fit to judge ({old}) for 1 of these runs" in sweep.judging.note
    v = sweeps.verdict(sweep)
    assert v.lines[0].startswith(f"Judged on end-to-end latency: no CUDA-graph replay ({old})")
    assert all(c.metric == "e2e" for c in v.comparisons)
    assert "on GPU time" not in v.headline


def test_runs_of_one_plan_with_other_weight_seeds_are_repeats_of_one_build():
    """record_samples --repeats varies the seed to get fresh runs: with a plan fingerprint they time one build."""
    a = _gpu_run("a", 0.60, 0.3866, "A", 5.9)
    b = _gpu_run("b", 0.90, 0.3868, "A", 5.9, **{"measure.seed": 1})
    assert sweeps.build_signature(a) == sweeps.build_signature(b)
    old_a, old_b = (_gpu_run("c", 0.60, None, None, 5.9), _gpu_run("d", 0.90, None, None, 5.9, **{"measure.seed": 1}))
    assert sweeps.build_signature(old_a) != sweeps.build_signature(old_b)  # plan unknown: the seed may matter


def test_busy_time_judges_where_it_held_steadier_than_the_replay_between_repeats():
    # the default's repeat replayed 10% slower (inter-kernel gaps moved between processes), its busy time did not
    runs = _levels()
    d1 = next(r for r in runs if r.run_id == "d1")
    slow = dataclasses.replace(d1.graph_replay, median_ms=d1.graph_replay.median_ms * 1.10)
    runs = [dataclasses.replace(r, graph_replay=slow) if r.run_id == "d1" else r for r in runs]
    sweep = sweeps.sweep_from_results("levels", runs, knobs=(LEVEL,))
    assert sweep.drifts["graph_replay"].fraction > 0.09 and sweep.drifts["gpu_time"].fraction < 0.002
    assert sweep.judging.metric == "gpu_time" and sweep.drift.metric == "gpu_time"
    assert sweep.judging.note.startswith("judged on GPU time: it held steadier than the CUDA-graph replay")
    assert set(sweep.table["judged"]) == {"gpu_time"}
    # with one run's busy time unfit (never settled), the replay stays the figure
    unsettled = dataclasses.replace(runs[0].gpu_time, settled=False, warmup_calls=240, settle_gap_pct=4.0)
    runs[0] = dataclasses.replace(runs[0], gpu_time=unsettled)
    assert sweeps.sweep_from_results("levels", runs, knobs=(LEVEL,)).judging.metric == "graph_replay"
