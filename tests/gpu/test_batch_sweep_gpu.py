"""A batch sweep on a real GPU: resnet18 fp16 with TensorRT, static engines at batch 1, 4 and 8 against one
dynamic engine (min 1 / opt 4 / max 8), planned by ``engine.studies.batch_sweep``, run through the runner, tagged by
``SweepExecution`` and read back as a stored batch sweep. Marked ``gpu``; the table and verdict are printed
(run with ``-s``).

``test_shapes_cudagraphs_gpu.py`` already checks what a dynamic engine records about its range and its accuracy
at three batches; this file checks the batch-sweep path end to end: plan -> runs -> store -> table -> verdict."""

import pytest

from engine import runner
from engine.settings.request import RunRequest
from engine.studies import batch_sweep as bs
from engine.studies.sweeps import JobView, SweepExecution

pytestmark = pytest.mark.gpu

SIZES = (1, 4, 8)
MEASURE = {"warmup_iters": 20, "timed_iters": 100, "layer_profile": False, "accuracy": False, "compare_eager": False}


def test_static_against_dynamic_batch_sweep_is_stored_and_judged(store):
    import torch

    base = RunRequest.from_dict(
        {
            "model": {"source": "resnet18"},
            "backend": "tensorrt",
            "device": "cuda",
            "compile": {"precision": "fp16"},
            "measure": MEASURE,
        }
    )
    plan = bs.plan_batch_sweep(
        base, SIZES, ("static", "dynamic"), opt_batch=4, model_inputs=bs.registry_inputs(base), sweep_id="gpu_batch"
    )
    assert len(plan.points) == 6
    run_ids: dict[str, str] = {}

    def submit(request):
        job_id = f"job{len(run_ids)}"
        run_ids[job_id] = runner.execute(request, store, use_cache=False).result.run_id
        return job_id

    execution = SweepExecution(plan, store, submit, lambda j: JobView("done", run_ids[j]), lambda j: None)
    execution.start()
    execution.wait(poll_s=0.0, timeout_s=600)

    assert list(bs.list_batch_sweeps(store)["sweep_id"]) == ["gpu_batch"]
    sweep = bs.load_batch_sweep(store, "gpu_batch")
    table = sweep.table
    v = bs.verdict(sweep, capacity_bytes=torch.cuda.get_device_properties(0).total_memory)
    print("\n" + table.drop(columns=["run_id", "backend"]).to_string())
    print(v.markdown())

    assert sweep.dynamic_range == (1, 4, 8)
    assert sweep.device_name == torch.cuda.get_device_name(0)
    total = torch.cuda.get_device_properties(0).total_memory
    judged = bs.judged(table)
    # the dynamic engine is never replayed: busy time judges when every run's passed its checks (settled, within
    # end-to-end and replay), else end-to-end latency, saying which run's GPU time failed which check
    print(f"judged on {judged.metric}: {judged.reason}")
    assert judged.metric in ("gpu_time", "e2e") and "dynamic shapes" in judged.reason
    if judged.metric == "e2e":
        assert "GPU time not fit to judge" in judged.reason
    for strategy in bs.STRATEGIES:
        rows = table[table["strategy"] == strategy].set_index("batch_size")
        assert rows.index.tolist() == list(SIZES)
        for b, row in rows.iterrows():
            assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
            assert row["throughput_per_s"] == pytest.approx(b * 1000 / row["median_ms"])
            assert 0 < row["peak_memory_bytes"] < total
            assert row["device"] == "cuda"
        # eight images per call give far more than one image per call, with either kind of engine
        assert rows.loc[8, "throughput_per_s"] > 2 * rows.loc[1, "throughput_per_s"]
        knee = v.knees[strategy]
        assert knee.best_throughput_per_s == rows[judged.throughput].max()
    for r in sweep.results:
        assert r.engine_count == 1 and r.latency.batch_size == r.request["model"]["batch_size"]
    assert v.cost["batch_size"].tolist() == list(SIZES)
    assert "What the dynamic range costs against a static engine" in v.markdown()
    assert "Peak GPU memory (static engines)" in v.markdown()
