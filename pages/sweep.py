"""Sweeps: what does min_block_size / optimization_level / precision buy? Run a sweep through the
job queue, open a recorded one (bundled GPU samples included), or auto-tune under constraints."""

import pandas as pd
import streamlit as st

from engine import autotune, batch_sweep, capabilities, jobs, models, sweep_charts, sweeps
from engine.config import (
    INDUCTOR_MODES,
    MIN_BLOCK_SIZE,
    ConfigError,
    RunRequest,
)
from engine.store import RunNotFound
from ui.studies import batch as batch_tab
from ui.studies import ladder as ladder_tab
from ui.common import (
    autotune_report_button,
    checked_request,
    execution_progress,
    get_store,
    report_button,
    show_error,
    start_execution,
)
from ui.knobs import precision_and_iterations
from ui.markdown import plain

URL_KEY = "sweep"
RUNNING = "sweep_execution"
TUNE_REPORT = "autotune_report"
TABLE_SHOWN = ["x_label", "series", "repeat", "median_ms", "p10_ms", "p90_ms", "ci_low_ms", "ci_high_ms", "gpu_ms",
               "gpu_low_ms", "gpu_high_ms", "kernels", "graph_ms", "host_overhead_ms", "plan", "build_s",
               "engine_count", "pytorch_segments", "coverage", "rel_l2", "pareto", "run_id"]

SWEEP_COLUMNS = {
    "median_ms": st.column_config.NumberColumn("e2e median (ms)", format="%.4f"),
    "gpu_ms": st.column_config.NumberColumn("GPU time (ms)", format="%.4f",
                                            help="Kernel time per inference from a CUDA-activity trace."),
    "gpu_low_ms": st.column_config.NumberColumn("GPU fastest window", format="%.4f"),
    "gpu_high_ms": st.column_config.NumberColumn("GPU slowest window", format="%.4f"),
    "kernels": st.column_config.NumberColumn("kernels / inference", format="%.0f"),
    "graph_ms": st.column_config.NumberColumn("CUDA-graph replay (ms)", format="%.4f"),
    "host_overhead_ms": st.column_config.NumberColumn("host overhead (ms)", format="%.4f",
                                                      help="End-to-end median minus GPU time."),
    "plan": st.column_config.TextColumn("engine plan", help="Equal: the same engine plan (the same kernels)."),
}

st.title("Sweeps and auto-tune")
caps = capabilities.detect()
store = get_store()


def base_form(key: str) -> dict:
    """The request every point of a sweep or search starts from."""
    c1, c2, c3, c4 = st.columns([2, 1, 2, 1])
    sources = models.available_sources()
    source = c1.selectbox("Model", sources, index=sources.index("resnet50") if "resnet50" in sources else 0,
                          key=f"{key}:model")
    batch = c2.number_input("Batch size", value=1, min_value=1, step=1, key=f"{key}:batch")
    shape = c3.text_input("Input shape (without batch)", placeholder="model default, e.g. 3,224,224",
                          key=f"{key}:shape")
    backends = ["tensorrt", "eager"] if caps.can_compile else ["eager"]
    backend = c4.selectbox("Backend", backends, key=f"{key}:backend",
                           help="" if caps.can_compile else "No Torch-TensorRT here: eager only (compile knobs "
                                                             "then change nothing but precision).")
    precision, warmup, timed = precision_and_iterations(key, caps)
    return {"model": {"source": source, "batch_size": batch, "input_shape": shape}, "backend": backend,
            "device": "auto" if caps.cuda_available else "cpu", "compile": {"precision": precision},
            "measure": {"warmup_iters": warmup, "timed_iters": timed, "layer_profile": False}}


def recommended_for(request: RunRequest) -> list[int]:
    """The dryrun's recommended min_block_size from the newest stored TensorRT run of this model."""
    runs = store.list_runs(model=request.model.source, backend="tensorrt")
    for run_id in runs["run_id"][:20]:
        values = sweeps.recommended_min_block_sizes(store.get(run_id).segmentation)
        if values:
            return values
    return []


def values_widget(knob: str, key: str, recommended: list[int]) -> list:
    """The values to sweep for one knob, defaulting to ``sweeps.default_values``."""
    if knob == sweeps.MIN_BLOCK_SIZE_KNOB:
        text = st.text_input("Extra min_block_size values", value="1", key=f"{key}:values",
                             help=f"Comma-separated. Always swept: the default {MIN_BLOCK_SIZE} and the dryrun's "
                                  f"recommendation ({', '.join(map(str, recommended)) or 'none stored yet'}).")
        try:
            extra = [int(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(knob, f"{text!r} is not a list of integers") from None
        return sweeps.default_values(knob, recommendations=recommended, user_values=extra)
    if knob == sweeps.EXECUTED_OPS_KNOB:
        text = st.text_area("Op sets forced to PyTorch (one set per line, ops comma-separated)",
                            value="torch.ops.aten.relu.default", key=f"{key}:values")
        sets = [[op.strip() for op in line.split(",") if op.strip()] for line in text.splitlines()]
        return sweeps.default_values(knob, user_values=[s for s in sets if s])
    options = sweeps.default_values(knob)
    return st.multiselect("Values", options, default=options, key=f"{key}:values",
                          format_func=lambda v: sweeps.value_label(knob, v))


def sweep_progress() -> None:
    """Live state of the sweep started in this session, with one button that cancels all of it; polled (a
    fragment rerun every second) only while a sweep of this session runs."""
    if st.session_state.get(RUNNING) is not None:
        _live_sweep_progress()


@st.fragment(run_every=1.0)
def _live_sweep_progress() -> None:
    execution: sweeps.SweepExecution | None = st.session_state.get(RUNNING)
    if execution is None:
        st.rerun()
    points = execution.poll()
    execution_progress(execution, "Sweep", key="cancel_sweep")
    for p in points:
        if p.view.state == "failed":
            st.error(f"{p.point.label}: {p.view.error}", icon=":material/error:")
    if execution.finished:
        del st.session_state[RUNNING]
        st.query_params[URL_KEY] = execution.plan.sweep_id
        st.rerun()


def show_sweep(sweep_id: str) -> None:
    try:
        sweep = sweeps.load_sweep(store, sweep_id)
    except RunNotFound as e:
        st.info(plain(e.message), icon=":material/info:")
        return
    table = sweep.table
    first = sweep.results[0]
    st.caption(f"{len(table)} runs of {first.request['model']['source']} on {first.env.get('device_name', '?')}"
               + (" · recorded on a real GPU and bundled as a sample" if all(r.is_sample for r in sweep.results)
                  else ""))
    for knob in sweep.knobs:
        st.markdown(sweeps.verdict(sweep, knob).markdown())
    knob = sweep.knobs[0]
    judged = sweep.judging.metric
    st.plotly_chart(sweep_charts.latency_vs_knob(table, knob, judged), width="stretch")
    if table["build_s"].notna().any():
        c1, c2 = st.columns(2)
        c1.plotly_chart(sweep_charts.build_time_vs_knob(table, knob), width="stretch")
        c2.plotly_chart(sweep_charts.pareto_latency_build(table, judged), width="stretch")
    else:
        st.caption("These runs compiled nothing (eager backend): no build time to weigh latency against.")
    if table["coverage"].notna().any():
        st.plotly_chart(sweep_charts.engines_vs_min_block_size(table, knob), width="stretch")
    st.dataframe(table[[*sweep.knobs, *TABLE_SHOWN]], hide_index=True, column_config=SWEEP_COLUMNS)
    report_button(study_id=sweep_id, study_kind="sweep")


# a shared link to a ladder (?ladder=<id>), a batch sweep (?batch=<id>) or a sweep (?sweep=<id>) opens on it;
# the Sweep results tab writes ?sweep= on every visit, the other two are only there when opened, so they go first
tab_run, tab_recorded, tab_ladder, tab_batch, tab_tune = st.tabs(
    ["Run a sweep", "Sweep results", "Precision ladder", "Batch sweep", "Auto-tune"],
    default="Precision ladder" if st.query_params.get(ladder_tab.URL_KEY)
    else "Batch sweep" if st.query_params.get(batch_tab.URL_KEY)
    else "Sweep results" if st.query_params.get(URL_KEY) else None)

with tab_ladder:
    ladder_tab.render(store, caps)

with tab_batch:
    batch_tab.render(store, caps)

with tab_run:
    raw = base_form("sweep")
    names = list(sweeps.SWEEPABLE_KNOBS)
    c1, c2 = st.columns(2)
    knob1 = c1.selectbox("Knob to sweep", names, format_func=sweeps.SWEEPABLE_KNOBS.get, key="sweep:knob1")
    knob2 = c2.selectbox("Second knob (optional)", [None, *[n for n in names if n != knob1]], key="sweep:knob2",
                         format_func=lambda k: "none" if k is None else sweeps.SWEEPABLE_KNOBS[k])
    try:
        request = RunRequest.from_dict(raw)
        recommended = recommended_for(request)
        axes = {}
        for i, knob in enumerate([k for k in (knob1, knob2) if k]):
            with (c1 if i == 0 else c2):
                axes[knob] = values_widget(knob, f"sweep:axis{i}", recommended)
        plan = sweeps.plan_sweep(request, axes)
    except ConfigError as e:
        st.error(f"**{e.field}**: {plain(e.message)}", icon=":material/error:")
        plan = None
    if plan is not None:
        st.caption(f"{len(plan.points)} runs: " + "; ".join(p.label for p in plan.points)
                   + "".join(f" · {n}" for n in plan.notes))
        busy = RUNNING in st.session_state
        if st.button("Run sweep", type="primary", icon=":material/play_arrow:", disabled=busy) \
                and checked_request(raw, caps) is not None:
            execution = sweeps.SweepExecution(plan, store, lambda r: jobs.submit(r), jobs.get, jobs.cancel)
            if start_execution(execution, "Sweep"):
                st.session_state[RUNNING] = execution
    sweep_progress()

with tab_recorded:
    listed = sweeps.list_sweeps(store)
    # batch sweeps vary model.batch_size, not a compile knob: the Batch sweep tab shows them
    listed = listed[~listed["knobs"].str.contains(batch_sweep.BATCH_KNOB, regex=False).astype(bool)]
    if listed.empty:
        st.info("No sweep stored yet: run one, or open the bundled samples once they are installed.",
                icon=":material/info:")
    else:
        ids = list(listed["sweep_id"])
        labels = {r.sweep_id: f"{r.sweep_id} · {r.model} · {r.device_name} · {r.runs} runs"
                  + (" · sample" if r.is_sample else "") for r in listed.itertuples()}
        wanted = st.query_params.get(URL_KEY)
        if wanted and wanted not in labels:
            st.error(f"No stored run belongs to sweep {plain(repr(wanted))}. Pick one below.",
                     icon=":material/link_off:")
        chosen = st.selectbox("Sweep", ids, index=ids.index(wanted) if wanted in labels else 0,
                              format_func=labels.get, key="sweep:chosen")
        if chosen != wanted:
            st.query_params[URL_KEY] = chosen
        show_sweep(chosen)

with tab_tune:
    raw = base_form("tune")
    c1, c2, c3 = st.columns(3)
    max_build = c1.number_input("Max build time (s, 0 = no limit)", value=0.0, min_value=0.0, key="tune:build")
    max_err = c2.number_input("Max rel. L2 error vs eager fp32 (0 = no limit)", value=0.0, min_value=0.0,
                              format="%.4f", key="tune:err")
    precisions = c3.multiselect("Allowed precisions", ["fp32", "fp16", "bf16"], default=["fp32", "fp16"],
                                key="tune:prec")
    search = st.multiselect("Knobs to search", list(autotune.SEARCHABLE_KNOBS), key="tune:knobs",
                            default=list(autotune.SEARCHABLE_KNOBS) if raw["backend"] == "tensorrt"
                            else [sweeps.PRECISION_KNOB], format_func=sweeps.SWEEPABLE_KNOBS.get)
    c1, c2 = st.columns([3, 1])
    trials = c1.slider("Trials", 1, 60, 20, key="tune:trials")
    inductor = c2.selectbox("Inductor baseline", INDUCTOR_MODES, key="tune:inductor",
                            help="Also time torch.compile once, with the defaults run, its compile time recorded: "
                                 "default (quick) or max-autotune (can take many minutes).")
    if st.button("Search", type="primary", icon=":material/travel_explore:") and (base := checked_request(raw, caps)):
        try:
            limits = autotune.Constraints(max_build_s=max_build or None, max_rel_l2=max_err or None,
                                          precisions=tuple(precisions))
            space = {k: v for k, v in autotune.default_space(limits, recommended_for(base)).items() if k in search}
            jobs.ensure_workers()
            status = st.status("Searching…", expanded=True)
            bar = status.progress(0.0)

            def on_trial(t: autotune.TrialRecord) -> None:
                bar.progress(min((t.number + 1) / trials, 1.0),
                             text=f"trial {t.number + 1}: {t.median_ms or float('nan'):.3f} ms "
                                  f"{'ok' if t.feasible else t.violation or t.error}")

            evaluate = sweeps.evaluator_on_queue(store, jobs.submit, jobs.get)
            st.session_state[TUNE_REPORT] = autotune.autotune(base, evaluate, space=space, constraints=limits,
                                                              n_trials=trials, on_trial=on_trial,
                                                              baselines=("eager", f"inductor_{inductor}")
                                                              if inductor != "off" else ("eager",))
            status.update(label="Search finished", state="complete", expanded=False)
        except Exception as e:
            show_error(e, "The search failed")
    report: autotune.AutotuneReport | None = st.session_state.get(TUNE_REPORT)
    if report is not None:
        st.markdown(f"**{report.summary()}**")
        for note in report.notes:
            st.caption(note)
        st.plotly_chart(sweep_charts.autotune_trials(report.trials, report.objective), width="stretch")
        st.dataframe(pd.DataFrame(report.trials), hide_index=True)
        autotune_report_button(report)
