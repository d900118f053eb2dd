"""Every setting of compared runs side by side: the settings table (request and environment, one column per run),
the settings that differ between them, what they read as, and the short labels that tell the runs apart.

Settings are ordered most telling first (``setting_rank``): what was run, at what size, in what precision, with
which knobs, where, on what software; settings that change nothing measured (engine caching, iteration counts)
come after those that do (``engine.studies.knobs.KNOBS`` says which).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from engine.result import RunResult
from engine.settings.inputs import parse_inputs
from engine.studies.knobs import knob

# most telling first: what was run, at what size, in what precision, with which knobs, where, on what software
_RANK = (
    "model.source",
    "model.batch_size",
    "model.inputs",
    "model.input_shape",
    "model.sequence_length",
    "backend",
    "mode",
    "compile.precision",
    "compile.quantization",
    "compile.quant_base_precision",
    "compile.optimization_level",
    "compile.min_block_size",
    "compile.torch_executed_ops",
    "compile.enable_cudagraphs",
    "compile.use_python_runtime",
    "compile.frontend",
    "compile.",
    "env.device",
    "env.device_name",
    "env.gpu",
    "env.",
    "model.",
)


def setting_rank(setting: str) -> tuple[int, int, str]:
    """Sort key: settings that matter before incidental ones, then by ``_RANK``."""
    matters = 0 if knob(setting).matters else 1
    rank = next(
        (i for i, g in enumerate(_RANK) if setting == g or (g.endswith(".") and setting.startswith(g))), len(_RANK)
    )
    return matters, rank, setting


def inputs_text(request: Mapping[str, Any]) -> str:
    """A run's ``model.inputs`` in words: "static", "dynamic batch 1..32" (the dims that have a range)."""
    raw = (request.get("model") or {}).get("inputs")
    if not raw:
        return "static"
    try:
        specs = parse_inputs(raw)
    except Exception:  # noqa: BLE001 - a stored request the current rules refuse: say so instead of failing
        return "custom inputs"
    ranges: dict[str, tuple[int, int]] = {}
    for s in specs:
        for d in s.dynamic_dims():
            ranges.setdefault(s.dim_name(d) or f"{s.name}[{d}]", (s.lower[d], s.upper[d]))
    if not ranges:
        return "static"
    return "dynamic " + ", ".join(f"{name} {lo}..{hi}" for name, (lo, hi) in ranges.items())


def run_label(run: RunResult) -> str:
    """Short, unique name of a run for legends and column headers (``RunResult.label``)."""
    return run.label


def gpu_label(run: RunResult, with_host: bool = False) -> str:
    """The device that measured a run: "H200 #0" (GPU 0 of its host, as job workers record it),
    "H100 80GB HBM3" (a run that recorded no index), "CPU"."""
    env = run.env
    if env.get("device") != "cuda":
        return "CPU"
    name = str(env.get("device_name") or "GPU").removeprefix("NVIDIA ").strip() or "GPU"
    index = env.get("gpu_index")
    label = name if index is None else f"{name} #{index}"
    return f"{label} @{env['host']}" if with_host and env.get("host") else label


def gpu_labels(runs: Sequence[RunResult]) -> dict[str, str]:
    """Run id -> ``gpu_label``, with the host added when the runs come from several hosts (each has a #0)."""
    hosts = {r.env.get("host") for r in runs if r.env.get("gpu_index") is not None}
    return {r.run_id: gpu_label(r, with_host=len(hosts) > 1) for r in runs}


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (list, tuple)):
        out[prefix] = ", ".join(str(v) for v in obj) if obj else "—"
    else:
        out[prefix] = "—" if obj is None else obj


ENV_KEYS = ("device_name", "flavour", "torch", "torch_tensorrt", "tensorrt")


_ALIASES = {
    "compile.optimization_level": "opt",
    "compile.min_block_size": "mbs",
    "model.batch_size": "batch",
    "compile.precision": "prec",
    "env.device_name": "device",
    "env.gpu": "gpu",
    "model.source": "model",
    "model.inputs": "shapes",
    "compile.enable_cudagraphs": "cudagraphs",
    "compile.use_python_runtime": "python rt",
}


def _alias(setting: str) -> str:
    return _ALIASES.get(setting, setting.rsplit(".", 1)[-1])


def short_labels(runs: Sequence[RunResult]) -> dict[str, str]:
    """Run id -> what tells it apart from the other runs (the two most telling settings that differ; incidental
    ones such as engine caching only when nothing else does), plus its id tail.

    e.g. ``opt=0 cdb315ba`` when only optimization_level differs; fits a narrow card.
    """
    values = differing_values(runs) if len(runs) > 1 else {}
    ranked = sorted(values, key=setting_rank)
    shown = [s for s in ranked if knob(s).matters][:2] or ranked[:2]
    labels = {}
    for i, r in enumerate(runs):
        parts = [f"{_alias(setting)}={values[setting][i]}" for setting in shown]
        labels[r.run_id] = " ".join(parts + [r.run_id[-8:]]) if parts else r.run_id[-8:]
    return labels


def settings_table(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Every request setting and environment version, one row per setting, one column per run,
    with a ``differs`` column that is True where the runs disagree. ``env.gpu`` (which GPU, "H200 #1")
    is there when a run recorded its GPU index."""
    columns: dict[str, dict[str, Any]] = {}
    gpus = gpu_labels(runs) if any(r.env.get("gpu_index") is not None for r in runs) else {}
    for r in runs:
        flat: dict[str, Any] = {}
        _flatten("", r.request, flat)
        for k in ENV_KEYS:
            flat[f"env.{k}"] = r.env.get(k) if r.env.get(k) is not None else "—"
        if gpus:
            flat["env.gpu"] = gpus[r.run_id]
        columns[run_label(r)] = flat
    df = pd.DataFrame(columns)
    df = df.loc[sorted(df.index, key=setting_rank)]
    df.index.name = "setting"
    df = df.astype(str).fillna("—")
    df["differs"] = df.nunique(axis=1) > 1
    return df


def differing_settings(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Only the settings (knobs, versions, GPU) whose values differ between the runs."""
    df = settings_table(runs)
    return df[df["differs"]].drop(columns="differs")


def differing_values(runs: Sequence[RunResult]) -> dict[str, list[str]]:
    """Each differing setting -> the runs' values in run order, as a reader wants them (dynamic inputs as
    "dynamic batch 1..32", not their JSON)."""
    differ = differing_settings(runs)
    out = {}
    for setting, values in differ.iterrows():
        if setting == "model.inputs":
            out[setting] = [inputs_text(r.request) for r in runs]
        else:
            out[setting] = [str(v) for v in values]
    return out


DIFF_STYLE = "background-color: #FFF3CD; font-weight: 600"


def highlight_differences(row: pd.Series) -> list[str]:
    """Styler row function: highlight a setting whose values differ between the runs."""
    values = row.drop(labels=["differs"], errors="ignore")
    differs = bool(row["differs"]) if "differs" in row else values.astype(str).nunique() > 1
    return [DIFF_STYLE if differs else ""] * len(row)
