"""PyTorch eager backend, CPU or GPU: end-to-end latency, GPU kernel time and per-module latency.

On CUDA, GPU kernel time per inference comes from a CUDA-activity trace in a pass of its own after the
timed one (``engine.profiling.gpu_time``: a trace must not precede host-sensitive timing). Per-module
latency comes from forward hooks on leaf modules, in a separate pass after those (hooks add overhead);
on CUDA each module is bracketed by CUDA events. CPU runs have no GPU time (``gpu_time`` None).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from engine.backends.base import Measurement, ProgressFn
from engine.backends.keep_high_precision import prepare_cast
from engine.models.entry import BuiltModel
from engine.profiling import gpu_time, invariants
from engine.profiling.accuracy import compare_outputs
from engine.profiling.latency import time_inference
from engine.result import normalise_layers
from engine.settings.request import RunRequest

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def prepare(
    model: BuiltModel, precision: str, device: str, keep_fp32: Sequence[str] = ()
) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The model and inputs moved to ``device`` and cast to ``precision`` (integer inputs kept).

    ``keep_fp32`` (``compile.keep_high_precision``): module paths left in fp32 with casts at their boundary,
    on a copy of the model (``engine.backends.keep_high_precision``)."""
    dtype = DTYPES[precision]
    if keep_fp32 and dtype != torch.float32:
        module = prepare_cast(model, dtype, device, keep_fp32)
    else:
        module = model.module.to(device=device, dtype=dtype)
    inputs = tuple(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for t in model.example_inputs)
    return module, inputs


def run(request: RunRequest, model: BuiltModel, device: str, progress: ProgressFn, workdir: Path) -> Measurement:
    precision = request.compile.precision
    m = request.measure
    warnings = []
    if device == "cpu" and precision != "fp32":
        warnings.append(
            f"{precision} on CPU runs through slow reference kernels; CPU numbers say little about GPU behaviour."
        )
    if m.compare_inductor != "off":
        warnings.append(
            f"measure.compare_inductor ({m.compare_inductor}) times an inductor baseline beside a "
            "tensorrt run; the eager backend timed none. Choose the tensorrt backend to get it."
        )
    progress("prepare", None, f"{precision} on {device}")
    t0 = time.perf_counter()
    module, inputs = prepare(model, precision, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    stages = {"prepare_s": time.perf_counter() - t0}

    latency, samples = time_inference(
        lambda: module(*inputs),
        device=device,
        warmup_iters=m.warmup_iters,
        timed_iters=m.timed_iters,
        batch_size=request.model.batch_size,
        progress=progress,
    )
    peak = int(torch.cuda.max_memory_allocated()) if device.startswith("cuda") else None

    gpu = None
    raw_files: dict[str, Path | bytes] = {}
    if device.startswith("cuda"):
        progress("gpu_time", None, "GPU busy time from a CUDA-activity trace, once steady")
        t0 = time.perf_counter()
        try:
            trace = gpu_time.measure(
                lambda: module(*inputs), per_window=gpu_time.inferences_per_window(latency.median_ms)
            )
            gpu = trace.gpu_time
            warnings += trace.warnings + [f.text for f in invariants.check_figures(latency.median_ms, gpu, None)]
            raw_files["gpu_kernels.csv"] = trace.table.to_csv(index=False).encode()
        except Exception as e:  # no CUPTI, a profiler error: the run stands without GPU time
            warnings.append(f"GPU time not measured: the CUDA-activity trace failed ({type(e).__name__}).")
        stages["gpu_time_s"] = time.perf_counter() - t0

    layers = None
    profiled_sum = None
    if m.layer_profile:
        progress("layer_profile", 0.0, "per-module pass")
        layers = profile_modules(module, inputs, device, m.profile_iters, progress)
        profiled_sum = float(layers["avg_ms"].sum()) if len(layers) else 0.0

    accuracy = None
    if m.accuracy and precision != "fp32":
        progress("accuracy", None, "against eager fp32")
        with torch.inference_mode():
            out = module(*inputs)
        ref_module, ref_inputs = prepare(model, "fp32", "cpu")
        with torch.inference_mode():
            ref = ref_module(*ref_inputs)
        accuracy = compare_outputs(out, ref, "eager fp32 (CPU)")
    # leave the shared module as we found it: fp32 on CPU
    model.module.to(device="cpu", dtype=torch.float32)

    result = Measurement(
        latency=latency,
        latency_samples_ms=samples,
        stages_s=stages,
        peak_memory_bytes=peak,
        accuracy=accuracy,
        profiled_sum_ms=profiled_sum,
        warnings=warnings,
        gpu_time=gpu,
        raw_files=raw_files,
    )
    if layers is not None:
        result.layers = layers
        result.raw_files["eager_module_profile.csv"] = layers.to_csv(index=False).encode()
    return result


def _leaf_modules(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(name, mod) for name, mod in module.named_modules() if name and not any(mod.children())]


def profile_modules(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], device: str, iters: int, progress: ProgressFn
) -> pd.DataFrame:
    """Average time of every leaf module call, in first-call order.

    A module called several times per forward (a shared activation) gets one row per call site,
    named ``path#k``.
    """
    cuda = device.startswith("cuda")
    leaves = _leaf_modules(module)
    records: dict[str, dict] = {}
    call_index: dict[str, int] = {}
    pending: dict[int, list] = {}
    order: list[str] = []

    def pre(name: str):
        def hook(mod, args):
            if cuda:
                ev = torch.cuda.Event(enable_timing=True)
                ev.record()
                pending.setdefault(id(mod), []).append(ev)
            else:
                pending.setdefault(id(mod), []).append(time.perf_counter())

        return hook

    def post(name: str):
        def hook(mod, args, output):
            start = pending[id(mod)].pop()
            k = call_index.get(name, 0)
            call_index[name] = k + 1
            key = name if k == 0 else f"{name}#{k}"
            rec = records.get(key)
            if rec is None:
                rec = records[key] = {
                    "name": key,
                    "module_path": name,
                    "layer_type": type(mod).__name__,
                    "input_shapes": _shapes(args),
                    "output_shapes": _shapes(output),
                    "times": [],
                    "precision": _precision(output),
                }
                order.append(key)
            if cuda:
                end = torch.cuda.Event(enable_timing=True)
                end.record()
                rec["times"].append((start, end))
            else:
                rec["times"].append((time.perf_counter() - start) * 1000.0)

        return hook

    handles = []
    for name, mod in leaves:
        handles.append(mod.register_forward_pre_hook(pre(name)))
        handles.append(mod.register_forward_hook(post(name)))
    try:
        with torch.inference_mode():
            for i in range(iters):
                call_index.clear()
                module(*inputs)
                if i % 5 == 0:
                    progress("layer_profile", i / iters, f"iteration {i}/{iters}")
        if cuda:
            torch.cuda.synchronize()
    finally:
        for h in handles:
            h.remove()
    rows = []
    for i, key in enumerate(order):
        rec = records[key]
        times = [s.elapsed_time(e) for s, e in rec["times"]] if cuda else rec["times"]
        rows.append(
            {
                "order": i,
                "segment": "eager",
                "runtime": "pytorch",
                "name": rec["name"],
                "layer_type": rec["layer_type"],
                "module_path": rec["module_path"],
                "precision": rec["precision"],
                "tactic": "",
                "input_shapes": rec["input_shapes"],
                "output_shapes": rec["output_shapes"],
                "avg_ms": sum(times) / len(times),
            }
        )
    return normalise_layers(pd.DataFrame(rows))


def _shapes(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return "x".join(str(d) for d in obj.shape)
    if isinstance(obj, (list, tuple)):
        return "; ".join(s for s in (_shapes(o) for o in obj) if s)
    return ""


def _precision(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.int8: "int8"}.get(
            obj.dtype, str(obj.dtype).replace("torch.", "")
        )
    if isinstance(obj, (list, tuple)) and obj:
        return _precision(obj[0])
    return ""
