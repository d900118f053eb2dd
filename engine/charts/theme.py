"""The one look of every chart: what each colour means, the palettes, the shared layout defaults and the figure
that says why there is no chart.

Colours mean the same thing on every chart: TensorRT green vs PyTorch orange, one colour per precision, one stable
colour per layer type (hashed from its name, so ``Conv2d`` looks the same on the Layers and Compare pages), one
colour per compared run by position, pass green and fail red. A measured spread looks the same on every study chart
too: a shaded band with the median line over it (``band_and_median``), error bars from a low and a high (``spread``).
"""

from __future__ import annotations

import re
import textwrap
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

RUNTIME_COLOURS = {"tensorrt": "#76B900", "pytorch": "#EE4C2C"}
RUNTIME_NAMES = {"tensorrt": "TensorRT", "pytorch": "PyTorch"}
PRECISION_COLOURS = {
    "fp32": "#1F77B4",
    "fp16": "#FF7F0E",
    "bf16": "#9467BD",
    "int8": "#D62728",
    "fp8": "#8C564B",
    "int32": "#17BECF",
    "int64": "#BCBD22",
    "bool": "#7F7F7F",
}
STRATEGY_COLOURS = {"static": "#1F77B4", "dynamic": "#FF7F0E"}
OTHER_COLOUR = "#B8B8B8"
PASS_COLOUR, FAIL_COLOUR, REFERENCE_COLOUR, KEPT_COLOUR = "#2CA02C", "#D62728", "#7F7F7F", "#9467BD"
LAYER_TYPE_PALETTE = qualitative.Dark24 + qualitative.Light24
RUN_PALETTE = qualitative.Set2
MODULE_PALETTE = qualitative.Pastel + qualitative.Set3
SERIES_PALETTE = qualitative.D3
STAGE_PALETTE = qualitative.Safe
BAND_ALPHA = 0.18
LABEL_CHARS = 48
TITLE_CHARS = 48  # a title's first line that fits a half-width chart (about 480 px) at Plotly's title size
NOTE_CHARS = 80  # a line of the small-type note under it

MARGIN = {"l": 10, "r": 10, "t": 50, "b": 40}
"""Margins of a chart with an x-axis title below it."""
LAYOUT = {"margin": {"l": 10, "r": 10, "t": 50, "b": 10}, "legend": {"orientation": "h", "y": -0.2}}
"""Margins and a legend below the plot: the study charts (sweeps, ladders, batch sweeps, auto-tune)."""


def layer_type_colour(layer_type: str) -> str:
    """A stable colour per layer type (CRC of the name, so it survives restarts and pages)."""
    if layer_type.startswith("other"):
        return OTHER_COLOUR
    return LAYER_TYPE_PALETTE[zlib.crc32(layer_type.encode()) % len(LAYER_TYPE_PALETTE)]


def precision_colour(precision: str) -> str:
    return PRECISION_COLOURS.get(precision, OTHER_COLOUR)


def run_colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per compared run, by position, the same on every Compare chart."""
    return {label: RUN_PALETTE[i % len(RUN_PALETTE)] for i, label in enumerate(labels)}


def module_colour(module: str) -> str:
    """A stable light colour per top-level nn.Module (CRC of its name)."""
    return MODULE_PALETTE[zlib.crc32(module.encode()) % len(MODULE_PALETTE)]


def rgba(hex_colour: str, alpha: float) -> str:
    """``#RRGGBB`` with an opacity, for bands."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def spread(centre: pd.Series, low: pd.Series, high: pd.Series, **style: float) -> dict[str, Any]:
    """Error bars from ``low`` to ``high`` around ``centre`` (a confidence interval, p10-p90, the fastest and slowest
    trace window), for a trace's ``error_y``; ``style`` adds ``thickness`` / ``width``."""
    return {"type": "data", "symmetric": False, "array": high - centre, "arrayminus": centre - low, **style}


def band_and_median(
    x: pd.Series,
    low: pd.Series,
    high: pd.Series,
    median: pd.Series,
    *,
    colour: str,
    label: str,
    customdata: np.ndarray,
    hovertemplate: str,
    band: str = "p10-p90",
    error_y: dict[str, Any] | None = None,
) -> list[go.Scatter]:
    """One series' spread: the ``low``..``high`` band shaded in ``colour`` (named ``"<label> <band>"``) and the
    median line over it (named ``label``, markers, ``error_y`` bars if given), all in the legend group ``label`` so one
    click hides a series with its band. The band's edges have no hover: the median's ``hovertemplate`` says the
    spread from ``customdata``. Add them in this order: the fill runs from the high edge to the low one."""
    edge = {"x": x, "mode": "lines", "line": {"width": 0}, "hoverinfo": "skip", "legendgroup": label}
    return [
        go.Scatter(y=high, showlegend=False, **edge),
        go.Scatter(y=low, fill="tonexty", fillcolor=rgba(colour, BAND_ALPHA), name=f"{label} {band}", **edge),
        go.Scatter(
            x=x,
            y=median,
            mode="lines+markers",
            name=label,
            legendgroup=label,
            line={"color": colour},
            marker={"size": 9},
            error_y=error_y,
            customdata=customdata,
            hovertemplate=hovertemplate,
        ),
    ]


def titled(title: str, note: str = "") -> str:
    """A chart title that fits its chart: the short ``title`` (at most ``TITLE_CHARS``), then what the marks mean in
    small type, wrapped to lines of ``NOTE_CHARS`` (Plotly cuts a long title at the chart's edge)."""
    lines = textwrap.wrap(note, NOTE_CHARS)
    return title + "".join(f"<br><sup>{line}</sup>" for line in lines)


def fit_title(fig: go.Figure) -> go.Figure:
    """Room above the plot for every line of the figure's title (a ``titled`` note adds lines)."""
    lines = len(title_lines(fig.layout.title.text or ""))
    top = fig.layout.margin.t if fig.layout.margin.t is not None else 50
    return fig.update_layout(margin_t=max(top, 34 + 20 * lines))


def title_lines(title: str) -> list[str]:
    """A title's lines as shown, markup removed: what ``titled`` keeps within bounds."""
    return [re.sub(r"<[^>]+>", "", line) for line in title.split("<br>")]


def short(text: str, n: int = LABEL_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def message_figure(message: str, height: int = 220) -> go.Figure:
    """A figure that says why there is no chart."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14})
    fig.update_layout(
        height=height, xaxis={"visible": False}, yaxis={"visible": False}, margin={"l": 10, "r": 10, "t": 30, "b": 10}
    )
    return fig
