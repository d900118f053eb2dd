"""The per-layer pass of a compiled module: profiling ON, engines and PyTorch subgraphs in execution order.

Engines profile themselves: the C++ runtime writes trex files (``enable_profiling(profiling_results_dir,
profile_format="trex")``), the Python runtime (Torch-TensorRT 2.11) reports every layer to an
``IProfiler``. PyTorch subgraphs between engines are timed with CUDA events around their calls in the same
pass. CUDA graphs are off here. Profiling adds overhead per layer, so the per-layer times give shares and
an order, not the inference's GPU time (``engine.profiling.gpu_time`` measures that).

The backend hands the engine modules in; nothing here imports Torch-TensorRT.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from engine.backends.base import ProgressFn
from engine.profiling import trt_profile
from engine.result import empty_layers, normalise_layers


def profile_layers(
    compiled: Any,
    inputs: tuple[torch.Tensor, ...],
    trt_modules: list[tuple[str, Any]],
    torch_submodules: list[tuple[str, Any]],
    iters: int,
    profile_dir: Path,
    progress: ProgressFn,
    *,
    python_runtime: bool,
    make_profiler: Callable[[], Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Path | bytes]]:
    """Run ``iters`` profiled inferences; the layer table and the raw files (profiles, layer information).

    ``python_runtime``: the engines are Python-runtime modules, profiled through ``make_profiler()``
    (an ``IProfiler`` with a ``records`` list); otherwise C++-runtime modules writing into ``profile_dir``.
    """
    profile_dir.mkdir(parents=True, exist_ok=True)
    profilers: dict[str, Any] = {}
    for name, mod in trt_modules:
        if python_runtime:
            if make_profiler is None:
                raise ValueError("the Python runtime's per-layer pass needs make_profiler")
            profilers[name] = make_profiler()
            mod.enable_profiling(profiler=profilers[name])
        else:
            mod.enable_profiling(profiling_results_dir=str(profile_dir), profile_format="trex")
    torch_times: dict[str, list[tuple[Any, Any]]] = {}
    hooks = []
    for name, sub in torch_submodules:
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
            engines[name] = trt_profile.EngineProfile(
                trt_profile.segment_id(name), timings, trt_profile.parse_layer_info(info_text)
            )
    else:
        for eng in trt_profile.read_profile_dir(profile_dir, [n for n, _ in trt_modules]):
            engines[next(n for n, _ in trt_modules if trt_profile.segment_id(n) == eng.segment)] = eng
        files.update({p.name: p for p in sorted(profile_dir.iterdir()) if p.is_file()})
    return _in_execution_order(trt_modules, engines, torch_times), files


def _in_execution_order(
    trt_modules: list[tuple[str, Any]],
    engines: dict[str, trt_profile.EngineProfile],
    torch_times: dict[str, list[tuple[Any, Any]]],
) -> pd.DataFrame:
    """One table: engines from their profiles, PyTorch subgraphs from CUDA events, by submodule number."""
    tables = []
    order = [(name, "tensorrt") for name, _ in trt_modules] + [(name, "pytorch") for name in torch_times]
    order.sort(key=lambda x: trt_profile.submodule_number(x[0]))
    for name, kind in order:
        if kind == "tensorrt" and name in engines:
            tables.append(trt_profile.layer_table([engines[name]]))
        elif kind == "pytorch" and torch_times.get(name):
            times = [s.elapsed_time(e) for s, e in torch_times[name]]
            tables.append(
                pd.DataFrame(
                    [
                        {
                            "segment": trt_profile.segment_id(name),
                            "runtime": "pytorch",
                            "name": name,
                            "layer_type": "PyTorch subgraph",
                            "module_path": "",
                            "precision": "",
                            "tactic": "",
                            "input_shapes": "",
                            "output_shapes": "",
                            "avg_ms": sum(times) / len(times),
                        }
                    ]
                )
            )
    if not tables:
        return empty_layers()
    df = pd.concat(tables, ignore_index=True)
    df["order"] = range(len(df))
    return normalise_layers(df)


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
