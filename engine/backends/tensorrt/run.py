"""One Torch-TensorRT run, step by step (see the package docstring): check, references, prepare or quantize,
export + compile under capture, segmentation, measure. Errors the user can act on leave as ``RunError`` /
``ConfigError``; GPU out-of-memory releases memory first."""

from __future__ import annotations

import contextlib
import gc
import time
import traceback
from pathlib import Path

import torch

from engine.backends.base import Measurement, ProgressFn
from engine.backends.eager import prepare
from engine.backends.tensorrt import capture, internals, references
from engine.backends.tensorrt.export import compile_model, model_precision, specs_at
from engine.backends.tensorrt.internals import Features
from engine.backends.tensorrt.measure import layer_infos, measure
from engine.backends.tensorrt.quantize import quantize
from engine.errors import ConfigError, GpuOutOfMemory, RunError
from engine.latency_stats import LatencyStats
from engine.models.entry import BuiltModel
from engine.profiling import engine_precision
from engine.settings.request import RunRequest


def run(request: RunRequest, model: BuiltModel, device: str, progress: ProgressFn, workdir: Path) -> Measurement:
    features = internals.features()  # imports torch_tensorrt: raises without a driver, so only here
    check(request, device, features)
    try:
        return _run(request, model, progress, Path(workdir), features)
    except (RunError, ConfigError):
        raise
    except Exception as e:
        inner = _user_error_inside(e)
        if inner is not None:  # torch.compile wraps backend errors in BackendCompilerFailed
            raise inner from e
        if capture.is_oom(e):
            traceback.clear_frames(e.__traceback__)  # frames hold the compiled module and its buffers
            release_gpu()
            raise GpuOutOfMemory(
                f"The GPU ran out of memory ({str(e).splitlines()[0][:200]}).",
                "Memory was released; try a smaller batch size or input shape, or fp16.",
            ) from e
        raise
    finally:
        model.module.to(device="cpu", dtype=torch.float32)
        release_gpu()


def check(request: RunRequest, device: str, features: Features) -> None:
    """What this Torch-TensorRT and flavour cannot do, refused before anything runs."""
    c = request.compile
    if not device.startswith("cuda"):
        raise ConfigError("device", "the tensorrt backend runs on the GPU; choose cuda or auto")
    if features.rtx and c.precision == "bf16":
        raise ConfigError("compile.precision", "'bf16' is not available: TensorRT-RTX has no bf16; choose fp16")
    if c.quantization != "none" and c.frontend != "dynamo":
        raise ConfigError(
            "compile.frontend",
            f"quantization ({c.quantization}) exports the fake-quantized model "
            "with torch.export: choose the dynamo frontend",
        )
    if features.rtx and c.hardware_compatible:
        raise ConfigError("compile.hardware_compatible", "TensorRT-RTX engines are built for the local GPU only")
    if c.use_python_runtime and not features.python_runtime:
        raise ConfigError("compile.use_python_runtime", f"True is {features.python_runtime_reason}; set it to False")


def _user_error_inside(e: BaseException) -> RunError | None:
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, RunError):
            return cur
        cur = getattr(cur, "inner_exception", None) or cur.__cause__ or cur.__context__
    return None


def release_gpu() -> None:
    gc.collect()
    with contextlib.suppress(Exception):
        torch._dynamo.reset()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class MemoryWatch:
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


def _run(
    request: RunRequest, model: BuiltModel, progress: ProgressFn, workdir: Path, features: Features
) -> Measurement:
    c, m = request.compile, request.measure
    batch = request.model.batch_size
    analyze = request.mode == "analyze"
    warnings: list[str] = []
    stages: dict[str, float] = {}
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    memory = MemoryWatch()

    quantized = c.quantization != "none"
    dynamic = any(s.is_dynamic for s in model.input_specs)
    if dynamic and c.frontend != "dynamo":
        raise ConfigError(
            "compile.frontend",
            "dynamic shapes (min/opt/max in model.inputs) are compiled with torch.export: choose the dynamo frontend",
        )
    if dynamic and quantized:
        raise ConfigError(
            "compile.quantization",
            "quantized builds take static shapes: set min = opt = max in model.inputs, or quantization to none",
        )
    reference = None
    baselines: dict[str, LatencyStats] = {}
    baseline_compile_s: dict[str, float] = {}
    if not analyze:
        if m.accuracy and not quantized:  # a quantized run's eager fp32 reference comes with its calibration
            progress("accuracy", None, "eager fp32 reference")
            t0 = time.perf_counter()
            reference = references.eager_fp32_outputs(model, request)
            stages["reference_s"] = time.perf_counter() - t0
            warnings += references.degenerate_reference(reference)
        if m.compare_eager:
            progress("baseline", None, f"eager {c.precision}")
            t0 = time.perf_counter()
            name = f"eager_{c.precision}"
            baselines[name], measured_at = references.eager_baseline(model, request)
            stages["baseline_s"] = time.perf_counter() - t0
            if measured_at:
                warnings.append(references.reused_note(name, measured_at))
        if m.compare_inductor != "off":
            name = f"inductor_{m.compare_inductor}"
            baselines[name], baseline_compile_s[name] = references.inductor_baseline(model, request, progress)
        memory.sample()

    quant = None
    if quantized:
        quant = quantize(request, model, progress, stages)
        module, inputs = quant.module, quant.inputs
        warnings += [w for w in (quant.calibration.warning, *references.degenerate_reference(quant.eager_output)) if w]
        if c.precision != c.quant_base_precision:
            warnings.append(
                f"compile.precision {c.precision} does not apply to a quantized run: its unquantized "
                f"layers ran in quant_base_precision {c.quant_base_precision}."
            )
    else:
        module, inputs = prepare(model, model_precision(c, features), "cuda", keep_fp32=c.keep_high_precision)
    specs = specs_at(model.input_specs, inputs) if dynamic else None
    if c.cache_built_engines or c.reuse_cached_engines:
        warnings.append(
            "Engine cache: Torch-TensorRT caches and reuses only refittable engines (immutable_weights="
            "False); this engine has immutable weights, so it was built anew and not cached."
        )

    raw_files: dict[str, Path | bytes] = {}
    with capture.capture_compile(progress) as cap:
        compiled = compile_model(request, module, inputs, features, workdir, stages, progress, analyze, specs, warnings)
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

    segmentation, seg_warnings, texts = capture.segmentation_of(cap, workdir)
    warnings += seg_warnings
    for i, text in enumerate(texts):
        raw_files["dryrun.txt" if len(texts) == 1 else f"dryrun_{i + 1}.txt"] = text.encode()

    if analyze:
        return Measurement(
            latency=LatencyStats.not_timed(batch),
            stages_s=stages,
            segmentation=segmentation,
            engine_count=segmentation.engine_count if segmentation else 0,
            warnings=warnings,
            raw_files=raw_files,
        )

    trt_modules = capture.trt_modules(cap)
    for _, mod in trt_modules:  # a Debugger build switches profiling on; time with it off
        with contextlib.suppress(Exception):
            mod.disable_profiling()
    # what the engine's layers run in, against the label: a mismatch fails here, before anything is timed
    precision = engine_precision.engine_precision(c, layer_infos(trt_modules)) if m.layer_profile else None
    engine_precision.check(precision)
    engine_bytes = sum(len(getattr(mod, "serialized_engine", b"") or b"") for _, mod in trt_modules)
    if not trt_modules:
        warnings.append(
            "No TensorRT engine was built: the whole model runs in PyTorch "
            "(too few supported ops for min_block_size, or every op forced to PyTorch)."
        )

    measured = measure(
        request,
        compiled,
        inputs,
        trt_modules,
        cap,
        segmentation,
        workdir,
        progress,
        stages,
        reference=reference,
        quant=quant,
        dynamic=dynamic,
        memory_sample=memory.sample,
    )
    raw_files.update(measured.raw_files)
    return Measurement(
        latency=measured.latency,
        latency_samples_ms=measured.samples,
        stages_s=stages,
        layers=measured.layers,
        engine_count=len(trt_modules),
        engine_bytes=engine_bytes,
        peak_memory_bytes=memory.peak(),
        accuracy=measured.accuracy,
        segmentation=segmentation,
        profiled_sum_ms=measured.profiled_sum_ms,
        baselines=baselines,
        baseline_compile_s=baseline_compile_s,
        warnings=warnings + measured.warnings,
        raw_files=raw_files,
        quantization=measured.quantization,
        gpu_time=measured.gpu_time,
        graph_replay=measured.graph_replay,
        plan_fingerprint=measured.plan_fingerprint,
        engine_precision=precision,
    )
