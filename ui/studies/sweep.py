"""Sweeps page, knob sweep tabs: run a sweep of one or two compile knobs through the job queue, and open a stored
one (``?sweep=<id>``, bundled GPU samples included) with its verdict and charts. ``study_base`` is the form every
point of a sweep or an auto-tune search starts from."""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine import jobs
from engine.capabilities import Capabilities
from engine.charts import sweeps as sweep_charts
from engine.errors import ConfigError
from engine.settings.defaults import MIN_BLOCK_SIZE
from engine.settings.request import RunRequest
from engine.store import RunNotFound, RunStore
from engine.studies import batch_sweep, sweeps
from engine.studies.sweeps import TABLE_SHOWN
from ui.errors import field_error
from ui.exports import report_button
from ui.job_panel import checked_request
from ui.knobs import backend_picker, default_precision, knob_row
from ui.markdown import plain
from ui.model_form import model_form
from ui.studies.execution import live_progress, start_execution, study_gaps
from ui.studies.picker import pick_study

URL_KEY = "sweep"
RUNNING = "sweep_execution"

SWEEP_COLUMNS = {
    "median_ms": st.column_config.NumberColumn("e2e median (ms)", format="%.4f"),
    "gpu_ms": st.column_config.NumberColumn(
        "GPU time (ms)", format="%.4f", help="Kernel time per inference from a CUDA-activity trace."
    ),
    "gpu_low_ms": st.column_config.NumberColumn("GPU fastest window", format="%.4f"),
    "gpu_high_ms": st.column_config.NumberColumn("GPU slowest window", format="%.4f"),
    "kernels": st.column_config.NumberColumn("kernels / inference", format="%.0f"),
    "graph_ms": st.column_config.NumberColumn("CUDA-graph replay (ms)", format="%.4f"),
    "host_overhead_ms": st.column_config.NumberColumn(
        "host overhead (ms)", format="%.4f", help="End-to-end median minus GPU time."
    ),
    "plan": st.column_config.TextColumn("engine plan", help="Equal: the same engine plan (the same kernels)."),
}


def study_base(key: str, caps: Capabilities) -> dict[str, Any]:
    """The request every point of a sweep or search starts from: the model form with its precision, the backend
    and the iterations (no per-layer profile: one figure per point)."""
    form = model_form(key, source="resnet50", precision=default_precision(caps))
    c1, c2 = st.columns([1, 2])
    with c1:
        backend = backend_picker(key, caps)
    with c2:
        measure = knob_row("measure", ("warmup_iters", "timed_iters"), key_prefix=key)
    return {
        **form,
        "backend": backend,
        "device": "auto" if caps.cuda_available else "cpu",
        "measure": {**measure, "layer_profile": False},
    }


def recommended_for(store: RunStore, request: RunRequest) -> list[int]:
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
        text = st.text_input(
            "Extra min_block_size values",
            value="1",
            key=f"{key}:values",
            help=f"Comma-separated. Always swept: the default {MIN_BLOCK_SIZE} and the dryrun's "
            f"recommendation ({', '.join(map(str, recommended)) or 'none stored yet'}).",
        )
        try:
            extra = [int(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(knob, f"{text!r} is not a list of integers") from None
        return sweeps.default_values(knob, recommendations=recommended, user_values=extra)
    if knob == sweeps.EXECUTED_OPS_KNOB:
        text = st.text_area(
            "Op sets forced to PyTorch (one set per line, ops comma-separated)",
            value="torch.ops.aten.relu.default",
            key=f"{key}:values",
        )
        sets = [[op.strip() for op in line.split(",") if op.strip()] for line in text.splitlines()]
        return sweeps.default_values(knob, user_values=[s for s in sets if s])
    options = sweeps.default_values(knob)
    return st.multiselect(
        "Values", options, default=options, key=f"{key}:values", format_func=lambda v: sweeps.value_label(knob, v)
    )


def render_run(store: RunStore, caps: Capabilities) -> None:
    """The Run a sweep tab: the base request, one or two knobs and their values, the plan, Run, the progress."""
    raw = study_base("sweep", caps)
    names = sweeps.knobs_for(raw["backend"])  # on eager only precision: a min_block_size sweep there is 5 equal runs
    c1, c2 = st.columns(2)
    knob1 = c1.selectbox(
        "Knob to sweep",
        names,
        format_func=sweeps.SWEEPABLE_KNOBS.get,
        key="sweep:knob1",
        help=None
        if raw["backend"] != "eager"
        else "The eager backend honours precision only; the compile knobs need the tensorrt backend (an NVIDIA GPU).",
    )
    knob2 = c2.selectbox(
        "Second knob (optional)",
        [None, *[n for n in names if n != knob1]],
        key="sweep:knob2",
        format_func=lambda k: "none" if k is None else sweeps.SWEEPABLE_KNOBS[k],
    )
    try:
        request = RunRequest.from_dict(raw)
        recommended = recommended_for(store, request)
        axes = {}
        for i, knob in enumerate([k for k in (knob1, knob2) if k]):
            with c1 if i == 0 else c2:
                axes[knob] = values_widget(knob, f"sweep:axis{i}", recommended)
        plan = sweeps.plan_sweep(request, axes)
    except ConfigError as e:
        field_error(e)
        plan = None
    if plan is not None:
        st.caption(
            f"{len(plan.points)} runs: "
            + "; ".join(p.label for p in plan.points)
            + "".join(f" · {n}" for n in plan.notes)
        )
        busy = RUNNING in st.session_state
        if (
            st.button("Run sweep", type="primary", icon=":material/play_arrow:", disabled=busy)
            and checked_request(raw, caps) is not None
        ):
            execution = sweeps.SweepExecution(plan, store, lambda r: jobs.submit(r), jobs.get, jobs.cancel)
            if start_execution(execution, "Sweep"):
                st.session_state[RUNNING] = execution
    sweep_progress()


def sweep_progress() -> None:
    """Live state of the sweep started in this session, with one button that cancels all of it; polled (a
    fragment rerun every second) only while a sweep of this session runs. When it ends, the results tab opens it."""

    def opened(execution: sweeps.SweepExecution) -> None:
        st.query_params[URL_KEY] = execution.plan.sweep_id

    live_progress(RUNNING, "Sweep", key="cancel_sweep", on_finish=opened)


def render_results(store: RunStore) -> None:
    """The Sweep results tab: the sweep the link names (else the newest), knob sweeps only, running ones too."""
    listed = sweeps.list_sweeps(store)
    # batch sweeps vary model.batch_size, not a compile knob: the Batch sweep tab shows them
    listed = listed[~listed["knobs"].str.contains(batch_sweep.BATCH_KNOB, regex=False).astype(bool)]
    tagged = {
        r.sweep_id: f"{r.sweep_id} · {r.model} · {r.device_name} · {r.runs} runs" + (" · sample" if r.is_sample else "")
        for r in listed.itertuples()
    }
    chosen = pick_study(
        store,
        "sweep",
        url_key=URL_KEY,
        key="sweep:chosen",
        label="Sweep",
        tagged=tagged,
        empty="No sweep stored yet: run one, or open the bundled samples once they are installed.",
        unknown=lambda i: f"No stored run belongs to sweep {plain(repr(i))}. Pick one below.",
    )
    if chosen is not None:
        show_sweep(store, chosen)


def show_sweep(store: RunStore, sweep_id: str) -> None:
    study_gaps(store, sweep_id, key="sweep")
    try:
        sweep = sweeps.load_sweep(store, sweep_id)
    except RunNotFound as e:
        st.info(plain(e.message), icon=":material/info:")
        return
    table = sweep.table
    first = sweep.results[0]
    st.caption(
        f"{len(table)} runs of {first.request['model']['source']} on {first.env.get('device_name', '?')}"
        + (" · recorded on a real GPU and bundled as a sample" if all(r.is_sample for r in sweep.results) else "")
    )
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
