"""The blocks every report repeats per run (single-run, comparison and study reports alike): headline figures with
their noise, warnings, a caption saying where the run was recorded, the environment, the exact request and the CLI
line that measures it again.

Numbers come from the run as stored and from ``engine.studies.statistics``; this module only chooses and orders them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from engine.profiling import engine_precision
from engine.quantization.schemes import FLAVOUR_NAMES
from engine.report.document import NOT_MEASURED, Block, Code, Details, Fact, Facts, Heading, Notice, Paragraph, Table
from engine.report.reproduce import cli_line
from engine.result import RunResult
from engine.studies.statistics import NOISE_CONFIDENCE, median_ci_ms

# what a reader looks for first about the machine; any other key the run recorded follows
ENV_ROWS = (
    ("device_name", "GPU / device"),
    ("gpu_index", "GPU index"),
    ("driver", "NVIDIA driver"),
    ("cuda", "CUDA"),
    ("flavour", "TensorRT flavour"),
    ("tensorrt", "TensorRT version"),
    ("torch_tensorrt", "torch_tensorrt"),
    ("torch", "torch"),
    ("compute_capability", "compute capability"),
    ("device", "device kind"),
    ("host", "host"),
)
NOT_RECORDED = "not recorded"


def fmt_ms(v: float) -> str:
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


def headline_facts(run: RunResult) -> Facts:
    """e2e median with its confidence interval and spread, throughput, GPU time, CUDA-graph replay, host overhead,
    plan identity: each figure as stored, "not measured" where the run has none."""
    rid, lat = run.run_id, run.latency
    items: list[Fact] = []
    if lat.timed:
        lo, hi = median_ci_ms(run.latency_samples_ms) if run.latency_samples_ms else (lat.median_ms, lat.median_ms)
        items.append(
            Fact(
                "e2e_median_ms",
                "end-to-end median",
                fmt_ms(lat.median_ms),
                lat.median_ms,
                f"{NOISE_CONFIDENCE:.0%} CI {lo:.3f}–{hi:.3f} ms · p10–p90 {lat.p10_ms:.3f}–{lat.p90_ms:.3f}"
                f" ms · {lat.iters} iterations ({lat.timer})",
                rid,
            )
        )
        items.append(
            Fact(
                "throughput_per_s",
                "throughput",
                f"{lat.throughput_per_s:,.0f} /s",
                lat.throughput_per_s,
                f"batch {lat.batch_size} / median",
                rid,
            )
        )
    else:
        items.append(
            Fact(
                "e2e_median_ms",
                "end-to-end median",
                "not timed",
                detail="analyze run: graph segmentation only",
                run_id=rid,
            )
        )
    gpu = run.gpu_time
    items.append(
        Fact(
            "gpu_time_ms",
            "GPU kernel time",
            fmt_ms(gpu.median_ms),
            gpu.median_ms,
            f"windows {gpu.min_ms:.4f}–{gpu.max_ms:.4f} ms, spread {gpu.spread_pct:.2f}% · "
            f"{gpu.kernels_per_inference:g} kernels/inference · {gpu.iters} inferences",
            rid,
        )
        if gpu is not None
        else _not_measured("gpu_time_ms", "GPU kernel time", run)
    )
    replay = run.graph_replay
    if replay is None:
        items.append(_not_measured("graph_replay_ms", "CUDA-graph replay", run))
    elif replay.captured and replay.median_ms is not None:
        band = (
            f"p10–p90 {replay.p10_ms:.3f}–{replay.p90_ms:.3f} ms · "
            if replay.p10_ms is not None and replay.p90_ms is not None
            else ""
        )
        items.append(
            Fact(
                "graph_replay_ms",
                "CUDA-graph replay",
                fmt_ms(replay.median_ms),
                replay.median_ms,
                f"{band}{replay.iters} replays",
                rid,
            )
        )
    else:
        items.append(Fact("graph_replay_ms", "CUDA-graph replay", "not captured", detail=replay.reason, run_id=rid))
    host = run.host_overhead_ms
    items.append(
        Fact("host_overhead_ms", "host overhead", fmt_ms(host), host, "end-to-end median − GPU kernel time", rid)
        if host is not None
        else _not_measured("host_overhead_ms", "host overhead", run)
    )
    items.append(
        Fact("plan_fingerprint", "engine plan", run.plan_fingerprint, detail="same plan → same kernels", run_id=rid)
        if run.plan_fingerprint
        else _not_measured("plan_fingerprint", "engine plan", run)
    )
    if run.engine_precision is not None:
        p = run.engine_precision
        items.append(
            Fact(
                "engine_precision",
                "engine precision",
                engine_precision.summary(p),
                engine_precision.shares(p).get(p.expected, 0.0),
                detail=f"layers by output datatype; labelled {p.expected}" + (": THEY DIFFER" if p.mismatch else ""),
                run_id=rid,
            )
        )
    if run.request["backend"] == "tensorrt" and lat.timed:
        items.append(
            Fact(
                "engine_count",
                "TensorRT engines",
                str(run.engine_count),
                float(run.engine_count),
                f"{run.engine_bytes / 2**20:.1f} MiB" if run.engine_bytes else "",
                rid,
            )
        )
    return Facts(tuple(items))


def _not_measured(key: str, label: str, run: RunResult) -> Fact:
    why = (
        "needs an NVIDIA GPU"
        if run.env.get("device") != "cuda"
        else "recorded before this figure existed, or not measured"
    )
    return Fact(key, label, NOT_MEASURED, detail=why, run_id=run.run_id)


def environment_table(runs: Sequence[RunResult], labels: dict[str, str] | None = None) -> Table:
    """GPU, driver, versions and flavour per run; one column when every run shares them."""
    keys = [k for k, _ in ENV_ROWS] + sorted({k for r in runs for k in r.env} - {k for k, _ in ENV_ROWS})
    names = dict(ENV_ROWS)

    def value(run: RunResult, key: str) -> str:
        v = run.env.get(key)
        if v is None or v == "":
            return NOT_RECORDED
        return f"{v} ({FLAVOUR_NAMES[v]})" if key == "flavour" and v in FLAVOUR_NAMES else str(v)

    columns = {(labels or {}).get(r.run_id, r.run_id): [value(r, k) for k in keys] for r in runs}
    if len({tuple(v) for v in columns.values()}) == 1:
        columns = {"value": next(iter(columns.values()))}
    df = pd.DataFrame({"setting": [names.get(k, k) for k in keys], **columns})
    return Table(df)


def request_blocks(run: RunResult) -> list[Block]:
    """The exact stored request and the CLI line that measures it again."""
    line = cli_line(run.request)
    blocks: list[Block] = [
        Code(
            line.line,
            "Measure it again (python -m engine profile; --no-cache runs it even if the store has the result):",
        )
    ]
    if line.unknown:
        blocks.append(
            Notice(
                "Stored settings this CLI has no option for (left out of the line): " + ", ".join(line.unknown),
                "warning",
            )
        )
    blocks.append(Details("Exact request (JSON)", (Code(json.dumps(run.request, indent=1, sort_keys=True)),)))
    return blocks


def warning_blocks(run: RunResult) -> list[Block]:
    return [Notice(w, "warning") for w in run.warnings]


def run_caption(run: RunResult) -> Paragraph:
    where = f"{run.env.get('device_name', '?')} · {run.env.get('flavour', 'none')} · {run.created_at}"
    return Paragraph(
        f"Run {run.run_id}, recorded on {where}"
        + (" · a sample run recorded on a real GPU and bundled with the dashboard" if run.is_sample else ""),
        muted=True,
    )


def per_run_blocks(runs: Sequence[RunResult]) -> list[Block]:
    """For each run: its label, headline figures, warnings, and its request with the CLI line."""
    blocks: list[Block] = []
    for i, run in enumerate(runs, start=1):
        blocks += [
            Heading(run.label, f"run-{i}"),
            run_caption(run),
            headline_facts(run),
            *warning_blocks(run),
            *request_blocks(run),
        ]
    return blocks
