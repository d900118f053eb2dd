"""What a report says about runs: one run (what Profile, Layers and Segmentation show) or a comparison of 2-6
runs (what Compare shows). The blocks every report repeats per run (headline figures, warnings, environment,
request and CLI line) are in ``engine.report.run_blocks``.

Numbers, tables and figures come from the engine's own functions (``engine.compare``, ``engine.charts``,
``engine.diagnosis``); this module only chooses and orders them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from engine import diagnosis
from engine.charts import compare as compare_charts
from engine.charts import layer_tables
from engine.charts import layers as layer_charts
from engine.charts import profile as stage_charts
from engine.charts import segmentation as segment_charts
from engine.compare import metrics, settings_table
from engine.report.document import (
    Block,
    Chart,
    Details,
    Fact,
    Facts,
    Heading,
    Notice,
    Paragraph,
    Report,
    Section,
    Table,
    fmt,
)
from engine.report.engine_blocks import engine_blocks, kernel_blocks
from engine.report.errors import ReportError
from engine.report.run_blocks import (
    environment_table,
    fmt_ms,
    headline_facts,
    per_run_blocks,
    request_blocks,
    run_caption,
    warning_blocks,
)
from engine.result import RunResult
from engine.store import RunStore
from engine.studies import dynamic_cost

TOP_LAYERS = 20


# -- one run ------------------------------------------------------------------------------------------
def single_run_report(store: RunStore, run: RunResult) -> Report:
    summary: list[Block] = [run_caption(run), headline_facts(run), *warning_blocks(run)]
    found = diagnosis.diagnose_result(run)
    if found is not None and found.verdict != "compute_bound":  # as the Profile page shows it
        summary += [Notice(line, "info") for line in found.text().splitlines() if line]
    if run.latency.timed and dynamic_cost.is_dynamic(run.request):
        static = dynamic_cost.find_static_counterpart(store, run)
        if static is not None:
            summary.append(Notice(dynamic_cost.DynamicCost(run, static).text(), "info"))
    summary.append(Table(metrics.run_summary(run), "Headline numbers", {"value": fmt("{:.4g}")}))
    if run.quantization is not None:
        summary.append(_quantization_table(run))
    if run.stages_s:
        summary.append(Chart(stage_charts.stage_bar(run.stages_s)))
    sections = [
        Section("summary", "Summary", summary),
        Section("layers", "Per-layer latency", layer_blocks(run)),
        Section("engine", "Engine graph", engine_blocks(store, run)),
        Section("segmentation", "Graph segmentation", segmentation_blocks(run)),
        Section("environment", "Environment", [environment_table([run])]),
        Section("reproduce", "Request and how to reproduce it", request_blocks(run)),
    ]
    return Report(
        f"Run report: {run.label}",
        f"{run.request['model']['source']} · {run.env.get('device_name', '?')} · {run.created_at}",
        "run",
        sections,
    )


def _quantization_table(run: RunResult) -> Table:
    q = run.quantization
    assert q is not None
    rows = [
        {
            "comparison": name,
            "rel_l2": acc.rel_l2 if acc else None,
            "max_abs": acc.max_abs if acc else None,
            "top1_agreement": acc.top1_agreement if acc else None,
        }
        for name, acc in (
            ("fake-quantized vs eager fp32", q.fake_quant_vs_eager),
            ("engine vs fake-quantized", q.engine_vs_fake_quant),
            ("engine vs eager fp32", q.engine_vs_eager),
        )
    ]
    return Table(
        pd.DataFrame(rows),
        f"Quantization {q.scheme} over {q.base_precision}: three-way accuracy (calibration: {q.calibration})",
        {"rel_l2": fmt("{:.3g}"), "max_abs": fmt("{:.3g}"), "top1_agreement": fmt("{:.1%}")},
    )


def layer_blocks(run: RunResult) -> list[Block]:
    """What the Layers page shows, every tab laid out one after the other."""
    if run.layers.empty:
        return [
            Paragraph(
                "This run has no per-layer profile: it was recorded with per-layer profiling off (or in analyze mode).",
                muted=True,
            )
        ]
    overhead = metrics.profiling_overhead(run)
    facts = [
        Fact("layers_profiled", "layers profiled", f"{len(run.layers):,}", float(len(run.layers)), run_id=run.run_id)
    ]
    if overhead["profiled_sum_ms"] is not None:
        facts.append(
            Fact(
                "profiled_sum_ms",
                "sum of per-layer averages",
                fmt_ms(overhead["profiled_sum_ms"]),
                overhead["profiled_sum_ms"],
                "profiling synchronises after every layer",
                run.run_id,
            )
        )
    if overhead["ratio"] is not None:
        facts.append(
            Fact(
                "profiled_ratio",
                "profiled / end-to-end",
                f"{overhead['ratio']:.2f}×",
                overhead["ratio"],
                run_id=run.run_id,
            )
        )
    top = layer_tables.slowest_layers(run.layers, TOP_LAYERS)
    by_type = layer_tables.time_by(run.layers, "layer_type")
    layer_formats = {"avg_ms": fmt("{:.4f}"), "share": fmt("{:.1%}")}
    return [
        Facts(tuple(facts)),
        Chart(layer_charts.top_layers_bar(run.layers, TOP_LAYERS)),
        Table(
            top[["order", "name", "layer_type", "avg_ms", "share", "precision", "segment", "module_path"]],
            f"Top {TOP_LAYERS} layers (mean time per inference)",
            layer_formats,
        ),
        Chart(layer_charts.layer_type_treemap(run.layers)),
        Table(by_type, "Time by layer type", {"total_ms": fmt("{:.4f}"), "share": fmt("{:.1%}")}),
        Chart(layer_charts.precision_share_bar(run.layers)),
        Chart(layer_charts.execution_timeline(run.layers)),
        Chart(layer_charts.module_tree(run.layers)),
        Chart(layer_charts.profiling_overhead_bar(overhead["e2e_median_ms"], overhead["profiled_sum_ms"])),
        Details(f"All {len(run.layers):,} layers in execution order", (Table(run.layers, "", layer_formats),)),
    ]


def segmentation_blocks(run: RunResult) -> list[Block]:
    """What the Segmentation page shows."""
    seg = run.segmentation
    if seg is None:
        why = (
            "eager runs execute the whole model in PyTorch"
            if run.request["backend"] == "eager"
            else "the TensorRT backend recorded none for it"
        )
        return [Paragraph(f"This run has no segmentation: {why}.", muted=True)]
    mbs = run.request["compile"]["min_block_size"]
    blocks: list[Block] = [
        Facts(
            (
                Fact("total_ops", "operators", f"{seg.total_ops:,}", float(seg.total_ops), run_id=run.run_id),
                Fact(
                    "supported_ops", "supported", f"{seg.supported_ops:,}", float(seg.supported_ops), run_id=run.run_id
                ),
                Fact("coverage", "coverage", f"{seg.coverage:.1%}", seg.coverage, run_id=run.run_id),
                Fact(
                    "segment_engines",
                    "TensorRT engines",
                    str(seg.engine_count),
                    float(seg.engine_count),
                    run_id=run.run_id,
                ),
                Fact("min_block_size", "min_block_size", str(mbs), float(mbs), run_id=run.run_id),
            )
        ),
        Chart(segment_charts.segment_strip(seg)),
        Chart(segment_charts.ops_per_engine_bar(seg, mbs)),
        Chart(segment_charts.unsupported_ops_bar(seg)),
        Heading("Recommendations"),
    ]
    if not seg.recommendations:
        blocks.append(Paragraph("Torch-TensorRT gave no min_block_size recommendation for this graph.", muted=True))
    for rec in seg.recommendations:
        what = {
            "minimal": "Fewest engines",
            "moderate": "Moderate segmentation",
            "current": "Equivalent to this run",
        }.get(rec.kind, rec.kind)
        blocks.append(Paragraph(f"{what}: min_block_size = {rec.min_block_size} → {rec.engines} TensorRT engine(s)"))
    if seg.pytorch_nodes:
        blocks.append(Table(pd.DataFrame(seg.pytorch_nodes), f"Nodes run in PyTorch ({len(seg.pytorch_nodes)})"))
    blocks.append(Details(f"Segments ({len(seg.segments)})", (Table(segment_charts.segments_table(seg)),)))
    return blocks


# -- a comparison -------------------------------------------------------------------------------------
METRIC_FORMATS = {
    "e2e_median_ms": fmt("{:.4f}"),
    "e2e_p90_ms": fmt("{:.4f}"),
    "e2e_p99_ms": fmt("{:.4f}"),
    "throughput_per_s": fmt("{:,.1f}"),
    "compile_s": fmt("{:.2f}"),
    "engine_count": fmt("{:.0f}"),
    "engine_mb": fmt("{:.1f}"),
    "peak_memory_mb": fmt("{:.1f}"),
    "accuracy_rel_l2": fmt("{:.2e}"),
    "top1_agreement": fmt("{:.1%}"),
    "delta_ms": fmt("{:+.4f}"),
    "delta_pct": fmt("{:+.1f}%"),
    "speedup": fmt("{:.2f}×"),
}


def comparison_report(
    runs: Sequence[RunResult], baseline_id: str | None = None, store: RunStore | None = None
) -> Report:
    """What the Compare page shows for these runs against the baseline (the first run unless named)."""
    if baseline_id is not None and baseline_id not in {r.run_id for r in runs}:
        raise ReportError(
            f"The baseline {baseline_id!r} is not one of the compared runs.",
            "Name one of the runs given, or leave the baseline out (the first run is the baseline).",
        )
    base = metrics.pick_baseline(runs, baseline_id)
    table = metrics.metric_table(runs, base.run_id)
    short = settings_table.short_labels(runs)
    cards = []
    for row in table.itertuples():
        if pd.isna(row.e2e_median_ms):
            cards.append(Fact("e2e_median_ms", short[row.run_id], "not timed", detail="analyze run", run_id=row.run_id))
            continue
        vs = (
            "baseline"
            if row.baseline
            else ("" if pd.isna(row.speedup) else f"{row.delta_pct:+.1f}% · {row.speedup:.2f}× vs baseline")
        )
        cards.append(
            Fact("e2e_median_ms", short[row.run_id], fmt_ms(row.e2e_median_ms), row.e2e_median_ms, vs, row.run_id)
        )
    summary: list[Block] = [
        Paragraph(
            f"{len(runs)} runs against the baseline {base.label}. Speedup = baseline median / run median "
            "(above 1×: faster than the baseline).",
            muted=True,
        ),
        Facts(tuple(cards)),
        Table(table.drop(columns=["run_id"]), "Headline metrics", METRIC_FORMATS),
        *(Notice(note, "info") for note in metrics.hardware_notes(runs)),
    ]
    charts_blocks: list[Block] = [
        Chart(compare_charts.metric_bars(metrics.metric_long(runs))),
        Chart(compare_charts.latency_distribution(metrics.latency_samples(runs))),
        Chart(compare_charts.layer_type_diff_bar(metrics.layer_type_time(runs, base.run_id))),
    ]
    differ = settings_table.differing_settings(runs)
    everything = settings_table.settings_table(runs)
    settings: list[Block] = [
        Table(differ, "Settings that differ", index=True)
        if not differ.empty
        else Paragraph(
            "All settings, versions and the GPU are the same: differences are run-to-run noise.", muted=True
        ),
        Details(
            "All settings (differences highlighted)",
            (Table(everything.drop(columns="differs"), "", index=True, highlight=list(everything["differs"])),),
        ),
    ]
    labels = {r.run_id: f"{short[r.run_id]}" for r in runs}
    return Report(
        f"Comparison of {len(runs)} runs",
        " · ".join(r.label for r in runs),
        "comparison",
        [
            Section("summary", "Summary", summary),
            Section("charts", "Charts", charts_blocks),
            *(
                [Section("kernels", "Time split and kernel diff", kernel_blocks(store, runs, base.run_id, labels))]
                if store is not None
                else []
            ),
            Section("settings", "Settings", settings),
            Section("environment", "Environment", [environment_table(runs, labels)]),
            Section("runs", "Each run", per_run_blocks(runs)),
        ],
    )
