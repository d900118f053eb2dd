"""Sweeps page, Precision ladder tab: run fp32, fp16 and each quantization scheme of one model through the
job queue, and open a stored ladder (``?ladder=<id>``) with its verdict."""

import streamlit as st

from engine import jobs
from engine.capabilities import Capabilities, scheme_options
from engine.charts import ladder as ladder_charts
from engine.errors import ConfigError
from engine.quantization.schemes import SCHEMES
from engine.settings.defaults import QUANT_SCHEMES
from engine.store import RunStore
from engine.studies import ladder
from engine.studies.sweeps import SweepExecution
from ui import localisation as localise
from ui.errors import field_error
from ui.exports import report_button
from ui.knobs import knob_row
from ui.markdown import plain
from ui.model_form import model_form
from ui.studies.execution import live_progress, start_execution, study_gaps
from ui.studies.picker import pick_study

URL_KEY = "ladder"
RUNNING = "ladder_execution"
LAST = "ladder_last_execution"  # the finished execution, for its failures under the ladder it opened
PICKED = "ladder_id"
KEY = "ladder"  # widget key prefix of the form
MEASURE_KNOBS = ("warmup_iters", "timed_iters", "layer_profile", "profile_iters")


def render(store: RunStore, caps: Capabilities) -> None:
    with st.expander("Run a ladder", expanded=caps.can_compile, icon=":material/stairs:"):
        run_form(store, caps)
    ladder_progress()
    show_stored(store, caps)


def run_form(store: RunStore, caps: Capabilities) -> None:
    """Model, batch, schemes, calibration and iterations; the planned steps; Run."""
    form = model_form(KEY, source="resnet50", batch_size=8)
    refusals = scheme_options(caps)
    allowed = [s for s in QUANT_SCHEMES[1:] if not refusals[s]]
    refused = [s for s in QUANT_SCHEMES[1:] if refusals[s]]
    c1, c2 = st.columns([3, 1])
    with c1:
        picked = st.multiselect(
            "Quantization schemes",
            allowed,
            default=allowed,
            key=f"{KEY}:schemes",
            format_func=lambda s: f"{s} · {SCHEMES[s].label}",
            help="fp32 and fp16 always run. Schemes this GPU and Torch-TensorRT flavour refuse "
            "are listed below and cannot be picked.",
        )
    with c2:
        compile_raw = knob_row(
            "compile", ("quant_base_precision",), key_prefix=KEY, values={"quant_base_precision": "fp16"}
        )
    compile_raw |= knob_row(
        "compile", ("calibration_data", "calibration_batches"), key_prefix=KEY, values={"calibration_data": "random"}
    )
    measure = knob_row("measure", MEASURE_KNOBS, key_prefix=KEY)
    raw = {**form, "device": "auto" if caps.cuda_available else "cpu", "compile": compile_raw, "measure": measure}
    try:
        # in the matrix's order; refused schemes go in too: the plan lists them, with the reason, as skipped
        plan = ladder.plan_ladder(
            ladder.ladder_base(raw), caps, schemes=[s for s in QUANT_SCHEMES if s in picked or s in refused]
        )
    except ConfigError as e:
        field_error(e)
        return
    st.markdown(f"**{len(plan.steps)} runs**, one job each: " + "; ".join(s.label for s in plan.steps))
    if plan.skipped:
        st.markdown(
            "Refused on this GPU and Torch-TensorRT flavour, not run:\n"
            + "\n".join(f"- **{s}** ({SCHEMES[s].label}): {why}" for s, why in plan.skipped)
        )
    problem = ladder.plan_problem(plan, caps)
    if problem is not None:
        needs = "" if caps.can_compile else f"\n\n{caps.banner()[1]}"
        st.warning(
            f"**{problem.field}**: {problem.message}.{needs}\n\nA ladder compiles every step with "
            "Torch-TensorRT on an NVIDIA GPU; the stored ladders below were recorded on one.",
            icon=":material/block:",
        )
    busy = RUNNING in st.session_state
    why_not = problem.message if problem else "a ladder of this session is running" if busy else None
    if st.button(
        "Run ladder",
        type="primary",
        icon=":material/play_arrow:",
        key=f"{KEY}:run",
        disabled=problem is not None or busy,
        help=why_not,
    ):
        start(plan, store)


def start(plan: ladder.LadderPlan, store: RunStore) -> None:
    execution = ladder.LadderExecution(plan, store, lambda r: jobs.submit(r), jobs.get, jobs.cancel)
    if not start_execution(execution, "Ladder"):
        return
    st.session_state[RUNNING] = execution
    st.session_state.pop(LAST, None)
    st.rerun()  # the form above was drawn with Run enabled


def ladder_progress() -> None:
    """Live state of this session's ladder, one Cancel for all of it; when it ends, the ladder opens. Polled
    only while a ladder of this session runs."""

    def steps(execution: SweepExecution) -> None:
        assert isinstance(execution, ladder.LadderExecution)
        progress = execution.progress()  # polls
        st.caption(" · ".join(p.text for p in progress))
        show_failures(progress)

    def opened(execution: SweepExecution) -> None:
        assert isinstance(execution, ladder.LadderExecution)
        st.session_state[LAST] = execution
        st.query_params[URL_KEY] = execution.ladder.ladder_id

    live_progress(RUNNING, "Ladder", key=f"{KEY}:cancel", on_finish=opened, details=steps)


def show_failures(steps: list[ladder.StepProgress]) -> None:
    for p in steps:
        if p.job.state == "failed":
            st.error(
                f"**{p.step.label}** failed: {p.job.error}" + (f"\n\n{p.hint}" if p.hint else ""),
                icon=":material/error:",
            )


def show_stored(store: RunStore, caps: Capabilities) -> None:
    """The ladder named in the URL (else the newest): verdict, latency chart, table."""
    ladder_ids = ladder.list_ladders(store)
    wanted = st.query_params.get(URL_KEY)
    last: ladder.LadderExecution | None = st.session_state.get(LAST)
    if last is not None and wanted == last.ladder.ladder_id:
        st.caption(last.status_text())
        show_failures(last.progress())
    lid = pick_study(
        store,
        "ladder",
        url_key=URL_KEY,
        key=PICKED,
        label="Ladder",
        tagged={i: i for i in ladder_ids},
        empty="No precision ladder stored yet: fp32, fp16 and each quantization scheme of one model, recorded "
        "with the TensorRT backend on a GPU.",
        unknown=lambda i: f"No stored run belongs to ladder {plain(repr(i))}. Pick one below.",
    )
    if lid is None:
        return
    study_gaps(store, lid, key=KEY)
    try:
        rungs = ladder.load_ladder(store, lid)
    except ConfigError:  # a ladder whose first step has not finished yet
        st.info(f"Ladder {lid} has no finished step yet.", icon=":material/info:")
        return
    tolerance = st.number_input(
        "Accuracy tolerance (rel. L2 vs eager fp32)",
        value=ladder.DEFAULT_TOLERANCE_REL_L2,
        min_value=0.0,
        format="%.3f",
        key="ladder_tol",
    )
    table = ladder.ladder_table(rungs)
    st.markdown(ladder.verdict(rungs, tolerance_rel_l2=tolerance).markdown())
    st.plotly_chart(ladder_charts.precision_ladder(table), width="stretch", key="chart_ladder")
    st.caption(
        "Three-way accuracy: eager fp32 → fake-quantized PyTorch model (the quantization error) → "
        "compiled engine (the conversion error)."
    )
    st.dataframe(table.drop(columns=["run_id"]), hide_index=True)
    coverage = ladder.ladder_coverage(rungs, ladder.step_outcomes(store, lid))
    st.markdown(f"**Quantization schemes covered.** {ladder.coverage_summary(coverage)}")
    st.dataframe(ladder.coverage_table(coverage), hide_index=True)
    report_button(study_id=lid, study_kind="ladder", tolerance_rel_l2=tolerance)
    localise.offer_from_ladder(rungs, tolerance, caps, lid)
