"""A generative run's figures as tables (one DataFrame per chart), for one run or several compared side by side:
every row names its ``series`` (the backend, with the run's label when several runs are shown, "+ CUDA graph" for
replays). engine/charts/generative.py draws them; the page and the report place them."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from engine.generative.figures import GRAPH_SUFFIX, BackendFigures, DecodePoint, GenerativeRun, Spread
from engine.generative.findings import knee_batch

SPREAD_COLUMNS = ["median_ms", "p10_ms", "p90_ms", "gpu_ms"]


def _series(run: GenerativeRun, backend: str, several: bool) -> str:
    return f"{backend} · {run.run_id}" if several else backend


def _spread(s: Spread) -> dict[str, float | None]:
    return {"median_ms": s.median_ms, "p10_ms": s.p10_ms, "p90_ms": s.p90_ms, "gpu_ms": s.gpu_ms}


def _each(runs: Sequence[GenerativeRun]) -> list[tuple[GenerativeRun, BackendFigures, str]]:
    several = len(runs) > 1
    return [(r, b, _series(r, b.backend, several)) for r in runs for b in r.backends.values()]


def prefill_table(runs: Sequence[GenerativeRun]) -> pd.DataFrame:
    rows = [
        {"series": s, "backend": b.backend, "run_id": r.run_id, "prompt_len": p.prompt_len, **_spread(p.spread)}
        for r, b, s in _each(runs)
        for p in b.prefill
    ]
    return pd.DataFrame(rows, columns=["series", "backend", "run_id", "prompt_len", *SPREAD_COLUMNS])


def _decode_rows(r: GenerativeRun, b: BackendFigures, s: str, points: list[DecodePoint]) -> list[dict]:
    rows = []
    for p in points:
        base = {"backend": b.backend, "run_id": r.run_id, "context": p.context, "batch": p.batch}
        rows.append({"series": s, **base, **_spread(p.spread), "tokens_per_s": p.tokens_per_s, "graph": False})
        if p.graph is not None:
            rows.append(
                {"series": s + GRAPH_SUFFIX, **base, **_spread(p.graph), "tokens_per_s": p.graph_tokens_per_s,
                 "graph": True}
            )  # fmt: skip
    return rows


DECODE_COLUMNS = ["series", "backend", "run_id", "context", "batch", *SPREAD_COLUMNS, "tokens_per_s", "graph"]


def decode_table(runs: Sequence[GenerativeRun]) -> pd.DataFrame:
    """Decode step by context (batch 1)."""
    rows = [row for r, b, s in _each(runs) for row in _decode_rows(r, b, s, b.decode)]
    return pd.DataFrame(rows, columns=DECODE_COLUMNS)


def batch_table(runs: Sequence[GenerativeRun]) -> pd.DataFrame:
    """Decode step and tokens/s by batch (first context), with each series' knee batch (NaN: none)."""
    rows = []
    for r, b, s in _each(runs):
        knee = knee_batch(b.batches)
        for row in _decode_rows(r, b, s, b.batches):
            rows.append(row | {"knee_batch": knee if not row["graph"] else None})
    return pd.DataFrame(rows, columns=[*DECODE_COLUMNS, "knee_batch"])


def layer_split_table(runs: Sequence[GenerativeRun]) -> pd.DataFrame:
    rows = [{"series": s, "part": part, "ms": ms} for r, b, s in _each(runs) for part, ms in b.layer_split_ms.items()]
    return pd.DataFrame(rows, columns=["series", "part", "ms"])


def host_table(runs: Sequence[GenerativeRun]) -> pd.DataFrame:
    """One decode step split into the GPU's own time and what it waited for the host, and the graph replay."""
    rows = [
        {"series": s, "e2e_ms": b.host.e2e_ms, "gpu_ms": b.host.gpu_ms, "host_ms": b.host.host_ms,
         "enqueue_ms": b.host.enqueue_ms, "graph_ms": b.host.graph_ms, "host_share": b.host.host_share}
        for r, b, s in _each(runs)
        if b.host is not None
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["series", "e2e_ms", "gpu_ms", "host_ms", "enqueue_ms", "graph_ms", "host_share"])


def comparable(runs: Sequence[GenerativeRun]) -> list[list[GenerativeRun]]:
    """The runs grouped like with like (``GenerativeRun.comparable_key``): only a group is compared side by side."""
    groups: dict[tuple, list[GenerativeRun]] = {}
    for r in runs:
        groups.setdefault(r.comparable_key(), []).append(r)
    return list(groups.values())


def stored_runs() -> list[GenerativeRun]:
    """Every stored generative run, the bundled samples included (a document of another version is skipped)."""
    from engine.store import generative_runs  # noqa: PLC0415

    runs = []
    for doc in generative_runs.load_all():
        try:
            runs.append(GenerativeRun.from_dict(doc))
        except (KeyError, TypeError, ValueError):
            continue
    return runs


def runs_table(runs: Sequence[GenerativeRun]) -> pd.DataFrame:
    """One row per run, for History: what ran and its headline figures (the run's own backend)."""
    rows = []
    for r in runs:
        main = r.backends.get(r.request.backend)
        rows.append(
            {
                "run_id": r.run_id,
                "created": r.created_utc,
                "model": r.request.model,
                "backends": "+".join(r.request.backends),
                "precision": r.request.precision,
                "device": r.env.get("device_name", ""),
                "cuda_graphs": r.request.cuda_graphs,
                "ttft_ms": None if main is None else main.ttft.median_ms,
                "decode_ms": None if main is None or not main.decode else main.decode[0].spread.median_ms,
                "tokens_equal": all(c.equal for c in r.checks),
            }
        )
    return pd.DataFrame(rows)
