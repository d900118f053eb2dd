"""Size (and build time) of the HTML reports on the bundled sample runs.

The single-run report is made for the sample with the most profiled layers, the comparison for the six largest,
and one report per stored study kind (knob sweep, precision ladder, batch sweep). Plotly's own script is about
4.8 MB of every file (embedded once); the goals are under 6 MB for one run and under 8 MB for six.

    .venv/bin/python bench/report_size.py [--out DIR]      (DIR keeps the files to open in a browser)

Ends with RESULT lines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import report  # noqa: E402
from engine.report.document import plotly_js  # noqa: E402
from engine.report.studies import known_studies  # noqa: E402
from engine.store import RunStore  # noqa: E402

MB = 1_000_000
GOALS_MB = {"single_run": 6.0, "comparison_6": 8.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the reports here")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "data")
        store.import_samples()
        ids = sorted(store.list_runs()["run_id"], key=lambda i: (-len(store.get(i).layers), i))
        cases = {
            "single_run": lambda: report.runs_html(store, ids[:1]),
            "comparison_6": lambda: report.runs_html(store, ids[:6]),
        }
        for ref in known_studies(store):  # the first stored study of each kind
            cases.setdefault(f"study_{ref.kind}", lambda ref=ref: report.study_html(store, ref.qualified_id))
        print(
            f"Plotly's script: {len(plotly_js()) / MB:.2f} MB; largest run {ids[0]} "
            f"({len(store.get(ids[0]).layers)} layers); compared: {', '.join(ids[:6])}"
        )
        results = []
        for name, build in cases.items():
            t0 = time.perf_counter()
            blob = build()
            took = time.perf_counter() - t0
            print(
                f"{name:<22} {len(blob) / MB:6.2f} MB ({len(blob) / 2**20:.2f} MiB) "
                f"{(len(blob) - len(plotly_js())) / 1e3:8.0f} kB besides Plotly, built in {took:.2f} s"
            )
            if ns.out:
                ns.out.mkdir(parents=True, exist_ok=True)
                (ns.out / f"{name}.html").write_bytes(blob)
            if name in GOALS_MB:
                results.append((name, len(blob) / MB, GOALS_MB[name]))
    ok = True
    for name, size, goal in results:
        passed = size < goal
        ok &= passed
        print(f"RESULT report_{name} size_mb={size:.2f} goal=<{goal:g} {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
