"""Studies in a report: a knob sweep, a precision ladder, a batch sweep or an auto-tune search.

``find_study`` is the one place that says which stored group of runs a study id names: the runs of a knob sweep
(a batch sweep when it varies ``model.batch_size``) or a precision ladder, read through their loaders (the stored
study record, else the tags of bundled samples), and a stored auto-tune search (``engine.studies.autotune.stored``:
its plan and Optuna study in the data directory), rebuilt into its ``AutotuneReport``.

Verdicts, tables and figures come from ``engine.studies.sweeps``, ``engine.studies.ladder``,
``engine.studies.batch_sweep``, ``engine.studies.autotune`` and their chart modules, exactly as the Sweeps page calls
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from engine.charts import autotune as autotune_charts
from engine.charts import batch as batch_charts
from engine.charts import ladder as ladder_charts
from engine.charts import sweeps as sweep_charts
from engine.errors import ConfigError
from engine.report.document import Block, Chart, Fact, Facts, Markdown, Notice, Paragraph, Report, Section, Table, fmt
from engine.report.errors import ReportError
from engine.report.run_blocks import environment_table, per_run_blocks
from engine.result import RunResult
from engine.store import RunNotFound, RunStore
from engine.studies import batch_sweep, ladder, record, sweeps
from engine.studies.autotune import AutotuneReport
from engine.studies.autotune import stored as stored_autotune

STUDY_KINDS = {
    "sweep": "knob sweep",
    "ladder": "precision ladder",
    "batch_sweep": "batch sweep",
    "autotune": "auto-tune search",
}
# "kind:<id>" names one kind when a sweep and a ladder share an id
_KIND_PREFIXES = {
    "sweep": "sweep",
    "ladder": "ladder",
    "batch": "batch_sweep",
    "batch_sweep": "batch_sweep",
    "autotune": "autotune",
}
SWEEP_COLUMNS = [
    "x_label",
    "series",
    "judged_ms",  # the figure the verdict and charts judge on (engine.studies.judging)
    "median_ms",
    "p10_ms",
    "p90_ms",
    "ci_low_ms",
    "ci_high_ms",
    "build_s",
    "engine_count",
    "pytorch_segments",
    "coverage",
    "rel_l2",
    "pareto",
    "run_id",
]
BATCH_COLUMNS = [
    "strategy",
    "batch_size",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "throughput_per_s",
    "peak_memory_bytes",
    "memory_per_sample_bytes",
    "run_id",
]
MS = {
    c: fmt("{:.4f}")
    for c in ("judged_ms", "median_ms", "p10_ms", "p90_ms", "ci_low_ms", "ci_high_ms", "best_so_far_ms")
}


@dataclass(frozen=True)
class StudyRef:
    kind: str  # a key of STUDY_KINDS
    study_id: str

    @property
    def name(self) -> str:
        return f"{STUDY_KINDS[self.kind]} {self.study_id}"

    @property
    def qualified_id(self) -> str:
        """``kind:id``, which ``find_study`` resolves without ambiguity (``batch:`` for a batch sweep)."""
        return f"{'batch' if self.kind == 'batch_sweep' else self.kind}:{self.study_id}"


def known_studies(store: RunStore) -> list[StudyRef]:
    """Every stored study, newest first per kind."""
    listed = sweeps.list_sweeps(store)
    refs = [
        StudyRef("batch_sweep" if batch_sweep.BATCH_KNOB in str(knobs).split(", ") else "sweep", sid)
        for sid, knobs in zip(listed["sweep_id"], listed["knobs"], strict=True)
    ]
    refs += [StudyRef("ladder", lid) for lid in ladder.list_ladders(store)]
    refs += [StudyRef("autotune", plan.autotune_id) for plan in stored_autotune.list_plans(store.root)]
    # stored records: a study whose points have not finished yet has no tagged run, but is a study all the same
    seen = {(r.kind, r.study_id) for r in refs}
    return refs + [StudyRef(k, sid) for sid, k, _, _ in record.list_studies(store) if (k, sid) not in seen]


def find_study(store: RunStore, study_id: str) -> StudyRef:
    """The study ``study_id`` names (``ladder:<id>`` / ``sweep:<id>`` / ``batch:<id>`` pick a kind).

    Raises ``ReportError`` naming the known studies when there is none, or both kinds when the id is ambiguous."""
    want = None
    prefix, _, rest = study_id.partition(":")
    if rest and prefix in _KIND_PREFIXES:
        want, study_id = _KIND_PREFIXES[prefix], rest
    known = known_studies(store)
    found = [r for r in known if r.study_id == study_id and want in (None, r.kind)]
    if not found:
        listed = ", ".join(r.study_id for r in known[:12]) + (" …" if len(known) > 12 else "")
        raise ReportError(
            f"No study {study_id!r}: no stored run belongs to a knob sweep, precision ladder or batch "
            "sweep of that id, and no auto-tune search has it.",
            f"Known studies: {listed}." if known else "No study is stored yet: run a sweep first.",
        )
    if len(found) > 1:
        raise ReportError(
            f"{study_id!r} names both a " + " and a ".join(STUDY_KINDS[r.kind] for r in found) + ".",
            "Say which: " + " or ".join(f"--study {r.qualified_id}" for r in found),
        )
    return found[0]


def study_report(
    store: RunStore, study_id: str, *, tolerance_rel_l2: float = ladder.DEFAULT_TOLERANCE_REL_L2
) -> Report:
    """The report of a stored study; ``tolerance_rel_l2`` judges a ladder's accuracy (its page's input)."""
    ref = find_study(store, study_id)
    stored = record.find_study(store, ref.study_id, ref.kind)
    if stored is not None and stored.done_count == 0:
        raise ReportError(
            f"{record.KINDS.get(ref.kind, 'Study').capitalize()} {ref.study_id} has no measured point yet "
            f"({stored.state}: {stored.counts_text}): a report needs at least one.",
            "Wait for its first point, or resume it (Sweeps shows its progress and what is missing).",
        )
    try:
        if ref.kind == "ladder":
            return ladder_report(store, ref.study_id, tolerance_rel_l2)
        if ref.kind == "batch_sweep":
            return batch_report(batch_sweep.load_batch_sweep(store, ref.study_id))
        if ref.kind == "autotune":
            found = stored_autotune.load_report(store.root, ref.study_id, store)
            if found is None:
                raise ReportError(
                    f"Auto-tune {ref.study_id} has no measured trial yet: its defaults run first.",
                    "Wait for the search's first trial (Sweeps → Auto-tune shows its progress).",
                )
            return autotune_report(store, found)
        return sweep_report(sweeps.load_sweep(store, ref.study_id))
    except (RunNotFound, stored_autotune.AutotuneNotFound) as e:  # deleted between finding and loading
        raise ReportError(e.message) from None


def _runs_sections(results: Sequence[RunResult]) -> list[Section]:
    labels = {r.run_id: r.label for r in results}
    return [
        Section("environment", "Environment", [environment_table(results, labels)]),
        Section("runs", "Each run", per_run_blocks(results)),
    ]


def _caption(results: Sequence[RunResult], what: str) -> Paragraph:
    first = results[0]
    sample = " · recorded on a real GPU and bundled as a sample" if all(r.is_sample for r in results) else ""
    return Paragraph(
        f"{len(results)} {what} of {first.request['model']['source']} on {first.env.get('device_name', '?')}{sample}",
        muted=True,
    )


def _empty(kind: str, study_id: str, why: str) -> Report:
    return Report(
        f"{STUDY_KINDS[kind].capitalize()} {study_id}",
        why,
        kind,
        [Section("summary", "Summary", [Notice(why, "warning")])],
    )


# -- knob sweep ---------------------------------------------------------------------------------------
def sweep_report(sweep: sweeps.Sweep) -> Report:
    """What the Sweep results tab shows: a verdict per knob, the charts, the table, and every run."""
    if not sweep.results:
        return _empty("sweep", sweep.sweep_id, "This sweep has no timed run (analyze runs only, or all cancelled).")
    table, knob = sweep.table, sweep.knobs[0]
    summary: list[Block] = [
        _caption(sweep.results, "runs"),
        *(Markdown(sweeps.verdict(sweep, k).markdown()) for k in sweep.knobs),
    ]
    figures: list[Block] = [Chart(sweep_charts.latency_vs_knob(table, knob))]
    if table["build_s"].notna().any():
        figures += [
            Chart(sweep_charts.build_time_vs_knob(table, knob)),
            Chart(sweep_charts.pareto_latency_build(table)),
        ]
    else:
        figures.append(
            Paragraph(
                "These runs compiled nothing (eager backend): no build time to weigh latency against.", muted=True
            )
        )
    if table["coverage"].notna().any():
        figures.append(Chart(sweep_charts.engines_vs_min_block_size(table, knob)))
    shown = table[[c for c in SWEEP_COLUMNS if c in table.columns]]
    names = ", ".join(sweeps.SWEEPABLE_KNOBS.get(k, k) for k in sweep.knobs)
    return Report(
        f"Knob sweep {sweep.sweep_id}",
        f"{names} · {len(table)} runs",
        "sweep",
        [
            Section("summary", "Verdict", summary),
            Section("charts", "Charts", figures),
            Section(
                "table",
                "Sweep points",
                [
                    Table(
                        shown, "", {**MS, "build_s": fmt("{:.1f}"), "coverage": fmt("{:.1%}"), "rel_l2": fmt("{:.3g}")}
                    )
                ],
            ),
            *_runs_sections(sweep.results),
        ],
    )


# -- precision ladder ---------------------------------------------------------------------------------
def ladder_report(store: RunStore, ladder_id: str, tolerance_rel_l2: float) -> Report:
    """What the Precision ladder tab shows: the verdict at the tolerance, the latency chart, the table."""
    try:
        rungs = ladder.load_ladder(store, ladder_id)
    except ConfigError as e:
        raise ReportError(e.message) from None
    results = [store.get(r.run_id) for r in rungs]
    table = ladder.ladder_table(rungs)
    summary: list[Block] = [
        _caption(results, "rungs"),
        Paragraph(f"Accuracy tolerance: rel. L2 ≤ {tolerance_rel_l2:g} against eager fp32.", muted=True),
    ]
    try:
        summary.append(Markdown(ladder.verdict(rungs, tolerance_rel_l2=tolerance_rel_l2).markdown()))
    except ConfigError as e:  # no fp32/fp16 rung to compare with
        summary.append(Notice(e.message, "warning"))
    blocks: list[Block] = [
        Chart(ladder_charts.precision_ladder(table)),
        Paragraph(
            "Three-way accuracy: eager fp32 → fake-quantized PyTorch model (the quantization error) → compiled "
            "engine (the conversion error).",
            muted=True,
        ),
        Table(
            table,
            "",
            {
                **MS,
                "build_s": fmt("{:.1f}"),
                "calibration_s": fmt("{:.1f}"),
                "rel_l2": fmt("{:.3g}"),
                "fake_quant_rel_l2": fmt("{:.3g}"),
                "conversion_rel_l2": fmt("{:.3g}"),
                "top1_agreement": fmt("{:.1%}"),
            },
        ),
    ]
    coverage = ladder.ladder_coverage(rungs, ladder.step_outcomes(store, ladder_id))
    blocks += [
        Paragraph(ladder.coverage_summary(coverage)),
        Table(ladder.coverage_table(coverage), "Quantization schemes"),
    ]
    return Report(
        f"Precision ladder {ladder_id}",
        " · ".join(str(v) for v in table["label"]),
        "ladder",
        [Section("summary", "Verdict", summary), Section("ladder", "Rungs", blocks), *_runs_sections(results)],
    )


# -- batch sweep --------------------------------------------------------------------------------------
def batch_report(sweep: batch_sweep.BatchSweep) -> Report:
    """What the Batch sweep tab shows (the memory line without a GPU-size ceiling: the report assumes no GPU)."""
    table = sweep.table
    if table.empty:
        return _empty("batch_sweep", sweep.sweep_id, "This batch sweep has no timed run.")
    verdict = batch_sweep.verdict(sweep, None)
    figures: list[Block] = [
        Chart(batch_charts.latency_vs_batch(table)),
        Chart(batch_charts.throughput_vs_batch(table, verdict.knees)),
    ]
    if table["peak_memory_bytes"].notna().any():
        figures.append(Chart(batch_charts.memory_vs_batch(table, verdict.memory, None)))
    if not verdict.cost.empty:
        figures.append(Chart(batch_charts.dynamic_cost(verdict.cost)))
    mib = fmt("{:,.0f}")
    shown = table[BATCH_COLUMNS].assign(
        peak_memory_bytes=table["peak_memory_bytes"] / 2**20,
        memory_per_sample_bytes=table["memory_per_sample_bytes"] / 2**20,
    )
    shown = shown.rename(columns={"peak_memory_bytes": "peak_memory_mib", "memory_per_sample_bytes": "mib_per_sample"})
    return Report(
        f"Batch sweep {sweep.sweep_id}",
        f"{sweep.model} {sweep.precision} on {sweep.device_name}",
        "batch_sweep",
        [
            Section("summary", "Verdict", [_caption(sweep.results, "points"), Markdown(verdict.markdown())]),
            Section("charts", "Charts", figures),
            Section(
                "table",
                "Batch points",
                [
                    Table(
                        shown,
                        "",
                        {
                            **MS,
                            "throughput_per_s": mib,
                            "peak_memory_mib": fmt("{:,.1f}"),
                            "mib_per_sample": fmt("{:,.2f}"),
                        },
                    )
                ],
            ),
            *_runs_sections(sweep.results),
        ],
    )


# -- auto-tune ----------------------------------------------------------------------------------------
def autotune_report(store: RunStore, report: AutotuneReport) -> Report:
    """An auto-tune search as the Auto-tune tab shows it, with the best configuration's run."""
    limits = report.constraints
    facts = Facts(
        (
            Fact("trials", "trials", str(len(report.trials)), float(len(report.trials))),
            Fact(
                "max_build_s",
                "build-time limit",
                "none" if limits.max_build_s is None else f"{limits.max_build_s:g} s",
                limits.max_build_s,
            ),
            Fact(
                "max_rel_l2",
                "accuracy limit (rel. L2)",
                "none" if limits.max_rel_l2 is None else f"{limits.max_rel_l2:g}",
                limits.max_rel_l2,
            ),
            Fact("precisions", "precisions allowed", ", ".join(limits.precisions)),
        )
    )
    summary: list[Block] = [
        Markdown(f"**{report.summary()}**"),
        *(Paragraph(n, muted=True) for n in report.notes),
        facts,
    ]
    # knob values as the Sweeps page labels them ("default (3)", "on"), under the knob's short name
    knobs = [k for k in report.space if k in report.trials]
    params = pd.DataFrame(
        {sweeps.SWEEPABLE_KNOBS.get(k, k): [sweeps.value_label(k, v) for v in report.trials[k]] for k in knobs},
        index=report.trials.index,
    )
    rest = report.trials.drop(columns=["trial", *knobs])
    shown = pd.concat([report.trials[["trial"]], params, rest], axis=1)
    best = [report.best_result] if report.best_result is not None else []
    if report.best_result is None and report.best is not None and report.best.run_id:
        try:
            best = [store.get(report.best.run_id)]
        except RunNotFound:
            best = []
    sections = [
        Section("summary", "Verdict", summary),
        Section(
            "trials",
            "Trials",
            [
                Chart(autotune_charts.autotune_trials(report.trials)),
                Table(shown, "", {**MS, "build_s": fmt("{:.1f}"), "rel_l2": fmt("{:.3g}")}),
            ],
        ),
    ]
    if best:
        sections += _runs_sections(best)
    return Report("Auto-tune search", report.summary(), "autotune", sections)
