"""A report as data (sections of blocks) and its one HTML rendering.

The page is one file that opens offline: Plotly's script embedded once in the head, each figure drawn from its
JSON into a div whose id comes from its place in the report (so the same runs give the same bytes), every text
from a run escaped (model names, warnings and errors are user-controlled), markdown without links or images,
and a Content-Security-Policy that lets no request leave the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import plotly
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup
from plotly.offline import get_plotlyjs

TEMPLATE = "report.html.j2"
NOT_MEASURED = "not measured"
# the figure's own modebar stays (zoom, PNG export work offline); no logo link, no cloud editing
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# Every figure is drawn in Plotly's own template, whatever the process default: importing streamlit makes its
# theme template the default, whose colour placeholders ("#000001") only the dashboard's frontend fills in, and a
# report must not depend on whether the CLI or the dashboard built it.
TEMPLATE_NAME = "plotly"
# no fetch, image, font or frame from anywhere: only the inline script and styles of this file
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
    "font-src data:; connect-src 'none'"
)


# -- blocks ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One headline figure. ``value`` is the stored number (the page's ``data-value``), None when not measured."""

    key: str  # machine-readable name, e.g. "e2e_median_ms" (the page's data-metric)
    label: str
    text: str  # what the reader sees: "0.589 ms", "not measured"
    value: float | None = None
    detail: str = ""
    run_id: str = ""  # whose figure it is (the page's data-run)


@dataclass(frozen=True)
class Facts:
    items: tuple[Fact, ...]


@dataclass(frozen=True)
class Heading:
    text: str
    anchor: str = ""  # an id to link to (a run inside a comparison or study)


@dataclass(frozen=True)
class Paragraph:
    text: str
    muted: bool = False


@dataclass(frozen=True)
class Markdown:
    """Verdict and diagnosis text as the engine writes it for the pages (bold, lists, code)."""

    text: str


@dataclass(frozen=True)
class Notice:
    text: str
    level: str = "warning"  # "warning" | "info" | "error"


@dataclass(frozen=True)
class Chart:
    figure: go.Figure


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    title: str = ""
    formats: dict[str, Callable[[Any], str]] = field(default_factory=dict)  # column -> cell text
    highlight: Sequence[bool] = ()  # rows to mark (e.g. settings that differ)
    index: bool = False  # show the frame's index as the first column


@dataclass(frozen=True)
class Code:
    text: str
    label: str = ""


@dataclass(frozen=True)
class Details:
    """A group the reader opens: requests, full tables."""

    summary: str
    blocks: tuple[Any, ...]


Block = Fact | Facts | Heading | Paragraph | Markdown | Notice | Chart | Table | Code | Details


@dataclass
class Section:
    id: str  # anchor, and the prefix of its figures' div ids
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str
    kind: str  # "run" | "comparison" | "sweep" | "ladder" | "batch_sweep" | "autotune"
    sections: list[Section]


# -- cell formatting -----------------------------------------------------------------------------------
def is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    try:
        return bool(pd.isna(v)) if not isinstance(v, (list, tuple, dict, set)) else False
    except (TypeError, ValueError):
        return False


def cell_text(v: Any) -> str:
    """A table cell as text: 4 significant digits, yes/no, em dash for a missing value."""
    if is_missing(v):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


def fmt(pattern: str) -> Callable[[Any], str]:
    """A column format, e.g. ``fmt("{:.3f} ms")``; missing values stay an em dash."""
    return lambda v: "—" if is_missing(v) else pattern.format(v)


# -- rendering -----------------------------------------------------------------------------------------
@cache
def _markdown() -> MarkdownIt:
    # engine text carries run ids and model names: no raw HTML, and no link or image that could load anything
    return MarkdownIt("commonmark", {"html": False}).disable(["image", "link", "autolink"])


@cache
def _template_json() -> dict[str, Any]:
    return pio.templates[TEMPLATE_NAME].to_plotly_json()


def _chart(block: Chart, div_id: str) -> Markup:
    # as plain data: assigning a template object to a figure re-validates all of it (seconds per report)
    plain = block.figure.to_plotly_json()
    figure = {"data": plain["data"], "layout": {**plain["layout"], "template": _template_json()}}
    html = pio.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config=PLOTLY_CONFIG,
        default_height="450px",
        validate=False,
    )
    return Markup('<figure class="chart">{}</figure>').format(Markup(html))


def _facts(block: Facts) -> Markup:
    cards = Markup("").join(
        Markup('<div class="fact"><dt>{}</dt><dd data-metric="{}"{}{}{}>{}</dd>{}</div>').format(
            f.label,
            f.key,
            Markup(' data-run="{}"').format(f.run_id) if f.run_id else "",
            Markup(' data-value="{}"').format(repr(float(f.value))) if f.value is not None else "",
            Markup(' class="missing"') if f.text.startswith(NOT_MEASURED) else "",
            f.text,
            Markup("<small>{}</small>").format(f.detail) if f.detail else "",
        )
        for f in block.items
    )
    return Markup('<dl class="facts">{}</dl>').format(cards)


def _table(block: Table) -> Markup:
    df = block.frame
    if block.index:
        df = df.reset_index()
    head = Markup("").join(Markup("<th>{}</th>").format(c) for c in df.columns)
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        cells = Markup("").join(
            Markup("<td>{}</td>").format(block.formats.get(str(c), cell_text)(v))
            for c, v in zip(df.columns, row, strict=True)
        )
        marked = i < len(block.highlight) and block.highlight[i]
        rows.append(Markup("<tr{}>{}</tr>").format(Markup(' class="differs"') if marked else "", cells))
    title = Markup("<caption>{}</caption>").format(block.title) if block.title else ""
    return Markup('<div class="table-wrap"><table>{}<thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>').format(
        title, head, Markup("").join(rows)
    )


def _block(block: Block, div_id: Callable[[], str]) -> Markup:
    if isinstance(block, Chart):
        return _chart(block, div_id())
    if isinstance(block, Facts):
        return _facts(block)
    if isinstance(block, Fact):
        return _facts(Facts((block,)))
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Heading):
        anchor = Markup(' id="{}"').format(block.anchor) if block.anchor else ""
        return Markup("<h3{}>{}</h3>").format(anchor, block.text)
    if isinstance(block, Paragraph):
        return Markup("<p{}>{}</p>").format(Markup(' class="muted"') if block.muted else "", block.text)
    if isinstance(block, Markdown):
        return Markup('<div class="markdown">{}</div>').format(Markup(_markdown().render(block.text)))
    if isinstance(block, Notice):
        return Markup('<p class="notice {}">{}</p>').format(block.level, block.text)
    if isinstance(block, Code):
        label = Markup('<div class="code-label">{}</div>').format(block.label) if block.label else ""
        return Markup("{}<pre><code>{}</code></pre>").format(label, block.text)
    if isinstance(block, Details):
        inner = Markup("").join(_block(b, div_id) for b in block.blocks)
        return Markup("<details><summary>{}</summary>{}</details>").format(block.summary, inner)
    raise TypeError(f"not a report block: {type(block).__name__}")


def _section_html(section: Section) -> Markup:
    count = 0

    def div_id() -> str:
        nonlocal count
        count += 1
        return f"{section.id}-chart-{count}"

    return Markup("").join(_block(b, div_id) for b in section.blocks)


@cache
def _template() -> Any:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE)


@cache
def plotly_js() -> str:
    """Plotly's own bundle, as ``plotly.offline`` ships it (no CDN)."""
    return get_plotlyjs()


def render(report: Report) -> bytes:
    """The report as one self-contained HTML file (UTF-8). The same report gives the same bytes."""
    ids = [s.id for s in report.sections]
    if len(set(ids)) != len(ids):
        raise ValueError(f"section ids repeat: {ids}")
    sections = [{"id": s.id, "title": s.title, "html": _section_html(s)} for s in report.sections]
    html = _template().render(
        report=report, sections=sections, csp=CSP, plotly_js=Markup(plotly_js()), plotly_version=plotly.__version__
    )
    return html.encode("utf-8")
