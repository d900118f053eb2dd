"""Figures of a localisation: error growth along the network, the bisection's builds, the fix against the unfixed
build and the reference. Data in (``ErrorGrowth``, ``Localisation``), ``go.Figure`` out; one colour per precision
and pass/fail colours from ``engine.charts.theme``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.charts.theme import (
    FAIL_COLOUR,
    KEPT_COLOUR,
    PASS_COLOUR,
    REFERENCE_COLOUR,
    fit_title,
    message_figure,
    precision_colour,
    titled,
)
from engine.studies.localisation.error_table import FORMAT_NAMES, ErrorGrowth
from engine.studies.localisation.study import Localisation

NONFINITE_SYMBOL = "x"


def _variant_colour(variant: str, i: int) -> str:
    for name in ("fp8", "int8", "fp16", "bf16"):
        if variant.startswith(name):
            return precision_colour(name)
    return precision_colour("fp32") if i else "#8C564B"


def error_growth(growth: ErrorGrowth | None, kept: Sequence[str] = ()) -> go.Figure:
    """Top: each variant's relative L2 error against fp32, unit by unit in execution order (log scale; NaN/inf
    drawn as crosses on the top edge), the tolerance and the first unit beyond it. Bottom: the largest
    activation against its format's largest value (1 = the limit). ``kept``: the fix, marked on both."""
    if growth is None or growth.table.empty:
        return message_figure("No PyTorch-side error growth for this localisation.")
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.62, 0.38],
        subplot_titles=("Relative L2 error against eager fp32", "Largest activation / largest value of its format"),
    )
    finite_errors = growth.table["rel_err"][growth.table["rel_err"].map(lambda v: math.isfinite(v) and v > 0)]
    top = float(finite_errors.max()) * 3 if len(finite_errors) else 1.0
    top = max(top, growth.tolerance * 3)
    for i, variant in enumerate(growth.variants):
        rows = growth.rows(variant)
        colour = _variant_colour(variant, i)
        custom = rows[["module", "layer_type", "act_max", "format", "format_max", "nan", "inf"]].astype(object)
        custom["format"] = custom["format"].map(lambda f: FORMAT_NAMES.get(f, f))
        hover = (
            "%{text}<br>%{customdata[1]}<br>rel. L2 %{y:.3g}<br>activation max %{customdata[2]:.3g} of "
            "%{customdata[3]} %{customdata[4]:.6g}<br>NaN %{customdata[5]}, inf %{customdata[6]}<extra>"
            f"{variant}</extra>"
        )
        finite = rows[(rows["nan"] + rows["inf"] == 0) & rows["rel_err"].map(math.isfinite)]
        fig.add_trace(
            go.Scatter(
                x=finite["order"],
                y=finite["rel_err"].clip(lower=1e-7),
                mode="lines+markers",
                name=variant,
                line={"color": colour},
                marker={"size": 4},
                text=finite["unit"],
                customdata=custom.loc[finite.index],
                hovertemplate=hover,
                legendgroup=variant,
            ),
            row=1,
            col=1,
        )
        bad = rows.loc[rows.index.difference(finite.index)]
        if len(bad):
            fig.add_trace(
                go.Scatter(
                    x=bad["order"],
                    y=[top] * len(bad),
                    mode="markers",
                    name=f"{variant}: NaN/inf",
                    marker={"symbol": NONFINITE_SYMBOL, "size": 9, "color": colour},
                    text=bad["unit"],
                    customdata=custom.loc[bad.index],
                    hovertemplate="%{text}: output not finite<br>NaN %{customdata[5]}, inf "
                    "%{customdata[6]}<extra></extra>",
                    legendgroup=variant,
                ),
                row=1,
                col=1,
            )
        ranged = rows[rows["format"] != "fp32"]  # fp32's 3.4e38 is never near: nothing to see
        fig.add_trace(
            go.Scatter(
                x=ranged["order"],
                y=ranged["range_ratio"],
                mode="markers",
                name=f"{variant} range",
                showlegend=False,
                marker={"size": 5, "color": colour},
                text=ranged["unit"],
                customdata=custom.loc[ranged.index],
                legendgroup=variant,
                hovertemplate="%{text}<br>activation max %{customdata[2]:.3g} = %{y:.3g} × "
                "%{customdata[3]}'s %{customdata[4]:.6g}<extra></extra>",
            ),
            row=2,
            col=1,
        )
        first = growth.first_crossing(variant)
        if first is not None:
            fig.add_vline(x=float(first["order"]), line={"color": colour, "dash": "dot", "width": 1}, row=1, col=1)
            fig.add_annotation(
                x=float(first["order"]),
                y=1.0,
                yref="y domain",
                text=f"first beyond: {first['unit']}",
                showarrow=False,
                # in the right half the label runs leftwards, clear of the plot's edge and the tolerance label
                xanchor="right" if float(first["order"]) > float(growth.table["order"].max()) / 2 else "left",
                font={"size": 11, "color": colour},
                row=1,
                col=1,
            )
    fig.add_hline(
        y=growth.tolerance,
        line={"color": "#444", "dash": "dash", "width": 1},
        row=1,
        col=1,
    )
    fig.add_annotation(  # by hand: add_hline's own label lands at the wrong height on a log axis
        x=0.0,
        xref="x domain",
        y=math.log10(growth.tolerance),
        text=f"tolerance {growth.tolerance:g}",
        showarrow=False,
        xanchor="left",
        yanchor="top",
        font={"size": 11, "color": "#444"},
        row=1,
        col=1,
    )
    fig.add_hline(
        y=1.0,
        line={"color": "#444", "dash": "dash", "width": 1},
        row=2,
        col=1,
        annotation_text="format's largest value",
        annotation_position="bottom right",
    )
    if kept:
        rows = growth.rows(growth.variants[0])
        marked = rows[rows["module"].isin(kept)]
        fig.add_trace(
            go.Scatter(
                x=marked["order"],
                y=[top] * len(marked),
                mode="markers",
                name="kept by the fix",
                marker={"symbol": "triangle-down", "size": 11, "color": KEPT_COLOUR},
                text=marked["unit"],
                hovertemplate="%{text}: kept in higher precision<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.update_yaxes(type="log", row=1, col=1, title_text="rel. L2", exponentformat="e")
    fig.update_yaxes(type="log", row=2, col=1, title_text="max / limit", exponentformat="e")
    fig.update_xaxes(title_text="unit, in execution order", row=2, col=1)
    fig.update_layout(
        title=titled(f"Error through {growth.model}", f"{growth.samples} samples, {growth.device}"),
        height=560,
        legend={"orientation": "h", "y": -0.15},
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
    )
    return fit_title(fig)


def bisection_steps(study: Localisation) -> go.Figure:
    """Each build: how many modules it kept (bar), green when it passed, red when it failed, grey for the
    reference; the hover gives its accuracy."""
    table = study.steps_table()
    if table.empty:
        return message_figure("No build yet.")
    colours = [
        REFERENCE_COLOUR
        if r.role == "reference"
        else PASS_COLOUR
        if r.passed
        else FAIL_COLOUR
        if r.passed is False
        else "#BBBBBB"
        for r in table.itertuples()
    ]
    text = [
        ("crashed" if r.crashed else "pass" if r.passed else "fail" if r.passed is False else r.state)
        for r in table.itertuples()
    ]
    why = [r.why or ("" if r.rel_l2 is None else f"rel. L2 {r.rel_l2:.3g}") for r in table.itertuples()]
    fig = go.Figure(
        go.Bar(
            x=[f"{r.step}. {r.role}" for r in table.itertuples()],
            y=table["kept"],
            marker_color=colours,
            text=text,
            textposition="outside",
            customdata=list(zip(table["kept_modules"], why, strict=True)),
            hovertemplate="%{x}: %{y} kept (%{customdata[0]})<br>%{customdata[1]}<extra></extra>",
        )
    )
    fig.update_layout(
        title=titled(f"Builds: modules kept in {study.high_precision}", f"pass or fail: {study.criterion.text()}"),
        yaxis_title="modules kept",
        height=320,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
    )
    return fit_title(fig)


def fix_against(study: Localisation) -> go.Figure:
    """Latency of the unfixed build, the reference and the fix (GPU kernel time when all have it, else end to end),
    each bar labelled with its accuracy."""
    table = study.comparison_table()
    if table.empty or table["e2e_ms"].isna().all():
        return message_figure("No latency measured for these builds (measured on the PyTorch model, not an engine).")
    gpu = table["gpu_ms"].notna().all()
    y = table["gpu_ms"] if gpu else table["e2e_ms"]
    labels = []
    for r in table.itertuples():
        labels.append("not finite" if r.rel_l2 is None or not math.isfinite(r.rel_l2) else f"rel. L2 {r.rel_l2:.3g}")
    colours = [FAIL_COLOUR if not p else PASS_COLOUR for p in table["passed"]]
    fig = go.Figure(
        go.Bar(
            x=table["build"],
            y=y,
            marker_color=colours,
            text=labels,
            textposition="outside",
            hovertemplate="%{x}: %{y:.3f} ms<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=titled(
            "Against the unfixed build", f"and the reference; {'GPU kernel time' if gpu else 'end-to-end median'}"
        ),
        yaxis_title="ms per inference",
        height=340,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
    )
    return fit_title(fig)
