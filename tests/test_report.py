"""The HTML report and the Chrome trace (engine/report) on the bundled H200 sample runs: one offline file with the
figures the store holds, escaped text, the same bytes from the CLI and from every page's Download report button,
clear errors with exit code 2, and CLI lines that parse back to the run's request. The browser test opens the
generated files in chromium with the network blocked."""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from engine import __main__ as cli
from engine import report
from engine.compare import kernels
from engine.report import document
from engine.report.reproduce import cli_line
from engine.result import GpuTime, GraphReplay
from engine.settings import cli as knob_cli
from engine.settings.request import RunRequest
from engine.store import SAMPLES_DIR, RunStore, new_run_id
from engine.studies import sweeps

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
MB = 1_000_000
SINGLE_RUN_LIMIT = 6 * MB
COMPARISON_LIMIT = 8 * MB
# the bundled sample with the largest layer table (vit_b_16 fp32 batch 1: 221 layers), recorded before GPU time
VIT_FP32 = "20261124-043554-d3397a08"
RESNET18_FP16 = "20261124-043412-5b65487a"
ANALYZE_RUN = "20261130-031144-ffc4f3ed"  # resnet50 dryrun: no latency, no layers
SWEEP, LADDER, BATCH = "resnet50_fp16_optimization_level_h200", "resnet50_b8_h200", "resnet50_fp16_batch_h200"


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> RunStore:
    store = RunStore(tmp_path_factory.mktemp("report") / "data")
    store.import_samples(SAMPLES_DIR)
    return store


@pytest.fixture
def data_dir(samples, monkeypatch):
    """The CLI and the pages read this store (the samples are imported already: importing again changes nothing)."""
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(samples.root))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    return samples


def largest_runs(store: RunStore, n: int) -> list[str]:
    """The ``n`` runs with the most profiled layers: the largest reports the samples can make."""
    ids = list(store.list_runs()["run_id"])
    return sorted(ids, key=lambda i: (-len(store.get(i).layers), i))[:n]


class _Page(HTMLParser):
    """Tags, attributes and text of a report, read back the way a browser's parser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag in ("script", "style")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if not self._in_script:
            self.text.append(data)


def parse(blob: bytes) -> _Page:
    page = _Page()
    page.feed(blob.decode("utf-8"))
    return page


def metric(page: _Page, key: str, run_id: str) -> dict[str, str | None]:
    found = [a for t, a in page.tags if t == "dd" and a.get("data-metric") == key and a.get("data-run") == run_id]
    assert found, f"no {key} of {run_id} in the report"
    return found[0]


def visible_text(page: _Page) -> str:
    return re.sub(r"\s+", " ", " ".join(page.text))


# -- one offline file --------------------------------------------------------------------------------------
def test_single_run_report_is_one_offline_file_with_the_stored_figures(samples):
    blob = report.runs_html(samples, [VIT_FP32])
    run = samples.get(VIT_FP32)
    print(
        f"\nsingle-run report of {VIT_FP32} ({len(run.layers)} layers): {len(blob) / MB:.2f} MB "
        f"(limit {SINGLE_RUN_LIMIT / MB:.0f} MB; Plotly's script alone {len(document.plotly_js()) / MB:.2f} MB)"
    )
    assert len(blob) < SINGLE_RUN_LIMIT
    text = blob.decode()
    assert text.count(document.plotly_js()) == 1  # Plotly's script embedded once
    page = parse(blob)
    scripts = [a for t, a in page.tags if t == "script"]
    assert scripts and not any("src" in a for a in scripts)  # every script inline
    # nothing the browser would fetch: no src/href/srcset pointing anywhere, no <link>, <img>, <iframe>
    assert not [t for t, _ in page.tags if t in ("link", "img", "iframe", "object", "embed")]
    refs = [v for _, a in page.tags for k, v in a.items() if k in ("src", "href", "srcset", "action") and v]
    assert all(v.startswith("#") for v in refs), refs
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    # the headline figures are the stored ones
    assert float(metric(page, "e2e_median_ms", VIT_FP32)["data-value"]) == run.latency.median_ms
    assert float(metric(page, "throughput_per_s", VIT_FP32)["data-value"]) == run.latency.throughput_per_s
    assert float(metric(page, "layers_profiled", VIT_FP32)["data-value"]) == len(run.layers)
    words = visible_text(page)
    assert f"{run.latency.median_ms:.3f} ms" in words
    # figures the run does not hold yet say so, the environment and the exact request are there
    for key in ("gpu_time_ms", "graph_replay_ms", "host_overhead_ms", "plan_fingerprint"):
        assert "data-value" not in metric(page, key, VIT_FP32) and run.gpu_time is None
    assert words.count(document.NOT_MEASURED) >= 4
    for value in (
        run.env["device_name"],
        run.env["torch"],
        run.env["torch_tensorrt"],
        run.env["tensorrt"],
        "TensorRT-RTX",
        "NVIDIA driver",
    ):
        assert value in words
    assert json.dumps(run.request, indent=1, sort_keys=True) in html.unescape(text)
    assert cli_line(run.request).line in words
    # one div per figure, numbered by section, each drawn by a script that names it
    divs = [a["id"] for t, a in page.tags if t == "div" and "plotly-graph-div" in (a.get("class") or "")]
    assert len(divs) == 12 and divs[0] == "summary-chart-1" and "layers-chart-1" in divs
    assert {"engine-chart-1", "engine-chart-2"} <= set(divs)  # the engine graph and the time per engine
    assert all(f'document.getElementById("{d}")' in text for d in divs)


def test_the_same_runs_give_the_same_bytes(samples):
    assert report.runs_html(samples, [VIT_FP32]) == report.runs_html(samples, [VIT_FP32])
    assert report.study_html(samples, SWEEP) == report.study_html(samples, f"sweep:{SWEEP}")


def test_figures_do_not_take_the_dashboards_plotly_template(samples, monkeypatch):
    """Inside the dashboard (any process that imported streamlit) Plotly's default template is Streamlit's, whose
    colours are placeholders its frontend fills in; the CLI's is Plotly's. The report is the same in both."""
    import plotly.io as pio

    monkeypatch.setattr(pio.templates, "default", "streamlit")
    in_dashboard = report.runs_html(samples, [RESNET18_FP16])
    monkeypatch.setattr(pio.templates, "default", "plotly")
    assert report.runs_html(samples, [RESNET18_FP16]) == in_dashboard
    assert b'"#000001"' not in in_dashboard and b'"colorway":["#636efa"' in in_dashboard


def copy_of(samples: RunStore, run_id: str, store: RunStore):
    """A bundled run in a store of its own, to change without touching the shared one."""
    return store.get(store.import_run(samples.export_run(run_id)))


def test_text_from_runs_is_escaped_and_loads_nothing(samples, store):
    hostile = "<script>alert(1)</script>![x](http://example.invalid/x.png)<img src=http://example.invalid/y>"
    run = copy_of(samples, RESNET18_FP16, store)
    layers = run.layers.copy()
    layers.loc[0, "name"] = hostile
    copy = dataclasses.replace(
        run,
        run_id=new_run_id(),
        warnings=[hostile],
        layers=layers,
        request={**run.request, "model": {**run.request["model"], "source": hostile}},
    )
    store.save(copy)
    blob = report.runs_html(store, [copy.run_id])
    text = blob.decode()
    assert "<script>alert" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the warning, shown as text
    assert "\\u003cscript\\u003ealert(1)" in text  # the layer name inside a figure's JSON
    page = parse(blob)
    assert not [a for t, a in page.tags if t in ("img", "a") and a.get("src", a.get("href", "#"))[:1] != "#"]
    assert hostile in visible_text(page)


def test_verdict_markdown_keeps_its_emphasis_but_no_link_image_or_html():
    text = "**Fastest: opt=5** [click](http://example.invalid) ![i](http://example.invalid/i.png) <b>x</b> `mbs`"
    doc = document.Report("t", "s", "sweep", [document.Section("s", "S", [document.Markdown(text)])])
    body = document.render(doc).decode().split("<main>", 1)[1]
    assert "<strong>Fastest: opt=5</strong>" in body and "<code>mbs</code>" in body
    assert "<a " not in body and "<img" not in body and "<b>x</b>" not in body and "&lt;b&gt;x&lt;/b&gt;" in body


def test_gpu_time_graph_replay_and_plan_show_when_a_run_has_them(samples, store):
    run = copy_of(samples, RESNET18_FP16, store)
    measured = dataclasses.replace(
        run,
        run_id=new_run_id(),
        plan_fingerprint="3f9a0c1d2b7e",
        gpu_time=GpuTime(
            median_ms=0.2134, min_ms=0.2131, max_ms=0.2140, kernels_per_inference=41, iters=200, windows=10
        ),
        graph_replay=GraphReplay(captured=False, reason="a PyTorch segment synchronises with the host"),
    )
    store.save(measured)
    page = parse(report.runs_html(store, [measured.run_id]))
    assert float(metric(page, "gpu_time_ms", measured.run_id)["data-value"]) == 0.2134
    assert float(metric(page, "host_overhead_ms", measured.run_id)["data-value"]) == pytest.approx(
        run.latency.median_ms - 0.2134
    )
    words = visible_text(page)
    assert "0.213 ms" in words and "41 kernels/inference" in words and "spread 0.42%" in words
    assert "not captured" in words and "a PyTorch segment synchronises with the host" in words
    assert "3f9a0c1d2b7e" in words


def test_an_analyze_run_reports_segmentation_without_latency(samples):
    blob = report.runs_html(samples, [ANALYZE_RUN])
    page = parse(blob)
    assert "data-value" not in metric(page, "e2e_median_ms", ANALYZE_RUN)
    words = visible_text(page)
    assert "not timed" in words and "no per-layer profile" in words
    assert "Graph segments in execution order" in blob.decode()  # a figure title, inside its JSON


# -- comparisons and studies ---------------------------------------------------------------------------------
def test_six_run_comparison_stays_under_its_size_and_names_the_baseline(samples):
    ids = largest_runs(samples, 6)
    blob = report.runs_html(samples, ids, baseline_id=ids[2])
    print(f"\n6-run comparison ({', '.join(ids)}): {len(blob) / MB:.2f} MB (limit {COMPARISON_LIMIT / MB:.0f} MB)")
    assert len(blob) < COMPARISON_LIMIT
    page = parse(blob)
    runs = [samples.get(i) for i in ids]
    for r in runs:
        assert float(metric(page, "e2e_median_ms", r.run_id)["data-value"]) == r.latency.median_ms
    words = visible_text(page)
    assert f"against the baseline {runs[2].label}" in words
    first = runs[0].latency.median_ms
    base = runs[2].latency.median_ms
    assert f"{(first / base - 1) * 100:+.1f}% · {base / first:.2f}× vs baseline" in words
    assert "Settings that differ" in words and "model.batch_size" in words
    # the three Compare charts, the runs' time split, and a kernel diff per run that has one against the baseline
    diffs = sum(kernels.diff_stored(samples, runs[2], r) is not None for r in runs if r is not runs[2])
    assert blob.count(b"plotly-graph-div") == 3 + 1 + diffs


def test_bad_run_lists_are_refused_with_what_to_do(samples):
    with pytest.raises(report.ReportError, match="'nope' does not exist"):
        report.runs_html(samples, [VIT_FP32, "nope"])
    with pytest.raises(report.ReportError, match="7 runs given; a report compares at most 6"):
        report.runs_html(samples, [f"run{i}" for i in range(7)])
    with pytest.raises(report.ReportError, match="No run id given"):
        report.runs_html(samples, [" , "])
    with pytest.raises(report.ReportError, match="baseline 'x' is not one of the compared runs"):
        report.runs_html(samples, [VIT_FP32, RESNET18_FP16], baseline_id="x")
    assert report.parse_ids(["a,b", "a", " c "]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("study_id", "kind", "charts"), [(SWEEP, "sweep", 4), (LADDER, "ladder", 1), (BATCH, "batch_sweep", 4)]
)
def test_every_stored_study_kind_reports_its_verdict_and_runs(samples, study_id, kind, charts):
    blob = report.study_html(samples, study_id)
    page = parse(blob)
    words = visible_text(page)
    assert f'data-report-kind="{kind}"' in blob.decode() and blob.count(b"plotly-graph-div") == charts
    if kind == "sweep":
        sweep = sweeps.load_sweep(samples, study_id)
        headline, members = sweeps.verdict(sweep).headline, sweep.results
    elif kind == "ladder":
        from engine.studies import ladder

        rungs = ladder.load_ladder(samples, study_id)
        headline, members = ladder.verdict(rungs).headline, [samples.get(r.run_id) for r in rungs]
    else:
        from engine.studies import batch_sweep

        sweep = batch_sweep.load_batch_sweep(samples, study_id)
        headline, members = batch_sweep.verdict(sweep).headline, sweep.results
    assert headline in words  # the engine's own verdict, not a copy of its text
    for r in members:  # every run with its figures and the line that measures it again
        assert float(metric(page, "e2e_median_ms", r.run_id)["data-value"]) == r.latency.median_ms
        assert cli_line(r.request).line in words


def test_the_store_fingerprint_changes_when_a_report_could(samples, store):
    run = copy_of(samples, RESNET18_FP16, store)
    before = report.store_fingerprint(store)
    assert report.store_fingerprint(store) == before
    sweeps.tag_run(store, run.run_id, ["sweep:s1", "knob:compile.precision"])  # joins a study
    tagged = report.store_fingerprint(store)
    assert tagged != before
    store.delete(run.run_id)
    assert report.store_fingerprint(store) not in (before, tagged)


def test_unknown_and_ambiguous_studies_say_what_exists(samples):
    with pytest.raises(report.ReportError) as e:
        report.study_html(samples, "no_such_study")
    assert "No study 'no_such_study'" in e.value.message and LADDER in e.value.hint
    # a ladder and a sweep that share an id: the prefix says which
    sweeps.tag_run(samples, RESNET18_FP16, ["sweep:shared_id", "knob:compile.precision", "ladder:shared_id"])
    try:
        with pytest.raises(report.ReportError, match="names both a knob sweep and a precision ladder"):
            report.study_html(samples, "shared_id")
        assert report.find_study(samples, "ladder:shared_id").kind == "ladder"
        assert report.find_study(samples, "sweep:shared_id").kind == "sweep"
    finally:
        samples.set_tags(RESNET18_FP16, [t for t in samples.get(RESNET18_FP16).tags if "shared_id" not in t])


def sweep_evaluator(store: RunStore):
    """Auto-tune's ``evaluate`` answered by the bundled optimization_level sweep: each level's H200 run (unset is
    level 3, the same build)."""
    by_level = {r.request["compile"]["optimization_level"]: r for r in sweeps.load_sweep(store, SWEEP).results}

    def evaluate(request: RunRequest):
        level = request.compile.optimization_level
        return by_level[3 if level is None else level]

    return evaluate


@pytest.fixture(scope="module")
def tuned_search(samples):
    """(id, report) of an auto-tune search stored in the samples' data directory, its trials answered by the sweep."""
    from engine.studies.autotune.stored import plan_autotune, run_plan, save_plan

    base = RunRequest.from_dict(sweeps.load_sweep(samples, SWEEP).results[0].request)
    plan = plan_autotune(base, space={sweeps.OPTIMIZATION_LEVEL_KNOB: [0, 1, 2, 3, 4, 5]}, n_trials=6)
    save_plan(samples.root, plan)
    return plan.autotune_id, run_plan(samples.root, plan, samples, sweep_evaluator(samples))


@pytest.fixture(scope="module")
def tuned(tuned_search):
    return tuned_search[1]


def test_autotune_search_reports_its_summary_trials_and_best_run(samples, tuned):
    page = parse(report.autotune_html(samples, tuned))
    words = visible_text(page)
    assert tuned.summary() in words and len(tuned.trials) == 6
    best = samples.get(tuned.best.run_id)
    assert float(metric(page, "e2e_median_ms", best.run_id)["data-value"]) == best.latency.median_ms
    assert cli_line(best.request).line in words
    labels = [tag for tag in page.tags if tag[0] == "div" and "plotly-graph-div" in (tag[1].get("class") or "")]
    assert len(labels) == 1


# -- the CLI -------------------------------------------------------------------------------------------------
def test_cli_writes_the_report_and_the_trace(data_dir, tmp_path, capsys):
    out, trace = tmp_path / "run.html", tmp_path / "layers.json"
    assert cli.main(["report", VIT_FP32, "-o", str(out), "--trace", str(trace)]) == 0
    assert out.read_bytes() == report.runs_html(data_dir, [VIT_FP32])
    assert trace.read_bytes() == report.trace_json(data_dir, [VIT_FP32])
    said = capsys.readouterr().out
    assert f"wrote {out}" in said and "report of run" in said and "Chrome trace" in said
    study = tmp_path / "ladder.html"
    assert cli.main(["report", "--study", LADDER, "--tolerance", "0.2", "-o", str(study)]) == 0
    assert study.read_bytes() == report.study_html(data_dir, LADDER, tolerance_rel_l2=0.2)


def test_cli_reports_a_stored_auto_tune_search_as_the_page_does(data_dir, tuned_search, tmp_path):
    """A stored search is a study too: ``--study <id>`` (or ``autotune:<id>``) rebuilds it from its Optuna study and
    stored runs, the same bytes as the Sweeps page's download of it."""
    from engine.studies.autotune.stored import load_report

    autotune_id, _ = tuned_search
    rebuilt = load_report(data_dir.root, autotune_id, data_dir)
    for study in (autotune_id, f"autotune:{autotune_id}"):
        out = tmp_path / "autotune.html"
        assert cli.main(["report", "--study", study, "-o", str(out)]) == 0
        assert out.read_bytes() == report.autotune_html(data_dir, rebuilt)
    assert autotune_id in [r.study_id for r in report.studies.known_studies(data_dir) if r.kind == "autotune"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "20200101-000000-deadbeef", "-o", "{tmp}/x.html"], "'20200101-000000-deadbeef' does not exist"),
        (["report", "--study", "no_such_study", "-o", "{tmp}/x.html"], "No study 'no_such_study'"),
        (
            ["report", "--study", "autotune:at-20200101-000000-deadbeef", "-o", "{tmp}/x.html"],
            "No study 'at-20200101-000000-deadbeef'",
        ),
        (["report", "-o", "{tmp}/x.html"], "Nothing to report on"),
        ([*["report", ",".join(f"r{i}" for i in range(7))], "-o", "{tmp}/x.html"], "at most 6"),
        (["report", VIT_FP32], "No output named"),
        (["report", VIT_FP32, "-o", "{tmp}/missing/dir/x.html"], "Cannot write"),
        (["report", ANALYZE_RUN, "--trace", "{tmp}/t.json"], "No per-layer profile"),
        (["report", "--study", LADDER, "--trace", "{tmp}/t.json"], "--trace takes run ids"),
    ],
)
def test_cli_errors_exit_2_with_a_message(data_dir, tmp_path, capsys, argv, message):
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "x.html").exists()


def test_every_cli_line_parses_back_to_the_stored_request(samples):
    parser = argparse.ArgumentParser()
    knob_cli.add_knob_options(parser)  # the profile command's own options
    parser.add_argument("--no-cache", action="store_true")
    for run_id in samples.list_runs()["run_id"]:
        stored = samples.get(run_id).request
        line = cli_line(stored)
        assert line.args[:4] == ("python", "-m", "engine", "profile") and not line.unknown
        parsed = knob_cli.request_from_args(parser.parse_args(list(line.args[4:])))
        assert parsed.to_dict() == RunRequest.from_dict(stored).to_dict(), line.line


# -- the Chrome trace ----------------------------------------------------------------------------------------
def test_chrome_trace_lays_each_layer_on_its_segments_track(samples):
    ids = [VIT_FP32, RESNET18_FP16, ANALYZE_RUN]
    doc = json.loads(report.trace_json(samples, ids))
    assert doc["otherData"]["runs"] == ids[:2] and doc["otherData"]["without_layer_profile"] == [ANALYZE_RUN]
    events = doc["traceEvents"]
    for pid, run_id in enumerate(ids[:2], start=1):
        run = samples.get(run_id)
        mine = [e for e in events if e["pid"] == pid]
        names = {e["args"]["name"] for e in mine if e["name"] == "process_name"}
        assert names == {f"{run.label} ({run_id})"}
        layers = sorted((e for e in mine if e["ph"] == "X" and e["cat"] != "segment"), key=lambda e: e["ts"])
        assert [e["args"]["order"] for e in layers] == sorted(run.layers["order"])
        assert all(isinstance(e["ts"], (int, float)) and e["dur"] >= 0 and isinstance(e["tid"], int) for e in layers)
        # back to back, in execution order, adding up to the profiled sum
        assert all(
            a["ts"] + a["dur"] == pytest.approx(b["ts"], abs=1e-3) for a, b in zip(layers, layers[1:], strict=False)
        )
        assert (layers[-1]["ts"] + layers[-1]["dur"]) / 1000 == pytest.approx(run.layers["avg_ms"].sum(), abs=1e-5)
        spans = [e for e in mine if e["ph"] == "X" and e["cat"] == "segment"]
        tracks = {e["tid"]: e["args"]["name"] for e in mine if e["name"] == "thread_name"}
        assert set(tracks) == {e["tid"] for e in layers} and {e["name"] for e in spans} == set(run.layers["segment"])
        for span in spans:  # each segment's span encloses exactly its layers
            inside = [e for e in layers if e["tid"] == span["tid"] and span["ts"] <= e["ts"] < span["ts"] + span["dur"]]
            assert len(inside) == span["args"]["layers"]
            assert inside[-1]["ts"] + inside[-1]["dur"] == pytest.approx(span["ts"] + span["dur"], abs=1e-6)
    with pytest.raises(report.ReportError, match="No per-layer profile"):
        report.trace_json(samples, [ANALYZE_RUN])


# -- the pages' buttons give the CLI's bytes ------------------------------------------------------------------
@pytest.fixture
def downloads(monkeypatch):
    """file name -> the bytes a download button handed to the page (as the browser would download them)."""
    captured: dict[str, bytes] = {}
    original = MediaFileManager.add

    def add(self, data, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            captured[file_name] = data
        return original(self, data, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", add)
    return captured


def _page(name: str, **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=600)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _cli_bytes(tmp_path: Path, *args: str) -> bytes:
    out = tmp_path / "cli.html"
    assert cli.main(["report", *args, "-o", str(out)]) == 0
    return out.read_bytes()


def test_run_pages_buttons_give_the_cli_file(data_dir, downloads, tmp_path):
    expected = _cli_bytes(tmp_path, RESNET18_FP16)
    name = report.file_name(run_ids=[RESNET18_FP16])
    for page in ("profile", "layers", "segmentation"):
        downloads.clear()
        at = _page(page, run=[RESNET18_FP16])
        assert "Download report" in [b.label for b in at.get("download_button")], page
        assert downloads[name] == expected, page
    trace = downloads[report.file_name(run_ids=[RESNET18_FP16], suffix=".json")]
    assert trace == report.trace_json(data_dir, [RESNET18_FP16])


def test_compare_button_gives_the_cli_file_for_its_runs_and_baseline(data_dir, downloads, tmp_path):
    ids = [RESNET18_FP16, VIT_FP32]
    at = _page("compare", run=ids)
    at.selectbox(key="compare_baseline").set_value(VIT_FP32).run()
    assert downloads[report.file_name(run_ids=ids)] == _cli_bytes(tmp_path, ",".join(ids), "--baseline", VIT_FP32)


def test_sweeps_tabs_buttons_give_the_cli_file(data_dir, downloads, tmp_path, tuned_search):
    autotune_id, tuned = tuned_search
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.query_params.update(sweep=SWEEP, ladder=LADDER, batch=BATCH, autotune=autotune_id)  # a stored search
    at.run()  # the link opens one tab; only the open tab is computed, so each is opened in turn
    for tab in ("Sweep results", "Precision ladder", "Batch sweep", "Auto-tune"):
        at.session_state["sweeps_tab"] = tab
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    for study in (SWEEP, LADDER, BATCH):
        assert downloads[report.file_name(study_id=study)] == _cli_bytes(tmp_path, "--study", study), study
    assert downloads["report_autotune.html"] == report.autotune_html(data_dir, tuned)


# -- in a real browser ---------------------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.browser
@pytest.mark.slow
def test_reports_render_every_chart_offline_in_chromium(samples, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    compared = largest_runs(samples, 6)
    files = {
        "run": ([VIT_FP32], report.runs_html(samples, [VIT_FP32])),
        "comparison": (compared, report.runs_html(samples, compared)),
    }
    for study in (SWEEP, LADDER, BATCH):
        files[study] = ([], report.study_html(samples, study))
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, (run_ids, blob) in files.items():
            path = tmp_path / f"{name}.html"
            path.write_bytes(blob)
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.set_offline(True)
            page = context.new_page()
            problems, requested = [], []
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)  # noqa: B023
            page.on("pageerror", lambda e: problems.append(str(e)))  # noqa: B023

            def only_the_file(route):
                requested.append(route.request.url)  # noqa: B023
                route.continue_() if route.request.url == path.as_uri() else route.abort()  # noqa: B023

            page.route("**/*", only_the_file)
            page.goto(path.as_uri())
            expected = blob.count(b'class="plotly-graph-div"')
            page.wait_for_function(
                "n => Array.from(document.querySelectorAll('.plotly-graph-div'))"
                ".filter(d => d.querySelector('.plot-container .main-svg')).length === n",
                arg=expected,
                timeout=300_000,
            )
            divs = page.eval_on_selector_all(
                ".plotly-graph-div",
                "ds => ds.map(d => [d.id, !!d.querySelector('.plot-container .main-svg'), !!d._fullLayout])",
            )
            assert len(divs) == expected > 0 and all(svg and laid_out for _, svg, laid_out in divs), (name, divs)
            assert problems == [], (name, problems)
            assert requested == [path.as_uri()], (name, requested)  # nothing but the file itself
            for run_id in run_ids:  # the headline figures are the store's
                run = samples.get(run_id)
                cell = page.locator(f"dd[data-metric='e2e_median_ms'][data-run='{run_id}']").first
                assert cell.inner_text().strip() == f"{run.latency.median_ms:.3f} ms"
                assert float(cell.get_attribute("data-value")) == run.latency.median_ms
            page.screenshot(path=str(ARTIFACTS / f"report_{name}.png"), full_page=True)
            context.close()
        browser.close()


@pytest.mark.browser
@pytest.mark.slow
def test_dashboard_buttons_download_what_a_fresh_cli_process_writes(tmp_path):
    """Click Download report (and Layer timeline) in the served dashboard, then run the CLI in its own process (no
    streamlit imported there) on the same store: the files are byte for byte the same."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    import os
    import subprocess
    import sys

    from playwright.sync_api import sync_playwright

    from tests.test_browser import _settle, _streamlit

    RunStore(tmp_path / "data").import_samples(SAMPLES_DIR)  # the server reads this store, samples included
    clicks = {
        "run.html": (f"layers?run={RESNET18_FP16}", "Download report"),
        "run.json": (f"layers?run={RESNET18_FP16}", "Layer timeline (Chrome trace)"),
        "compare.html": (f"compare?run={RESNET18_FP16}&run={VIT_FP32}", "Download report"),
        "ladder.html": (f"sweep?ladder={LADDER}", "Download report"),
    }
    with _streamlit(tmp_path) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        # a fresh server's first page run goes through dashboard.py's navigation (ui.navigation.through_dashboard)
        page.goto(base)
        page.wait_for_function(
            "() => (document.querySelector(\"[data-testid='stSidebarNav']\") || {innerText: ''})"
            ".innerText.includes('Sweeps')",
            timeout=300_000,
        )
        _settle(page)
        for name, (url, label) in clicks.items():
            page.goto(f"{base}/{url}")
            _settle(page)
            with page.expect_download() as download:
                page.get_by_role("button", name=label).first.click()
            download.value.save_as(tmp_path / f"button_{name}")
        browser.close()
    env = {
        **os.environ,
        "TRTDASH_DATA_DIR": str(tmp_path / "data"),
        "TRTDASH_SAMPLES_DIR": str(tmp_path / "none"),
        "PYTHONPATH": str(ROOT),
    }
    for args in (
        [RESNET18_FP16, "-o", "cli_run.html", "--trace", "cli_run.json"],
        [f"{RESNET18_FP16},{VIT_FP32}", "-o", "cli_compare.html"],
        ["--study", LADDER, "-o", "cli_ladder.html"],
    ):
        subprocess.run(
            [sys.executable, "-m", "engine", "report", *args], cwd=tmp_path, env=env, check=True, capture_output=True
        )
    for name in clicks:
        assert (tmp_path / f"button_{name}").read_bytes() == (tmp_path / f"cli_{name}").read_bytes(), name
