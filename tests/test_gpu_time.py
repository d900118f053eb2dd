"""GPU-time parsing and aggregation on torch.profiler traces recorded on the H200 (tests/fixtures/h200-rtx)."""

import pytest

from engine.profiling import gpu_time as gt

SINGLE = "h200-rtx/gpu_trace_resnet18_fp16_3inf.json.gz"  # one engine, 3 inferences
FRAGMENTED = "h200-rtx/gpu_trace_resnet18_fp16_relu_forced_3inf.json.gz"  # relu in PyTorch, mbs 1


@pytest.fixture
def single(fixtures_dir):
    return gt.kernels_of(gt.read_events(fixtures_dir / SINGLE))


def test_kernels_of_the_recorded_single_engine_trace(single):
    assert len(single) == 75  # 25 kernels per inference, as the device run reported
    assert [k.order for k in single] == sorted(k.order for k in single)  # launch order (CUPTI correlation)
    # the runtime's input copy (a PyTorch kernel) comes first, then the engine's cuDNN and Myelin kernels
    assert "float16_copy_kernel_cuda" in single[0].name
    assert any(k.name.startswith("__myl_") for k in single) and any("cudnn" in k.name for k in single)
    assert len({k.stream for k in single}) == 3


def test_summary_of_one_window(single):
    trace = gt.summarize([gt.Window(3, single)])
    g = trace.gpu_time
    assert g.kernels_per_inference == 25 and g.iters == 3 and g.windows == 1 and g.source == "cuda_activity"
    assert g.median_ms == pytest.approx(sum(k.dur_us for k in single) / 3000)
    assert g.median_ms == pytest.approx(0.2033, abs=5e-4)  # the device run's figure for this engine
    assert g.spread_pct == 0.0
    assert trace.sequence is not None and len(trace.sequence) == 25 and trace.sequence[0] == single[0].name
    assert trace.table["calls_per_inference"].sum() == pytest.approx(25)
    assert trace.table["ms_per_inference"].sum() == pytest.approx(g.median_ms)
    assert trace.table["share"].sum() == pytest.approx(1.0)
    assert list(trace.table["ms_per_inference"]) == sorted(trace.table["ms_per_inference"], reverse=True)
    assert trace.warnings == []  # the engine's streams did not overlap


def test_windows_give_median_and_spread(single):
    first, rest = single[:25], single[25:]  # inference 1 | inferences 2-3 of the same session
    trace = gt.summarize([gt.Window(1, first), gt.Window(2, rest)])
    per_window = sorted([sum(k.dur_us for k in first) / 1000, sum(k.dur_us for k in rest) / 2000])
    assert trace.gpu_time.windows == 2 and trace.gpu_time.iters == 3
    assert (trace.gpu_time.min_ms, trace.gpu_time.max_ms) == pytest.approx(tuple(per_window))
    assert trace.gpu_time.spread_pct == pytest.approx(100 * (per_window[1] - per_window[0]) / trace.gpu_time.median_ms)


def test_fragmented_trace_has_pytorch_kernels_between_engines(fixtures_dir):
    kernels = gt.kernels_of(gt.read_events(fixtures_dir / FRAGMENTED))
    trace = gt.summarize([gt.Window(3, kernels)])
    assert trace.gpu_time.kernels_per_inference == 100
    assert trace.gpu_time.median_ms == pytest.approx(0.3237, abs=5e-4)
    assert trace.sequence is not None and len(trace.sequence) == 100
    assert sum(1 for n in trace.sequence if n.startswith("void at::native::")) >= 17  # the relus, in PyTorch


def test_sequence_is_none_when_inferences_differ(single):
    assert gt.per_inference_sequence(single, 3) is not None
    assert gt.per_inference_sequence(single[1:], 3) is None  # 74 kernels do not split into 3
    swapped = single[:25] + [single[26], single[25]] + single[27:]
    assert gt.per_inference_sequence(swapped, 3) is None  # inference 2 launched another order
    assert gt.summarize([gt.Window(3, swapped)]).sequence is None


def test_busy_time_counts_overlap_once(fixtures_dir, single):
    # three streams, yet no two kernels of this engine ran at once: busy time is the sum
    assert gt.busy_us(single) == pytest.approx(sum(k.dur_us for k in single), rel=1e-9)
    doubled = single + single  # the same kernels twice at once: busy once, summed twice
    assert gt.busy_us(doubled) == pytest.approx(gt.busy_us(single))
    g = gt.summarize([gt.Window(3, doubled)]).gpu_time
    # the GPU time is what the GPU was occupied; the sum stays as kernel work (it was the GPU time before)
    assert g.is_busy and g.median_ms == pytest.approx(gt.busy_us(single) / 3000)
    assert g.kernel_sum_ms == pytest.approx(2 * g.median_ms)
    # the runtime's per-layer Chrome trace (another recorded format) lays its layers back to back
    layers = [
        gt.Kernel(e["name"], e["ts"], e["dur"], "0", e["ts"])
        for e in gt.read_events(fixtures_dir / "h100-rtx/first_inference_profile_resnet18_fp16.trace")
    ]
    assert gt.busy_us(layers) == pytest.approx(sum(k.dur_us for k in layers), rel=1e-4)


def test_busy_time_of_partly_overlapping_streams():
    def k(start, dur, stream):
        return gt.Kernel(f"k{start}", 1e12 + start, dur, stream, start)

    # stream a: [0,10) [20,30); stream b: [5,25) overlaps both; stream c: [40,45) alone; [42,43) inside it
    kernels = [k(0, 10, "a"), k(20, 10, "a"), k(5, 20, "b"), k(40, 5, "c"), k(42, 1, "b")]
    assert gt.busy_us(kernels) == pytest.approx(30 + 5)  # [0,30) and [40,45)
    assert gt.busy_us(kernels[3:]) == pytest.approx(5)
    assert gt.busy_us(kernels[:1]) == pytest.approx(10)
    assert gt.busy_us([]) == 0.0
    g = gt.summarize([gt.Window(1, kernels)]).gpu_time
    assert (g.median_ms, g.kernel_sum_ms) == pytest.approx((0.035, 0.046))


def test_windows_spread_is_of_busy_time(single):
    # window 2 ran its kernels in pairs side by side: the same work, half the busy time
    shifted = [gt.Kernel(x.name, x.start_us, x.dur_us, x.stream, x.order) for x in single]
    paired = [
        gt.Kernel(x.name, shifted[i - i % 2].start_us, x.dur_us, f"s{i % 2}", x.order) for i, x in enumerate(single)
    ]
    g = gt.summarize([gt.Window(3, single), gt.Window(3, paired)]).gpu_time
    assert g.min_ms == pytest.approx(gt.busy_us(paired) / 3000) and g.max_ms == pytest.approx(gt.busy_us(single) / 3000)
    assert g.min_ms < 0.75 * g.max_ms
    assert g.kernel_sum_ms == pytest.approx(sum(x.dur_us for x in single) / 3000)


def test_a_trace_without_kernels_is_an_error(fixtures_dir):
    events = gt.read_events(fixtures_dir / "h100-rtx/first_inference_profile_resnet18_fp16.trace")
    assert gt.kernels_of(events) == []  # TensorRT's layer trace has no CUDA-activity kernels
    with pytest.raises(ValueError, match="no GPU kernel"):
        gt.summarize([gt.Window(1, [])])
    with pytest.raises(ValueError, match="no traced window"):
        gt.summarize([])


def test_inferences_per_window_is_bounded():
    assert gt.inferences_per_window(0.2) == gt.MAX_PER_WINDOW
    assert gt.inferences_per_window(2.0) == 10
    assert gt.inferences_per_window(500.0) == gt.MIN_PER_WINDOW
    assert gt.inferences_per_window(None) == gt.MIN_PER_WINDOW
