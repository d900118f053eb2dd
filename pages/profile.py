"""Profile: pick a model and knobs, run, see end-to-end latency and the slowest layers."""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

from engine import capabilities, diagnosis
from engine.charts import layers as layer_charts
from engine.charts import profile as stage_charts
from engine.compare import metrics, settings_table
from engine.settings.request import CompileSettings, MeasureSettings, RunRequest
from engine.studies import dynamic_cost
from ui.exports import report_button
from ui.figures import timing_row
from ui.generative import generative_mode, generative_page
from ui.job_panel import checked_request, gpu_picker, job_panel, queue_overview, submit
from ui.knobs import compile_disabled_reasons, knob_section, knob_widget
from ui.markdown import plain
from ui.model_form import model_form
from ui.navigation import link_to
from ui.run_picker import linked_run, run_header
from ui.store import get_store

st.title("Profile a model")
caps = capabilities.detect()
if generative_mode():
    generative_page(caps)
    st.stop()
default = RunRequest()
fields = {f.name: f for f in RunRequest.__dataclass_fields__.values()}

with st.container(border=True):
    st.subheader("Model and input")
    model_raw = model_form("knob", source=default.model.source, batch_size=default.model.batch_size, inputs=True)[
        "model"
    ]
    c1, c2, c3 = st.columns(3)
    with c1:
        backend = knob_widget("", fields["backend"], default.backend)
    with c2:
        device = knob_widget(
            "",
            fields["device"],
            default.device,
            disabled=None if caps.cuda_available else "no NVIDIA GPU on this machine: CPU only",
        )
    with c3:
        mode = knob_widget(
            "",
            fields["mode"],
            default.mode,
            disabled=None if caps.can_compile else "analyze needs Torch-TensorRT (GPU)",
        )
    backend_problem = caps.disabled_reason("backend", backend)
    if backend_problem:
        st.error(
            f"**backend**: tensorrt {backend_problem}. Use the eager backend here, or open the sample "
            "runs recorded on a GPU in History.",
            icon=":material/block:",
        )

disabled = compile_disabled_reasons(backend, caps)
with st.container(border=True):
    st.subheader("Torch-TensorRT compiler knobs")
    scheme_reasons = capabilities.scheme_options(caps)
    compile_values = knob_section(
        "compile",
        CompileSettings,
        default.compile,
        advanced=False,
        disabled_for=disabled,
        columns=3,
        option_reasons={"compile.quantization": scheme_reasons},
    )
    scheme = compile_values.get("quantization", "none")
    if backend == "tensorrt" and scheme_reasons.get(scheme):
        st.error(
            f"**compile.quantization**: {scheme} is unavailable here: {scheme_reasons[scheme]}", icon=":material/block:"
        )
    with st.expander("Advanced compiler knobs"):
        compile_values |= knob_section(
            "compile", CompileSettings, default.compile, advanced=True, disabled_for=disabled, columns=3
        )
with st.container(border=True):
    st.subheader("Measurement")
    measure_values = knob_section(
        "measure", MeasureSettings, default.measure, advanced=False, disabled_for={}, columns=3
    )
    with st.expander("Advanced measurement"):
        measure_values |= knob_section(
            "measure", MeasureSettings, default.measure, advanced=True, disabled_for={}, columns=3
        )

raw = {
    "model": model_raw,
    "backend": backend,
    "device": device if caps.cuda_available else "cpu",
    "mode": mode,
    "compile": {k: v for k, v in compile_values.items() if k == "precision" or f"compile.{k}" not in disabled},
    "measure": measure_values,
}
if backend != "tensorrt":
    raw["mode"] = "measure"

gpu = gpu_picker() if caps.cuda_available else None
quant_problem = backend == "tensorrt" and bool(scheme_reasons.get(compile_values.get("quantization", "none")))
if st.button("Run", type="primary", disabled=bool(backend_problem) or quant_problem, icon=":material/play_arrow:") and (
    request := checked_request(raw, caps)
):
    submit(request, gpu)
job_panel()
with st.expander("Queue on this box"):
    queue_overview()

result = linked_run()  # the run a job of this page just measured, or a link's
if result is not None:
    st.divider()
    st.subheader(f"Result: {plain(settings_table.run_label(result))}")
    run_header(result)
    lat = result.latency
    if lat.timed:
        timing_row(result)
    else:
        st.info(
            "Analyze run: the graph was partitioned (dry run) but nothing was built or timed. See Segmentation.",
            icon=":material/account_tree:",
        )
    for w in result.warnings:
        st.warning(plain(w))
    found = diagnosis.diagnose_result(result)
    if found is not None and found.verdict != "compute_bound":
        st.info(found.text(), icon=":material/speed:")
    if lat.timed and dynamic_cost.is_dynamic(result.request):
        static = dynamic_cost.find_static_counterpart(get_store(), result)
        if static is not None:
            st.info(dynamic_cost.DynamicCost(result, static).text(), icon=":material/straighten:")
            link_to(
                "compare",
                "Compare dynamic and static",
                [result.run_id, static.run_id],
                icon=":material/compare_arrows:",
            )
        else:
            st.caption(
                "A dynamic-shape engine: what its range costs at this shape shows once a static engine "
                "built for exactly this shape is measured with the same settings."
            )
            if st.button(
                "Measure a static engine at this shape", icon=":material/straighten:", key="static_counterpart"
            ) and (counterpart := checked_request(dynamic_cost.static_counterpart(result), caps)):
                submit(counterpart, gpu)
    left, right = st.columns(2)
    with left:
        st.dataframe(
            metrics.run_summary(result),
            hide_index=True,
            column_config={"value": st.column_config.NumberColumn(format="%.4g")},
        )
    with right:
        if result.stages_s:
            st.plotly_chart(stage_charts.stage_bar(result.stages_s), width="stretch", key="chart_stages")
    if len(result.layers):
        top_n = st.slider("Slowest layers shown", 5, 100, 20, key="profile_top_n")
        st.plotly_chart(layer_charts.top_layers_bar(result.layers, top_n), width="stretch")
    elif lat.timed:
        st.info("This run has no per-layer profile (profiling was off).")
    report_button([result.run_id])
    links = st.columns(3)
    with links[0]:
        link_to("layers", "All layers of this run", [result.run_id], icon=":material/bar_chart:")
    with links[1]:
        link_to("segmentation", "Graph segmentation", [result.run_id], icon=":material/account_tree:")
    with links[2]:
        link_to("compare", "Compare with other runs", [result.run_id], icon=":material/compare_arrows:")
