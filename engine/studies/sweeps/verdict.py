"""The written verdict of a sweep: each knob value against the knob's default, from measured numbers only.

Order of what a verdict says, per value of the other knob (if any):

1. which values built the same engine plan (``judging.same_engine``; worded in same_plan.py): for a knob that
   changes kernels that settles it before any statistics (the same engine, so any latency gap is noise; only build
   time differs);
2. the default's figures: the judged one (GPU time for kernel knobs, end-to-end for host knobs; see
   ``engine.studies.judging``) and the other one beside it;
3. each other value: its gap on the judged figure against the noise, which is the larger of the two runs'
   own noise (bootstrap CI of the e2e median / spread of the GPU-time trace windows) and the run-to-run drift
   of that figure seen between fresh-process runs of one build (``Sweep.drift``), then build time;
4. a definite summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.settings.defaults import MIN_BLOCK_SIZE, TRT_DEFAULT_OPTIMIZATION_LEVEL
from engine.studies.judging import verdict_context
from engine.studies.knobs import (
    MIN_BLOCK_SIZE_KNOB,
    SWEEPABLE_KNOBS,
    kernel_knob,
    knob_default,
    value_label,
)
from engine.studies.knobs import (
    knob as knob_record,
)
from engine.studies.statistics import (
    DEVICE_METRICS,
    END_TO_END,
    GPU_TIME,
    GRAPH_REPLAY,
    METRIC_NAMES,
    NOISE_CONFIDENCE,
    NOISE_SOURCES,
    Drift,
    format_ms,
)
from engine.studies.sweeps.comparisons import Comparison, compare_with_default
from engine.studies.sweeps.results import Sweep
from engine.studies.sweeps.same_plan import join_and, plan_sentences


@dataclass
class Verdict:
    knob: str
    headline: str
    lines: list[str]
    comparisons: list[Comparison]
    context: str = ""  # where it was measured and the figure that judges it: "NVIDIA H200 · TensorRT-RTX · judged on …"

    def markdown(self) -> str:
        context = f" ({self.context})" if self.context else ""
        return "\n".join([f"**{self.headline}**{context}", "", *(f"- {line}" for line in self.lines)])


def verdict(sweep: Sweep, knob: str | None = None) -> Verdict:
    """The written verdict for one knob of a sweep, from its measured numbers."""
    knob = knob or sweep.knobs[0]
    comparisons = compare_with_default(sweep, knob)
    name = SWEEPABLE_KNOBS.get(knob, knob)
    if not comparisons:
        default = value_label(knob, knob_default(knob))
        return Verdict(
            knob,
            f"{name}: no verdict",
            [f"The sweep has no run at the default {name}={default} to compare against, or only that one run."],
            [],
        )
    lines = []
    if sweep.judging.note:
        lines.append(sweep.judging.note[0].upper() + sweep.judging.note[1:] + ".")
    by_series: dict[str, list[Comparison]] = {}
    for c in comparisons:
        by_series.setdefault(c.series, []).append(c)
    runs = {r.run_id: r for r in sweep.results}
    for series, comps in by_series.items():
        prefix = f"At {series}: " if series else ""
        lines += [prefix + s for s in plan_sentences(sweep, knob, comps, runs)]  # before any statistics
        lines.append(prefix + _reference_sentence(comps[0], knob))
        if knob_record(knob).dryrun_recommends:
            lines += _min_block_size_lines(comps, sweep.recommended_min_block_size)
        else:
            lines += [_comparison_sentence(c, knob) for c in comps]
        lines.append(_summary_sentence(comps, knob))
    lines += _noise_sentences(sweep)
    masked = [
        c
        for c in comparisons
        if c.noise_source == "repeat runs"
        and not c.same_build
        and not c.noise_by_identity
        and c.ci_noise_ms is not None
        and abs(c.delta_ms) > c.ci_noise_ms
    ]
    if masked:
        lines.append(
            f"{len(masked)} gap{'s' if len(masked) != 1 else ''} ("
            + ", ".join(c.candidate_label for c in masked)
            + f") exceed the runs' own noise but not the drift between runs: re-run the sweep (its default "
            f"point is repeated between the others){_gpu_hint(sweep)} to tell the knob from the drift."
        )
    if knob_record(knob).verdict_note:
        lines.append(knob_record(knob).verdict_note)
    return Verdict(
        knob, _headline(comparisons, knob), lines, comparisons, verdict_context(sweep.results, sweep.judging.metric)
    )


def _gpu_hint(sweep: Sweep) -> str:
    if sweep.judging.metric == END_TO_END and kernel_knob(sweep.knobs[0]):
        return " on a GPU with this version (a device figure holds far stiller than end-to-end latency)"
    return ""


# -- sentences ----------------------------------------------------------------------------------------------
def _noise_sentences(sweep: Sweep) -> list[str]:
    judged = sweep.judging.metric
    within = {
        END_TO_END: f"the {NOISE_CONFIDENCE:.0%} bootstrap intervals of both medians",
        GPU_TIME: "the spread of both runs' GPU-time trace windows",
        GRAPH_REPLAY: "the p10-p90 bands of both runs' CUDA-graph replays",
    }[judged]
    text = f"Noise: a gap counts when it exceeds {within}"
    drift = sweep.drift
    if drift is None:
        lines = [
            text + ". No build of this sweep was timed twice, so drift between runs (clocks, other load) is "
            "not in that figure: treat gaps of a few percent with care."
        ]
    else:
        lines = [
            text
            + " and the run-to-run drift seen here: "
            + _drift_text(drift)
            + ", so a gap must exceed that share of the default's "
            + ("latency." if judged == END_TO_END else f"{METRIC_NAMES[judged]}.")
        ]
    for metric, other in sweep.drifts.items():
        if metric == judged:
            continue
        device_judged = metric == END_TO_END and judged != END_TO_END
        why = " (why kernel knobs are judged on a device figure)" if device_judged else ""
        lines.append(
            f"{METRIC_NAMES[metric][0].upper()}{METRIC_NAMES[metric][1:]}, shown beside it: {_drift_text(other)}{why}."
        )
    return lines


def _drift_text(drift: Drift) -> str:
    (fast_what, fast_ms), (slow_what, slow_ms) = drift.runs
    device = drift.metric in DEVICE_METRICS
    what = f"the same build's {METRIC_NAMES[drift.metric]} was" if device else "the same build timed"
    share = f"{drift.fraction:.2%}" if device and drift.fraction < 0.01 else f"{drift.fraction:.1%}"
    return (
        f"{what} {format_ms(fast_ms, drift.metric)} ({fast_what}) and {format_ms(slow_ms, drift.metric)} "
        f"({slow_what}), {share} apart"
    )


def _fmt(v: float, c: Comparison) -> str:
    return format_ms(v, c.metric)


def _spread(low: float | None, high: float | None, c: Comparison) -> str:
    """ " (replay p10-p90 0.4012–0.4131 ms)": the judged figure's own spread, named."""
    if low is None or high is None:
        return ""
    return f" ({NOISE_SOURCES[c.metric]} {_fmt(low, c).removesuffix(' ms')}–{_fmt(high, c)})"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


def _engines(n: int, pytorch: int | None) -> str:
    text = f"{n} TensorRT engine{'s' if n != 1 else ''}"
    if pytorch is not None:
        text += f" + {pytorch} PyTorch subgraph{'s' if pytorch != 1 else ''}"
    return text


def _gap(c: Comparison) -> str:
    direction = "faster" if c.delta_ms < 0 else "slower"
    text = f"{_fmt(abs(c.delta_ms), c)} ({abs(c.delta_pct):.1f}%) {direction}"
    if c.noise_by_identity:
        return text + ": the same engine plan as the default, so this gap is noise"
    if c.significant is None:
        return text + " (noise unknown: no latency samples)"
    if c.significant:
        return text + f", more than the noise (±{_fmt(c.noise_ms or 0.0, c)})"
    return text + f", within the noise (±{_fmt(c.noise_ms or 0.0, c)}): no measured difference"


def _build_gap(c: Comparison) -> str:
    if c.build_delta_s is None:
        return ""
    return (
        f"; build {_s(c.candidate_build_s)} against {_s(c.reference_build_s)} "
        f"({'+' if c.build_delta_s >= 0 else '−'}{abs(c.build_delta_s):.1f} s)"
    )


def _other_figure(c: Comparison, reference: bool = False) -> str:
    """The figure not judged, beside the judged one: e2e beside a device figure, GPU time beside e2e."""
    if c.metric in DEVICE_METRICS:
        ref, cand = c.reference_e2e_ms, c.candidate_e2e_ms
        if ref is None or cand is None:
            return ""
        if reference:
            return f", end-to-end {format_ms(ref)}"
        return f"; end-to-end {format_ms(cand)} ({100 * (cand / ref - 1):+.1f}%, not judged)" if ref else ""
    ref, cand = c.reference_gpu_ms, c.candidate_gpu_ms
    if ref is None or cand is None:
        return ""
    kernels = c.reference_kernels if reference else c.candidate_kernels
    per = f", {kernels:g} kernels" if kernels is not None else ""
    return f", GPU time {format_ms(ref if reference else cand, GPU_TIME)}{per}"


def _reference_sentence(c: Comparison, knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    label = c.reference_label.replace(" (default)", "")
    if label.startswith("default"):  # optimization_level unset
        label = f"unset ({TRT_DEFAULT_OPTIMIZATION_LEVEL})"
    if c.metric in DEVICE_METRICS:
        kernels = f" ({c.reference_kernels:g} kernels)" if c.reference_kernels is not None else ""
        spread = _spread(c.reference_low_ms, c.reference_high_ms, c)
        text = (
            f"Default {name}={label}: {METRIC_NAMES[c.metric]} {_fmt(c.reference_ms, c)}{spread}{kernels}"
            f"{_other_figure(c, True)}"
        )
    else:
        text = f"Default {name}={label}: median {format_ms(c.reference_ms)}{_other_figure(c, True)}"
    if _shows_engines(c):
        text += f", {_engines(c.reference_engines, c.reference_pytorch_segments)}"
    if c.reference_build_s is not None:
        text += f", build {_s(c.reference_build_s)}"
    return text + "."


def _comparison_sentence(c: Comparison, knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    if c.noise_by_identity:
        e2e = f", end-to-end {format_ms(c.candidate_e2e_ms)}" if c.candidate_e2e_ms is not None else ""
        figure = f"{METRIC_NAMES[c.metric]} " if c.metric in DEVICE_METRICS else "median "
        return (
            f"{name}={c.candidate_label}: the same engine plan as the default ({figure}{_fmt(c.candidate_ms, c)}"
            f"{e2e if c.metric in DEVICE_METRICS else ''}: any gap is noise){_build_gap(c)}."
        )
    figure = f"{METRIC_NAMES[c.metric]} " if c.metric in DEVICE_METRICS else ""
    text = f"{name}={c.candidate_label}: {figure}{_fmt(c.candidate_ms, c)}, {_gap(c)}{_other_figure(c)}{_build_gap(c)}"
    if _shows_engines(c):
        text += f"; {_engines(c.candidate_engines, c.candidate_pytorch_segments)}"
    if c.same_build and not c.noise_by_identity:
        why = " (identical partition)" if c.candidate_pytorch_segments is not None else ""
        text += f" — the same build as the default{why}, so this gap is run-to-run variation"
    return text + "."


def _shows_engines(c: Comparison) -> bool:
    # engine counts matter for partitioning knobs, and only for runs that compiled something
    partitioning = knob_record(c.knob).partitions
    compiled = c.reference_pytorch_segments is not None or c.reference_engines > 0 or c.candidate_engines > 0
    return partitioning and compiled


def _min_block_size_lines(comps: list[Comparison], recommended: Sequence[int]) -> list[str]:
    lines = []
    rec_labels = {value_label(MIN_BLOCK_SIZE_KNOB, v, recommended) for v in recommended}
    for c in comps:
        lines.append(_comparison_sentence(c, MIN_BLOCK_SIZE_KNOB))
    if not recommended:
        lines.append(
            "No dryrun recommendation in this sweep: run the analyze mode (dryrun) to get the "
            "min_block_size it recommends."
        )
    elif not any(c.candidate_label in rec_labels for c in comps):
        values = ", ".join(str(v) for v in recommended)
        if MIN_BLOCK_SIZE in recommended:
            lines.append(f"The dryrun recommends {values}: the default already gives the minimal segmentation.")
        else:
            lines.append(f"The dryrun recommends min_block_size={values}, but the sweep has no run of it.")
    return lines


def _all_same_plan(comps: Sequence[Comparison]) -> bool:
    return bool(comps) and all(c.noise_by_identity for c in comps)


def _quickest_build(comps: Sequence[Comparison]) -> tuple[str, float] | None:
    builds = [
        (comps[0].reference_label, comps[0].reference_build_s),
        *((c.candidate_label, c.candidate_build_s) for c in comps),
    ]
    known = [(label, b) for label, b in builds if b is not None]
    return min(known, key=lambda p: p[1]) if known else None


def _summary_sentence(comps: list[Comparison], knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    if _all_same_plan(comps):
        quickest = _quickest_build(comps)
        text = f"Every {name} value here built the same plan as the default: their latency cannot differ"
        return text + (f"; the quickest build is {name}={quickest[0]} ({quickest[1]:.1f} s)." if quickest else ".")
    faster = [c for c in comps if c.significant and c.delta_ms < 0]
    slower = [c for c in comps if c.significant and c.delta_ms > 0]
    on = f" on {METRIC_NAMES[comps[0].metric]}" if comps[0].metric in DEVICE_METRICS else ""
    if not faster:
        text = f"No {name} value is measurably faster than the default{on}"
        if slower:
            text += "; " + ", ".join(c.candidate_label for c in slower) + " measurably slower"
        return text + "."
    best = min(faster, key=lambda c: c.candidate_ms)
    text = (
        f"Fastest: {name}={best.candidate_label}, {_fmt(-best.delta_ms, best)} ({-best.delta_pct:.1f}%) "
        f"faster than the default{on}"
    )
    if best.build_delta_s is not None:
        if abs(best.build_delta_s) < 0.05:
            text += " at the same build time"
        elif best.build_delta_s > 0:
            per_s = -best.delta_ms / best.build_delta_s
            text += f" for {best.build_delta_s:.1f} s more build time ({per_s:.3f} ms of latency per build second)"
        else:
            text += f" and {-best.build_delta_s:.1f} s quicker to build"
    return text + "."


def _outcomes(comparisons: Sequence[Comparison]) -> str:
    """ "0 and 5: the same plan; 1: 2.2% slower; 2: within the noise" for a headline."""
    same = [c.candidate_label for c in comparisons if c.noise_by_identity]
    parts = [f"{join_and(same)}: the same plan"] if same else []
    for c in comparisons:
        if c.noise_by_identity:
            continue
        if c.significant:
            parts.append(f"{c.candidate_label}: {abs(c.delta_pct):.1f}% {'slower' if c.delta_ms > 0 else 'faster'}")
        elif c.significant is not None:
            parts.append(f"{c.candidate_label}: within the noise")
    return "; ".join(parts)


def _headline(comparisons: list[Comparison], knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    if _all_same_plan(comparisons):
        builds = [b for c in comparisons for b in (c.reference_build_s, c.candidate_build_s) if b is not None]
        span = f"; only build time differs ({min(builds):.1f}–{max(builds):.1f} s)" if builds else ""
        return f"{name}: every value built the same engine plan as the default{span}"
    faster = [c for c in comparisons if c.significant and c.delta_ms < 0]
    on = f" on {METRIC_NAMES[comparisons[0].metric]}" if comparisons[0].metric in DEVICE_METRICS else ""
    if not faster and comparisons[0].metric in DEVICE_METRICS:
        return f"{name}: no value beats the default{on} ({_outcomes(comparisons)})"
    if not faster:
        return f"{name}: no value is measurably faster than the default{on}"
    best = min(faster, key=lambda c: c.candidate_ms)
    where = f" at {best.series}" if best.series else ""
    return (
        f"{name}: {best.candidate_label} beats the default by {-best.delta_pct:.1f}%{on}{where} "
        f"({_fmt(best.reference_ms, best)} → {_fmt(best.candidate_ms, best)})"
    )
