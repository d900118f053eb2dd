"""What the Engine page and Compare's kernel section show, as report blocks: a run's engine graph (the same figure,
offline: hover a layer for its details, every layer's details in the table below it), and for a comparison each
run's time split and the kernel diff against the baseline."""

from __future__ import annotations

from collections.abc import Sequence

from engine.charts import engine as engine_charts
from engine.charts import kernels as kernel_charts
from engine.compare import kernel_words, kernels, time_split
from engine.profiling import engine_graph, engine_groups
from engine.report.document import Block, Chart, Details, Paragraph, Table, fmt
from engine.result import RunResult
from engine.store import RunStore

GROUP_ABOVE = 300  # nodes: past this the report's graph is grouped by module, as the page opens it
NODE_TABLE = ["order", "engine", "name", "layer_type", "avg_ms", "share", "module", "module_source", "precision"]


def engine_graph_of(store: RunStore, run: RunResult) -> engine_graph.EngineGraph:
    def raw_text(name: str) -> str | None:
        try:
            return store.artifact_path(run.run_id, name).read_text(errors="replace")
        except FileNotFoundError:
            return None

    return engine_graph.for_run(run, raw_text)


def engine_blocks(store: RunStore, run: RunResult) -> list[Block]:
    graph = engine_graph_of(store, run)
    if graph.nodes.empty:
        return [Paragraph("This run has no engine layers to draw (no per-layer profile, no segmentation).", muted=True)]
    grouped = len(graph.nodes) > GROUP_ABOVE
    view = engine_groups.collapse(graph, engine_groups.default_depth(graph)) if grouped else graph
    summary = engine_groups.engine_summary(graph)
    formats = {"avg_ms": fmt("{:.4f}"), "share": fmt("{:.1%}")}
    blocks: list[Block] = [
        Paragraph(
            "Each engine's layers in execution order, the PyTorch subgraphs between engines as squares. Colour and "
            "size: share of the profiled time; label: ms. Hover a layer for its module, precision, tactic and shapes.",
            muted=True,
        ),
        *(Paragraph(note, muted=True) for note in graph.notes),
        Chart(
            engine_charts.engine_graph_figure(
                view.nodes,
                view.edges,
                title=f"{len(view.nodes):,} {'groups by module' if view is not graph else 'layers'} in execution order",
            )
        ),
        Chart(engine_charts.engine_time_bar(summary)),
        Table(summary, "Engines and PyTorch subgraphs", formats),
        Details(
            f"Every layer's details ({len(graph.nodes):,})",
            (Table(graph.nodes[NODE_TABLE + ["tactic", "output_shapes"]], "", formats),),
        ),
    ]
    return blocks


def kernel_blocks(store: RunStore, runs: Sequence[RunResult], baseline_id: str, labels: dict[str, str]) -> list[Block]:
    splits = [time_split.time_split(r, labels.get(r.run_id, r.label)) for r in runs]
    base_split = next(s for s in splits if s.run_id == baseline_id)
    blocks: list[Block] = [Chart(kernel_charts.time_split_bar(time_split.split_table(splits)))]
    blocks += [Paragraph(kernel_words.split_sentence(s)) for s in splits]
    blocks += [
        Paragraph(f"{s.label} against the baseline: {line}")
        for s in splits
        if s.run_id != baseline_id and (line := kernel_words.split_delta_sentence(base_split, s))
    ]
    blocks += [Paragraph(n, muted=True) for n in dict.fromkeys(n for s in splits for n in s.notes)]
    base = next(r for r in runs if r.run_id == baseline_id)
    for other in runs:
        if other.run_id == baseline_id:
            continue
        found = kernels.diff_stored(store, base, other)
        if found is None:
            blocks.append(
                Paragraph(f"No kernel diff for {labels.get(other.run_id, other.label)}: a per-kernel table is missing.")
            )
            continue
        blocks += [
            Paragraph(kernel_words.headline(found)),
            *(Paragraph(f"• {line}") for line in kernel_words.findings_lines(found)[1:]),
            Chart(
                kernel_charts.kernel_group_bar(
                    found.groups(), labels.get(base.run_id, base.label), labels.get(other.run_id, other.label)
                )
            ),
            Details(
                f"Every kernel of {labels.get(other.run_id, other.label)} against the baseline ({len(found.table)})",
                (
                    Table(
                        found.table.drop(columns=["name"]),
                        "",
                        {c: fmt("{:+.4f}" if "delta" in c else "{:.4f}") for c in ("ms_base", "ms_other", "ms_delta")},
                    ),
                ),
            ),
        ]
    return blocks
