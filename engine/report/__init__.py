"""Reports to hand round: one self-contained HTML file per run, comparison or study, and a run's per-layer
timeline as a Chrome trace.

``python -m engine report`` and the dashboard's Download report buttons call these functions, so the same ids
give the same bytes (nothing in a report depends on when it was written).

    runs_html(store, ["<run id>"])                      one run: what Profile, Layers and Segmentation show
    runs_html(store, ids, baseline_id=None)             2-6 runs: what Compare shows
    study_html(store, "<study id>")                     a knob sweep, precision ladder or batch sweep
    autotune_html(store, autotune_report)               an auto-tune search held by the page that ran it
    trace_json(store, ids)                              Chrome-trace JSON of the runs' per-layer profiles
    generative_html(ids)                                generative runs (engine/generative): one, or like with like
    store_fingerprint(store)                            changes when any report of the store could (a cache key)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from engine.compare.metrics import MAX_COMPARED
from engine.report.errors import ReportError
from engine.result import RunResult
from engine.store import RunNotFound, RunStore
from engine.studies.ladder import DEFAULT_TOLERANCE_REL_L2

if TYPE_CHECKING:
    from engine.studies.autotune import AutotuneReport

# The document, its figures and plotly load when a report is written, not when the package is imported: the CLI
# registers ``report`` beside ``profile``, and a profile must not need plotly (the GPU kit has none).

__all__ = [
    "ReportError",
    "autotune_html",
    "file_name",
    "find_study",
    "generative_html",
    "is_generative",
    "load_runs",
    "parse_ids",
    "runs_html",
    "store_fingerprint",
    "study_html",
    "trace_json",
]


def parse_ids(values: str | Iterable[str]) -> list[str]:
    """Run ids from ``"a,b"`` or ``["a", "b,c"]``, blanks dropped, each once, in the order given."""
    items = [values] if isinstance(values, str) else list(values)
    ids = [part.strip() for item in items for part in item.split(",")]
    return list(dict.fromkeys(i for i in ids if i))


def load_runs(store: RunStore, run_ids: Sequence[str], *, max_runs: int = MAX_COMPARED) -> list[RunResult]:
    """The stored runs, in order; ``ReportError`` for none, too many, or an id the store does not hold."""
    ids = parse_ids(run_ids)
    if not ids:
        raise ReportError(
            "No run id given.",
            "Name a run id, or 2 to 6 comma-separated ids to compare (python -m engine runs lists them).",
        )
    if len(ids) > max_runs:
        raise ReportError(
            f"{len(ids)} runs given; a report compares at most {max_runs}.", f"Name at most {max_runs} run ids."
        )
    runs = []
    for run_id in ids:
        try:
            runs.append(store.get(run_id))
        except RunNotFound as e:
            raise ReportError(
                e.message.replace(" Pick a run from History.", ""), "python -m engine runs lists the stored runs."
            ) from None
    return runs


def runs_html(store: RunStore, run_ids: Sequence[str], *, baseline_id: str | None = None) -> bytes:
    """The report of one run, or the comparison of 2-6 runs against ``baseline_id`` (default: the first)."""
    runs = load_runs(store, run_ids)
    if len(runs) == 1:
        if baseline_id not in (None, runs[0].run_id):
            raise ReportError(f"The baseline {baseline_id!r} is not the run given.", "Leave the baseline out.")
        from engine.report.document import render
        from engine.report.runs import comparison_report, single_run_report

        return render(single_run_report(store, runs[0]))
    from engine.report.document import render
    from engine.report.runs import comparison_report

    return render(comparison_report(runs, baseline_id, store))


def study_html(store: RunStore, study_id: str, *, tolerance_rel_l2: float = DEFAULT_TOLERANCE_REL_L2) -> bytes:
    """The report of a stored knob sweep, precision ladder or batch sweep (``ReportError`` for an unknown id)."""
    from engine.report.document import render
    from engine.report.studies import study_report

    return render(study_report(store, study_id, tolerance_rel_l2=tolerance_rel_l2))


def autotune_html(store: RunStore, report: AutotuneReport) -> bytes:
    """The report of an auto-tune search (today held by the page that ran it, not stored)."""
    from engine.report.document import render
    from engine.report.studies import autotune_report

    return render(autotune_report(store, report))


def trace_json(store: RunStore, run_ids: Sequence[str]) -> bytes:
    """Chrome-trace JSON of the runs' per-layer profiles (one process per run), for Perfetto."""
    from engine.report.trace import chrome_trace

    return chrome_trace(load_runs(store, run_ids))


def is_generative(run_ids: Sequence[str]) -> bool:
    """Whether every id names a stored (or bundled) generative run."""
    from engine.store import generative_runs  # noqa: PLC0415

    stored = {d.get("run_id") for d in generative_runs.load_all()}
    ids = parse_ids(run_ids)
    return bool(ids) and all(i in stored for i in ids)


def generative_html(run_ids: Sequence[str]) -> bytes:
    """The report of one generative run, or of 2-6 compared like with like (``ReportError`` otherwise)."""
    from engine.generative.figures import GenerativeRun  # noqa: PLC0415
    from engine.report.document import render  # noqa: PLC0415
    from engine.report.generative import generative_report  # noqa: PLC0415
    from engine.store import generative_runs  # noqa: PLC0415

    ids = parse_ids(run_ids)
    if len(ids) > MAX_COMPARED:
        raise ReportError(f"{len(ids)} runs given; a report compares at most {MAX_COMPARED}.")
    try:
        runs = [GenerativeRun.from_dict(generative_runs.get(i)) for i in ids]
    except RunNotFound as e:
        raise ReportError(e.message, "python -m engine runs lists the stored runs.") from None
    return render(generative_report(runs))


def store_fingerprint(store: RunStore) -> str:
    """What a report can read from the store, hashed: every run id and its tags. A run added, deleted or tagged
    into a study changes it (a stored run is otherwise never rewritten), so it keys a cache of report bytes."""
    runs = store.list_runs()
    blob = "\n".join(f"{run_id} {tags}" for run_id, tags in sorted(zip(runs["run_id"], runs["tags"], strict=True)))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_name(*, run_ids: Sequence[str] = (), study_id: str = "", suffix: str = ".html") -> str:
    """A download name: ``report_<id>.html``, ``report_<id>_and_2_more.html``, ``report_<study>.html``."""
    ids = parse_ids(run_ids)
    if study_id:
        stem = study_id
    elif len(ids) > 1:
        stem = f"{ids[0]}_and_{len(ids) - 1}_more"
    else:
        stem = ids[0] if ids else "runs"
    kind = "trace" if suffix == ".json" else "report"
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)}{suffix}"


def __getattr__(name: str) -> Any:
    """``find_study`` is re-exported from engine.report.studies, loaded on first use (PEP 562)."""
    if name == "find_study":
        from engine.report.studies import find_study

        return find_study
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
