"""Where it breaks: the layer that breaks a low-precision build, the fix, and what the fix costs. Start one here or
from a broken precision-ladder step (Sweeps page); ``?localise=<id>`` opens a stored one (bundled samples too)."""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

from engine import capabilities
from engine.capabilities import scheme_options
from engine.charts import localisation as localisation_charts
from engine.errors import ConfigError
from engine.quantization.schemes import SCHEMES
from engine.settings.defaults import QUANT_SCHEMES
from engine.settings.request import RunRequest
from engine.studies.ladder.plan import DEFAULT_TOLERANCE_REL_L2
from engine.studies.localisation import driver, headline, shipping
from engine.studies.localisation.error_growth import error_growth
from engine.studies.localisation.figures import Criterion
from engine.studies.localisation.records import LocalisationNotFound
from engine.studies.localisation.resume import resume, resume_offer
from engine.studies.localisation.study import DONE, RUNNING, Localisation
from ui import localisation as loc
from ui.access import current_identity
from ui.errors import field_error, show_error
from ui.job_panel import checked_request, submit
from ui.markdown import plain
from ui.model_form import model_form
from ui.navigation import link_to, switch_to
from ui.store import get_store
from ui.url_picker import pick_from_url

POLL_S = 1.0
KEY = "loc"
PICKED = f"{KEY}:picked"
WORST_SHOWN = ["unit", "layer_type", "rel_err", "nan", "inf", "act_max", "format", "format_max", "calib_amax"]

st.title("Where it breaks")
caps = capabilities.detect()
store = get_store()
records = loc.get_records()
gpu_reason = None if caps.can_compile else (caps.disabled_reason("backend", "tensorrt") or "needs a GPU")
if gpu_reason:
    st.info(
        f"Finding the layer builds a TensorRT engine per step, which this machine cannot do (tensorrt "
        f"{gpu_reason}). Here: the recorded localisations below, and the PyTorch side (error through the network, "
        "and a search on the fake-quantized model) on this CPU.",
        icon=":material/memory:",
    )


def form() -> None:
    model = model_form(KEY, source="resnet50", batch_size=8)
    c1, c2 = st.columns([3, 1])
    refusals = scheme_options(caps)
    schemes = [s for s in QUANT_SCHEMES if s == "none" or not refusals[s] or gpu_reason]
    scheme = c1.selectbox(
        "What breaks",
        schemes,
        index=schemes.index("fp8") if "fp8" in schemes else 0,
        key=f"{KEY}:scheme",
        format_func=lambda s: "fp16 cast (no quantization)" if s == "none" else f"{s} · {SCHEMES[s].label}",
    )
    base_precision = c2.selectbox("Unquantized in", ["fp16", "fp32"], key=f"{KEY}:base", disabled=scheme == "none")
    c1, c2, c3, c4 = st.columns(4)
    tolerance = c1.number_input(
        "Tolerance (rel. L2 vs eager fp32)",
        value=DEFAULT_TOLERANCE_REL_L2,
        min_value=0.0,
        format="%.3f",
        key=f"{KEY}:tol",
    )
    calibration = c2.text_input(
        "Calibration data",
        value="random",
        key=f"{KEY}:calib",
        help="random, file:<name>.pt or dir:<folder> in the calibration directory; a folder "
        "with one subfolder per class also gives top-1 against its labels.",
    )
    min_top1 = c3.number_input(
        "Least top-1 agreement, % (0: not asked)",
        value=0,
        min_value=0,
        max_value=100,
        key=f"{KEY}:top1",
        help="A fix must also agree with eager fp32 on the top class this often; rel. L2 alone can fall while a "
        "class changes.",
    )
    max_builds = c4.number_input(
        "Most search builds (0: about 2·log2(modules)+2)", value=0, min_value=0, key=f"{KEY}:builds"
    )
    raw = {
        **model,
        "backend": "tensorrt",
        "device": "auto" if caps.cuda_available else "cpu",
        "compile": {
            "quantization": scheme,
            "quant_base_precision": base_precision,
            "precision": "fp16" if scheme == "none" else base_precision,
            "calibration_data": calibration,
        },
        "measure": {"compare_eager": False},
    }
    try:
        request = RunRequest.from_dict(raw)
    except ConfigError as e:
        field_error(e)
        return
    criterion = Criterion(tolerance, min_top1 / 100 if min_top1 else None)
    c1, c2 = st.columns(2)
    if c1.button(
        "Find where it breaks",
        type="primary",
        icon=":material/troubleshoot:",
        disabled=bool(gpu_reason),
        help=f"Unavailable here: {gpu_reason}" if gpu_reason else "Each step is one engine build on the job queue.",
    ):
        loc.start(request, criterion, caps, "Where it breaks page", max_builds or None)
    if c2.button(
        "Search on the PyTorch model here",
        icon=":material/memory:",
        help="No engine: each step is the fake-quantized (or cast) PyTorch model on this machine's CPU. It "
        "finds where quantization error grows, not an engine's conversion problem, and times nothing.",
    ):
        run_on_pytorch(request.with_changes(device="cpu"), criterion, max_builds or None)


def run_on_pytorch(request: RunRequest, criterion: Criterion, max_builds: int | None) -> None:
    try:
        with st.status("On the PyTorch model (CPU)…", expanded=True) as status:

            def progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
                status.update(label=f"{stage}: {detail}")

            runner = driver.PyTorchRunner("cpu")
            study = driver.plan(
                request,
                criterion=criterion,
                max_builds=max_builds,
                source="Where it breaks page (PyTorch)",
                measured_on=runner.measured_on,
                progress=progress,
            )
            driver.run(study, runner, poll_s=0.0, on_change=lambda s: status.update(label=s.progress_text()))
            status.update(label=study.summary(), state="complete")
    except Exception as e:
        show_error(e, "The search on the PyTorch model failed")
        return
    records.save(study)
    st.query_params[loc.URL_KEY] = study.localisation_id


@st.fragment(run_every=POLL_S)
def follow(localisation_id: str) -> None:
    """Advance a running localisation this session follows: poll its builds, submit the next; rerun when it ends."""
    current_identity()  # its builds are submitted and cancelled as the signed-in user (a fragment's own thread)
    try:
        study = records.load(localisation_id)
    except LocalisationNotFound:
        return
    if study.status == RUNNING:
        try:
            driver.advance(study, loc.queue_runner(store))
        except Exception as e:
            show_error(e, "The localisation could not go on")
            return
        records.save(study)
    c1, c2 = st.columns([5, 1])
    c1.progress(study.fraction, text=study.progress_text())
    if study.status == RUNNING and c2.button("Cancel", icon=":material/cancel:", key=f"{KEY}:cancel"):
        driver.cancel(study, loc.queue_runner(store))
        records.save(study)
    if study.status != RUNNING:
        st.session_state[loc.FOLLOWED].remove(localisation_id)
        st.rerun()


def go_on(study: Localisation, offer: str) -> None:
    """Resume a cancelled or failed study, or one whose search used its budget (with more builds), and follow it."""
    out_of_builds = study.status == DONE
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    builds = c2.number_input(
        "Search builds allowed",
        min_value=study.builds + 1,
        value=study.budget + (study.budget // 2 if out_of_builds else 0),
        step=1,
        key=f"{KEY}:more:{study.localisation_id}",
        help=f"{study.builds} used so far. Each is an engine build of the model.",
    )
    if c1.button(
        "Go on",
        icon=":material/play_arrow:",
        disabled=bool(gpu_reason),
        help=f"Unavailable here: {gpu_reason}" if gpu_reason else offer,
        key=f"{KEY}:resume",
    ):
        try:
            resume(study, int(builds) if int(builds) != study.budget else None)
        except ConfigError as e:
            field_error(e)
            return
        records.save(study)
        loc.follow(study.localisation_id)
        st.rerun()


def show(study: Localisation) -> None:
    b = study.base
    if study.is_sample:
        st.badge(
            "recorded sample",
            icon=":material/inventory_2:",
            color="violet",
            help="Recorded on a real GPU and bundled with the dashboard.",
        )
    st.caption(
        f"{b['model']['source']} batch {b['model']['batch_size']}, {study.label} · {len(study.candidates)} "
        f"candidate modules · measured on the {study.measured_on} · {study.criterion.text()} · "
        f"{study.source or 'started here'} · {study.created_at}"
    )
    if study.status == RUNNING:
        if study.localisation_id in st.session_state.get(loc.FOLLOWED, []):
            follow(study.localisation_id)
        else:
            st.info(
                "Running, but no page is advancing it (the tab that started it closed): builds already queued "
                "finish, the next ones wait.",
                icon=":material/pause_circle:",
            )
            if st.button(
                "Resume here",
                icon=":material/play_arrow:",
                disabled=bool(gpu_reason),
                help=f"Unavailable here: {gpu_reason}" if gpu_reason else None,
            ):
                loc.follow(study.localisation_id)
                st.rerun()
    st.markdown(f"**{headline.headline(study)}**")  # one short sentence first, the full account below
    st.markdown(study.summary())
    if not study.is_sample and study.measured_on == "engine" and (offer := resume_offer(study)):
        go_on(study, offer)
    for note in study.notes:
        st.caption(note)
    comparison = study.comparison_table()
    if not comparison.empty:
        timed = comparison["e2e_ms"].notna().any()
        left, right = st.columns([3, 2]) if timed else (st.container(), None)
        left.dataframe(comparison.dropna(axis=1, how="all"), hide_index=True, key="loc_comparison")
        if right is not None:
            right.plotly_chart(localisation_charts.fix_against(study), width="stretch", key="chart_fix")
    fix = study.fix_step
    found = shipping.fix_verdict(study)
    what = "passing build" if found is not None and found.kind == shipping.NOT_FASTER else "fix"  # not worth shipping
    if fix is not None:
        c1, c2 = st.columns(2)
        with c1:
            if fix.run_id and store.exists(fix.run_id):
                link_to("profile", f"Open the {what}'s run in Profile", [fix.run_id], icon=":material/play_circle:")
        kept = ", ".join(fix.kept)
        if c2.button(
            f"Profile the {what}",
            icon=":material/play_arrow:",
            disabled=bool(gpu_reason),
            help=(
                f"Unavailable here: {gpu_reason}"
                if gpu_reason
                else f"A normal profile run with compile.keep_high_precision = {kept}"
            ),
        ):
            request = checked_request(study.request_for("confirm", fix.kept), caps)
            if request is not None:
                submit(request)
                switch_to("profile", otherwise="Queued: follow it on the Profile page.")
        st.caption(
            f"The {what} keeps {len(fix.kept)} module(s) in {study.high_precision}: `{kept}` "
            "(compile.keep_high_precision)."
        )

    st.subheader("Error through the network (PyTorch side)")
    growth = study.error_growth
    if growth is None:
        st.caption(
            "Not measured for this localisation yet: eager fp32, the fake-quantized and the cast model, unit "
            "by unit, on this machine's CPU (a few seconds to a minute)."
        )
        if st.button("Measure it here", icon=":material/query_stats:", key=f"{KEY}:analyse"):
            try:
                with st.spinner("Hooks on eager fp32, fake-quantized and cast models…"):
                    study.error_growth = error_growth(
                        study.request.with_changes(device="cpu"), tolerance=study.criterion.tolerance_rel_l2
                    )
            except Exception as e:
                show_error(e, "The error growth could not be measured")
            else:
                records.save(study)
                st.rerun()
    else:
        st.plotly_chart(
            localisation_charts.error_growth(growth, study.answer or ()), width="stretch", key="chart_growth"
        )
        for variant in growth.variants:
            st.markdown(f"- {growth.crossing_text(variant)}")
        tabs = st.tabs([f"Worst ten: {v}" for v in growth.variants])
        for tab, variant in zip(tabs, growth.variants, strict=True):
            tab.dataframe(growth.worst(variant)[WORST_SHOWN], hide_index=True)

    st.subheader("The search")
    st.plotly_chart(localisation_charts.bisection_steps(study), width="stretch", key="chart_steps")
    st.dataframe(study.steps_table().dropna(axis=1, how="all"), hide_index=True, key="loc_steps")
    for step in (s for s in study.steps if s.state == "failed" and s.why):
        with st.expander(f"Step {step.index + 1} ({step.role}, {len(step.kept)} kept): the job's error"):
            st.code(step.why, language="text")
    with st.expander(f"{len(study.candidates)} candidate modules, in execution order"):
        st.code("\n".join(study.candidates), language="text")


with st.expander("Start a localisation", icon=":material/troubleshoot:"):
    form()

listed = records.summaries()
if listed.empty:
    st.info(
        "No localisation stored yet: start one above, or from a broken step of a precision ladder (Sweeps page).",
        icon=":material/info:",
    )
    st.stop()
labels = {
    r.localisation_id: f"{r.localisation_id} · {r.model} b{r.batch_size} {r.label} · {r.status}"
    + (" · sample" if r.is_sample else "")
    for r in listed.itertuples()
}
chosen = pick_from_url(
    loc.URL_KEY,
    list(listed["localisation_id"]),
    labels,
    key=PICKED,
    label="Localisation",
    unknown=lambda i: (
        f"No localisation {plain(repr(i))} is stored: it was deleted or the link is wrong. Pick one below."
    ),
    help="Newest first. The link in the address bar (?localise=<id>) opens the same one.",
)
show(records.load(chosen))
