"""``python -m engine report``: the HTML report of a run, a comparison or a study, and the per-layer Chrome trace.

    python -m engine report ID -o run.html
    python -m engine report ID,ID,ID [--baseline ID] -o compare.html
    python -m engine report --study ID -o study.html         (ladder:ID / sweep:ID / batch:ID / autotune:ID)
    python -m engine report ID --trace layers.json           (open in https://ui.perfetto.dev)

Bad ids, unknown studies and unwritable files print ``error: ...`` with a hint and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.report.errors import ReportError
from engine.settings.cli import number
from engine.store import RunStore
from engine.studies.ladder import DEFAULT_TOLERANCE_REL_L2


def add_report_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of runs or a study (and a Chrome trace)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "ids", nargs="*", metavar="ID[,ID...]", help="a run id, or 2-6 run ids to compare (comma- or space-separated)"
    )
    p.add_argument("--study", metavar="ID", help="a knob sweep, precision ladder, batch sweep or auto-tune id")
    p.add_argument("-o", "--output", metavar="FILE.html", help="where to write the HTML report ('-': stdout)")
    p.add_argument(
        "--trace",
        metavar="FILE.json",
        help="write the runs' per-layer timeline as Chrome-trace JSON (Perfetto, chrome://tracing)",
    )
    p.add_argument("--baseline", metavar="ID", help="the run the others are compared with (default: the first)")
    p.add_argument(
        "--tolerance",
        type=number(float, 0, 1e6, above_low=True),
        default=DEFAULT_TOLERANCE_REL_L2,
        metavar="REL_L2",
        help=f"a precision ladder's accuracy tolerance, rel. L2 vs eager fp32 (default {DEFAULT_TOLERANCE_REL_L2})",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(ns: argparse.Namespace) -> int:
    try:
        return _report(ns)
    except ReportError as e:
        print(f"error: {e.message}" + (f"\nhint: {e.hint}" if e.hint else ""), file=sys.stderr)
        return 2


def _report(ns: argparse.Namespace) -> int:
    from engine import report  # plotly and the templates: only when a report is written

    ids = report.parse_ids(ns.ids)
    if ns.study and ids:
        raise ReportError("Give run ids or --study, not both.")
    if not ns.study and not ids:
        raise ReportError(
            "Nothing to report on.",
            "Name a run id (2-6 comma-separated ids to compare) or --study ID; python -m engine runs lists the runs.",
        )
    if not ns.output and not ns.trace:
        raise ReportError("No output named.", "Add -o FILE.html for the report and/or --trace FILE.json.")
    if ns.trace and ns.study:
        raise ReportError("--trace takes run ids, not a study.", "Name the runs whose layers to export.")
    if not ns.tolerance > 0:
        raise ReportError(f"--tolerance {ns.tolerance} must be above 0.")
    if ns.study:
        from engine.jobs import settle_studies  # noqa: PLC0415 - the queue only for a study

        settle_studies()  # a study whose jobs ended with no page open is reported as it ended
    store = RunStore()
    store.import_samples()  # the store as the dashboard shows it: the bundled sample runs included
    to_stdout = ns.output == "-"
    say = sys.stderr if to_stdout else sys.stdout
    if ns.output:
        if ns.study:
            data, what = report.study_html(store, ns.study, tolerance_rel_l2=ns.tolerance), f"study {ns.study}"
        elif report.is_generative(ids):
            data, what = report.generative_html(ids), f"generative run {ids[0]}" if len(ids) == 1 else "comparison"
        else:
            data = report.runs_html(store, ids, baseline_id=ns.baseline)
            what = f"run {ids[0]}" if len(ids) == 1 else f"comparison of {len(ids)} runs"
        if to_stdout:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            _write(ns.output, data)
        print(f"wrote {ns.output} ({len(data) / 1e6:.2f} MB): report of {what}", file=say)
    if ns.trace:
        data = report.trace_json(store, ids)
        _write(ns.trace, data)
        print(f"wrote {ns.trace} ({len(data) / 1e3:.0f} kB): per-layer Chrome trace; open it in Perfetto", file=say)
    return 0


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise ReportError(
            f"Cannot write {path}: {e.strerror or e}.", "Check that the folder exists and is writable."
        ) from None
