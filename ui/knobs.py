"""Widgets generated from the knob definitions in engine/settings/request.py: one edit adds a knob everywhere."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from engine.capabilities import Capabilities
from engine.settings.knobs import knob_fields, knob_info
from engine.settings.request import CompileSettings, MeasureSettings

COMPILE_FIELDS = {f.name: f for f in CompileSettings.__dataclass_fields__.values()}
MEASURE_FIELDS = {f.name: f for f in MeasureSettings.__dataclass_fields__.values()}
SECTION_FIELDS = {"compile": COMPILE_FIELDS, "measure": MEASURE_FIELDS}


def knob_widget(
    prefix: str,
    f: dataclasses.Field,
    value: Any,
    *,
    disabled: str | None = None,
    key_prefix: str = "knob",
    option_reasons: dict[str, str | None] | None = None,
) -> Any:
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
        return st.selectbox(
            label,
            choices,
            index=choices.index(value) if value in choices else 0,
            format_func=lambda c: f"{c} (unavailable here)" if reasons.get(c) else str(c),
            **kw,
        )
    info = knob_info(f)
    if info.nullable and info.options:  # unset (the library's default) or one of the options
        options = [info.unset_label, *info.options]
        picked = st.selectbox(
            label, options, index=options.index(value if value is not None else info.unset_label), **kw
        )
        return None if picked == info.unset_label else picked
    if isinstance(f.default, bool):
        return st.checkbox(label, value=bool(value), **kw)
    if isinstance(f.default, int):
        return st.number_input(label, value=int(value), step=1, **kw)  # range checked by validate()
    if info.kind in ("shape", "names"):
        text = ",".join(str(v) for v in value) if value else ""
        return st.text_input(label, value=text, **kw)
    return st.text_input(label, value=str(value), **kw)


def knob_section(
    prefix: str,
    cls: type,
    current: Any,
    *,
    advanced: bool,
    disabled_for: dict[str, str],
    columns: int = 2,
    option_reasons: dict[str, dict[str, str | None]] | None = None,
) -> dict[str, Any]:
    """Widgets for the (non-)advanced knobs of one settings class, in a grid. Returns {name: raw value}."""
    values: dict[str, Any] = {}
    chosen = [f for f in knob_fields(cls) if f.metadata["advanced"] == advanced]
    cols = st.columns(columns)
    for i, f in enumerate(chosen):
        with cols[i % columns]:
            values[f.name] = knob_widget(
                prefix,
                f,
                getattr(current, f.name),
                disabled=disabled_for.get(f"{prefix}.{f.name}"),
                option_reasons=(option_reasons or {}).get(f"{prefix}.{f.name}"),
            )
    return values


def compile_disabled_reasons(backend: str, caps: Capabilities) -> dict[str, str]:
    """Compile knobs the chosen backend or this machine cannot honour, with the reason."""
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


def default_precision(caps: Capabilities) -> str:
    """What a study's form starts at: fp16 where there is a GPU, fp32 on the CPU."""
    return "fp16" if caps.cuda_available else "fp32"


def knob_row(
    section: str, names: Sequence[str], *, key_prefix: str, values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The named knobs of one settings section ("compile", "measure") side by side, each at ``values[name]`` or
    its default. Returns {name: raw value}."""
    fields = SECTION_FIELDS[section]
    out: dict[str, Any] = {}
    for column, name in zip(st.columns(len(names)), names, strict=True):
        with column:
            out[name] = knob_widget(
                section, fields[name], (values or {}).get(name, fields[name].default), key_prefix=key_prefix
            )
    return out


def backend_picker(key_prefix: str, caps: Capabilities) -> str:
    """tensorrt or eager where Torch-TensorRT can compile here, else eager only (said in the help)."""
    backends = ["tensorrt", "eager"] if caps.can_compile else ["eager"]
    return st.selectbox(
        "Backend",
        backends,
        key=f"{key_prefix}:backend",
        help=""
        if caps.can_compile
        else "No Torch-TensorRT here: eager only (compile knobs then change nothing but precision).",
    )
