"""The first part of a sweep's verdict: which values built the same engine plan (``judging.same_engine``).

For a knob that changes kernels that settles it before any statistics: the same engine, so any latency gap between
those values is noise and only build time differs. ``engine.studies.sweeps.verdict`` puts these sentences first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.result import RunResult
from engine.studies.judging import same_engine
from engine.studies.knobs import SWEEPABLE_KNOBS, kernel_knob, order_key, request_value
from engine.studies.statistics import GPU_TIME, format_ms
from engine.studies.sweeps.comparisons import Comparison
from engine.studies.sweeps.results import Sweep


def plan_sentences(sweep: Sweep, knob: str, comps: list[Comparison], runs: dict[str, RunResult]) -> list[str]:
    """One sentence per set of values that built the same engine plan (two or more values)."""
    name = SWEEPABLE_KNOBS.get(knob, knob)
    members: list[tuple[str, RunResult, float | None]] = [
        (comps[0].reference_label, runs[comps[0].reference_run], comps[0].reference_build_s)
    ]
    members += [(c.candidate_label, runs[c.candidate_run], c.candidate_build_s) for c in comps]
    members.sort(key=lambda m: order_key(knob, sweep_value(m[1], knob)))
    groups: list[list[tuple[str, RunResult, float | None]]] = []
    for m in members:
        for g in groups:
            if same_engine(g[0][1], m[1]):
                g.append(m)
                break
        else:
            groups.append([m])
    out = []
    for g in groups:
        if len(g) < 2:
            continue
        labels = join_and(
            [label.replace(" (default)", "") if not label.startswith("default") else label for label, _, _ in g]
        )
        if not kernel_knob(knob):
            out.append(
                f"{name} {labels} ran the same engine plan: what differs is how the host launches it, "
                "judged on end-to-end latency."
            )
            continue
        figures = plan_figures([r for _, r, _ in g])
        text = (
            f"{name} {labels} built the same plan{figures}: the same engine, so any latency gap between them is noise"
        )
        builds = [b for _, _, b in g]
        if all(b is not None for b in builds):
            text += "; only build time differs: " + " / ".join(f"{b:.1f}" for b in builds if b is not None) + " s"
        out.append(text + ".")
    return out


def sweep_value(run: RunResult, knob: str) -> Any:
    return request_value(run.request, knob)


def plan_figures(runs: Sequence[RunResult]) -> str:
    """ "(73 kernels, 0.3866 ms GPU time)" for runs of one plan (a range where their GPU times differ)."""
    parts = []
    kernels = {round(r.gpu_time.kernels_per_inference, 1) for r in runs if r.gpu_time is not None}
    if len(kernels) == 1:
        k = kernels.pop()
        parts.append(f"{k:g} kernels")
    gpu = sorted(r.gpu_time.median_ms for r in runs if r.gpu_time is not None)
    if gpu:
        same = format_ms(gpu[0], GPU_TIME) == format_ms(gpu[-1], GPU_TIME)
        figure = (
            format_ms(gpu[0], GPU_TIME)
            if same
            else f"{format_ms(gpu[0], GPU_TIME).removesuffix(' ms')}–{format_ms(gpu[-1], GPU_TIME)}"
        )
        parts.append(f"{figure} GPU time")
    return f" ({', '.join(parts)})" if parts else ""


def join_and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
