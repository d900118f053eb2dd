"""Widgets generated from the knob definitions in engine/config.py: one edit adds a knob everywhere."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from engine.capabilities import Capabilities
from engine.config import CompileSettings, MeasureSettings, knob_fields

OPT_DEFAULT_LABEL = "default (TensorRT: 3)"


COMPILE_FIELDS = {f.name: f for f in CompileSettings.__dataclass_fields__.values()}
MEASURE_FIELDS = {f.name: f for f in MeasureSettings.__dataclass_fields__.values()}


def knob_widget(prefix: str, f: dataclasses.Field, value: Any, *, disabled: str | None = None,
                key_prefix: str = "knob", option_reasons: dict[str, str | None] | None = None) -> Any:
    """One widget for one knob; returns the raw value (validated later by RunRequest.from_dict)."""
    meta = f.metadata
    dotted = f"{prefix}.{f.name}" if prefix else f.name
    key = f"{key_prefix}:{dotted}"
    help_text = meta["help"] + (f"\n\nUnavailable here: {disabled}" if disabled else "")
    kw: dict[str, Any] = {"help": help_text, "disabled": bool(disabled), "key": key}
    label = meta["label"]
    if meta["choices"]:
        choices = list(meta["choices"])
        reasons = option_reasons or {}
        return st.selectbox(label, choices, index=choices.index(value) if value in choices else 0,
                            format_func=lambda c: f"{c} (unavailable here)" if reasons.get(c) else str(c), **kw)
    if f.name == "optimization_level":
        options = [OPT_DEFAULT_LABEL, 0, 1, 2, 3, 4, 5]
        picked = st.selectbox(label, options, index=options.index(value if value is not None else OPT_DEFAULT_LABEL),
                              **kw)
        return None if picked == OPT_DEFAULT_LABEL else picked
    if isinstance(f.default, bool):
        return st.checkbox(label, value=bool(value), **kw)
    if isinstance(f.default, int):
        return st.number_input(label, value=int(value), step=1, **kw)   # range checked by validate()
    if f.name in ("input_shape", "torch_executed_ops", "keep_high_precision"):
        text = ",".join(str(v) for v in value) if value else ""
        return st.text_input(label, value=text, **kw)
    return st.text_input(label, value=str(value), **kw)


def knob_section(prefix: str, cls: type, current: Any, *, advanced: bool, disabled_for: dict[str, str],
                 columns: int = 2, option_reasons: dict[str, dict[str, str | None]] | None = None) -> dict[str, Any]:
    """Widgets for the (non-)advanced knobs of one settings class, in a grid. Returns {name: raw value}."""
    values: dict[str, Any] = {}
    chosen = [f for f in knob_fields(cls) if f.metadata["advanced"] == advanced]
    cols = st.columns(columns)
    for i, f in enumerate(chosen):
        with cols[i % columns]:
            values[f.name] = knob_widget(prefix, f, getattr(current, f.name),
                                         disabled=disabled_for.get(f"{prefix}.{f.name}"),
                                         option_reasons=(option_reasons or {}).get(f"{prefix}.{f.name}"))
    return values


def compile_disabled_reasons(backend: str, caps: Capabilities) -> dict[str, str]:
    """Compile knobs the chosen backend or this machine cannot honour, with the reason."""
    from engine.config import CompileSettings

    reasons: dict[str, str] = {}
    for f in knob_fields(CompileSettings):
        dotted = f"compile.{f.name}"
        if f.name == "precision":
            continue
        if backend != "tensorrt":
            reasons[dotted] = "only used by the tensorrt backend"
        elif not caps.can_compile:
            reasons[dotted] = caps.disabled_reason("backend", "tensorrt") or "Torch-TensorRT unavailable"
        else:
            r = caps.disabled_reason(dotted, True)
            if r:
                reasons[dotted] = r
    return reasons


def describe_inputs(model_raw: dict[str, Any]) -> str:
    """The inputs the form's model settings would feed the model, or why they don't fit together."""
    from engine.config import ConfigError, RunRequest
    from engine.models import ModelError
    from engine.models import describe_inputs as describe
    from ui.markdown import plain

    try:
        return describe(RunRequest.from_dict({"model": model_raw}).model)
    except ConfigError as e:
        return f":red[**{e.field}**: {plain(e.message)}]"
    except ModelError as e:
        return f":red[{plain(e)}]"


def precision_and_iterations(key_prefix: str, caps: Capabilities) -> tuple[str, int, int]:
    """One row: precision (fp16 where there is a GPU), warm-up and timed iterations, as the sweep forms ask."""
    c1, c2, c3 = st.columns(3)
    with c1:
        precision = knob_widget("compile", COMPILE_FIELDS["precision"], "fp16" if caps.cuda_available else "fp32",
                                key_prefix=key_prefix)
    with c2:
        warmup = knob_widget("measure", MEASURE_FIELDS["warmup_iters"], 20, key_prefix=key_prefix)
    with c3:
        timed = knob_widget("measure", MEASURE_FIELDS["timed_iters"], 100, key_prefix=key_prefix)
    return precision, warmup, timed
