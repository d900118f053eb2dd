import dataclasses

import pytest
import torch

from engine import diagnosis, runner
from engine.models import files
from engine.profiling import gpu_time as gt
from engine.profiling.trt_profile import parse_trex_profile
from engine.result import GraphReplay
from engine.settings.request import MeasureSettings, ModelSpec, RunRequest
from tests.fixture_runs import trt_profiled_run

# fixtures README: the same resnet18 fp16 engine, timed with profiling off, batch 1
RESNET18_FP16_E2E_MS = 0.35

MEASURE = MeasureSettings(
    warmup_iters=3, timed_iters=15, layer_profile=True, profile_iters=5, accuracy=False, compare_eager=False
)

# One module and several hundred functional calls outside any module: almost all of the latency is
# dispatch overhead the module profile does not see.
OVERHEAD_MODEL = """import torch
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(8, 8)
    def forward(self, x):
        x = self.head(x)
        for _ in range(300):
            x = x * 1.0001 + 0.0001
        return x
def build_model():
    return Model()
def example_inputs(batch_size):
    return (torch.randn(batch_size, 8),)
"""

# One large convolution: the module is the whole latency.
COMPUTE_MODEL = """import torch
def build_model():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 32, 7, padding=3))
def example_inputs(batch_size):
    return (torch.randn(batch_size, 3, 160, 160),)
"""


def test_recorded_trt_profile_is_inflated_not_launch_bound(fixtures_dir):
    trace = fixtures_dir / "h100-rtx/resnet18_fp16/_run_on_acc_0_engine_engine_execution_profile.trace"
    layer_ms = sum(t.avg_ms for t in parse_trex_profile(trace.read_text()))
    assert layer_ms == pytest.approx(0.77, abs=0.01)  # the figure the fixtures README quotes
    d = diagnosis.diagnose(RESNET18_FP16_E2E_MS, layer_ms, source="layer_profile", device="cuda:0")
    assert d.verdict == "inconclusive" and not d.launch_bound and d.suggestions == ()
    assert d.findings[0].kind == "profile_inflated"
    assert f"{layer_ms:.3g} ms, more than the 0.35 ms end-to-end latency" in d.text()
    assert d.layer_share == pytest.approx(layer_ms / 0.35)


def test_a_stored_run_is_diagnosed_on_its_measured_gpu_time_before_its_layer_profile(fixtures_dir):
    profiled = trt_profiled_run(fixtures_dir)
    assert diagnosis.diagnose_result(profiled).source == "layer_profile"  # stored before GPU time existed
    # the kernel time the recorded H200 trace gives for this same build (resnet18 fp16, min_block_size 5,
    # TensorRT-RTX 1.4), and the CUDA-graph replay the device run measured for it (0.211 ms)
    trace = gt.summarize(
        [gt.Window(3, gt.kernels_of(gt.read_events(fixtures_dir / "h200-rtx/gpu_trace_resnet18_fp16_3inf.json.gz")))]
    )
    run = dataclasses.replace(
        profiled,
        gpu_time=trace.gpu_time,
        graph_replay=GraphReplay(captured=True, median_ms=0.211, p10_ms=0.209, p90_ms=0.216, iters=100),
    )
    d = diagnosis.diagnose_result(run)
    assert d.source == "kernel_trace" and d.layer_ms == trace.gpu_time.median_ms
    assert run.host_overhead_ms == pytest.approx(d.overhead_ms)
    # 0.203 of 0.35 ms is 58% kernel time: not launch-bound, but 42% host overhead is named, with the replay
    assert d.verdict == "not_launch_bound" and "Per-layer" not in d.text()
    assert [f.kind for f in d.findings] == ["not_launch_bound", "host_overhead", "graph_replay"]
    assert "0.147 ms of every inference (42%) is host overhead" in d.text()
    assert "took 0.211 ms per inference against 0.35 ms end to end (40% less)" in d.text()
    assert "compile.enable_cudagraphs" in d.suggestions[0]
    on = dataclasses.replace(
        run, request={**run.request, "compile": {**run.request["compile"], "enable_cudagraphs": True}}
    )
    assert diagnosis.diagnose_result(on).suggestions == ()


def test_issue_figures_resnet50_batch1():
    # issue 14, H200, resnet50 fp16 b1: e2e 0.601 ms (fastest fresh process), kernels 0.3866, replay 0.394
    d = diagnosis.diagnose(0.601, 0.3866, source="kernel_trace", device="cuda", graph_ms=0.394)
    assert d.verdict == "not_launch_bound" and d.overhead_ms == pytest.approx(0.2144)
    slow = diagnosis.diagnose(1.127, 0.3866, source="kernel_trace", device="cuda", graph_ms=0.394)
    assert slow.verdict == "launch_bound" and "replayed as a graph it took 0.394 ms" in slow.suggestions[0]


def test_launch_bound_numbers_and_suggestions():
    d = diagnosis.diagnose(0.74, 0.30, source="kernel_trace", device="cuda:0", batch_size=1)
    assert d.verdict == "launch_bound" and d.overhead_ms == pytest.approx(0.44)
    assert "GPU kernels account for 0.3 ms of the 0.74 ms end-to-end latency (41%); 0.44 ms" in d.text()
    assert "compile.enable_cudagraphs" in d.suggestions[0] and "batch size above 1" in d.suggestions[1]
    on = diagnosis.diagnose(0.74, 0.30, source="kernel_trace", device="cuda:0", cudagraphs=True, pytorch_segments=5)
    assert "CUDA graphs are on" in on.suggestions[0]
    assert [f.kind for f in on.findings] == ["launch_bound", "graph_breaks"]
    busy = diagnosis.diagnose(2.49, 2.3, source="kernel_trace", device="cuda:0", batch_size=32)
    assert busy.verdict == "not_launch_bound" and busy.suggestions == () and "Per-layer" not in busy.text()
    with pytest.raises(ValueError, match="source 'nsys'"):
        diagnosis.diagnose(1.0, 0.5, source="nsys", device="cuda:0")


@pytest.fixture
def single_thread():
    # with two intra-op threads on a busy 2-core machine, one descheduled thread stalls every op;
    # one thread keeps the timed pass and the profiled pass comparable
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model_files(tmp_path, monkeypatch, single_thread):
    monkeypatch.setenv(files.MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "overhead.py").write_text(OVERHEAD_MODEL)
    (tmp_path / "compute.py").write_text(COMPUTE_MODEL)


def test_eager_run_dominated_by_overhead_is_diagnosed(model_files, store):
    result = runner.execute(
        RunRequest(model=ModelSpec(source="file:overhead.py"), device="cpu", measure=MEASURE), store
    ).result
    d = diagnosis.diagnose_result(result)
    assert d.source == "eager_modules" and d.verdict == "launch_bound"
    assert d.e2e_ms == result.latency.median_ms and d.layer_ms == result.profiled_sum_ms
    assert d.layer_share < 0.2  # one Linear against 600 functional calls
    assert "overhead-bound (Python and dispatch, not compute)" in d.text()
    assert not any("CUDA graphs" in s for s in d.suggestions)  # not on a CPU
    assert "Raise the batch size above 1" in d.suggestions[0]


def test_eager_run_dominated_by_compute_is_not(model_files, store):
    result = runner.execute(
        RunRequest(model=ModelSpec(source="file:compute.py"), device="cpu", measure=MEASURE), store
    ).result
    d = diagnosis.diagnose_result(result)
    assert d.verdict != "launch_bound" and d.suggestions == ()
    assert d.layer_share > diagnosis.LAUNCH_BOUND_SHARE
    no_profile = runner.execute(
        RunRequest(
            model=ModelSpec(source="file:compute.py"),
            device="cpu",
            measure=MeasureSettings(warmup_iters=1, timed_iters=5, layer_profile=False, accuracy=False),
        ),
        store,
    ).result
    assert diagnosis.diagnose_result(no_profile) is None
    assert diagnosis.diagnose_result(no_profile, kernel_ms=1.0).source == "kernel_trace"
