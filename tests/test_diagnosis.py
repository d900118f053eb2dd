import pytest
import torch

from engine import diagnosis, models, runner
from engine.config import MeasureSettings, ModelSpec, RunRequest
from engine.profiling.trt_profile import parse_trex_profile

# fixtures README: the same resnet18 fp16 engine, timed with profiling off, batch 1
RESNET18_FP16_E2E_MS = 0.35

MEASURE = MeasureSettings(warmup_iters=3, timed_iters=15, layer_profile=True, profile_iters=5, accuracy=False,
                          compare_eager=False)

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
    assert layer_ms == pytest.approx(0.77, abs=0.01)   # the figure the fixtures README quotes
    d = diagnosis.diagnose(RESNET18_FP16_E2E_MS, layer_ms, source="layer_profile", device="cuda:0")
    assert d.verdict == "inconclusive" and not d.launch_bound and d.suggestions == ()
    assert d.findings[0].kind == "profile_inflated"
    assert f"{layer_ms:.3g} ms, more than the 0.35 ms end-to-end latency" in d.text()
    assert d.layer_share == pytest.approx(layer_ms / 0.35)


def test_kernel_busy_time_of_the_recorded_chrome_trace(fixtures_dir):
    events = diagnosis.read_trace_events(fixtures_dir / "h100-rtx/first_inference_profile_resnet18_fp16.trace")
    layers = [e for e in events if e.get("ph") == "X"]
    busy = diagnosis.kernel_busy_ms(events, iterations=1, categories=None)
    # the runtime wrote the layers back to back (a few rounded timestamps overlap by a fraction of a µs)
    total = sum(e["dur"] for e in layers) / 1000.0
    assert busy <= total and busy == pytest.approx(total, rel=1e-4)
    # the same layers seen twice (two streams at once) are busy time once; halved over two iterations
    assert diagnosis.kernel_busy_ms(layers + layers, iterations=2, categories=None) == pytest.approx(busy / 2)
    assert diagnosis.kernel_busy_ms(events, iterations=1) == 0.0   # no "kernel" category in this trace


def test_launch_bound_numbers_and_suggestions():
    d = diagnosis.diagnose(0.74, 0.30, source="kernel_trace", device="cuda:0", batch_size=1)
    assert d.verdict == "launch_bound" and d.overhead_ms == pytest.approx(0.44)
    assert "GPU kernels account for 0.3 ms of the 0.74 ms end-to-end latency (41%); 0.44 ms" in d.text()
    assert "compile.enable_cudagraphs" in d.suggestions[0] and "batch size above 1" in d.suggestions[1]
    on = diagnosis.diagnose(0.74, 0.30, source="kernel_trace", device="cuda:0", cudagraphs=True,
                            pytorch_segments=5)
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
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "overhead.py").write_text(OVERHEAD_MODEL)
    (tmp_path / "compute.py").write_text(COMPUTE_MODEL)


def test_eager_run_dominated_by_overhead_is_diagnosed(model_files, store):
    result = runner.execute(RunRequest(model=ModelSpec(source="file:overhead.py"), device="cpu", measure=MEASURE),
                            store).result
    d = diagnosis.diagnose_result(result)
    assert d.source == "eager_modules" and d.verdict == "launch_bound"
    assert d.e2e_ms == result.latency.median_ms and d.layer_ms == result.profiled_sum_ms
    assert d.layer_share < 0.2   # one Linear against 600 functional calls
    assert "overhead-bound (Python and dispatch, not compute)" in d.text()
    assert not any("CUDA graphs" in s for s in d.suggestions)   # not on a CPU
    assert "Raise the batch size above 1" in d.suggestions[0]


def test_eager_run_dominated_by_compute_is_not(model_files, store):
    result = runner.execute(RunRequest(model=ModelSpec(source="file:compute.py"), device="cpu", measure=MEASURE),
                            store).result
    d = diagnosis.diagnose_result(result)
    assert d.verdict != "launch_bound" and d.suggestions == ()
    assert d.layer_share > diagnosis.LAUNCH_BOUND_SHARE
    no_profile = runner.execute(RunRequest(model=ModelSpec(source="file:compute.py"), device="cpu",
                                           measure=MeasureSettings(warmup_iters=1, timed_iters=5,
                                                                   layer_profile=False, accuracy=False)),
                                store).result
    assert diagnosis.diagnose_result(no_profile) is None
    assert diagnosis.diagnose_result(no_profile, kernel_ms=1.0).source == "kernel_trace"
