"""The kernel diff and the time split in words: the one place their findings become sentences (the Compare page and
the comparison report say the same)."""

from __future__ import annotations

from engine.compare.kernels import ORIGIN_NAMES, KernelDiff, OriginChange
from engine.compare.time_split import TimeSplit

FAMILIES_SAID = 3
PLACES_SAID = 3


def _ms(v: float) -> str:
    return f"{v:+.3f} ms"


def _count(calls: float, what: str) -> str:
    n = round(abs(calls))
    return f"{n} {'more' if calls > 0 else 'fewer'} {what} kernel launch{'es' if n != 1 else ''}"


def _where(places: tuple[str, ...]) -> str:
    if not places:
        return ""
    more = len(places) - PLACES_SAID
    said = ", ".join(places[:PLACES_SAID]) + (f" and {more} more" if more > 0 else "")
    return f" in the PyTorch fallback ({len(places)} subgraph{'s' if len(places) != 1 else ''}: {said})"


def origin_sentence(f: OriginChange) -> str:
    """``+0.318 ms: 196 more PyTorch (ATen) kernel launches (batch norm +0.179 ms, copy / cast +0.106 ms, ...) in the
    PyTorch fallback (5 subgraphs: before engine 1, between engines 1 and 2, ...)``"""
    fams = ", ".join(f"{x.family} {_ms(x.ms_delta)}" for x in f.families[:FAMILIES_SAID])
    launches = (
        _count(f.calls_delta, ORIGIN_NAMES[f.origin])
        if round(f.calls_delta)
        else (f"{ORIGIN_NAMES[f.origin]} kernels, as many launches")
    )
    new = []
    if f.appeared:
        new.append(f"{f.appeared} kernel{'s' if f.appeared != 1 else ''} only in the compared run")
    if f.disappeared:
        new.append(f"{f.disappeared} only in the baseline")
    extra = f"; {', '.join(new)}" if new else ""
    where = _where(f.where) if f.origin == "pytorch" else ""
    if f.origin == "library":
        where = " launched by the engines or the PyTorch fallback (the kernel table does not say which)"
    return f"{_ms(f.ms_delta)}: {launches} ({fams}{extra}){where}"


def headline(d: KernelDiff) -> str:
    """The total and where it comes from, in one sentence."""
    total = (
        f"{_ms(d.ms_delta)} GPU kernel time per inference ({d.base_ms:.3f} → {d.other_ms:.3f} ms), "
        f"{d.base_calls:g} → {d.other_calls:g} kernel launches"
    )
    if not d.findings:
        return f"{total}: the same kernels at the same speed."
    return f"{total}. Most of it: {origin_sentence(d.findings[0])}."


def findings_lines(d: KernelDiff) -> list[str]:
    return [origin_sentence(f) for f in d.findings]


def split_sentence(s: TimeSplit) -> str:
    if not s.parts:
        return f"{s.label}: no time split ({'; '.join(s.notes)})."
    said = ", ".join(f"{p.label} {p.ms:.3f} ms ({p.ms / s.e2e_ms:.0%})" for p in s.parts if s.e2e_ms > 0)
    return f"{s.label}: {s.e2e_ms:.3f} ms end to end = {said}."


def split_delta_sentence(base: TimeSplit, other: TimeSplit) -> str:
    """How the end-to-end change divides over the parts both splits have."""
    if not base.parts or not other.parts:
        return ""
    keys = [p.key for p in other.parts if base.part(p.key) is not None]
    deltas = [(other.part(k), other.part(k).ms - base.part(k).ms) for k in keys]  # type: ignore[union-attr]
    said = ", ".join(f"{_ms(d)} {p.label}" for p, d in deltas if p is not None)
    return f"{_ms(other.e2e_ms - base.e2e_ms)} end to end: {said}."
