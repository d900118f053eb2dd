"""The History listing: ``RunStore.list_runs()`` rows filtered, labelled for pickers and made readable, and the runs
marked as baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import pandas as pd

HISTORY_FILTERS = ("model", "device_name", "flavour", "precision", "backend")


def history_filter_options(summary: pd.DataFrame) -> dict[str, list[str]]:
    """The distinct values each History filter can take, sorted."""
    return {c: sorted(summary[c].dropna().astype(str).unique()) for c in HISTORY_FILTERS if c in summary}


def filter_history(
    summary: pd.DataFrame, *, since: date | None = None, until: date | None = None, **chosen: Sequence[str] | None
) -> pd.DataFrame:
    """Rows of ``RunStore.list_runs()`` matching every non-empty filter; dates are inclusive (UTC)."""
    df = summary
    for col, values in chosen.items():
        if col not in HISTORY_FILTERS:
            raise ValueError(f"unknown history filter {col!r}; known: {', '.join(HISTORY_FILTERS)}")
        if values:
            df = df[df[col].astype(str).isin(list(values))]
    day = df["created_at"].astype(str).str[:10]
    if since is not None:
        df = df[day >= since.isoformat()]
        day = day[df.index]
    if until is not None:
        df = df[day <= until.isoformat()]
    return df.reset_index(drop=True)


def summary_labels(summary: pd.DataFrame) -> dict[str, str]:
    """Run id -> one-line description for pickers, from ``RunStore.list_runs()`` rows."""
    labels = {}
    for row in summary.itertuples(index=False):
        latency = f"{row.e2e_median_ms:.3f} ms" if row.e2e_median_ms > 0 else "not timed"
        # the run id's tail tells apart runs the summary columns do not (quantization schemes, other knobs)
        text = (
            f"{row.model} b{row.batch_size} {row.backend} {row.precision} · {row.run_id[-8:]} · "
            f"{row.device_name} · {str(row.created_at)[:16].replace('T', ' ')} · {latency}"
        )
        if row.is_sample:
            text += " · sample"
        if row.is_baseline:
            text = "★ " + text
        labels[row.run_id] = text
    return labels


def history_table(summary: pd.DataFrame, gpu_time: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The History listing: readable columns, newest first, samples and baselines flagged. ``gpu_time`` maps
    run ids to their GPU-time cell (``run_figures.gpu_time_cell``: "0.3866 ms" or why there is none)."""
    df = summary.copy()
    df["created"] = pd.to_datetime(df["created_at"], utc=True, errors="coerce")
    df["tags"] = df["tags"].fillna("").astype(str)
    df["e2e_median_ms"] = df["e2e_median_ms"].where(df["e2e_median_ms"] > 0)  # analyze runs time nothing
    df["gpu_time"] = df["run_id"].map(lambda i: (gpu_time or {}).get(i, "not loaded"))
    cols = [
        "run_id",
        "created",
        "model",
        "backend",
        "precision",
        "batch_size",
        "device_name",
        "flavour",
        "e2e_median_ms",
        "gpu_time",
        "engine_count",
        "is_sample",
        "is_baseline",
        "tags",
    ]
    return df[cols].reset_index(drop=True)


def marked_baselines(summary: pd.DataFrame) -> list[str]:
    """Run ids marked as a baseline in History."""
    return list(summary.loc[summary["is_baseline"].astype(bool), "run_id"])


def baseline_index(run_ids: Sequence[str], marked: Sequence[str]) -> int:
    """Position of the first compared run marked as a baseline, else 0."""
    return next((i for i, r in enumerate(run_ids) if r in set(marked)), 0)
