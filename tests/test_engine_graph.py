"""The engine view's parsing: layer information (bundled H200 sample runs and the H100 Debugger files) → nodes and
edges, fused layers mapped to modules, PyTorch-fallback subgraphs between engines, collapse by module, search,
details, and a user's own files (bad ones refused with a message)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from engine.charts import engine as engine_charts
from engine.profiling import engine_graph, engine_groups
from engine.profiling.trt_profile import EXECUTION_PROFILE_SUFFIX, LAYER_INFO_SUFFIX, parse_trex_profile
from engine.store.exchange import decode_run

ROOT = Path(__file__).resolve().parent.parent
H100 = ROOT / "tests" / "fixtures" / "h100-rtx" / "resnet18_fp16"
ENGINE = "_run_on_acc_0_engine"


def sample(name: str):
    run, raw = decode_run((ROOT / "samples" / f"{name}.json.gz").read_bytes())
    return run, raw


def graph_of(name: str) -> engine_graph.EngineGraph:
    run, raw = sample(name)
    return engine_graph.for_run(run, raw.get)


@pytest.fixture(scope="module")
def vit() -> engine_graph.EngineGraph:
    return graph_of("vit_b_16_fp16")


def test_vit_layers_in_execution_order_with_tensor_edges_and_times(vit):
    run, _ = sample("vit_b_16_fp16")
    nodes = vit.nodes
    assert len(nodes) == 149 and list(nodes["order"]) == list(range(149))
    assert vit.engines_from_layer_info == ("trt_engine_0",) and vit.notes == ()
    assert set(vit.edges["kind"]) == {"tensor"}
    # every edge joins a layer to one that runs later, through a tensor the first writes and the second reads
    pos = dict(zip(nodes["node_id"], nodes["order"], strict=True))
    for e in vit.edges.itertuples(index=False):
        assert pos[e.source] < pos[e.target]
        assert e.tensor in nodes.loc[pos[e.source], "outputs"].split("; ")
        assert e.tensor in nodes.loc[pos[e.target], "inputs"].split("; ")
    # times are the run's profiled layer times, joined by name
    assert nodes["avg_ms"].notna().all()
    assert nodes["avg_ms"].sum() == pytest.approx(run.layers["avg_ms"].sum())
    assert nodes["share"].sum() == pytest.approx(1.0)


def test_fused_layers_mapped_to_their_modules(vit):
    by_name = vit.nodes.set_index("name")
    conv = by_name.loc["[CONVOLUTION]-[aten_ops.convolution.default]-[conv_proj/convolution]_myl0_1"]
    assert (conv["module"], conv["module_source"]) == ("conv_proj", "layer name")
    assert conv["aten_ops"] == "aten_ops.convolution.default" and conv["precision"] == "fp16"
    # a Myelin layer named after what it fused: the module of the tensor it writes
    norm = by_name.loc["__myl_TranConcAddCastMeanSubMulMeanAddSqrtDivMulCastMulAdd_myl0_2"]
    assert (norm["module"], norm["module_source"]) == ("encoder.layers.encoder_layer_0.ln_1", "output tensor")
    assert norm["aten_ops"] == "aten_ops.native_layer_norm.default"
    # a layer whose name and tensors name no module stays unattributed: never guessed from its neighbours
    assert by_name.loc["__myl_FcAdd_myl0_3", "module"] == ""


def test_a_tensor_named_after_the_layer_that_reads_it_names_no_module_of_its_writer():
    """resnet50's fused stem writes ``[MAX]-…-[maxpool/…]_output.1_3``, the input of the layer named after maxpool:
    the stem is not maxpool."""
    g = graph_of("resnet50_fp32")
    by_name = g.nodes.set_index("name")
    stem = by_name.loc["__myl_CorrMulAddRelu_myl0_1"]
    assert "[MAX]-[aten_ops.max_pool2d.default]-[maxpool/" in stem["outputs"]
    assert (stem["module"], stem["module_source"], stem["aten_ops"]) == ("", "", "")
    pool = by_name.loc["[MAX]-[aten_ops.max_pool2d.default]-[maxpool/max_pool2d_default]_myl0_2"]
    assert (pool["module"], pool["module_source"]) == ("maxpool", "layer name")


def test_a_run_without_layer_information_is_drawn_from_its_layer_table():
    g = graph_of("resnet50_fp16")
    assert len(g.nodes) == 73 and set(g.edges["kind"]) == {"order"} and len(g.edges) == 72
    assert g.engines_from_layer_info == ()
    assert any("linked in execution order only" in n for n in g.notes)


def test_pytorch_fallback_subgraphs_sit_between_the_engines():
    run, _ = sample("resnet50_fp16_relu_forced_mbs5")
    g = graph_of("resnet50_fp16_relu_forced_mbs5")
    engines = list(dict.fromkeys(g.nodes["engine"]))
    assert engines == [
        "PyTorch fallback 1",
        "TensorRT engine 1",
        "PyTorch fallback 2",
        "TensorRT engine 2",
        "PyTorch fallback 3",
        "TensorRT engine 3",
        "PyTorch fallback 4",
        "TensorRT engine 4",
        "PyTorch fallback 5",
    ]
    fallback = g.nodes[g.nodes["runtime"] == "pytorch"]
    assert list(fallback["name"]) == [s.name for s in run.segmentation.segments if s.kind == "pytorch"]
    assert fallback["layer_type"].iloc[1] == "PyTorch subgraph (36 ops)"
    handovers = g.edges[g.edges["kind"] == "handover"]
    assert len(handovers) == 8  # one between each neighbouring pair of the nine pieces


def test_many_engines_with_layer_information():
    g = graph_of("resnet18_fp16_relu_forced_mbs1")
    assert len(g.engines_from_layer_info) == 18
    assert (g.nodes["runtime"] == "pytorch").sum() == 17
    assert g.nodes["avg_ms"].notna().all()


def test_collapse_by_module_keeps_times_and_layers(vit):
    depth = engine_groups.default_depth(vit)
    assert depth == 3  # encoder.layers.encoder_layer_<k>
    grouped = engine_groups.collapse(vit, depth)
    assert len(grouped.nodes) < len(vit.nodes)
    assert grouped.nodes["layers"].sum() == 149
    assert grouped.nodes["avg_ms"].sum() == pytest.approx(vit.nodes["avg_ms"].sum())
    assert (grouped.edges["source"] != grouped.edges["target"]).all()
    ids = set(grouped.nodes["node_id"])
    assert set(grouped.edges["source"]) <= ids and set(grouped.edges["target"]) <= ids
    blocks = grouped.nodes[grouped.nodes["name"] == "encoder.layers.encoder_layer_3"]
    assert len(blocks) >= 1 and blocks["layers"].sum() > 1


def test_a_thousand_layer_graph_collapses_and_draws():
    """Eight real engines strung together (1,192 layers, every layer from the vit recording): grouped by module it
    is a graph a page can draw, and the figure holds every node."""
    _, raw = sample("vit_b_16_fp16")
    text = raw[f"{ENGINE}{LAYER_INFO_SUFFIX}"]
    parts = [engine_graph.engine_nodes(text, f"trt_engine_{2 * i}") for i in range(8)]
    big = engine_graph.assemble(parts, [], [])
    assert len(big.nodes) == 1192 and big.nodes["engine"].nunique() == 8
    grouped = engine_groups.collapse(big, engine_groups.default_depth(big))
    assert len(grouped.nodes) < 700 and grouped.nodes["layers"].sum() == 1192
    fig = engine_charts.engine_graph_figure(grouped.nodes, grouped.edges)
    nodes_trace = next(t for t in fig.data if t.name == "layers")
    assert len(nodes_trace.customdata) == len(grouped.nodes)


def test_search_and_details(vit):
    hits = engine_groups.matching(vit.nodes, "encoder_layer_11 ln_2")
    assert hits.sum() >= 1
    assert vit.nodes.loc[hits, "module"].str.contains("encoder_layer_11.ln_2", regex=False).all()
    assert engine_groups.matching(vit.nodes, "").all()
    assert not engine_groups.matching(vit.nodes, "no-such-layer").any()
    details = engine_groups.node_details(vit, "trt_engine_0:1").set_index("field")["value"]
    assert details["PyTorch module"] == "conv_proj"
    assert details["reads from"] == "__myl_MoveConc_myl0_0"
    assert details["feeds"].startswith("__myl_TranConcAddCast")
    assert engine_groups.node_details(vit, "nope").empty


def test_figure_marks_selection_and_search(vit):
    hits = engine_groups.matching(vit.nodes, "conv_proj")
    fig = engine_charts.engine_graph_figure(vit.nodes, vit.edges, highlight=hits, selected="trt_engine_0:1")
    layers = next(t for t in fig.data if t.name == "layers")
    assert list(layers.customdata) == list(vit.nodes["node_id"])
    opacity = list(layers.marker.opacity)
    assert opacity[1] == 1.0 and min(opacity) < 1.0
    assert any(t.name == "selected" for t in fig.data)


def test_a_users_debugger_files():
    files = {p.name: p.read_text() for p in H100.iterdir()}
    g = engine_graph.from_files(files)
    timings = parse_trex_profile((H100 / f"{ENGINE}{EXECUTION_PROFILE_SUFFIX}").read_text())
    assert len(g.nodes) == 36 and g.notes == ()
    times = dict(zip(g.nodes["name"], g.nodes["avg_ms"], strict=True))
    assert times == pytest.approx({t.name: t.avg_ms for t in timings})
    assert g.nodes["segment"].iloc[0] == "trt_engine_0"
    # layer information alone: drawn, untimed, and said
    alone = engine_graph.from_files({f"{ENGINE}{LAYER_INFO_SUFFIX}": files[f"{ENGINE}{LAYER_INFO_SUFFIX}"]})
    assert alone.nodes["avg_ms"].isna().all() and math.isnan(alone.nodes["share"].iloc[0])
    assert any("no execution profile" in n for n in alone.notes)
    # get_layer_info() saved under any name
    saved = engine_graph.from_files({"my_engine.json": files[f"{ENGINE}{LAYER_INFO_SUFFIX}"]})
    assert len(saved.nodes) == 36


@pytest.mark.parametrize(
    ("files", "what"),
    [
        ({"x.json": "{not json"}, "is not JSON"),
        ({"x.json": '{"Bindings": []}'}, "has no Layers list"),
        ({"x.json": '{"Layers": [{"LayerType": "kgen"}]}'}, "has no Name"),
        ({"a_input_profile.trace": "[]"}, "None of the files is layer information"),
    ],
)
def test_bad_files_are_refused_with_a_message(files, what):
    with pytest.raises(engine_graph.EngineFileError) as e:
        engine_graph.from_files(files)
    assert what in e.value.message and e.value.hint


def test_layer_names_only_verbosity():
    g = engine_graph.from_files({"names.json": '{"Layers": ["conv1", "relu1"], "Bindings": []}'})
    assert list(g.nodes["name"]) == ["conv1", "relu1"] and g.edges.empty


def test_engine_summary_per_engine():
    g = graph_of("resnet50_fp16_relu_forced_mbs5")
    summary = engine_groups.engine_summary(g)
    assert len(summary) == 9
    assert summary["layers"].sum() == len(g.nodes)
    assert summary["avg_ms"].sum() == pytest.approx(g.nodes["avg_ms"].sum())
    assert isinstance(summary, pd.DataFrame)
