"""The spread of a study chart drawn one way (engine.charts.theme: ``band_and_median``, ``spread``), and the sweep,
batch-sweep and ladder figures built with it from the bundled H200 samples (samples/)."""

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from engine.charts import batch as batch_charts
from engine.charts import ladder as ladder_charts
from engine.charts import sweeps as sweep_charts
from engine.charts.theme import BAND_ALPHA, band_and_median, rgba, spread
from engine.store import RunStore
from engine.studies import batch_sweep, ladder, sweeps

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FRAME = pd.DataFrame(
    {
        "batch": [1, 8, 32],
        "p10_ms": [0.9, 1.8, 5.5],
        "median_ms": [1.0, 2.0, 6.0],
        "p90_ms": [1.3, 2.1, 7.0],
        "run_id": ["r1", "r8", "r32"],
    }
)


def _band(**extra):
    return band_and_median(
        FRAME["batch"],
        FRAME["p10_ms"],
        FRAME["p90_ms"],
        FRAME["median_ms"],
        colour="#1F77B4",
        label="static",
        customdata=FRAME[["p10_ms", "p90_ms", "run_id"]].to_numpy(),
        hovertemplate="batch %{x}<br>median %{y:.3f} ms<br>%{customdata[2]}<extra></extra>",
        **extra,
    )


def test_the_band_is_the_polygon_between_its_edges_under_the_median_line():
    high, low, median = _band()
    fig = go.Figure([high, low, median])
    # plotly fills "tonexty" from the low edge back to the trace before it: the polygon runs along the high edge
    # and back along the low one, so the high edge must come first
    assert high.fill is None and low.fill == "tonexty"
    polygon = list(zip(high.x, high.y, strict=True)) + list(zip(low.x[::-1], low.y[::-1], strict=True))
    assert polygon == [(1, 1.3), (8, 2.1), (32, 7.0), (32, 5.5), (8, 1.8), (1, 0.9)]
    assert low.fillcolor == rgba("#1F77B4", BAND_ALPHA) == f"rgba(31,119,180,{BAND_ALPHA})"
    # the edges are invisible, say nothing on hover and sit in the series' legend group with one legend entry
    for edge in (high, low):
        assert edge.line.width == 0 and edge.hoverinfo == "skip" and edge.legendgroup == "static"
        assert edge.mode == "lines"
    assert high.showlegend is False and low.name == "static p10-p90"
    assert [t.name for t in fig.data if t.showlegend is not False] == ["static p10-p90", "static"]
    # the median line over it: the series' colour, markers, and the hover that names the spread
    assert list(median.x) == [1, 8, 32] and list(median.y) == [1.0, 2.0, 6.0]
    assert median.mode == "lines+markers" and median.line.color == "#1F77B4" and median.marker.size == 9
    assert median.name == median.legendgroup == "static"
    assert median.hovertemplate == "batch %{x}<br>median %{y:.3f} ms<br>%{customdata[2]}<extra></extra>"
    assert [list(row) for row in median.customdata] == [[0.9, 1.3, "r1"], [1.8, 2.1, "r8"], [5.5, 7.0, "r32"]]
    assert median.error_y.array is None  # bars only where asked for


def test_a_named_band_and_error_bars_on_the_median():
    high, low, median = _band(
        band="90% CI", error_y=spread(FRAME["median_ms"], FRAME["p10_ms"], FRAME["p90_ms"], thickness=1.5)
    )
    assert low.name == "static 90% CI"
    bars = median.error_y
    assert bars.type == "data" and bars.symmetric is False and bars.thickness == 1.5
    # the bars reach from the low to the high figure around each median
    assert [m + up for m, up in zip(median.y, bars.array, strict=True)] == pytest.approx(list(FRAME["p90_ms"]))
    assert [m - down for m, down in zip(median.y, bars.arrayminus, strict=True)] == pytest.approx(list(FRAME["p10_ms"]))


# -- the figures from the bundled samples: what each trace is, as the figures drew them before the helper ------
def _shape(fig: go.Figure) -> list[tuple]:
    """Per trace: type, name, legend group, mode, fill, showlegend, whether it has error bars."""
    keys = ("type", "name", "legendgroup", "mode", "fill", "showlegend")
    return [(*(t.get(k) for k in keys), "error_y" in t) for t in (trace.to_plotly_json() for trace in fig.data)]


def _spread_shape(series: str, median_bars: bool) -> list[tuple]:
    """What ``band_and_median`` adds for one series: the high edge, the low edge filled to it, the median line."""
    return [
        ("scatter", None, series, "lines", None, False, False),
        ("scatter", f"{series} p10-p90", series, "lines", "tonexty", None, False),
        ("scatter", series, series, "lines+markers", None, None, median_bars),
    ]


# the bundled sweeps are judged on the CUDA-graph replay (every run captured one; their GPU times are kernel sums
# stored before busy time): the judged figure with its p10-p90 bars, end-to-end dashed with its band beside it
SWEEP = [
    *_spread_shape("end-to-end (not judged)", median_bars=False),
    ("scatter", "CUDA-graph replay (judged)", "CUDA-graph replay", "lines+markers", None, None, True),
    ("scatter", "repeated runs (CUDA-graph replay)", None, "markers", None, None, False),
]
LADDER = [
    ("bar", "CUDA-graph replay (judged)", None, None, None, None, True),
    ("scatter", "end-to-end median (not judged)", None, "markers", None, None, True),
]
# the bundled batch sweep is judged end to end (no replay of the dynamic engine, its GPU times unfit): one band each
BATCH = [trace for label in ("static engine per batch", "one dynamic engine") for trace in _spread_shape(label, False)]


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    if not any(SAMPLES.glob("*.json.gz")):
        pytest.skip("no bundled samples in samples/")
    store = RunStore(tmp_path_factory.mktemp("bands") / "data")
    store.import_samples(SAMPLES)
    return store


def test_the_sweep_figures_from_the_samples_keep_their_traces(sample_store):
    listed = sweeps.list_sweeps(sample_store)
    knob_sweeps = listed[listed["knobs"] != batch_sweep.BATCH_KNOB]["sweep_id"]
    assert len(knob_sweeps) == 4  # resnet50 and vit_b_16: optimization_level and min_block_size
    for sweep_id in knob_sweeps:
        sweep = sweeps.load_sweep(sample_store, sweep_id)
        (knob,) = sweep.knobs
        fig = sweep_charts.latency_vs_knob(sweep.table, knob)
        assert _shape(fig) == SWEEP, sweep_id
        high, low, median, judged = fig.data[:4]
        first = sweep.table[sweep.table["repeat"] == 0]
        assert list(high.y) == list(first["p90_ms"]) and list(low.y) == list(first["p10_ms"])
        assert list(median.y) == list(first["median_ms"]) and low.fillcolor == rgba(median.line.color, BAND_ALPHA)
        assert "median CI" in median.hovertemplate and list(median.customdata[:, 4]) == list(first["run_id"])
        # the judged figure's bars are its own spread: the replay's p10-p90
        assert list(judged.y) == pytest.approx(list(first["graph_ms"]))
        assert list(judged.y + judged.error_y.array) == pytest.approx(list(first["graph_high_ms"]))
        assert list(judged.y - judged.error_y.arrayminus) == pytest.approx(list(first["graph_low_ms"]))


def test_a_second_knob_gives_each_series_its_own_band_colour_and_legend_group(sample_store):
    sweep = sweeps.load_sweep(sample_store, "resnet50_fp16_optimization_level_h200")
    table = sweep.table[sweep.table["repeat"] == 0]
    two = pd.concat([table.assign(series="fp16"), table.assign(series="fp32")], ignore_index=True)
    fig = sweep_charts.latency_vs_knob(two, sweep.knobs[0])
    bands = [t for t in fig.data if t.fill == "tonexty"]
    assert [b.name for b in bands] == ["fp16 p10-p90", "fp32 p10-p90"]
    assert [b.legendgroup for b in bands] == ["fp16", "fp32"] and bands[0].fillcolor != bands[1].fillcolor
    medians = [t for t in fig.data if t.name in ("fp16", "fp32")]
    assert [rgba(m.line.color, BAND_ALPHA) for m in medians] == [b.fillcolor for b in bands]


def test_the_ladder_figures_from_the_samples_keep_their_traces(sample_store):
    ladders = ladder.list_ladders(sample_store)
    assert sorted(ladders) == ["resnet50_b8_h200", "vit_b_16_b8_h200"]
    for ladder_id in ladders:
        table = ladder.ladder_table(ladder.load_ladder(sample_store, ladder_id))
        fig = ladder_charts.precision_ladder(table)
        assert _shape(fig) == LADDER, ladder_id
        bars = fig.data[0]
        have = table["judged_ms"].notna().to_numpy()  # the broken FP8 rung of resnet50 has no replay
        assert list(bars.y[have]) == pytest.approx(list(table["graph_ms"][have]))
        assert list((bars.y + bars.error_y.array)[have]) == pytest.approx(list(table["judged_high_ms"][have]))
        assert list((bars.y - bars.error_y.arrayminus)[have]) == pytest.approx(list(table["judged_low_ms"][have]))


def test_the_batch_figures_from_the_sample_keep_their_traces(sample_store):
    sweep = batch_sweep.load_batch_sweep(sample_store, "resnet50_fp16_batch_h200")
    v = batch_sweep.verdict(sweep, capacity_bytes=141 * 2**30)
    latency = batch_charts.latency_vs_batch(sweep.table)
    throughput = batch_charts.throughput_vs_batch(sweep.table, v.knees)
    assert _shape(latency) == BATCH
    # a knee reached adds its marker to its strategy's group
    knees = [(f"knee ({batch_charts.STRATEGY_LABELS[s]})", s) for s, k in v.knees.items() if k.reached]
    assert [t.name for t in throughput.data if t.name and t.name.startswith("knee")] == [k for k, _ in knees]
    assert [s for s in _shape(throughput) if not (s[1] or "").startswith("knee")] == BATCH
    static = sweep.table[sweep.table["strategy"] == "static"].sort_values("batch_size")
    high, low, median = throughput.data[:3]
    assert list(high.y) == pytest.approx(list(static["throughput_high_per_s"]))
    assert list(low.y) == pytest.approx(list(static["throughput_low_per_s"]))
    assert list(median.y) == list(static["throughput_per_s"]) and list(median.x) == list(static["batch_size"])
