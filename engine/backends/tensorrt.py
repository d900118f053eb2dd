"""Torch-TensorRT backend: compile, time end to end, profile per layer, report graph segmentation.

Order of one run (each step reports progress):

1. references on the GPU before anything is compiled: eager fp32 outputs for accuracy (TF32 off),
   the eager baseline at the run's precision, optionally torch.compile inductor (mode default or
   max-autotune, its compile time recorded in ``baseline_compile_s``);
   quantized runs instead calibrate a fake-quantized copy with ModelOpt (``engine.quantization``'s hook:
   CUDA extensions, calibration, eager fp32 and fake-quant reference outputs);
2. compile with the ``dynamo`` frontend (``torch.export`` + ``torch_tensorrt.dynamo.compile``) or the
   ``torch_compile`` frontend (``torch.compile(backend="tensorrt")``), every knob passed through;
   dynamic inputs (min/opt/max in ``model.inputs``) export with ``torch.export.Dim`` (refined once by
   torch.export's suggested fixes when the model's guards need it, ``engine.inputs.export_dynamic``) and
   build with ``torch_tensorrt.Input(min_shape, opt_shape, max_shape)``; quantized models export under
   ``export_torch_mode()``;
3. first inference (TensorRT-RTX compiles kernels just in time here; with ``enable_cudagraphs`` it
   records the graph), warm-up, timed inferences with profiling OFF at the measured shape, accuracy
   (three-way for quantized runs);
4. a separate per-layer pass with profiling ON (C++ runtime: trex files; Python runtime: an
   ``IProfiler``), PyTorch subgraphs between engines timed with CUDA events in the same pass, CUDA
   graphs off; its sum feeds the launch-bound diagnosis (``engine.diagnosis``).

No ``torch.profiler`` kernel trace runs in here, although it would measure GPU busy time better: on
the H200 a plain resnet18 engine timed at 0.31 ms took 0.73 ms right after the first such trace in the
same process (later ~0.4 ms; the cause is not pinned down), and a worker process measures many runs.

Torch-TensorRT's own bookkeeping is read while it compiles: ``compile_module`` fills a
``DryRunTracker`` on every compile and hands it to ``dryrun_stats_display``; wrapping that function,
``convert_module`` (one call per engine) and the partitioners gives the segmentation, the engine
count and the stage times without parsing logs. ``mode == "analyze"`` stops after a dry run.

``torch_tensorrt`` is imported only inside ``run``: it raises on machines without a driver.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from engine import diagnosis
from engine.backends.base import Measurement, ProgressFn
from engine.backends.eager import prepare
from engine.config import ConfigError, RunRequest
from engine.errors import EngineBuildError, ExportError, GpuOutOfMemory, RunError, UnsupportedOpError
from engine.inputs import InputSpec
from engine.models import BuiltModel
from engine.profiling import segmentation as seg
from engine.profiling import trt_profile
from engine.profiling.accuracy import _first_tensor, compare_outputs, detached_cpu
from engine.profiling.latency import time_inference
from engine.result import DEGENERATE_REFERENCE, LatencyStats, Segmentation, empty_layers, normalise_layers

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TRT_MODULE_CLASSES = ("TorchTensorRTModule", "PythonTorchTensorRTModule")
_LAYER_NAME = re.compile(r"\[[A-Za-z0-9_]+\]-\[[^\]]*\]-\[[^\]]*\]")
_CONVERTER_MISSING = re.compile(r"(?:Conversion of function|No conversion rule found for)\s+(\S+)")


# -- what Torch-TensorRT tells us while it compiles ------------------------------------------------

@dataclass
class CompileCapture:
    """Torch-TensorRT's bookkeeping of every ``compile_module`` call during one compile."""

    trackers: list[Any] = field(default_factory=list)
    partitioned: list[Any] = field(default_factory=list)      # compile_module's return values
    uncompiled: list[tuple[int, int]] = field(default_factory=list)   # (supported, total) of skipped graphs
    engine_names: list[str] = field(default_factory=list)     # TRT submodules the partitioner made
    build_s: list[tuple[str, float]] = field(default_factory=list)
    partition_s: float = 0.0
    first_compile_module_t: float | None = None


@contextlib.contextmanager
def capture_compile(progress: ProgressFn) -> Iterator[CompileCapture]:
    """Wrap Torch-TensorRT's compile internals for the duration of one compile (both frontends)."""
    from torch_tensorrt.dynamo import _compiler, partitioning  # noqa: PLC0415
    from torch_tensorrt.dynamo.backend import backends  # noqa: PLC0415

    cap = CompileCapture()
    orig_display, orig_convert = _compiler.dryrun_stats_display, _compiler.convert_module
    orig_compile_module = _compiler.compile_module
    orig_fast, orig_global = partitioning.fast_partition, partitioning.global_partition

    def display(tracker: Any, dryrun_enabled: Any) -> None:
        cap.trackers.append(tracker)
        return orig_display(tracker, dryrun_enabled)

    def partition(orig: Callable) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            progress("partition", None, "partitioning the graph")
            t0 = time.perf_counter()
            out = orig(*args, **kwargs)
            cap.partition_s += time.perf_counter() - t0
            gm = out[0] if isinstance(out, tuple) else out
            cap.engine_names.extend(n for n, _ in gm.named_children() if "_run_on_acc" in n)
            return out
        return wrapped

    def convert(*args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("name", "")
        k = len(cap.build_s) + 1
        n = max(len(cap.engine_names), k)
        progress("build", (k - 1) / n, f"engine {k}/{n}")
        t0 = time.perf_counter()
        try:
            out = orig_convert(*args, **kwargs)
        except Exception as e:
            if _is_oom(e):
                raise
            raise _build_error(e, name, k, n, args[0] if args else kwargs.get("module")) from e
        cap.build_s.append((name, time.perf_counter() - t0))
        progress("build", k / n, f"engine {k}/{n}")
        return out

    def compile_module(gm: Any, *args: Any, **kwargs: Any) -> Any:
        if cap.first_compile_module_t is None:
            cap.first_compile_module_t = time.perf_counter()
        settings = kwargs.get("settings", args[2] if len(args) > 2 else None)
        n_trackers = len(cap.trackers)
        try:
            out = orig_compile_module(gm, *args, **kwargs)
        except Exception as e:
            if settings is not None and settings.require_full_compilation and "not fully supported" in str(e):
                raise _unsupported_error(gm, settings) from e
            raise
        if len(cap.trackers) == n_trackers and settings is not None:
            # compile_module returned early (too few supported ops): no tracker, no engine
            supported, total = partitioning.get_graph_converter_support(gm, settings.torch_executed_ops)
            cap.uncompiled.append((supported, total))
        cap.partitioned.append(out)
        return out

    _compiler.dryrun_stats_display = display
    _compiler.convert_module = convert
    _compiler.compile_module = compile_module
    backends.compile_module = compile_module
    partitioning.fast_partition = partition(orig_fast)
    partitioning.global_partition = partition(orig_global)
    try:
        yield cap
    finally:
        _compiler.dryrun_stats_display, _compiler.convert_module = orig_display, orig_convert
        _compiler.compile_module = backends.compile_module = orig_compile_module
        partitioning.fast_partition, partitioning.global_partition = orig_fast, orig_global


def _unsupported_error(gm: Any, settings: Any) -> UnsupportedOpError:
    ops: dict[str, int] = {}
    try:
        from torch_tensorrt.dynamo.partitioning._adjacency_partitioner import (  # noqa: PLC0415
            OpSupportTester,
        )

        support = OpSupportTester(torch_executed_ops=settings.torch_executed_ops)
        modules = dict(gm.named_modules())
        for node in gm.graph.nodes:
            if node.op in ("call_function", "call_method", "call_module"):
                support.is_node_supported(modules, node)
        ops = dict(support.unsupported_operators)
    except Exception:  # naming the ops is best effort; the error itself is certain
        log.exception("could not list unsupported ops")
    listed = ", ".join(f"{op} (×{n})" for op, n in ops.items()) or "see the log"
    return UnsupportedOpError(
        f"require_full_compilation is on but TensorRT cannot run every op: {listed}.",
        "Turn require_full_compilation off to let these ops run in PyTorch, or remove them from "
        "torch_executed_ops if you forced them there.", ops)


def _build_error(e: Exception, name: str, k: int, n: int, submodule: Any) -> EngineBuildError:
    text = f"{e}"
    layer = _LAYER_NAME.search(text)
    missing = _CONVERTER_MISSING.search(text)
    what = (f"at layer {layer.group(0)}" if layer else f"in the converter for {missing.group(1)}" if missing
            else "")
    ops = ""
    graph = getattr(submodule, "graph", None)
    if graph is not None and not what:
        targets = sorted({str(nd.target) for nd in graph.nodes if nd.op == "call_function"})
        ops = f" The engine holds: {', '.join(targets[:12])}{' ...' if len(targets) > 12 else ''}."
    first = text.strip().splitlines()[0][:400] if text.strip() else type(e).__name__
    return EngineBuildError(f"TensorRT could not build engine {k}/{n} ({name}) {what}: {first}.{ops}",
                            "Force the failing op to PyTorch with torch_executed_ops, or raise min_block_size.")


_OOM_TEXT = ("out of memory", "outofmemory", "cudaerrormemoryallocation", "could not be allocated",
             "failed to allocate")


def _is_oom(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, torch.OutOfMemoryError) or any(t in text for t in _OOM_TEXT)


# -- the run --------------------------------------------------------------------------------------

def run(request: RunRequest, model: BuiltModel, device: str, progress: ProgressFn, workdir: Path) -> Measurement:
    import torch_tensorrt  # noqa: PLC0415 - raises without a driver; only here

    rtx = bool(getattr(torch_tensorrt._features.ENABLED_FEATURES, "tensorrt_rtx", False))
    _check(request, device, rtx)
    try:
        return _run(request, model, progress, Path(workdir), rtx)
    except (RunError, ConfigError):
        raise
    except Exception as e:
        inner = _user_error_inside(e)
        if inner is not None:   # torch.compile wraps backend errors in BackendCompilerFailed
            raise inner from e
        if _is_oom(e):
            traceback.clear_frames(e.__traceback__)   # frames hold the compiled module and its buffers
            _release_gpu()
            raise GpuOutOfMemory(
                f"The GPU ran out of memory ({str(e).splitlines()[0][:200]}).",
                "Memory was released; try a smaller batch size or input shape, or fp16.") from e
        raise
    finally:
        model.module.to(device="cpu", dtype=torch.float32)
        _release_gpu()


def _user_error_inside(e: BaseException) -> RunError | None:
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, RunError):
            return cur
        cur = getattr(cur, "inner_exception", None) or cur.__cause__ or cur.__context__
    return None


def _check(request: RunRequest, device: str, rtx: bool) -> None:
    c = request.compile
    if not device.startswith("cuda"):
        raise ConfigError("device", "the tensorrt backend runs on the GPU; choose cuda or auto")
    if rtx and c.precision == "bf16":
        raise ConfigError("compile.precision", "'bf16' is not available: TensorRT-RTX has no bf16; choose fp16")
    if c.quantization != "none" and c.frontend != "dynamo":
        raise ConfigError("compile.frontend", f"quantization ({c.quantization}) exports the fake-quantized model "
                                              "with torch.export: choose the dynamo frontend")
    if rtx and c.hardware_compatible:
        raise ConfigError("compile.hardware_compatible", "TensorRT-RTX engines are built for the local GPU only")


def _release_gpu() -> None:
    gc.collect()
    with contextlib.suppress(Exception):
        torch._dynamo.reset()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _run(request: RunRequest, model: BuiltModel, progress: ProgressFn, workdir: Path, rtx: bool) -> Measurement:
    c, m = request.compile, request.measure
    batch = request.model.batch_size
    analyze = request.mode == "analyze"
    warnings: list[str] = []
    stages: dict[str, float] = {}
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    memory = _MemoryWatch()

    quantized = c.quantization != "none"
    dynamic = any(s.is_dynamic for s in model.input_specs)
    if dynamic and c.frontend != "dynamo":
        raise ConfigError("compile.frontend", "dynamic shapes (min/opt/max in model.inputs) are compiled with "
                                              "torch.export: choose the dynamo frontend")
    if dynamic and quantized:
        raise ConfigError("compile.quantization", "quantized builds take static shapes: set min = opt = max in "
                                                  "model.inputs, or quantization to none")
    reference = None
    baselines: dict[str, LatencyStats] = {}
    baseline_compile_s: dict[str, float] = {}
    if not analyze:
        if m.accuracy and not quantized:   # a quantized run's eager fp32 reference comes with its calibration
            progress("accuracy", None, "eager fp32 reference")
            reference = _eager_fp32_outputs(model)
        if m.compare_eager:
            progress("baseline", None, f"eager {c.precision}")
            module, inputs = prepare(model, c.precision, "cuda")
            baselines[f"eager_{c.precision}"], _ = _timed(lambda: module(*inputs), request)
        if m.compare_inductor != "off":
            name = f"inductor_{m.compare_inductor}"
            baselines[name], baseline_compile_s[name] = _inductor_baseline(model, request, progress)
        memory.sample()

    quant = None
    if quantized:
        quant = _quantize(request, model, progress, stages)
        module, inputs = quant.module, quant.inputs
        warnings += [w for w in (quant.calibration.warning, *_degenerate_reference(quant.eager_output)) if w]
        if c.precision != c.quant_base_precision:
            warnings.append(f"compile.precision {c.precision} does not apply to a quantized run: its unquantized "
                            f"layers ran in quant_base_precision {c.quant_base_precision}.")
    else:
        # strongly typed (RTX): the model carries the precision; full TensorRT: fp32 model + enabled_precisions
        run_precision = c.precision if rtx else "fp32"
        module, inputs = prepare(model, run_precision, "cuda", keep_fp32=c.keep_high_precision)
    specs = _specs_at(model.input_specs, inputs) if dynamic else None
    if c.cache_built_engines or c.reuse_cached_engines:
        warnings.append("Engine cache: Torch-TensorRT caches and reuses only refittable engines (immutable_weights="
                        "False); this engine has immutable weights, so it was built anew and not cached.")

    raw_files: dict[str, Path | bytes] = {}
    with capture_compile(progress) as cap:
        compiled = _compile(request, module, inputs, rtx, workdir, stages, progress, analyze, specs, warnings)
        if c.frontend == "torch_compile":
            # torch.compile compiles at the first call
            progress("build", None, "torch.compile traces and builds at the first call")
            t0 = time.perf_counter()
            with torch.inference_mode():
                compiled(*inputs)
            torch.cuda.synchronize()
            stages["compile_s"] = time.perf_counter() - t0
            if cap.first_compile_module_t is not None:
                stages["lowering_s"] = max(0.0, cap.first_compile_module_t - t0)
    stages["partition_s"] = cap.partition_s
    stages["build_s"] = sum(s for _, s in cap.build_s)
    memory.sample()

    segmentation, seg_warnings, texts = _segmentation(cap, workdir)
    warnings += seg_warnings
    for i, text in enumerate(texts):
        raw_files["dryrun.txt" if len(texts) == 1 else f"dryrun_{i + 1}.txt"] = text.encode()

    if analyze:
        return Measurement(latency=LatencyStats.not_timed(batch), stages_s=stages, segmentation=segmentation,
                           engine_count=segmentation.engine_count if segmentation else 0,
                           warnings=warnings, raw_files=raw_files)

    trt_modules = _trt_modules(cap)
    for _, mod in trt_modules:   # a Debugger build switches profiling on; time with it off
        with contextlib.suppress(Exception):
            mod.disable_profiling()
    engine_bytes = sum(len(getattr(mod, "serialized_engine", b"") or b"") for _, mod in trt_modules)
    if not trt_modules:
        warnings.append("No TensorRT engine was built: the whole model runs in PyTorch "
                        "(too few supported ops for min_block_size, or every op forced to PyTorch).")

    accuracy = None
    quant_report = None
    import torch_tensorrt  # noqa: PLC0415

    # CUDA graphs: the first call records the graph, warm-up and timing replay it
    replay = torch_tensorrt.runtime.enable_cudagraphs(compiled) if c.enable_cudagraphs else \
        contextlib.nullcontext(compiled)
    with replay as timed_module:
        # dynamo: the first call after the build (RTX compiles kernels just in time here);
        # torch_compile: the first call after the one that traced and built
        progress("first_inference", None, "first inference" + (" (records the CUDA graph)" if c.enable_cudagraphs
                                                                else ""))
        t0 = time.perf_counter()
        with torch.inference_mode():
            timed_module(*inputs)
        torch.cuda.synchronize()
        stages["first_inference_s"] = time.perf_counter() - t0

        progress("warmup", None, f"at least {SETTLE_S:.0f} s, then {m.warmup_iters} iterations")
        latency, samples = _timed(lambda: timed_module(*inputs), request, progress)
        memory.sample()

        if quant is not None:
            progress("accuracy", None, "eager fp32 → fake-quantized → engine")
            with torch.inference_mode():
                engine_out = detached_cpu(timed_module(*inputs))
            quant_report = quant.report(engine_output=engine_out, engine=timed_module)
            accuracy = quant_report.engine_vs_eager
            from engine.quantization import conversion_problem_text  # noqa: PLC0415

            warnings += [w for w in (conversion_problem_text(quant_report),) if w]
        elif reference is not None:
            progress("accuracy", None, "against eager fp32")
            with torch.inference_mode():
                out = timed_module(*inputs)
            accuracy = compare_outputs(out, reference, "eager fp32 (GPU, TF32 off)")
            warnings += _degenerate_reference(reference)

    layers = empty_layers()
    profiled_sum = None
    if m.layer_profile and trt_modules:
        progress("layer_profile", 0.0, "profiling on")
        layers, files = _layer_profile(compiled, inputs, trt_modules, cap, m.profile_iters, workdir / "profile",
                                       progress)
        raw_files.update(files)
        profiled_sum = float(layers["avg_ms"].sum()) if len(layers) else None
        if profiled_sum and latency.median_ms > 0 and profiled_sum > 1.5 * latency.median_ms:
            warnings.append(f"Per-layer times sum to {profiled_sum:.3f} ms against {latency.median_ms:.3f} ms "
                            "end to end: profiling adds overhead per layer; use the layer shares, not their sum.")
    memory.sample()
    warnings += _launch_diagnosis(request, latency, profiled_sum, segmentation)

    return Measurement(latency=latency, latency_samples_ms=samples, stages_s=stages, layers=layers,
                       engine_count=len(trt_modules), engine_bytes=engine_bytes, peak_memory_bytes=memory.peak(),
                       accuracy=accuracy, segmentation=segmentation, profiled_sum_ms=profiled_sum,
                       baselines=baselines, baseline_compile_s=baseline_compile_s, warnings=warnings,
                       raw_files=raw_files, quantization=quant_report)


def _quantize(request: RunRequest, model: BuiltModel, progress: ProgressFn, stages: dict[str, float]) -> Any:
    """Calibrate and fake-quantize a copy of the model on the GPU (``engine.quantization``'s hook);
    ModelOpt's CUDA extensions are built first, as their own stage (about 45 s each on first use)."""
    from engine import quantization  # noqa: PLC0415

    scheme = quantization.SCHEMES[request.compile.quantization]
    quantization.import_modelopt(progress, stages)
    from modelopt.torch.quantization import extensions  # noqa: PLC0415

    builders = [extensions.get_cuda_ext] + ([extensions.get_cuda_ext_fp8] if scheme.weights == "fp8" else [])
    progress("cuda_extensions", None, "ModelOpt CUDA extensions (built on first use, about 45 s each)")
    t0 = time.perf_counter()
    for build in builders:
        try:
            build()
        except Exception:   # ModelOpt falls back to its PyTorch kernels; the run goes on
            log.exception("ModelOpt CUDA extension %s not built", build.__name__)
    stages["cuda_extensions_s"] = time.perf_counter() - t0
    return quantization.prepare_quantized(request, model, "cuda", progress, stages)


def _specs_at(specs: tuple[InputSpec, ...], inputs: tuple[torch.Tensor, ...]) -> tuple[InputSpec, ...]:
    """The input specs with floating inputs in the dtype the module runs in (fp16 on a strongly typed build)."""
    names = {torch.float16: "float16", torch.float32: "float32"}
    return tuple(replace(s, dtype=names.get(t.dtype, s.dtype)) if t.is_floating_point() else s
                 for s, t in zip(specs, inputs, strict=True))


def _launch_diagnosis(request: RunRequest, latency: LatencyStats, profiled_sum: float | None,
                      segmentation: Segmentation | None) -> list[str]:
    """The launch-bound finding as a warning, from the per-layer profile's sum. That sum overstates GPU
    time, so only "launch-bound" is conclusive from it (see engine.diagnosis) and only that is reported."""
    if not profiled_sum or latency.median_ms <= 0:
        return []
    layer_ms, source = profiled_sum, "layer_profile"
    found = diagnosis.diagnose(latency.median_ms, layer_ms, source=source, device="cuda",
                               batch_size=request.model.batch_size, cudagraphs=request.compile.enable_cudagraphs,
                               pytorch_segments=segmentation.pytorch_segment_count if segmentation else 0)
    log.info("launch diagnosis: %s (%s %.3f ms of %.3f ms)", found.verdict, source, layer_ms, latency.median_ms)
    return [found.text()] if found.launch_bound else []


SETTLE_S = 1.0


def _timed(fn: Callable[[], Any], request: RunRequest, progress: ProgressFn | None = None
           ) -> tuple[LatencyStats, list[float]]:
    """The shared harness, after at least ``SETTLE_S`` of back-to-back calls.

    A fixed number of warm-up iterations is a few milliseconds for a small engine: the GPU is still
    raising its clocks and the timed samples come out bimodal (seen on the H200: median 0.52 ms with
    p10 0.32 ms for resnet18 fp16). Running for a fixed time first settles them.
    """
    m = request.measure
    with torch.inference_mode():
        t_end = time.perf_counter() + SETTLE_S
        while time.perf_counter() < t_end:
            for _ in range(10):
                fn()
            torch.cuda.synchronize()
    return time_inference(fn, device="cuda", warmup_iters=m.warmup_iters, timed_iters=m.timed_iters,
                          batch_size=request.model.batch_size, **({"progress": progress} if progress else {}))


class _MemoryWatch:
    """Peak GPU memory of this run: the torch allocator's peak, or the device-wide growth (TensorRT
    allocates engine and context memory outside torch), sampled between steps; the larger wins."""

    def __init__(self) -> None:
        free, total = torch.cuda.mem_get_info()
        self.base_used = total - free
        self.max_used = 0

    def sample(self) -> None:
        free, total = torch.cuda.mem_get_info()
        self.max_used = max(self.max_used, total - free - self.base_used)

    def peak(self) -> int:
        return int(max(torch.cuda.max_memory_allocated(), self.max_used))


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _eager_fp32_outputs(model: BuiltModel) -> Any:
    module, inputs = prepare(model, "fp32", "cuda")
    with _no_tf32(), torch.inference_mode():
        out = module(*inputs)
    return detached_cpu(out)


def _degenerate_reference(reference: Any) -> list[str]:
    """Random weights can make a model's output vanish (mobilenet_v3_small: |y| ~ 1e-9, below fp16's
    smallest subnormal; vit_b_16: a zero-initialised head); accuracy against it says nothing."""
    try:
        ref = _first_tensor(reference)
    except TypeError:
        return []
    peak = float(ref.abs().max()) if ref.numel() else 0.0
    if peak < 1e-4:
        return [f"{DEGENERATE_REFERENCE} (max |y| = {peak:.1e}, typical of random weights): "
                "the accuracy figures say little about this model; use pretrained weights to judge accuracy."]
    return []


def _inductor_baseline(model: BuiltModel, request: RunRequest, progress: ProgressFn) -> tuple[LatencyStats, float]:
    """torch.compile (inductor) at ``measure.compare_inductor``'s mode and the run's precision, timed by the
    same harness as the engine; returns its latency and its compile time (the first call, where torch.compile
    traces, autotunes and builds)."""
    mode = request.measure.compare_inductor
    precision = request.compile.precision
    module, inputs = prepare(model, precision, "cuda")
    try:
        compiled = torch.compile(module, mode=mode)
        slow = " (searches kernels: can take many minutes)" if mode == "max-autotune" else ""
        progress("baseline", None, f"torch.compile inductor {mode} {precision}: compiling{slow}")
        t0 = time.perf_counter()
        with torch.inference_mode():
            compiled(*inputs)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
        progress("baseline", None, f"torch.compile inductor {mode} {precision}: timing (compiled in {compile_s:.1f} s)")
        stats, _ = _timed(lambda: compiled(*inputs), request)
        return stats, compile_s
    finally:
        torch._dynamo.reset()


def compile_settings(request: RunRequest, rtx: bool, workdir: Path) -> dict[str, Any]:
    """Every CompileSettings knob as Torch-TensorRT keyword arguments (both frontends)."""
    c = request.compile
    kw: dict[str, Any] = {
        "min_block_size": c.min_block_size,
        "use_python_runtime": c.use_python_runtime,
        "torch_executed_ops": set(c.torch_executed_ops),
        "require_full_compilation": c.require_full_compilation,
        "workspace_size": c.workspace_size,
        "truncate_double": c.truncate_double,
        "use_fast_partitioner": c.use_fast_partitioner,
        "hardware_compatible": c.hardware_compatible,
        "sparse_weights": c.sparse_weights,
        "cache_built_engines": c.cache_built_engines,
        "reuse_cached_engines": c.reuse_cached_engines,
    }
    if c.optimization_level is not None:
        kw["optimization_level"] = c.optimization_level
    if c.cache_built_engines or c.reuse_cached_engines:
        from engine.store import data_dir  # noqa: PLC0415

        kw["engine_cache_dir"] = str(data_dir() / "engine_cache")
    if not rtx and c.precision != "fp32":
        # full TensorRT: weak typing picks lower-precision kernels from enabled_precisions
        kw["enabled_precisions"] = {torch.float32, DTYPES[c.precision]}
        kw["use_explicit_typing"] = False
    if request.mode == "analyze":
        kw["dryrun"] = True
    return kw


def _compile(request: RunRequest, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], rtx: bool,
             workdir: Path, stages: dict[str, float], progress: ProgressFn, analyze: bool,
             specs: tuple[InputSpec, ...] | None = None, warnings: list[str] | None = None) -> Any:
    """Export and compile. ``specs`` (dynamic shapes): export with one ``torch.export.Dim`` per symbolic
    dimension, refined once by torch.export's suggested fixes when the model's guards need it (the
    refinement is added to ``warnings``), and build with ``torch_tensorrt.Input(min, opt, max)``;
    ``inputs`` are only measured at."""
    warnings = warnings if warnings is not None else []
    import torch_tensorrt  # noqa: PLC0415

    c = request.compile
    kw = compile_settings(request, rtx, workdir)
    if c.quantization != "none":
        from engine import quantization  # noqa: PLC0415

        kw.update(quantization.compile_kwargs(c.quantization, c.quant_base_precision,
                                              "tensorrt_rtx" if rtx else "tensorrt"))
    debugger: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if request.measure.layer_profile and not analyze:
        # DETAILED profiling verbosity, so the layer information carries types, formats and tactics
        debugger = torch_tensorrt.dynamo.Debugger(
            log_level="warning", save_engine_profile=True, save_layer_info=True,
            profile_format="cudagraph" if c.use_python_runtime else "trex", engine_builder_monitor=False,
            logging_dir=str(workdir / "trt_debug"))
    if c.frontend == "torch_compile":
        kw["pass_through_build_failures"] = True     # a failed build is an error, not a silent eager run
        with debugger:
            return torch.compile(module, backend="tensorrt", options=kw, dynamic=False)
    progress("export", None, "torch.export" + (" (Q/DQ nodes kept)" if c.quantization != "none" else "")
             + (" with dynamic shapes" if specs else ""))
    arg_inputs: list[Any] = list(inputs)
    t0 = time.perf_counter()
    try:
        if c.quantization != "none":
            exported = quantization.export_quantized(module, inputs)
        elif specs:
            from engine import inputs as model_inputs  # noqa: PLC0415

            arg_inputs = model_inputs.to_torch_tensorrt_inputs(specs, seed=request.measure.seed)
            at_opt = tuple(i.torch_tensor for i in arg_inputs)    # exporting at a size-1 dim would pin it
            # the model's own shape rules (e.g. a sequence that must be a multiple of 8) refine the Dims once
            measured = {s.name: tuple(t.shape) for s, t in zip(specs, inputs, strict=True)}
            done = model_inputs.export_dynamic(module, at_opt, specs, measured=measured)
            exported = done.program
            warnings += [w for w in (done.warning(),) if w]
        else:
            exported = torch.export.export(module, inputs)
    except Exception as e:
        if _is_oom(e) or isinstance(e, ConfigError):
            raise
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.export could not capture {request.model.source}: {type(e).__name__}: {first}",
                          "Try the torch_compile frontend (compile.frontend = torch_compile): it runs the "
                          "parts it cannot capture in Python.") from e
    stages["export_s"] = time.perf_counter() - t0
    progress("partition", None, "lowering")
    t0 = time.perf_counter()
    quant_mode = quantization.export_mode() if c.quantization != "none" else contextlib.nullcontext()
    with debugger, contextlib.redirect_stdout(io.StringIO()) as out, quant_mode:
        try:
            compiled = torch_tensorrt.dynamo.compile(exported, arg_inputs=arg_inputs, **kw)
        except Exception as e:
            if c.quantization == "none" or _is_oom(e):
                raise
            # the matrix could not know (e.g. an op the flavour does not quantize): name the scheme
            for cause in (e, e.__cause__):
                explained = cause is not None and quantization.explain_compile_error(
                    cause, c.quantization, "tensorrt_rtx" if rtx else "tensorrt")
                if explained:
                    raise explained from e
            raise
    stages["compile_s"] = time.perf_counter() - t0
    if analyze and out.getvalue().strip():
        log.debug("dryrun output:\n%s", out.getvalue())
    return compiled


def _segmentation(cap: CompileCapture, workdir: Path) -> tuple[Segmentation | None, list[str], list[str]]:
    """Tracker-based segmentation, cross-checked against the dryrun text Torch-TensorRT renders from it."""
    from torch_tensorrt.dynamo import _DryRunTracker  # noqa: PLC0415

    warnings: list[str] = []
    parts: list[Segmentation] = []
    texts: list[str] = []
    for i, tracker in enumerate(cap.trackers):
        partitioned = cap.partitioned[i] if i < len(cap.partitioned) else None
        ours = seg.from_tracker(tracker, partitioned)
        path = workdir / f"dryrun_{i + 1}.txt"
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                _DryRunTracker.dryrun_stats_display(tracker, str(path))
        except Exception as e:   # e.g. an empty graph (division by zero ops)
            warnings.append(f"dryrun text not rendered: {type(e).__name__}: {e}")
        if path.exists():
            text = path.read_text()
            texts.append(text)
            problems = seg.cross_check(ours, seg.parse_dryrun_text(text))
            warnings += [f"segmentation cross-check: {p}" for p in problems]
        parts.append(ours)
    for supported, total in cap.uncompiled:
        parts.append(Segmentation(total_ops=total, supported_ops=supported, source="tracker"))
    if not parts:
        return None, warnings, texts
    if len(parts) > 1:
        warnings.append(f"torch.compile produced {len(parts)} graphs (graph breaks); segmentation sums them.")
    return _merge(parts), warnings, texts


def _merge(parts: list[Segmentation]) -> Segmentation:
    if len(parts) == 1:
        return parts[0]
    unsupported: dict[str, int] = {}
    for p in parts:
        for op, n in p.unsupported_ops.items():
            unsupported[op] = unsupported.get(op, 0) + n
    segments = []
    counters = {"tensorrt": 0, "pytorch": 0}
    for p in parts:
        for s in p.segments:
            counters[s.kind] += 1
            segments.append(type(s)(s.kind, counters[s.kind], s.name, s.op_count, s.inputs, s.outputs))
    return Segmentation(total_ops=sum(p.total_ops for p in parts), supported_ops=sum(p.supported_ops for p in parts),
                        unsupported_ops=unsupported, pytorch_nodes=[n for p in parts for n in p.pytorch_nodes],
                        segments=segments,
                        recommendations=seg.recommend([s.op_count for s in segments if s.kind == "tensorrt"]),
                        source="tracker")


def _trt_modules(cap: CompileCapture) -> list[tuple[str, Any]]:
    """TensorRT submodules of every partitioned graph, in execution order."""
    out = []
    for gm in cap.partitioned:
        children = dict(gm.named_children())
        for node in gm.graph.nodes:
            if node.op == "call_module" and type(children.get(node.target)).__name__ in TRT_MODULE_CLASSES:
                out.append((str(node.target), children[node.target]))
    return out


def _torch_submodules(cap: CompileCapture) -> list[tuple[str, Any]]:
    out = []
    for gm in cap.partitioned:
        children = dict(gm.named_children())
        for node in gm.graph.nodes:
            if node.op == "call_module" and "_run_on_gpu" in str(node.target):
                out.append((str(node.target), children[node.target]))
    return out


def _layer_profile(compiled: Any, inputs: tuple[torch.Tensor, ...], trt_modules: list[tuple[str, Any]],
                   cap: CompileCapture, iters: int, profile_dir: Path,
                   progress: ProgressFn) -> tuple[pd.DataFrame, dict[str, Path | bytes]]:
    """Per-layer pass with profiling on; engines and PyTorch subgraphs in execution order."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    python_runtime = type(trt_modules[0][1]).__name__ == "PythonTorchTensorRTModule"
    profilers: dict[str, Any] = {}
    for name, mod in trt_modules:
        if python_runtime:
            profilers[name] = _make_profiler()
            mod.enable_profiling(profiler=profilers[name])
        else:
            mod.enable_profiling(profiling_results_dir=str(profile_dir), profile_format="trex")
    torch_times: dict[str, list[tuple[Any, Any]]] = {}
    hooks = []
    for name, sub in _torch_submodules(cap):
        hooks += _time_with_events(sub, torch_times.setdefault(name, []))
    try:
        with torch.inference_mode():
            for i in range(iters):
                compiled(*inputs)
                if i % 5 == 0:
                    progress("layer_profile", i / iters, f"iteration {i}/{iters}")
        torch.cuda.synchronize()
    finally:
        for h in hooks:
            h.remove()
        for _, mod in trt_modules:
            with contextlib.suppress(Exception):
                mod.disable_profiling()
    engines: dict[str, trt_profile.EngineProfile] = {}
    files: dict[str, Path | bytes] = {}
    if python_runtime:
        for name, mod in trt_modules:
            info_text = mod.get_layer_info()
            files[f"{name}_layer_information.json"] = info_text.encode()
            timings = trt_profile.aggregate_reported_times(profilers[name].records, iters)
            engines[name] = trt_profile.EngineProfile(trt_profile.segment_id(name), timings,
                                                      trt_profile.parse_layer_info(info_text))
    else:
        for eng in trt_profile.read_profile_dir(profile_dir, [n for n, _ in trt_modules]):
            engines[next(n for n, _ in trt_modules if trt_profile.segment_id(n) == eng.segment)] = eng
        files.update({p.name: p for p in sorted(profile_dir.iterdir()) if p.is_file()})
    # one table in execution order: engines from their profiles, PyTorch subgraphs from CUDA events
    tables = []
    order = [(name, "tensorrt") for name, _ in trt_modules] + [(name, "pytorch") for name in torch_times]
    order.sort(key=lambda x: trt_profile._submodule_number(x[0]))
    for name, kind in order:
        if kind == "tensorrt" and name in engines:
            tables.append(trt_profile.layer_table([engines[name]]))
        elif kind == "pytorch" and torch_times.get(name):
            times = [s.elapsed_time(e) for s, e in torch_times[name]]
            tables.append(pd.DataFrame([{
                "segment": trt_profile.segment_id(name), "runtime": "pytorch", "name": name,
                "layer_type": "PyTorch subgraph", "module_path": "", "precision": "", "tactic": "",
                "input_shapes": "", "output_shapes": "", "avg_ms": sum(times) / len(times)}]))
    if not tables:
        return empty_layers(), files
    df = pd.concat(tables, ignore_index=True)
    df["order"] = range(len(df))
    return normalise_layers(df), files


def _time_with_events(sub: torch.nn.Module, sink: list[tuple[Any, Any]]) -> list[Any]:
    pending: list[Any] = []

    def pre(_mod: Any, _args: Any) -> None:
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        pending.append(ev)

    def post(_mod: Any, _args: Any, _out: Any) -> None:
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        sink.append((pending.pop(), end))

    return [sub.register_forward_pre_hook(pre), sub.register_forward_hook(post)]


def _make_profiler() -> Any:
    """A ``tensorrt.IProfiler`` that keeps every reported layer time (the Python runtime's own ``trt``)."""
    from torch_tensorrt.dynamo.runtime import _PythonTorchTensorRTModule as prt  # noqa: PLC0415

    class _Recorder(prt.trt.IProfiler):   # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.records: list[tuple[str, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.records.append((layer_name, ms))

    return _Recorder()

