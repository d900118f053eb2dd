"""Engine: each TensorRT engine of a run as a graph of its layers, the PyTorch subgraphs between engines, the module
each fused layer came from; click a layer for its details. Also reads a user's own Debugger(profile_format="trex")
files. (Named engine_view.py: a page script named engine.py would shadow the engine package.)"""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

from engine import run_parts
from engine.charts import engine as engine_charts
from engine.errors import UserError
from engine.profiling import engine_graph, engine_groups
from engine.store import data_dir
from ui.markdown import plain
from ui.navigation import link_to
from ui.run_picker import pick_run, run_header
from ui.store import store_at

CHART_KEY, LAYER_KEY, CLICKED_KEY = "engine_chart", "engine_layer", "engine_clicked"
GROUP_ABOVE = 300  # nodes: past this the graph opens grouped by module


@st.cache_data(show_spinner="Reading the engines' layer information…", max_entries=16)
def _run_graph(root: str, run_id: str) -> engine_graph.EngineGraph:
    store = store_at(root)
    run = store.get(run_id)

    def raw_text(name: str) -> str | None:
        try:
            return store.artifact_path(run_id, name).read_text(errors="replace")
        except FileNotFoundError:
            return None

    return engine_graph.for_run(run, raw_text)


st.title("Engine")
st.caption(
    "Each TensorRT engine's layers in execution order, with the PyTorch subgraphs that run between engines. "
    "Colour and size: share of the profiled time; label: ms per inference (profiled with per-layer timing on, "
    "so compare shares, not sums). Click a layer, or pick it below the chart, for its details."
)
source = st.segmented_control("Source", ["A stored run", "Your own files"], default="A stored run", key="engine_source")
graph = None
if source == "Your own files":
    st.markdown(
        'Give the files `torch_tensorrt.dynamo.Debugger(profile_format="trex", save_layer_info=True)` writes '
        "(`<engine>_layer_information.json`, and `<engine>_engine_execution_profile.trace` for times), or "
        "`get_layer_info()` saved as JSON. They are read as data; nothing in them runs."
    )
    uploads = st.file_uploader(
        "Layer information and profiles", type=["json", "trace"], accept_multiple_files=True, key="engine_files"
    )
    if not uploads:
        st.stop()
    try:
        graph = engine_graph.from_files({u.name: u.getvalue().decode("utf-8", errors="replace") for u in uploads})
    except UserError as e:
        st.error(plain(e.message + (f" {e.hint}" if e.hint else "")), icon=":material/error:")
        st.stop()
else:
    run = pick_run(part=run_parts.LAYER_PROFILE)
    if run is None:
        st.stop()
    run_header(run)
    graph = _run_graph(str(data_dir()), run.run_id)
if graph.nodes.empty:
    st.info("This run has no engine layers to draw (no per-layer profile, no segmentation).", icon=":material/info:")
    st.stop()
for note in graph.notes:
    st.caption(plain(note))

summary = engine_groups.engine_summary(graph)
engines = list(summary["engine"])
c1, c2, c3 = st.columns([2, 1, 2])
shown = c1.multiselect("Engines and PyTorch subgraphs", engines, default=engines, key="engine_pick")
grouped = c2.toggle("Group by module", value=len(graph.nodes) > GROUP_ABOVE, key="engine_group")
depth = c2.number_input(
    "Module depth", 1, 8, engine_groups.default_depth(graph), key="engine_depth", disabled=not grouped
)
query = c3.text_input("Search layers", placeholder="name, module, type, op, tactic, precision", key="engine_query")

view = engine_groups.collapse(graph, int(depth)) if grouped else graph
nodes = view.nodes[view.nodes["engine"].isin(shown)].reset_index(drop=True)
edges = view.edges[view.edges["source"].isin(nodes["node_id"]) & view.edges["target"].isin(nodes["node_id"])]
hits = engine_groups.matching(nodes, query)

# a click on the chart (its selection, kept under its key) picks the layer the selectbox below shows
points = ((st.session_state.get(CHART_KEY) or {}).get("selection") or {}).get("points") or []
clicked = next((p.get("customdata") for p in points if p.get("customdata") in set(nodes["node_id"])), None)
if clicked is not None and clicked != st.session_state.get(CLICKED_KEY):
    st.session_state[CLICKED_KEY] = clicked
    st.session_state[LAYER_KEY] = clicked
options = list(nodes.loc[hits, "node_id"]) or list(nodes["node_id"])
if st.session_state.get(LAYER_KEY) not in options:
    st.session_state[LAYER_KEY] = options[int(nodes.loc[nodes["node_id"].isin(options), "avg_ms"].fillna(-1).argmax())]

st.plotly_chart(
    engine_charts.engine_graph_figure(
        nodes,
        edges,
        highlight=hits if query.strip() else None,
        selected=st.session_state[LAYER_KEY],
        title=f"{len(nodes):,} {'groups' if grouped else 'layers'} in execution order"
        + (f" · {int(hits.sum())} match “{query.strip()}”" if query.strip() else ""),
    ),
    width="stretch",
    key=CHART_KEY,
    on_select="rerun",
    selection_mode="points",
)
labels = {
    n.node_id: f"#{n.order} {n.name} · {n.engine}" + ("" if n.avg_ms != n.avg_ms else f" · {n.avg_ms:.4f} ms")
    for n in nodes.itertuples(index=False)
}
picked = st.selectbox(
    "Layer details",
    options,
    key=LAYER_KEY,
    format_func=labels.get,
    help="The slowest matching layer until you click one in the chart or pick one here.",
)
details = engine_groups.node_details(view, picked)
st.dataframe(
    details,
    hide_index=True,
    width="stretch",
    height=36 * (len(details) + 1) + 2,  # every field at once, no scrolling
    key="engine_details",
    column_config={"field": st.column_config.TextColumn(width="small")},
)

st.subheader("Engines and PyTorch subgraphs")
st.plotly_chart(engine_charts.engine_time_bar(summary), width="stretch", key="engine_time_bar")
st.dataframe(
    summary,
    hide_index=True,
    key="engine_summary",
    column_config={
        "avg_ms": st.column_config.NumberColumn("time (ms, profiled)", format="%.4f"),
        "share": st.column_config.ProgressColumn("share", format="percent"),
    },
)
if source == "A stored run":
    c1, c2 = st.columns(2)
    with c1:
        link_to("layers", "Layers of this run", [run.run_id], icon=":material/bar_chart:")
    with c2:
        link_to("segmentation", "Segmentation of this run", [run.run_id], icon=":material/account_tree:")
