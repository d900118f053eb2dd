"""The report of one generative run, or of several compared like with like: the verdict, the figures' charts and
tables (engine/generative/tables.py, engine/charts/generative.py), the greedy-token checks and the request."""

from __future__ import annotations

import json
from collections.abc import Sequence

from engine.charts import generative as charts
from engine.generative import tables
from engine.generative.figures import GenerativeRun
from engine.generative.words import verdict
from engine.report.document import Chart, Code, Details, Fact, Facts, Heading, Markdown, Notice, Report, Section, Table
from engine.report.errors import ReportError

MIB = 2**20


def _facts(run: GenerativeRun) -> Facts:
    main = run.backends[run.request.backend]
    first = main.decode[0]
    items = [
        Fact("ttft_ms", "time to first token", f"{main.ttft.median_ms:.3f} ms", main.ttft.median_ms,
             f"prompt {main.prefill[0].prompt_len}, p10-p90 {main.ttft.p10_ms:.3f}-{main.ttft.p90_ms:.3f}",
             run.run_id),
        Fact("decode_ms", "decode step", f"{first.spread.median_ms:.3f} ms", first.spread.median_ms,
             f"batch 1, context {first.context}", run.run_id),
        Fact("kv_bytes_per_token", "KV cache per token", f"{run.memory.kv_bytes_per_token / 1024:.1f} KiB",
             run.memory.kv_bytes_per_token, "", run.run_id),
        Fact("weights_bytes", "weights", f"{run.memory.weights_bytes / MIB:.0f} MiB", run.memory.weights_bytes, "",
             run.run_id),
    ]  # fmt: skip
    return Facts(tuple(items))


def _figures(runs: Sequence[GenerativeRun]) -> list:
    budget = runs[0].request.latency_budget_ms
    batch = tables.batch_table(runs)
    return [
        Chart(charts.prefill_vs_prompt(tables.prefill_table(runs))),
        Chart(charts.decode_vs_context(tables.decode_table(runs))),
        Chart(charts.tokens_per_s_vs_batch(batch, budget)),
        Chart(charts.budget_line(batch, budget)),
        Chart(charts.host_overhead(tables.host_table(runs))),
        Chart(charts.layer_split(tables.layer_split_table(runs))),
        Details("Figures as tables", (Table(tables.decode_table(runs), "decode step by context"),
                                      Table(batch, "decode step by batch"),
                                      Table(tables.prefill_table(runs), "prefill by prompt length"))),
    ]  # fmt: skip


def _run_section(run: GenerativeRun) -> Section:
    blocks: list = [Heading(run.label, anchor=run.run_id), _facts(run)]
    blocks.append(Markdown("\n".join(f"- {s}" for s in verdict(run))))
    blocks += [Notice(w) for w in run.warnings]
    blocks.append(
        Details("Request and decoder", (Code(json.dumps({"request": run.request.to_dict(),
                                                          "config": run.config.to_dict(), "env": run.env}, indent=1),
                                             "json"),))
    )  # fmt: skip
    return Section(f"run-{run.run_id}", run.label, blocks)


def generative_report(runs: Sequence[GenerativeRun]) -> Report:
    if not runs:
        raise ReportError("No generative run given.")
    if len(tables.comparable(runs)) > 1:
        raise ReportError(
            "These generative runs are not like with like (model, shape, precision, device or sizes differ).",
            "Compare runs of one model, precision, device and the same prompt lengths, contexts and batches.",
        )
    sections = [_run_section(r) for r in runs]
    sections.append(Section("figures", "Figures", _figures(runs)))
    kind = "run" if len(runs) == 1 else "comparison"
    title = runs[0].label if len(runs) == 1 else f"{len(runs)} generative runs of {runs[0].request.model}"
    return Report(title, f"generative: prefill and decode measured apart · {runs[0].env.get('device_name')}", kind,
                  sections)  # fmt: skip
