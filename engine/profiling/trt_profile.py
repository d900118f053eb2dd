"""TensorRT per-layer profiles → the ``LAYER_COLUMNS`` table.

Three raw sources, all written by Torch-TensorRT or TensorRT itself:

- the C++ runtime's trex profile (``<engine>_engine_execution_profile.trace``: a JSON list of
  ``{name, timeMs, averageMs, percentage}``, accumulated since profiling was switched on);
- the same runtime's Chrome-trace ("perfetto") profile (``ph: "X"`` events, ``dur`` in µs,
  accumulated time, no call count: the caller says how many inferences it covers);
- per-layer times reported to a ``tensorrt.IProfiler`` (the Python runtime), one record per
  layer per inference.

Layer details (type, precision, tactic, shapes) come from the engine inspector's JSON
(``<engine>_layer_information.json`` / ``get_layer_info()``): full dictionaries at DETAILED
profiling verbosity, bare names otherwise.

Module attribution reads what the converter wrote into the layer name,
``[CONVOLUTION]-[aten_ops.convolution.default]-[layer4.1.conv2/convolution_19]`` → ``layer4.1.conv2``.
Myelin-generated layers (``__myl_…``, ``__mye…``) carry no path: they are marked ``FUSED``, never
guessed from their neighbours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine.result import FUSED, empty_layers, normalise_layers

EXECUTION_PROFILE_SUFFIX = "_engine_execution_profile.trace"
LAYER_INFO_SUFFIX = "_layer_information.json"

# "[TYPE]-[converter target]-[module.path/node_name]" as written by Torch-TensorRT's converters
_CONVERTER_NAME = re.compile(r"\[([A-Za-z0-9_]+)\]-\[([^\]]*)\]-\[([^\]]*)\]")
_MYELIN_PREFIXES = ("__myl", "__mye")
_MYELIN_SUFFIX = re.compile(r"_myl\d+_\d+$")  # every layer of a Myelin graph: "<name>_myl0_8"
_SUBMODULE = re.compile(r"_run_on_(acc|gpu)_(\d+)")

# substrings of TensorRT's "Format/Datatype" strings, checked in this order
_PRECISIONS = (
    ("bfloat16", "bf16"),
    ("bf16", "bf16"),
    ("half", "fp16"),
    ("fp16", "fp16"),
    ("fp8", "fp8"),
    ("fp4", "fp4"),
    ("int8", "int8"),
    ("int4", "int4"),
    ("int32", "int32"),
    ("int64", "int64"),
    ("bool", "bool"),
    ("float", "fp32"),
    ("fp32", "fp32"),
)


@dataclass
class LayerTiming:
    name: str
    avg_ms: float
    total_ms: float | None = None


@dataclass
class LayerInfo:
    name: str
    layer_type: str = ""
    precision: str = ""
    tactic: str = ""
    input_shapes: str = ""
    output_shapes: str = ""


@dataclass
class EngineProfile:
    """One engine's per-layer timings in execution order, plus what the inspector says about each layer."""

    segment: str  # "trt_engine_1" (from the submodule name _run_on_acc_1)
    timings: list[LayerTiming]
    info: dict[str, LayerInfo] = field(default_factory=dict)


class ProfileFormatError(ValueError):
    """A profiler file is not in the format Torch-TensorRT writes."""


def segment_id(submodule_name: str) -> str:
    """``_run_on_acc_1`` → ``trt_engine_1``, ``_run_on_gpu_2`` → ``pytorch_2`` (the partitioner's numbering)."""
    m = _SUBMODULE.search(submodule_name)
    if not m:
        return submodule_name
    return f"{'trt_engine' if m.group(1) == 'acc' else 'pytorch'}_{m.group(2)}"


def module_path(layer_name: str) -> str:
    """The ``nn.Module`` path a TensorRT layer came from, ``FUSED`` for Myelin layers, "" when unknown.

    A layer TensorRT fused from several converter layers (``A + B``) names every part; when the parts
    come from different modules, all of them are listed (``conv1 + relu``) rather than picking one.
    Ops called directly in the top-level ``forward`` have an empty module path and stay "", as do
    TensorRT's own layers (reformatting copies) outside a Myelin graph.
    """
    if layer_name.startswith(_MYELIN_PREFIXES):
        return FUSED
    parts = _CONVERTER_NAME.findall(layer_name)
    if not parts:
        # a Myelin kernel named after what it fused (``_gemm_mha_v2_myl0_8``) carries no path either
        return FUSED if _MYELIN_SUFFIX.search(layer_name) else ""
    paths: list[str] = []
    for _type, _target, location in parts:
        path = location.rsplit("/", 1)[0] if "/" in location else ""
        if path and path not in paths:
            paths.append(path)
    return " + ".join(paths)


def precision_of(fmt: str) -> str:
    """``Half`` / ``Row major linear FP16 format`` → ``fp16``; "" when unrecognised."""
    low = fmt.lower()
    for needle, name in _PRECISIONS:
        if needle in low:
            return name
    return ""


def parse_trex_profile(text: str) -> list[LayerTiming]:
    """The C++ runtime's trex-format execution profile."""
    rows = _load_json_list(text, "trex profile")
    out = []
    for r in rows:
        if "name" not in r or "averageMs" not in r:
            raise ProfileFormatError(f"trex profile entry without name/averageMs: {str(r)[:120]}")
        out.append(LayerTiming(r["name"], float(r["averageMs"]), float(r.get("timeMs", 0.0))))
    return out


def parse_perfetto_trace(text: str, iterations: int) -> list[LayerTiming]:
    """The C++ runtime's Chrome-trace ("perfetto") execution profile.

    ``dur`` is the accumulated time in µs of every inference since profiling was enabled; the file
    carries no call count, so ``iterations`` (how many inferences ran) turns it into a mean.
    Only engine-execution events are layers; CPU-function events (input/output handling) are skipped.
    """
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    rows = _load_json_list(text, "Chrome trace")
    out = []
    for r in rows:
        if r.get("ph") != "X" or not str(r.get("pid", "")).endswith("Engine Execution"):
            continue
        total_ms = float(r["dur"]) / 1000.0
        out.append(LayerTiming(r["name"], total_ms / iterations, total_ms))
    return out


def aggregate_reported_times(records: Iterable[tuple[str, float]], iterations: int) -> list[LayerTiming]:
    """``IProfiler.report_layer_time`` records (one per layer per inference) → mean per layer, first-seen order."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    totals: dict[str, float] = {}
    for name, ms in records:
        totals[name] = totals.get(name, 0.0) + float(ms)
    return [LayerTiming(n, t / iterations, t) for n, t in totals.items()]


def parse_layer_info(text: str) -> dict[str, LayerInfo]:
    """The engine inspector's JSON: ``{"Layers": [...], "Bindings": [...]}``.

    At DETAILED verbosity each layer is a dict (Name, LayerType, Inputs/Outputs with Dimensions and
    Format/Datatype, TacticName); at LAYER_NAMES_ONLY each is a bare string (details stay empty).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileFormatError(f"layer information is not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("Layers"), list):
        raise ProfileFormatError("layer information has no Layers list")
    out: dict[str, LayerInfo] = {}
    for layer in data["Layers"]:
        if isinstance(layer, str):
            out[layer] = LayerInfo(layer)
            continue
        outputs = layer.get("Outputs") or []
        fmt = outputs[0].get("Format/Datatype", "") if outputs else ""
        out[layer["Name"]] = LayerInfo(
            name=layer["Name"],
            layer_type=str(layer.get("LayerType", "")),
            precision=precision_of(fmt),
            tactic=str(layer.get("TacticName", "")),
            input_shapes=_shapes(layer.get("Inputs") or []),
            output_shapes=_shapes(outputs),
        )
    return out


def layer_table(engines: list[EngineProfile]) -> pd.DataFrame:
    """Engines in execution order → one ``LAYER_COLUMNS`` row per layer, share of the whole run."""
    rows = []
    for eng in engines:
        for t in eng.timings:
            info = eng.info.get(t.name) or LayerInfo(t.name)
            rows.append(
                {
                    "segment": eng.segment,
                    "runtime": "tensorrt",
                    "name": t.name,
                    "layer_type": info.layer_type,
                    "module_path": module_path(t.name),
                    "precision": info.precision,
                    "tactic": info.tactic,
                    "input_shapes": info.input_shapes,
                    "output_shapes": info.output_shapes,
                    "avg_ms": t.avg_ms,
                }
            )
    if not rows:
        return empty_layers()
    df = pd.DataFrame(rows)
    df["order"] = range(len(df))
    return normalise_layers(df)


def read_profile_dir(directory: Path, engine_names: list[str] | None = None) -> list[EngineProfile]:
    """Engine profiles the C++ runtime wrote into ``directory`` (trex format), in ``engine_names`` order.

    ``engine_names`` are the TRT submodule names (``_run_on_acc_1``) in execution order; without it the
    files are taken in the partitioner's numeric order.
    """
    files = {p.name[: -len(EXECUTION_PROFILE_SUFFIX)]: p for p in directory.glob(f"*{EXECUTION_PROFILE_SUFFIX}")}
    if engine_names is None:
        keys = sorted(files, key=submodule_number)
    else:
        keys = []
        for name in engine_names:
            match = [k for k in files if k == name or k == f"{name}_engine"]
            if match:
                keys.append(match[0])
    out = []
    for key in keys:
        info_path = directory / f"{key}{LAYER_INFO_SUFFIX}"
        info = parse_layer_info(info_path.read_text()) if info_path.exists() else {}
        out.append(EngineProfile(segment_id(key), parse_trex_profile(files[key].read_text()), info))
    return out


def submodule_number(name: str) -> int:
    m = _SUBMODULE.search(name)
    return int(m.group(2)) if m else 1 << 30


def _shapes(tensors: list[dict]) -> str:
    return "; ".join("x".join(str(d) for d in t.get("Dimensions", [])) for t in tensors if "Dimensions" in t)


def _load_json_list(text: str, what: str) -> list[dict]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileFormatError(f"{what} is not JSON: {e}") from None
    if not isinstance(rows, list):
        raise ProfileFormatError(f"{what} is not a JSON list")
    return rows
