"""Profile: pick a model and knobs, run, see end-to-end latency and the slowest layers."""

import streamlit as st

from engine import capabilities, charts, compare, diagnosis, dynamic_cost, models, quantization
from engine.config import CompileSettings, MeasureSettings, RunRequest
from engine.store import RunNotFound
from ui.common import checked_request, get_store, link_to, load_run, report_button
from ui.knobs import compile_disabled_reasons, describe_inputs, knob_section, knob_widget
from ui.job_panel import gpu_picker, job_panel, queue_overview, submit
from ui.markdown import plain
from ui.timing import timing_row

st.title("Profile a model")
caps = capabilities.detect()
default = RunRequest()
fields = {f.name: f for f in RunRequest.__dataclass_fields__.values()}

with st.container(border=True):
    st.subheader("Model and input")
    c1, c2, c3 = st.columns([2, 1, 2])
    with c1:
        sources = models.available_sources()
        source = st.selectbox("Model", sources, index=sources.index(default.model.source),
                              help="Built-in models use random weights; file: models come from the models "
                                   f"directory ({models.models_dir()}).", key="knob:model.source")
    with c2:
        batch = st.number_input("Batch size", value=1, step=1, key="knob:model.batch_size")
    entry = models.REGISTRY.get(source)
    text_model = entry is not None and entry.input_kind == "text"
    with c3:
        if text_model:
            seq = st.number_input("Sequence length", value=None, step=1, placeholder="model default (128)",
                                  key="knob:model.sequence_length",
                                  help="Tokens per input (input_ids and attention_mask); empty = 128.")
            shape = ""
        else:
            shape = st.text_input("Input shape (without batch)", value="", placeholder="model default, e.g. 3,224,224",
                                  key="knob:model.input_shape",
                                  help="Comma-separated dimensions; leave empty for the model's default.")
            seq = None
    with st.expander("Inputs: dynamic shapes, several inputs, dtypes"):
        inputs_text = st.text_area(
            "Inputs (JSON)", value="", key="knob:model.inputs", height=110,
            placeholder='[{"name": "x", "shape": [8, 3, 224, 224], "min_shape": [1, 3, 224, 224], '
                        '"max_shape": [32, 3, 224, 224], "dtype": "float32"}]',
            help="Empty takes the model's own inputs. shape is the opt shape (batch included); min_shape/max_shape "
                 "make a dynamic engine; value_range bounds integer inputs such as token ids.")
    model_raw = {"source": source, "batch_size": batch, "input_shape": shape, "sequence_length": seq,
                 "inputs": inputs_text or None}
    st.caption(describe_inputs(model_raw))
    c1, c2, c3 = st.columns(3)
    with c1:
        backend = knob_widget("", fields["backend"], default.backend)
    with c2:
        device = knob_widget("", fields["device"], default.device,
                             disabled=None if caps.cuda_available else "no NVIDIA GPU on this machine: CPU only")
    with c3:
        mode = knob_widget("", fields["mode"], default.mode,
                           disabled=None if caps.can_compile else "analyze needs Torch-TensorRT (GPU)")
    backend_problem = caps.disabled_reason("backend", backend)
    if backend_problem:
        st.error(f"**backend**: tensorrt {backend_problem}. Use the eager backend here, or open the sample "
                 "runs recorded on a GPU in History.", icon=":material/block:")

disabled = compile_disabled_reasons(backend, caps)
with st.container(border=True):
    st.subheader("Torch-TensorRT compiler knobs")
    scheme_reasons = quantization.scheme_options(caps)
    compile_values = knob_section("compile", CompileSettings, default.compile, advanced=False, disabled_for=disabled,
                                  columns=3, option_reasons={"compile.quantization": scheme_reasons})
    scheme = compile_values.get("quantization", "none")
    if backend == "tensorrt" and scheme_reasons.get(scheme):
        st.error(f"**compile.quantization**: {scheme} is unavailable here: {scheme_reasons[scheme]}",
                 icon=":material/block:")
    with st.expander("Advanced compiler knobs"):
        compile_values |= knob_section("compile", CompileSettings, default.compile, advanced=True,
                                       disabled_for=disabled, columns=3)
with st.container(border=True):
    st.subheader("Measurement")
    measure_values = knob_section("measure", MeasureSettings, default.measure, advanced=False, disabled_for={},
                                  columns=3)
    with st.expander("Advanced measurement"):
        measure_values |= knob_section("measure", MeasureSettings, default.measure, advanced=True, disabled_for={},
                                       columns=3)

raw = {"model": model_raw, "backend": backend,
       "device": device if caps.cuda_available else "cpu", "mode": mode,
       "compile": {k: v for k, v in compile_values.items() if k == "precision" or f"compile.{k}" not in disabled},
       "measure": measure_values}
if backend != "tensorrt":
    raw["mode"] = "measure"

gpu = gpu_picker() if caps.cuda_available else None
quant_problem = backend == "tensorrt" and bool(scheme_reasons.get(compile_values.get("quantization", "none")))
if st.button("Run", type="primary", disabled=bool(backend_problem) or quant_problem, icon=":material/play_arrow:") \
        and (request := checked_request(raw, caps)):
    submit(request, gpu)
job_panel()
with st.expander("Queue on this box"):
    queue_overview()

run_id = st.query_params.get("run")
if run_id:
    try:
        result = load_run(run_id)
    except RunNotFound as e:
        st.info(plain(e.message))
    else:
        st.divider()
        st.subheader(f"Result: {plain(compare.run_label(result))}")
        st.caption(f"Recorded on {plain(result.env.get('device_name'))} at {plain(result.created_at)}"
                   + (" · sample run recorded on a real GPU" if result.is_sample else "")
                   + f" · submitted by {plain(result.submitted_by or 'unknown')}")
        lat = result.latency
        if lat.timed:
            timing_row(result)
        else:
            st.info("Analyze run: the graph was partitioned (dry run) but nothing was built or timed. "
                    "See Segmentation.", icon=":material/account_tree:")
        for w in result.warnings:
            st.warning(plain(w))
        found = diagnosis.diagnose_result(result)
        if found is not None and found.verdict != "compute_bound":
            st.info(found.text(), icon=":material/speed:")
        if lat.timed and dynamic_cost.is_dynamic(result.request):
            static = dynamic_cost.find_static_counterpart(get_store(), result)
            if static is not None:
                st.info(dynamic_cost.DynamicCost(result, static).text(), icon=":material/straighten:")
                link_to("compare", "Compare dynamic and static", [result.run_id, static.run_id],
                        icon=":material/compare_arrows:")
            else:
                st.caption("A dynamic-shape engine: what its range costs at this shape shows once a static engine "
                           "built for exactly this shape is measured with the same settings.")
                if st.button("Measure a static engine at this shape", icon=":material/straighten:",
                             key="static_counterpart") \
                        and (counterpart := checked_request(dynamic_cost.static_counterpart(result), caps)):
                    submit(counterpart, gpu)
        left, right = st.columns(2)
        with left:
            st.dataframe(compare.run_summary(result), hide_index=True,
                         column_config={"value": st.column_config.NumberColumn(format="%.4g")})
        with right:
            if result.stages_s:
                st.plotly_chart(charts.stage_bar(result.stages_s), width="stretch", key="chart_stages")
        if len(result.layers):
            top_n = st.slider("Slowest layers shown", 5, 100, 20, key="profile_top_n")
            st.plotly_chart(charts.top_layers_bar(result.layers, top_n), width="stretch")
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
