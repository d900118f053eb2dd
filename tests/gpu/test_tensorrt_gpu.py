"""The Torch-TensorRT backend on a real GPU, through the runner (the product's one code path).

Every test is marked ``gpu``: skipped without an NVIDIA GPU and an importable torch_tensorrt.
Figures are printed (run with ``-s``) so the issue note can quote them.
"""

import textwrap

import pytest

from engine import capabilities, runner
from engine.errors import ConfigError, ExportError, GpuOutOfMemory, UnsupportedOpError
from engine.profiling import segmentation as seg
from engine.result import FUSED
from engine.settings.request import RunRequest

pytestmark = pytest.mark.gpu

FAST = {"warmup_iters": 20, "timed_iters": 50, "profile_iters": 10}


def req(model="resnet18", batch=1, mode="measure", **compile_knobs):
    measure = dict(FAST)
    for k in list(compile_knobs):
        if k in ("accuracy", "compare_eager", "compare_inductor", "layer_profile"):
            measure[k] = compile_knobs.pop(k)
    return RunRequest.from_dict(
        {
            "model": {"source": model, "batch_size": batch},
            "backend": "tensorrt",
            "mode": mode,
            "compile": compile_knobs,
            "measure": measure,
        }
    )


def show(tag, r):
    lat = r.latency
    print(
        f"\n[{tag}] {r.label} on {r.env['device_name']} ({r.env['flavour']} {r.env['tensorrt']}): "
        f"median {lat.median_ms:.3f} ms p90 {lat.p90_ms:.3f} | engines {r.engine_count} "
        f"{r.engine_bytes / 1e6:.1f} MB | stages { ({k: round(v, 2) for k, v in r.stages_s.items()}) } | "
        f"profiled sum {r.profiled_sum_ms} | baselines "
        f"{ ({k: round(v.median_ms, 3) for k, v in r.baselines.items()}) } | accuracy {r.accuracy} | "
        f"peak {r.peak_memory_bytes / 2**20 if r.peak_memory_bytes else None} MiB | warnings {r.warnings}"
    )


def test_dynamo_fp16_full_run(store):
    r = runner.execute(req(precision="fp16"), store).result
    show("dynamo fp16", r)
    assert r.latency.timer == "cuda_events" and r.latency.iters == FAST["timed_iters"]
    assert 0 < r.latency.median_ms < r.baselines["eager_fp16"].median_ms
    assert r.env["driver"].count(".") >= 1  # shown with the run ...
    key, env = runner.request_key(req(precision="fp16"), capabilities.detect())
    assert key == r.key and "driver" not in env  # ... and not part of its cache key
    assert r.engine_count == 1 and r.engine_bytes > 1_000_000
    assert {"export_s", "compile_s", "partition_s", "build_s", "first_inference_s"} <= set(r.stages_s)
    assert r.stages_s["build_s"] > 0 and r.peak_memory_bytes > 0
    assert r.accuracy.rel_l2 < 0.05 and r.accuracy.top1_agreement == 1.0
    s = r.segmentation
    assert (s.total_ops, s.supported_ops, s.engine_count) == (89, 89, 1)
    assert [x.kind for x in s.recommendations] == ["minimal", "current"]
    layers = r.layers
    assert len(layers) >= 20 and set(layers["runtime"]) == {"tensorrt"}
    assert (layers["module_path"] == FUSED).any()
    named = layers[(layers["module_path"] != FUSED) & (layers["module_path"] != "")]
    assert len(named) >= 1, "at least one layer attributed to an nn.Module path"
    assert (layers["precision"] == "fp16").sum() >= 10
    assert r.profiled_sum_ms > 0
    assert any(a.endswith("_engine_execution_profile.trace") for a in r.artifacts)
    assert "dryrun.txt" in r.artifacts
    assert not [w for w in r.warnings if "cross-check" in w]


def test_fp32(store):
    r = runner.execute(req(precision="fp32", compare_eager=False, layer_profile=False), store).result
    show("dynamo fp32", r)
    assert r.engine_count == 1 and r.accuracy.rel_l2 < 0.01


def test_python_runtime_profiles_layers(store):
    from engine.backends.tensorrt import internals

    features = internals.features()
    if not features.python_runtime:  # Torch-TensorRT 2.12+: merged into the C++ runtime
        with pytest.raises(ConfigError, match="not applicable"):
            runner.execute(req(precision="fp16", use_python_runtime=True, compare_eager=False), store)
        return
    r = runner.execute(req(precision="fp16", use_python_runtime=True, compare_eager=False), store).result
    show("python runtime", r)
    assert r.engine_count == 1
    assert len(r.layers) >= 20 and r.profiled_sum_ms > 0
    assert (r.layers["layer_type"] != "").sum() >= 20


def test_torch_compile_frontend(store):
    r = runner.execute(req(precision="fp16", frontend="torch_compile", compare_eager=False), store).result
    show("torch_compile", r)
    assert r.engine_count >= 1 and r.segmentation.engine_count >= 1
    assert r.accuracy.rel_l2 < 0.05
    assert len(r.layers) > 0


def test_inductor_default_baseline_is_timed_with_its_compile_time_and_cached(store):
    stages = []
    request = req(
        precision="fp16", compare_eager=False, accuracy=False, layer_profile=False, compare_inductor="default"
    )
    r = runner.execute(request, store, lambda stage, fraction=None, detail="": stages.append((stage, detail))).result
    show("inductor default baseline", r)
    print(
        f"[inductor default baseline] compile {r.baseline_compile_s} | stages seen "
        f"{[d for s, d in stages if s == 'baseline']}"
    )
    assert set(r.baselines) == {"inductor_default"} and set(r.baseline_compile_s) == {"inductor_default"}
    inductor = r.baselines["inductor_default"]
    assert inductor.timer == "cuda_events" and inductor.iters == FAST["timed_iters"] and inductor.median_ms > 0
    # the first call traces and builds Triton kernels: far longer than one timed call
    assert r.baseline_compile_s["inductor_default"] > 0.2 > inductor.median_ms / 1000
    assert any("inductor default fp16: compiling" in d for s, d in stages if s == "baseline")
    assert any("timing (compiled in" in d for s, d in stages if s == "baseline")
    again = runner.execute(request, store)  # cached like every other run
    assert again.cached and again.result.baseline_compile_s == r.baseline_compile_s


def test_forced_fragmentation(store):
    r = runner.execute(
        req(
            precision="fp16", min_block_size=1, torch_executed_ops=["torch.ops.aten.relu.default"], compare_eager=False
        ),
        store,
    ).result
    show("relu forced, mbs=1", r)
    s = r.segmentation
    assert s.unsupported_ops == {"torch.ops.aten.relu.default": 17}
    assert s.engine_count == r.engine_count == 18  # as in the H100 dryrun fixture
    assert s.pytorch_segment_count >= 17
    kinds = [x.kind for x in s.segments]
    assert kinds[0] == "tensorrt" and kinds[1] == "pytorch"
    assert set(r.layers["runtime"]) == {"tensorrt", "pytorch"}
    assert not [w for w in r.warnings if "cross-check" in w]


def test_analyze_mode_is_a_dryrun(store):
    r = runner.execute(
        req(precision="fp16", mode="analyze", min_block_size=1, torch_executed_ops=["torch.ops.aten.relu.default"]),
        store,
    ).result
    show("analyze", r)
    assert not r.latency.timed and r.engine_count == 18 and r.engine_bytes == 0
    text = store.artifact_path(r.run_id, "dryrun.txt").read_text()
    assert seg.cross_check(r.segmentation, seg.parse_dryrun_text(text)) == []
    assert [(x.kind, x.min_block_size, x.engines) for x in r.segmentation.recommendations] == [
        ("minimal", 6, 3),
        ("moderate", 4, 12),
        ("current", 3, 18),
    ]


def test_bf16_refused_on_rtx(store):
    if capabilities.detect().flavour != "tensorrt_rtx":
        pytest.skip("bf16 is refused on TensorRT-RTX only")
    with pytest.raises(ConfigError, match="bf16"):
        runner.execute(req(precision="bf16"), store)


def test_export_failure_hints_torch_compile(store, tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "branchy.py").write_text(
        textwrap.dedent("""
        import torch

        class Branchy(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(16, 16)

            def forward(self, x):
                if x.sum() > 0:          # data-dependent control flow: torch.export cannot capture it
                    return self.lin(x)
                return self.lin(x) * 2

        def build_model():
            return Branchy()

        def example_inputs(batch_size):
            return (torch.randn(batch_size, 16),)
    """)
    )
    monkeypatch.setenv("TRTDASH_MODELS_DIR", str(models_dir))
    with pytest.raises(ExportError) as info:
        runner.execute(req("file:branchy.py"), store)
    print("\n[export error]", info.value)
    assert "torch_compile" in info.value.hint
    # the hint works: the JIT frontend compiles it
    r = runner.execute(
        req("file:branchy.py", frontend="torch_compile", compare_eager=False, layer_profile=False), store
    ).result
    assert r.latency.median_ms > 0


def test_require_full_compilation_names_the_op(store):
    with pytest.raises(UnsupportedOpError) as info:
        runner.execute(req(require_full_compilation=True, torch_executed_ops=["torch.ops.aten.relu.default"]), store)
    print("\n[unsupported op]", info.value)
    assert "torch.ops.aten.relu.default" in info.value.message


def test_out_of_memory_is_released_and_the_next_run_works(store):
    import torch

    free, _ = torch.cuda.mem_get_info()
    hog = torch.empty(int(free - 600 * 2**20), dtype=torch.uint8, device="cuda")  # leave ~600 MiB
    try:
        # the eager fp32 reference of a batch of 256 needs GBs: a torch OOM. (An OOM inside the
        # Torch-TensorRT C++ runtime while creating an execution context crashed the process on the H200.)
        with pytest.raises(GpuOutOfMemory) as info:
            runner.execute(
                req("resnet50", batch=256, precision="fp16", compare_eager=False, accuracy=True, layer_profile=False),
                store,
            )
        print("\n[oom]", info.value)
    finally:
        del hog
        torch.cuda.empty_cache()
    r = runner.execute(req(precision="fp16", compare_eager=False, layer_profile=False, accuracy=False), store).result
    assert r.latency.median_ms > 0
