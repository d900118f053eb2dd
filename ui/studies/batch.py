"""Sweeps page, Batch sweep tab: latency and throughput against batch size, static engines vs one dynamic
engine. Run one through the job queue, or open a stored one (``?batch=<sweep id>``) with its verdict."""

from __future__ import annotations

import streamlit as st

from engine import jobs
from engine.capabilities import Capabilities
from engine.charts import batch as batch_charts
from engine.errors import ConfigError
from engine.settings.defaults import MAX_BATCH_SIZE
from engine.settings.request import RunRequest, validate
from engine.store import RunNotFound, RunStore
from engine.studies import batch_sweep, sweeps
from ui.errors import field_error
from ui.exports import report_button
from ui.job_panel import checked_request
from ui.knobs import backend_picker, default_precision, knob_row
from ui.markdown import plain
from ui.model_form import model_form
from ui.studies.execution import live_progress, start_execution, study_gaps
from ui.studies.picker import pick_study

URL_KEY = "batch"
RUNNING = "batch_execution"
FAILED = "batch_failed"  # {sweep_id: ["label: error", ...]} of sweeps run in this session
NOTHING_MEASURED = "batch_nothing_measured"  # (message, failures) of the last sweep when no point finished
KEY = "batch"  # widget key prefix
DEFAULT_SIZES = ",".join(str(b) for b in batch_sweep.DEFAULT_BATCH_SIZES[:6])
TABLE_SHOWN = [
    "strategy",
    "batch_size",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "throughput_per_s",
    "gpu_ms",
    "gpu_throughput_per_s",
    "kernels",
    "host_overhead_ms",
    "peak_memory_bytes",
    "memory_per_sample_bytes",
    "run_id",
]


def render(store: RunStore, caps: Capabilities) -> None:
    st.subheader("Run a batch sweep")
    run_form(store, caps)
    batch_progress()
    st.subheader("Stored batch sweeps")
    stored_sweeps(store, caps)


# -- running ---------------------------------------------------------------------------------------
def run_form(store: RunStore, caps: Capabilities) -> None:
    form = model_form(KEY, source="resnet50", batch_size=None, precision=default_precision(caps))
    c1, c2, c3 = st.columns([1, 2, 2])
    with c1:
        backend = backend_picker(KEY, caps)
    if not caps.can_compile:
        st.caption(
            f"The tensorrt backend {caps.disabled_reason('backend', 'tensorrt')}: the eager backend runs "
            f"here instead, on the {'GPU' if caps.cuda_available else 'CPU'}, with static batches only "
            "(a dynamic engine is a TensorRT thing)."
        )
    sizes_text = c2.text_input(
        "Batch sizes",
        value=DEFAULT_SIZES,
        key=f"{KEY}:sizes",
        help=f"Whole numbers 1..{MAX_BATCH_SIZE}, separated by commas. One run per batch size and strategy.",
    )
    with c3:
        measure = knob_row("measure", ("warmup_iters", "timed_iters"), key_prefix=KEY)
    c1, c2 = st.columns([4, 1])
    options = list(batch_sweep.STRATEGIES) if backend == "tensorrt" else ["static"]
    strategies = c1.multiselect(
        "Strategies",
        options,
        default=options,
        key=f"{KEY}:strategies:{backend}",
        format_func=lambda s: {
            "static": "static: one engine per batch size",
            "dynamic": "dynamic: one engine for the whole range",
        }[s],
        help="dynamic builds one engine whose batch dimension ranges from the smallest to the largest size "
        "(torch_tensorrt.Input min/opt/max) and times it at every size.",
    )
    opt = c2.number_input(
        "Opt batch (dynamic)",
        value=0,
        min_value=0,
        step=1,
        key=f"{KEY}:opt",
        disabled="dynamic" not in strategies,
        help="The batch the dynamic engine is tuned for; 0 = the middle swept size.",
    )
    raw = {
        **form,
        "backend": backend,
        "device": "auto" if caps.cuda_available else "cpu",
        # one figure per point: the eager baseline and accuracy pass would only double the sweep's time
        "measure": {**measure, "layer_profile": False, "accuracy": False, "compare_eager": False},
    }
    try:
        sizes = batch_sweep.parse_batch_sizes(sizes_text)
        base = validate(RunRequest.from_dict(raw))
        inputs = batch_sweep.registry_inputs(base) if "dynamic" in strategies else None
        plan = batch_sweep.plan_batch_sweep(base, sizes, strategies, opt_batch=opt or None, model_inputs=inputs)
    except ConfigError as e:
        field_error(e, "Nothing can be submitted until this is fixed.")
        plan = None
    if plan is not None:
        st.caption(
            f"{len(plan.points)} runs: "
            + "; ".join(p.label for p in plan.points)
            + "".join(f" · {n}" for n in plan.notes)
        )
    busy = RUNNING in st.session_state
    if (
        st.button(
            "Run batch sweep",
            type="primary",
            icon=":material/play_arrow:",
            disabled=busy or plan is None,
            key=f"{KEY}:run",
        )
        and plan is not None
    ):
        if checked_request(plan.base, caps) is None:
            return
        execution = sweeps.SweepExecution(plan, store, jobs.submit, jobs.get, jobs.cancel)
        if not start_execution(execution, "Batch sweep"):
            return
        st.session_state[RUNNING] = execution
        st.session_state.pop(NOTHING_MEASURED, None)
        st.rerun()


def batch_progress() -> None:
    """Live state of the batch sweep started in this session, with one button that cancels all of it; polled
    only while a batch sweep of this session runs. When it ends it opens, or says it measured nothing."""
    live_progress(RUNNING, "Batch sweep", key=f"{KEY}:cancel", on_finish=_finished)


def _finished(execution: sweeps.SweepExecution) -> None:
    points = execution.points
    failed = [f"{p.point.label}: {p.view.error}" for p in points if p.view.state == "failed"]
    sweep_id = execution.plan.sweep_id
    st.session_state.setdefault(FAILED, {})[sweep_id] = failed
    if any(p.view.state == "done" for p in points):
        st.query_params[URL_KEY] = sweep_id
    else:
        st.session_state[NOTHING_MEASURED] = (
            f"Batch sweep {sweep_id} measured nothing: "
            + ", ".join(f"{n} {s}" for s, n in execution.counts().items())
            + ".",
            failed,
        )


# -- stored sweeps ---------------------------------------------------------------------------------
def stored_sweeps(store: RunStore, caps: Capabilities) -> None:
    if NOTHING_MEASURED in st.session_state:
        message, failed = st.session_state[NOTHING_MEASURED]
        st.warning(message, icon=":material/warning:")
        for text in failed:
            st.error(f"Not measured: {text}", icon=":material/error:")
    listed = batch_sweep.list_batch_sweeps(store)
    tagged = {
        r.sweep_id: f"{r.sweep_id} · {r.model} · {r.device_name} · {r.runs} runs" + (" · sample" if r.is_sample else "")
        for r in listed.itertuples()
    }
    chosen = pick_study(
        store,
        "batch_sweep",
        url_key=URL_KEY,
        key=f"{KEY}:chosen",
        label="Batch sweep",
        tagged=tagged,
        empty="No batch sweep stored yet: run one above (the eager backend works on the CPU), or record the GPU "
        "samples with scripts/record_samples.py --only batch.",
        unknown=lambda i: f"No stored run belongs to batch sweep {plain(repr(i))}. Pick one below.",
    )
    if chosen is None:
        return
    show_batch_sweep(store, caps, chosen)


def show_batch_sweep(store: RunStore, caps: Capabilities, sweep_id: str) -> None:
    study_gaps(store, sweep_id, key=KEY)
    try:
        sweep = batch_sweep.load_batch_sweep(store, sweep_id)
    except RunNotFound as e:
        st.info(plain(e.message), icon=":material/info:")
        return
    for text in st.session_state.get(FAILED, {}).get(sweep_id, []):
        st.error(f"Not measured: {text}", icon=":material/error:")
    table = sweep.table
    if table.empty:
        st.info("This batch sweep has no timed run.", icon=":material/info:")
        return
    samples = all(r.is_sample for r in sweep.results)
    st.caption(
        f"{len(table)} points of {sweep.model} {sweep.precision} on {sweep.device_name}"
        + (" · recorded on a real GPU and bundled as a sample" if samples else "")
    )
    has_memory = table["peak_memory_bytes"].notna().any()
    capacity_bytes = None
    if has_memory:
        local = batch_sweep.gpu_capacity_bytes(sweep.device_name, caps)
        gib = st.number_input(
            "GPU memory for the ceiling (GiB)",
            min_value=0.0,
            step=1.0,
            value=float(round(local / 2**30)) if local else 0.0,
            key=f"{KEY}:capacity:{sweep_id}",
            help="The largest batch the memory line fits in this much memory; 0 leaves it out. "
            "Filled in when this machine has the GPU the sweep was recorded on.",
        )
        capacity_bytes = gib * 2**30 or None
    verdict = batch_sweep.verdict(sweep, capacity_bytes)
    st.markdown(verdict.markdown())
    c1, c2 = st.columns(2)
    c1.plotly_chart(batch_charts.latency_vs_batch(table), width="stretch", key=f"{KEY}:chart:latency")
    c2.plotly_chart(
        batch_charts.throughput_vs_batch(table, verdict.knees), width="stretch", key=f"{KEY}:chart:throughput"
    )
    c1, c2 = st.columns(2)
    if has_memory:
        c1.plotly_chart(
            batch_charts.memory_vs_batch(table, verdict.memory, capacity_bytes),
            width="stretch",
            key=f"{KEY}:chart:memory",
        )
    if not verdict.cost.empty:
        c2.plotly_chart(batch_charts.dynamic_cost(verdict.cost), width="stretch", key=f"{KEY}:chart:cost")
    st.dataframe(
        table[TABLE_SHOWN],
        hide_index=True,
        column_config={
            "peak_memory_bytes": st.column_config.NumberColumn("peak memory", format="bytes"),
            "memory_per_sample_bytes": st.column_config.NumberColumn("memory / sample", format="bytes"),
            "throughput_per_s": st.column_config.NumberColumn("samples/s", format="%.0f"),
            "gpu_ms": st.column_config.NumberColumn("GPU time (ms)", format="%.4f"),
            "gpu_throughput_per_s": st.column_config.NumberColumn("samples/s of GPU time", format="%.0f"),
            "kernels": st.column_config.NumberColumn("kernels / call", format="%.0f"),
            "host_overhead_ms": st.column_config.NumberColumn("host overhead (ms)", format="%.4f"),
        },
    )
    report_button(study_id=sweep_id, study_kind="batch")
