"""Run and measure a compiled module, each measurement in a pass of its own, in this order:

1. first inference (TensorRT-RTX compiles kernels just in time here; with ``enable_cudagraphs`` it records the
   graph), then end-to-end timing with profiling OFF (``engine.profiling.latency.time_settled``);
2. accuracy on the same module (three-way for quantized runs);
3. GPU time: busy time per inference from a CUDA-activity trace once two windows agree
   (``engine.profiling.gpu_time``, ``engine.profiling.steady_state``). It comes after end-to-end timing on
   purpose: a torch.profiler trace once made later host-side timing in the same process over twice as slow;
4. the per-layer pass with profiling ON (``engine.profiling.layer_profile``), CUDA graphs off;
5. CUDA-graph replay of the compiled module (``engine.profiling.graph_replay``), last: a capture that fails
   must not disturb any other measurement.

Then the figures are checked against each other (``engine.profiling.invariants``: busy time within end-to-end
and graph replay, windows agree, warm-up settled); a failed check is a warning of the run.

The plan fingerprint joins the engines' DETAILED layer information (read right after the build) and the
kernel sequence the trace saw (``engine.profiling.fingerprint``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from engine import diagnosis
from engine.backends.base import ProgressFn
from engine.backends.tensorrt import internals
from engine.backends.tensorrt.capture import CompileCapture, torch_submodules
from engine.latency_stats import LatencyStats
from engine.profiling import fingerprint, gpu_time, graph_replay, invariants, latency, layer_profile
from engine.profiling.accuracy import compare_outputs, detached_cpu
from engine.quantization.accuracy import conversion_problem_text
from engine.result import Accuracy, GpuTime, GraphReplay, QuantizationReport, Segmentation, empty_layers
from engine.settings.request import RunRequest

log = logging.getLogger(__name__)


@dataclass
class Measured:
    latency: LatencyStats
    samples: list[float]
    accuracy: Accuracy | None = None
    quantization: QuantizationReport | None = None
    gpu_time: GpuTime | None = None
    graph_replay: GraphReplay | None = None
    plan_fingerprint: str | None = None
    layers: pd.DataFrame = field(default_factory=empty_layers)
    profiled_sum_ms: float | None = None
    warnings: list[str] = field(default_factory=list)
    raw_files: dict[str, Path | bytes] = field(default_factory=dict)


def layer_infos(trt_modules: list[tuple[str, Any]]) -> list[str]:
    """Each engine's layer information (inspector JSON), in execution order; [] when one cannot give it."""
    out = []
    for name, mod in trt_modules:
        try:
            out.append(str(mod.get_layer_info()))
        except Exception:
            log.info("no layer information from %s", name, exc_info=True)
            return []
    return out


def measure(
    request: RunRequest,
    compiled: Any,
    inputs: tuple[torch.Tensor, ...],
    trt_modules: list[tuple[str, Any]],
    cap: CompileCapture,
    segmentation: Segmentation | None,
    workdir: Path,
    progress: ProgressFn,
    stages: dict[str, float],
    *,
    reference: Any = None,
    quant: Any = None,
    dynamic: bool = False,
    memory_sample: Any = None,
) -> Measured:
    import torch_tensorrt  # noqa: PLC0415

    c, m = request.compile, request.measure
    sample = memory_sample or (lambda: None)
    infos = layer_infos(trt_modules) if m.layer_profile else []
    warnings: list[str] = []
    # CUDA graphs: the first call records the graph, warm-up and timing replay it
    graphs = (
        torch_tensorrt.runtime.enable_cudagraphs(compiled) if c.enable_cudagraphs else contextlib.nullcontext(compiled)
    )
    with graphs as timed_module:
        # dynamo: the first call after the build (RTX compiles kernels just in time here);
        # torch_compile: the first call after the one that traced and built
        progress(
            "first_inference", None, "first inference" + (" (records the CUDA graph)" if c.enable_cudagraphs else "")
        )
        t0 = time.perf_counter()
        with torch.inference_mode():
            timed_module(*inputs)
        torch.cuda.synchronize()
        stages["first_inference_s"] = time.perf_counter() - t0

        progress("warmup", None, f"at least {latency.SETTLE_S:.0f} s, then {m.warmup_iters} iterations")
        t0 = time.perf_counter()
        stats, samples = latency.time_settled(lambda: timed_module(*inputs), request, progress)
        stages["timing_s"] = time.perf_counter() - t0
        out = Measured(stats, samples)
        sample()
        t0 = time.perf_counter()
        _accuracy(out, timed_module, inputs, reference, quant)
        stages["accuracy_s"] = time.perf_counter() - t0

        progress("gpu_time", None, "GPU busy time from a CUDA-activity trace, once steady")
        t0 = time.perf_counter()
        trace = gpu_pass(lambda: timed_module(*inputs), stats.median_ms, warnings)
        stages["gpu_time_s"] = time.perf_counter() - t0
    if trace is not None:
        out.gpu_time = trace.gpu_time
        out.raw_files["gpu_kernels.csv"] = trace.table.to_csv(index=False).encode()
    out.plan_fingerprint = fingerprint.plan_fingerprint(
        fingerprint.layers_part(infos),
        fingerprint.kernels_part(trace.sequence, trace.kernel_counts) if trace is not None else None,
    )

    if m.layer_profile and trt_modules:
        progress("layer_profile", 0.0, "profiling on")
        t0 = time.perf_counter()
        python_runtime = internals.is_python_runtime_module(trt_modules[0][1])
        out.layers, files = layer_profile.profile_layers(
            compiled,
            inputs,
            trt_modules,
            torch_submodules(cap),
            m.profile_iters,
            workdir / "profile",
            progress,
            python_runtime=python_runtime,
            make_profiler=internals.make_layer_profiler if python_runtime else None,
        )
        out.raw_files.update(files)
        out.profiled_sum_ms = float(out.layers["avg_ms"].sum()) if len(out.layers) else None
        stages["layer_profile_s"] = time.perf_counter() - t0
        if out.profiled_sum_ms and stats.median_ms > 0 and out.profiled_sum_ms > 1.5 * stats.median_ms:
            warnings.append(
                f"Per-layer times sum to {out.profiled_sum_ms:.3f} ms against {stats.median_ms:.3f} ms "
                "end to end: profiling adds overhead per layer; use the layer shares, not their sum."
            )
    sample()

    progress("graph_replay", None, "CUDA graph capture and replay")
    t0 = time.perf_counter()
    out.graph_replay = graph_replay.replay(
        lambda: compiled(*inputs),
        iters=m.timed_iters,
        warmup_iters=m.warmup_iters,
        batch_size=request.model.batch_size,
        not_attempted=not_capturable(request, dynamic),
    )
    stages["graph_replay_s"] = time.perf_counter() - t0
    warnings += [f.text for f in invariants.check_figures(stats.median_ms, out.gpu_time, out.graph_replay)]
    out.warnings += warnings + launch_diagnosis(request, out, segmentation)
    return out


def gpu_pass(fn: Any, e2e_median_ms: float, warnings: list[str]) -> gpu_time.GpuTrace | None:
    """The GPU-time pass; a failure (no CUPTI, a profiler error) is a warning, never a failed run."""
    try:
        trace = gpu_time.measure(fn, per_window=gpu_time.inferences_per_window(e2e_median_ms))
    except Exception as e:
        log.warning("GPU-time pass failed", exc_info=True)
        warnings.append(
            f"GPU time not measured: the CUDA-activity trace failed ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''})."
        )
        return None
    warnings += trace.warnings
    return trace


def not_capturable(request: RunRequest, dynamic: bool) -> str:
    """Why a CUDA-graph replay is not attempted for this run ("" when it is)."""
    c = request.compile
    if c.enable_cudagraphs:
        return (
            "not attempted: the run already replays the module as a CUDA graph (enable_cudagraphs), so its "
            "end-to-end latency is a graph replay"
        )
    if c.frontend == "torch_compile":
        return (
            "not attempted: a torch.compile module runs Python guards on every call; capture the dynamo "
            "frontend's module instead"
        )
    if dynamic:
        return "not attempted: the engine takes dynamic shapes, and a graph records the launches of one shape only"
    return ""


def _accuracy(out: Measured, timed_module: Any, inputs: tuple[torch.Tensor, ...], reference: Any, quant: Any) -> None:
    if quant is not None:
        with torch.inference_mode():
            engine_out = detached_cpu(timed_module(*inputs))
        out.quantization = quant.report(engine_output=engine_out, engine=timed_module)
        out.accuracy = out.quantization.engine_vs_eager
        out.warnings += [w for w in (conversion_problem_text(out.quantization),) if w]
    elif reference is not None:
        with torch.inference_mode():
            result = timed_module(*inputs)
        out.accuracy = compare_outputs(result, reference, "eager fp32 (GPU, TF32 off)")


def launch_diagnosis(request: RunRequest, out: Measured, segmentation: Segmentation | None) -> list[str]:
    """The launch-bound finding as a warning, from measured GPU time when the pass ran, else from the
    per-layer profile's sum (which overstates GPU time: only "launch-bound" is conclusive from it)."""
    stats = out.latency
    if stats.median_ms <= 0:
        return []
    if out.gpu_time is not None:
        layer_ms, source = out.gpu_time.median_ms, "kernel_trace"
    elif out.profiled_sum_ms:
        layer_ms, source = out.profiled_sum_ms, "layer_profile"
    else:
        return []
    replay = out.graph_replay
    found = diagnosis.diagnose(
        stats.median_ms,
        layer_ms,
        source=source,
        device="cuda",
        batch_size=request.model.batch_size,
        cudagraphs=request.compile.enable_cudagraphs,
        pytorch_segments=segmentation.pytorch_segment_count if segmentation else 0,
        graph_ms=replay.median_ms if replay is not None and replay.captured else None,
    )
    log.info("launch diagnosis: %s (%s %.3f ms of %.3f ms)", found.verdict, source, layer_ms, stats.median_ms)
    return [found.text()] if found.launch_bound else []
