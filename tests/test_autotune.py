"""Auto-tune: Optuna search on a stubbed cost surface, and on real CPU eager runs."""

from __future__ import annotations

import itertools

import pytest

from engine.charts import autotune as autotune_charts
from engine.errors import ConfigError
from engine.latency_stats import LatencyStats
from engine.result import Accuracy, RunResult
from engine.runner import execute
from engine.settings.request import RunRequest
from engine.studies import autotune as at
from engine.studies.sweeps import (
    CUDAGRAPHS_KNOB,
    MIN_BLOCK_SIZE_KNOB,
    OPTIMIZATION_LEVEL_KNOB,
    PRECISION_KNOB,
    RUNTIME_KNOB,
)

TINY = {
    "model": {"source": "resnet18", "input_shape": [3, 32, 32]},
    "device": "cpu",
    "measure": {"warmup_iters": 2, "timed_iters": 15, "layer_profile": False},
}


# -- a stubbed cost surface: a known optimum under known constraints ------------------------------------
def surface(request: RunRequest) -> tuple[float, float, float]:
    """(latency ms, build s, rel. L2) of a made-up but structured compiler: higher levels build longer
    and run faster, fp16 is faster but less exact, the Python runtime adds overhead, min_block_size
    has a sweet spot at 30."""
    c = request.compile
    level = 3 if c.optimization_level is None else c.optimization_level
    latency = {"fp32": 1.0, "fp16": 0.6, "bf16": 0.65}[c.precision]
    latency *= 1 + 0.08 * (5 - level)
    latency *= 1.15 if c.use_python_runtime else 1.0
    latency *= {1: 1.3, 5: 1.1, 30: 1.0}[c.min_block_size]
    latency *= 0.8 if c.enable_cudagraphs else 1.0
    build = 2.0 + 1.5 * level
    rel = {"fp32": 1e-6, "fp16": 2e-3, "bf16": 2e-2}[c.precision]
    return latency, build, rel


class StubEvaluate:
    def __init__(self):
        self.calls = []

    def __call__(self, request: RunRequest) -> RunResult:
        self.calls.append(request)
        latency, build, rel = surface(request)
        n = len(self.calls)
        baselines = {"eager_fp16": LatencyStats.from_samples([3.0] * 5, 1, "stub")}
        if request.measure.compare_inductor != "off":  # the backend names the baseline after its mode
            baselines[f"inductor_{request.measure.compare_inductor}"] = LatencyStats.from_samples([2.0] * 5, 1, "stub")
        return RunResult(
            run_id=f"stub-{n}",
            key=f"k{n}",
            created_at="2026-01-01T00:00:00+00:00",
            request=request.to_dict(),
            env={"device_name": "stub"},
            model_info={},
            latency=LatencyStats.from_samples([latency] * 5, 1, "stub"),
            stages_s={"build_s": build},
            accuracy=Accuracy("eager fp32", rel, rel, None),
            baselines=baselines,
        )


SPACE = {
    PRECISION_KNOB: ["fp32", "fp16", "bf16"],
    MIN_BLOCK_SIZE_KNOB: [1, 5, 30],
    OPTIMIZATION_LEVEL_KNOB: [0, 1, 2, 3, 4, 5],
    RUNTIME_KNOB: [False, True],
}
LIMITS = at.Constraints(max_build_s=7.0, max_rel_l2=1e-2, precisions=("fp32", "fp16", "bf16"))


def true_optimum() -> tuple[dict, float]:
    base = RunRequest.from_dict(TINY)
    best = None
    for combo in itertools.product(*SPACE.values()):
        params = dict(zip(SPACE, combo, strict=True))
        latency, build, rel = surface(base.with_changes(**params))
        if build <= LIMITS.max_build_s and rel <= LIMITS.max_rel_l2 and (best is None or latency < best[1]):
            best = (params, latency)
    return best


def test_exhaustive_when_the_space_fits_the_budget():
    space = {PRECISION_KNOB: ["fp32", "fp16"], OPTIMIZATION_LEVEL_KNOB: [0, 3, 5]}
    evaluate = StubEvaluate()
    report = at.autotune(
        RunRequest.from_dict(TINY),
        evaluate,
        space=space,
        n_trials=50,
        constraints=at.Constraints(max_build_s=7.0, precisions=("fp32", "fp16")),
    )
    assert len(report.trials) == 6  # the grid, once each
    assert report.best.params == {PRECISION_KNOB: "fp16", OPTIMIZATION_LEVEL_KNOB: 3}
    assert not report.trials.loc[report.trials[OPTIMIZATION_LEVEL_KNOB] == 5, "feasible"].any()
    assert "build 9.5 s > 7 s" in report.trials["violation"].tolist()


def test_search_finds_the_feasible_optimum_of_the_stub_surface():
    evaluate = StubEvaluate()
    records = []
    trt = RunRequest.from_dict({**TINY, "backend": "tensorrt", "device": "cuda"})
    report = at.autotune(trt, evaluate, space=SPACE, constraints=LIMITS, n_trials=60, seed=1, on_trial=records.append)
    params, latency = true_optimum()
    assert params == {PRECISION_KNOB: "fp16", MIN_BLOCK_SIZE_KNOB: 30, OPTIMIZATION_LEVEL_KNOB: 3, RUNTIME_KNOB: False}
    assert report.best.params == params
    assert report.best.median_ms == pytest.approx(latency)
    # repeated proposals are measured once
    assert len(evaluate.calls) == len({tuple(sorted(r.params.items())) for r in records}) + 1  # + defaults
    assert "No inductor baseline measured" in " ".join(report.notes)
    # defaults: fp32 (the base precision), min_block_size 5, level unset (3), C++ runtime
    d_latency, _, _ = surface(at.defaults_request(trt, LIMITS))
    assert report.defaults.median_ms == pytest.approx(d_latency)
    assert report.speedup_vs_defaults == pytest.approx(d_latency / latency)
    assert report.speedups["eager_fp16"] == pytest.approx(3.0 / latency)
    # baselines are timed once, with the defaults run; trials skip them
    assert evaluate.calls[0].measure.compare_eager and evaluate.calls[0].measure.compare_inductor == "off"
    assert not any(r.measure.compare_eager or r.measure.compare_inductor != "off" for r in evaluate.calls[1:])
    t = report.trials
    assert list(t["trial"]) == list(range(60))
    assert (t.loc[t["feasible"], "median_ms"] >= latency - 1e-12).all()
    assert t["best_so_far_ms"].dropna().is_monotonic_decreasing
    assert "1.83× Torch-TensorRT's defaults" in report.summary()

    fig = autotune_charts.autotune_trials(t)
    traces = {tr.name: tr for tr in fig.data}
    assert len(traces["meets the constraints"].x) == int(t["feasible"].sum())
    assert len(traces["breaks a constraint"].x) == int((~t["feasible"]).sum())
    assert min(traces["best so far"].y[-1:]) == pytest.approx(latency)


def test_failed_evaluations_are_failed_trials_and_stop_is_honoured():
    calls = []

    def flaky(request):
        calls.append(request)
        if request.compile.optimization_level == 0:
            raise RuntimeError("builder ran out of memory")
        return StubEvaluate()(request)

    report = at.autotune(
        RunRequest.from_dict(TINY),
        flaky,
        space={OPTIMIZATION_LEVEL_KNOB: [0, 3]},
        n_trials=2,
        constraints=at.Constraints(),
    )
    assert set(report.trials["error"]) == {"", "builder ran out of memory"}
    assert report.best.params == {OPTIMIZATION_LEVEL_KNOB: 3}

    stopped = at.autotune(
        RunRequest.from_dict(TINY),
        StubEvaluate(),
        space=SPACE,
        constraints=LIMITS,
        n_trials=30,
        should_stop=lambda: True,
    )
    assert stopped.trials.empty and stopped.best is None
    assert "No configuration met the constraints" in stopped.summary()


def test_each_trial_tells_the_progress_bar_how_far_and_what_it_measured():
    seen = []
    calls = []

    def flaky(request):
        calls.append(request)
        if request.compile.optimization_level == 0:
            raise RuntimeError("builder ran out of memory")
        return StubEvaluate()(request)

    at.autotune(
        RunRequest.from_dict(TINY),
        flaky,
        space={OPTIMIZATION_LEVEL_KNOB: [0, 3]},
        n_trials=2,
        constraints=at.Constraints(),
        on_trial=lambda t: seen.append((t, t.progress(2))),
    )
    by_level = {t.params[OPTIMIZATION_LEVEL_KNOB]: (t, progress) for t, progress in seen}
    failed, (failed_fraction, failed_text) = by_level[0]
    ok, (ok_fraction, ok_text) = by_level[3]
    assert sorted([failed_fraction, ok_fraction]) == [0.5, 1.0]
    assert failed_text == f"trial {failed.number + 1}: not timed builder ran out of memory"
    assert ok_text == f"trial {ok.number + 1}: {ok.median_ms:.3f} ms ok"
    assert ok.progress(1)[0] == 1.0  # never past the end of the bar


def test_constraints_are_validated():
    with pytest.raises(ConfigError, match="autotune.precisions"):
        at.Constraints(precisions=("int4",))
    with pytest.raises(ConfigError, match="autotune.max_build_s"):
        at.Constraints(max_build_s=0)
    with pytest.raises(ConfigError, match="not allowed"):
        at.autotune(
            RunRequest.from_dict(TINY),
            StubEvaluate(),
            space={PRECISION_KNOB: ["fp16"]},
            constraints=at.Constraints(precisions=("fp32",)),
        )


# -- real CPU eager runs -------------------------------------------------------------------------------
def test_accuracy_tolerance_on_real_eager_runs(store):
    def evaluate(request):
        return execute(request, store).result

    base = RunRequest.from_dict(TINY)
    strict = at.autotune(
        base,
        evaluate,
        space={PRECISION_KNOB: ["fp32", "bf16"]},
        n_trials=4,
        constraints=at.Constraints(max_rel_l2=1e-4, precisions=("fp32", "bf16")),
    )
    t = strict.trials.set_index(PRECISION_KNOB)
    bf16 = store.get(t.loc["bf16", "run_id"])
    assert bf16.accuracy is not None and bf16.accuracy.rel_l2 > 1e-4  # bf16 really differs from fp32
    assert not t.loc["bf16", "feasible"] and "rel. L2 error" in t.loc["bf16", "violation"]
    assert strict.best.params == {PRECISION_KNOB: "fp32"}
    assert strict.best.median_ms == store.get(strict.best.run_id).latency.median_ms
    assert strict.speedup_vs_defaults == pytest.approx(1.0)  # fp32 eager is the default here

    loose = at.autotune(
        base,
        evaluate,
        space={PRECISION_KNOB: ["fp32", "bf16"]},
        n_trials=4,
        constraints=at.Constraints(max_rel_l2=0.1, precisions=("fp32", "bf16")),
    )
    medians = {
        p: store.get(rid).latency.median_ms
        for p, rid in zip(loose.trials[PRECISION_KNOB], loose.trials["run_id"], strict=True)
    }
    assert loose.best.params[PRECISION_KNOB] == min(medians, key=medians.get)
    assert len(store.list_runs()) == 2  # the second search was answered from the cache
    # eager ignores every knob but precision: a min_block_size search times one build again and again
    same = at.autotune(
        base,
        lambda r: execute(r, store, use_cache=False).result,
        space={"compile.min_block_size": [1, 5, 30]},
        n_trials=3,
        constraints=at.Constraints(),
    )
    medians = same.trials["median_ms"].tolist() + [same.defaults.median_ms]
    drift = (max(medians) - min(medians)) / min(medians)
    assert any(f"differed by {drift:.1%}" in n for n in same.notes)


def test_cudagraphs_is_searched_and_an_inductor_baseline_is_timed_once_with_the_defaults():
    space = at.default_space(LIMITS)
    assert list(space) == list(at.SEARCHABLE_KNOBS) and space[CUDAGRAPHS_KNOB] == [False, True]
    evaluate = StubEvaluate()
    trt = RunRequest.from_dict({**TINY, "backend": "tensorrt", "device": "cuda"})
    report = at.autotune(
        trt,
        evaluate,
        space={CUDAGRAPHS_KNOB: [False, True], PRECISION_KNOB: ["fp32", "fp16"]},
        n_trials=10,
        constraints=LIMITS,
        baselines=("eager", "inductor_default"),
    )
    assert report.best.params == {CUDAGRAPHS_KNOB: True, PRECISION_KNOB: "fp16"}  # 0.8 × the fp16 latency
    modes = [r.measure.compare_inductor for r in evaluate.calls]
    assert modes[0] == "default" and set(modes[1:]) == {"off"}
    assert report.speedups["inductor_default"] == pytest.approx(2.0 / report.best.median_ms)
    assert "inductor_default" in report.summary()
    assert not any("No inductor baseline" in n for n in report.notes)


def test_inductor_baseline_names():
    assert at.inductor_mode(("eager",)) == "off"
    assert at.inductor_mode(("eager", "inductor")) == "max-autotune"  # what it meant before the modes
    assert at.inductor_mode(("inductor_max-autotune",)) == "max-autotune"
    with pytest.raises(ConfigError, match="'inductor_fast' is not a baseline; choose eager, inductor_default"):
        at.inductor_mode(("inductor_fast",))
    with pytest.raises(ConfigError, match="one inductor baseline per search"):
        at.inductor_mode(("inductor_default", "inductor_max-autotune"))


# -- the objective: GPU time for kernel knobs, end-to-end when a host knob is searched ---------------------
class GpuStub(StubEvaluate):
    """The stub surface as GPU time; end-to-end adds host jitter that is worst for the true optimum, as a noisy
    fresh process can (the optimum must still win: kernel knobs are judged on GPU time)."""

    def __call__(self, request: RunRequest) -> RunResult:
        import dataclasses

        from engine.result import GpuTime

        result = super().__call__(request)
        gpu = result.latency.median_ms
        c = request.compile
        jitter = 1.0 if (c.precision, c.optimization_level) == ("fp16", 5) else 0.0
        e2e = gpu + 0.2 + jitter + (0.3 if c.enable_cudagraphs is False else 0.0)
        return dataclasses.replace(
            result,
            env={"device": "cuda", "device_name": "stub"},
            latency=LatencyStats.from_samples([e2e] * 5, 1, "stub"),
            gpu_time=GpuTime(gpu, gpu, gpu, 50, 100, 5),
            plan_fingerprint=str(request.compile),
        )


def test_kernel_knobs_are_searched_on_gpu_time_and_host_knobs_end_to_end():
    trt = RunRequest.from_dict({**TINY, "backend": "tensorrt", "device": "cuda"})
    space = {PRECISION_KNOB: ["fp32", "fp16"], OPTIMIZATION_LEVEL_KNOB: [0, 3, 5]}
    report = at.autotune(
        trt, GpuStub(), space=space, n_trials=6, constraints=at.Constraints(precisions=("fp32", "fp16"))
    )
    assert report.objective == "gpu_time"
    assert report.best.params == {PRECISION_KNOB: "fp16", OPTIMIZATION_LEVEL_KNOB: 5}  # slowest end to end
    assert report.best.objective_ms == report.best.gpu_ms == pytest.approx(0.66)  # 0.6 x 1.1 (mbs 5)
    assert report.notes[0] == (
        "Objective: GPU time (every searched knob changes kernels: precision, optimization_level)."
    )
    assert "at 0.6600 ms GPU time (end-to-end 2.160 ms)" in report.summary()
    assert "Torch-TensorRT's defaults on GPU time" in report.summary()
    assert list(report.trials["objective_ms"]) == list(report.trials["gpu_ms"])

    graphs = at.autotune(
        trt,
        GpuStub(),
        space={**space, CUDAGRAPHS_KNOB: [False, True]},
        n_trials=12,
        constraints=at.Constraints(precisions=("fp32", "fp16")),
    )
    assert graphs.objective == "e2e" and graphs.notes[0].startswith(
        "Objective: end-to-end latency (a searched knob changes the host's work per call"
    )
    assert graphs.best.objective_ms == graphs.best.median_ms
