"""Figure builders on real data: a measured eager CPU run and the TensorRT files recorded on an H100."""

import pandas as pd
import pytest

from engine.charts import layer_tables, theme
from engine.charts import layers as layer_charts
from engine.charts import profile as stage_charts
from engine.charts import segmentation as segment_charts
from engine.result import FUSED
from engine.store import RunStore
from tests.fixture_runs import dryrun_segmentation, eager_run, trt_layers


@pytest.fixture(scope="module")
def eager(tmp_path_factory):
    return eager_run(RunStore(tmp_path_factory.mktemp("charts")))


@pytest.fixture
def trt(fixtures_dir):
    return trt_layers(fixtures_dir)


@pytest.fixture
def big(trt):
    """1,260 layers: the real engine's rows repeated 35 times in execution order (a deep network's size)."""
    df = pd.concat([trt] * 35, ignore_index=True)
    df["name"] = [f"{n}#{i // len(trt)}" for i, n in enumerate(df["name"])]
    df["order"] = range(len(df))
    return df


def bar_total(fig):
    return sum(sum(t.x) for t in fig.data)


def test_top_layers_keeps_slowest_and_folds_the_rest(trt):
    fig = layer_charts.top_layers_bar(trt, n=5)
    top = trt.sort_values("avg_ms", ascending=False).head(5)
    shown = {y: x for t in fig.data for y, x in zip(t.y, t.x, strict=True)}
    assert len(shown) == 6
    assert sorted(v for k, v in shown.items() if not k.startswith("other")) == sorted(top["avg_ms"])
    assert shown["other (31 layers)"] == pytest.approx(trt["avg_ms"].sum() - top["avg_ms"].sum())
    # slowest on top: the category axis lists bottom to top
    assert fig.layout.yaxis.categoryarray[-1].startswith(f"{top['order'].iloc[0]}: ")
    assert fig.layout.xaxis.title.text == "time per inference (ms)"
    for t in fig.data:
        assert t.marker.color == theme.layer_type_colour(t.name)


def test_layer_type_colours_are_stable_and_other_is_grey():
    assert theme.layer_type_colour("Conv2d") == theme.layer_type_colour("Conv2d")
    assert theme.layer_type_colour("other") == theme.OTHER_COLOUR
    assert theme.RUNTIME_COLOURS["tensorrt"] != theme.RUNTIME_COLOURS["pytorch"]


def test_treemap_types_sum_to_layer_time_and_tail_is_folded(big):
    fig = layer_charts.layer_type_treemap(big, max_leaves=50)
    tm = fig.data[0]
    by_type = layer_tables.time_by(big, "layer_type").set_index("layer_type")["total_ms"]
    roots = {lbl: v for lbl, v, p in zip(tm.labels, tm.values, tm.parents, strict=True) if p == ""}
    assert roots.keys() == set(by_type.index)
    for t, v in roots.items():
        assert v == pytest.approx(by_type[t])
    leaves = [i for i in tm.ids if i.startswith("layer/")]
    assert len(leaves) == 50
    assert any(lbl.startswith("other (") for lbl in tm.labels)


def test_timeline_is_a_waterfall_and_groups_beyond_max_bars(trt, big):
    fig = layer_charts.execution_timeline(trt)
    rows = layer_tables.timeline_rows(trt)
    assert len(rows) == len(trt)
    assert rows["start_ms"].iloc[0] == 0
    assert rows["start_ms"].iloc[1:].values == pytest.approx((rows["start_ms"] + rows["avg_ms"]).iloc[:-1].values)
    assert bar_total(fig) == pytest.approx(trt["avg_ms"].sum())
    grouped = layer_tables.timeline_rows(big, max_bars=100)
    assert len(grouped) <= 100
    assert grouped["avg_ms"].sum() == pytest.approx(big["avg_ms"].sum())
    assert "grouped" in layer_charts.execution_timeline(big, max_bars=100).layout.title.text


def test_timeline_colours_by_runtime_when_a_run_mixes_tensorrt_and_pytorch(trt, eager):
    mixed = pd.concat([trt, eager.layers], ignore_index=True)
    mixed["order"] = range(len(mixed))
    fig = layer_charts.execution_timeline(mixed)
    assert {t.name for t in fig.data} == {"TensorRT", "PyTorch"}
    assert {t.marker.color for t in fig.data} == set(theme.RUNTIME_COLOURS.values())


def test_precision_share_of_an_fp16_engine(trt):
    fig = layer_charts.precision_share_bar(trt)
    table = layer_tables.time_by(trt, "precision")
    assert table["share"].sum() == pytest.approx(1.0)
    fp16 = table.set_index("precision").loc["fp16"]
    assert fp16["share"] > 0.9  # the engine was built from an fp16 model
    assert list(fig.data[0].y) == list(table["precision"])


def test_module_rollup_adds_up_and_keeps_fused_layers_apart(trt, eager):
    tree = layer_tables.module_rollup(eager.layers).set_index("id")
    assert tree.loc["model", "total_ms"] == pytest.approx(eager.layers["avg_ms"].sum())
    layer1 = eager.layers[eager.layers["module_path"].str.startswith("layer1.")]
    assert tree.loc["model/layer1", "total_ms"] == pytest.approx(layer1["avg_ms"].sum())
    assert tree.loc["model/layer1.0", "parent"] == "model/layer1"
    assert tree.loc["model/layer1.0", "label"] == "layer1.0" and tree.loc["model/layer1.0.conv1", "label"] == "conv1"

    trt_tree = layer_tables.module_rollup(trt).set_index("id")
    fused = trt[trt["module_path"] == FUSED]
    assert trt_tree.loc[f"model/{FUSED}", "total_ms"] == pytest.approx(fused["avg_ms"].sum())
    assert trt_tree.loc[f"model/{FUSED}", "layers"] == len(fused)
    assert "model/maxpool" in trt_tree.index
    assert layer_charts.module_tree(trt).data[0].type == "icicle"


def test_charts_survive_empty_and_partial_tables(eager):
    for fig in (
        layer_charts.top_layers_bar(pd.DataFrame()),
        layer_charts.layer_type_treemap(pd.DataFrame()),
        layer_charts.execution_timeline(pd.DataFrame()),
        layer_charts.precision_share_bar(pd.DataFrame()),
        layer_charts.module_tree(pd.DataFrame()),
    ):
        assert not fig.data
        assert fig.layout.annotations[0].text.startswith(("No per-layer profile", "This run's layers carry no"))
    partial = eager.layers[["name", "avg_ms"]]  # what an older export might hold
    fig = layer_charts.top_layers_bar(partial, 3)
    assert len({y for t in fig.data for y in t.y}) == 4
    assert layer_tables.module_rollup(partial).empty
    assert layer_charts.precision_share_bar(partial).data[0].y == (layer_tables.UNKNOWN,)


def test_search_layers(trt):
    assert len(layer_tables.search_layers(trt, "MAXPOOL")) == 1
    assert len(layer_tables.search_layers(trt, "")) == len(trt)
    assert layer_tables.search_layers(trt, "no such layer").empty


def test_segment_strip_and_engine_ops_from_dryrun(fixtures_dir):
    seg = dryrun_segmentation(fixtures_dir)
    strip = segment_charts.segment_strip(seg)
    trt_trace = next(t for t in strip.data if t.name == "TensorRT")
    assert len(trt_trace.x) == 18 and sum(trt_trace.x) == 72
    assert list(trt_trace.base[:3]) == [0, 3, 7]  # engines follow each other in graph order
    assert trt_trace.marker.color == theme.RUNTIME_COLOURS["tensorrt"]
    ops = segment_charts.ops_per_engine_bar(seg, min_block_size=1)
    assert list(ops.data[0].y) == [s.op_count for s in seg.segments]
    assert ops.layout.shapes[0].y0 == 1
    unsupported = segment_charts.unsupported_ops_bar(seg)
    assert unsupported.data[0].y == ("torch.ops.aten.relu.default",) and unsupported.data[0].x == (17,)


def test_segmentation_without_engines_says_so(fixtures_dir):
    seg = dryrun_segmentation(fixtures_dir, "dryrun_resnet18_fp16_mbs100.txt")
    assert "not partitioned" in segment_charts.segment_strip(seg).layout.annotations[0].text
    assert "No TensorRT engine" in segment_charts.ops_per_engine_bar(seg).layout.annotations[0].text
    assert "Every operator is supported" in segment_charts.unsupported_ops_bar(seg).layout.annotations[0].text
    assert segment_charts.segments_table(None).empty


def test_stage_bar_does_not_count_nested_compile_stages_twice():
    # stage timings of the bundled resnet18 fp16 relu-forced sample (H200), as the TensorRT backend stores them
    stages = {
        "build_s": 9.968823181999824,
        "compile_s": 10.733107854999957,
        "export_s": 0.17668991300001835,
        "first_inference_s": 0.02365701900004069,
        "partition_s": 0.054692451999983405,
    }
    from engine.stage_times import setup_total_s

    assert setup_total_s(stages) == pytest.approx(10.733107854999957 + 0.17668991300001835 + 0.02365701900004069)
    fig = stage_charts.stage_bar(stages)
    setup = sum(x for t in fig.data for y, x in zip(t.y, t.x, strict=True) if y == "set-up")
    inside = sum(x for t in fig.data for y, x in zip(t.y, t.x, strict=True) if y == "inside compile")
    assert setup == pytest.approx(setup_total_s(stages))
    assert inside == pytest.approx(stages["compile_s"])
    assert setup_total_s({"prepare_s": 0.5}) == 0.5  # eager: one stage
    assert "no stage timings" in stage_charts.stage_bar({}).layout.annotations[0].text
