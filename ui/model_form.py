"""The one model form of every page that starts work (Profile, the Sweeps tabs, Where it breaks): model, batch size,
input shape (the sequence length for a text model), the precision and the inputs JSON where the page asks for them,
and under them the inputs these settings feed the model, or why they don't fit together.

The widgets are built from ``ModelSpec``'s knob definitions (labels, help) and keyed ``<key>:model.<field>``
(``<key>:compile.precision``), so a shared test or a second form on the page finds each one by its field.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine.errors import ConfigError, ModelError
from engine.models import files as model_files
from engine.models import registry
from engine.settings.knobs import knob_fields
from engine.settings.request import ModelSpec, RunRequest
from ui.knobs import COMPILE_FIELDS, knob_widget
from ui.markdown import plain

FIELDS = {f.name: f for f in knob_fields(ModelSpec)}
INPUTS_PLACEHOLDER = (
    '[{"name": "x", "shape": [8, 3, 224, 224], "min_shape": [1, 3, 224, 224], '
    '"max_shape": [32, 3, 224, 224], "dtype": "float32"}]'
)


def _meta(name: str) -> tuple[str, str]:
    meta = FIELDS[name].metadata
    return meta["label"], meta["help"]


def describe_inputs(model_raw: dict[str, Any]) -> str:
    """The inputs the form's model settings would feed the model, or why they don't fit together."""
    try:
        return registry.describe_inputs(RunRequest.from_dict({"model": model_raw}).model)
    except ConfigError as e:
        return f":red[**{e.field}**: {plain(e.message)}]"
    except ModelError as e:
        return f":red[{plain(e)}]"


def model_form(
    key: str,
    *,
    source: str | None = None,
    batch_size: int | None = 1,
    precision: str | None = None,
    inputs: bool = False,
) -> dict[str, Any]:
    """The form in one row (model, batch, shape, precision), the inputs JSON in an expander below when ``inputs``,
    then the inputs described. ``source``: the model picked at first (default: ``ModelSpec``'s); ``batch_size``:
    the batch at first, None to leave the batch out (a batch sweep sets it per point); ``precision``: the precision
    at first, None to leave it out. Returns the raw request part, ``{"model": {...}}`` with
    ``"compile": {"precision": ...}`` when asked (validated later by ``RunRequest.from_dict``)."""
    sources = registry.available_sources()
    start = next((s for s in (source, ModelSpec().source) if s in sources), sources[0])
    widths = [3, *([1] if batch_size is not None else []), 2, *([1] if precision is not None else [])]
    columns = iter(st.columns(widths))
    label, help_text = _meta("source")
    with next(columns):
        picked = st.selectbox(
            label,
            sources,
            index=sources.index(start),
            key=f"{key}:model.source",
            help=f"{help_text} Type to search. Built-in models get random weights from the "
            "seed (nothing is downloaded); file: models come from the models directory "
            f"({model_files.models_dir()}).",
        )
    raw: dict[str, Any] = {"source": picked}
    if batch_size is not None:
        label, help_text = _meta("batch_size")
        with next(columns):
            raw["batch_size"] = st.number_input(
                label, value=batch_size, step=1, key=f"{key}:model.batch_size", help=help_text
            )  # the range is checked with the request
    entry = registry.REGISTRY.get(picked)
    with next(columns):
        if entry is not None and entry.input_kind == "text":
            label, help_text = _meta("sequence_length")
            raw["sequence_length"] = st.number_input(
                label,
                value=None,
                step=1,
                key=f"{key}:model.sequence_length",
                help=help_text,
                placeholder=f"model default ({entry.default_input_shape[0]})",
            )
        else:
            label, help_text = _meta("input_shape")
            shown = (
                f"model default: {','.join(map(str, entry.default_input_shape))}"
                if entry is not None
                else "from the model file"
            )
            raw["input_shape"] = st.text_input(
                label, value="", placeholder=shown, key=f"{key}:model.input_shape", help=help_text
            )
    form: dict[str, Any] = {"model": raw}
    if precision is not None:
        with next(columns):
            form["compile"] = {
                "precision": knob_widget("compile", COMPILE_FIELDS["precision"], precision, key_prefix=key)
            }
    if inputs:
        label, help_text = _meta("inputs")
        with st.expander("Inputs: dynamic shapes, several inputs, dtypes"):
            text = st.text_area(
                f"{label} (JSON)",
                value="",
                key=f"{key}:model.inputs",
                height=110,
                placeholder=INPUTS_PLACEHOLDER,
                help=f"{help_text} shape is the opt shape (batch included); min_shape/max_shape "
                "make a dynamic engine; value_range bounds integer inputs such as token ids.",
            )
        raw["inputs"] = text or None
    st.caption(describe_inputs(raw))
    return form
