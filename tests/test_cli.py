"""The command line (engine/__main__.py): the JSON a profile prints, the runs it lists, the options it takes, all
from the same code and metadata as the dashboard. The end-to-end CLI run is in test_capabilities_eager_cli.py."""

import json

import pytest

from engine.__main__ import main, profile_json
from engine.result import LAYER_COLUMNS
from engine.runner import Outcome
from engine.settings.knobs import knob_info
from engine.settings.request import all_knobs
from engine.store import RunStore, open_store

RELU_FORCED_MBS1 = "20261124-043616-868ec574"  # samples/: resnet18 fp16 on the H200, layers and a partition


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    return tmp_path / "data"


def test_profile_json_holds_the_layer_table_and_the_segmentation(data):
    run = open_store().get(RELU_FORCED_MBS1)
    doc = json.loads(json.dumps(profile_json(Outcome(run, cached=True))))  # what the CLI prints, read back
    assert doc["cached"] is True and doc["run_id"] == RELU_FORCED_MBS1
    assert len(doc["layers"]) == len(run.layers) == 90
    assert all(list(row) == LAYER_COLUMNS for row in doc["layers"])
    assert [row["name"] for row in doc["layers"]] == list(run.layers["name"])
    assert sum(row["avg_ms"] for row in doc["layers"]) == pytest.approx(run.layers["avg_ms"].sum())
    seg = doc["segmentation"]
    assert seg["total_ops"] == run.segmentation.total_ops and seg["supported_ops"] == run.segmentation.supported_ops
    assert seg["coverage"] == pytest.approx(seg["supported_ops"] / seg["total_ops"]) == pytest.approx(0.809, abs=1e-3)
    assert seg["engine_count"] == run.segmentation.engine_count > 1
    assert seg["pytorch_segment_count"] == run.segmentation.pytorch_segment_count
    assert len(seg["segments"]) == len(run.segmentation.segments) and seg["unsupported_ops"]
    assert [r["min_block_size"] for r in seg["recommendations_in_words"]] == [
        r.min_block_size for r in run.segmentation.recommendations
    ]
    assert all("min_block_size = " in r["text"] and "**" not in r["text"] for r in seg["recommendations_in_words"])
    assert doc["timing"]["e2e_median_ms"] == run.latency.median_ms


def test_runs_on_a_fresh_data_directory_lists_what_the_dashboard_lists(data, capsys):
    from ui.store import store_at

    assert main(["runs"]) == 0
    printed = capsys.readouterr().out
    dashboard = store_at(str(data)).list_runs()  # the Runs/History page's store, samples imported
    assert len(dashboard) > 40 and dashboard["is_sample"].all()
    assert all(run_id in printed for run_id in dashboard["run_id"])
    assert len(RunStore(data).list_runs()) == len(dashboard)  # the CLI imported them into the same directory


def test_an_empty_samples_directory_leaves_the_list_empty(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "none"))
    assert main(["runs"]) == 0
    assert "no runs stored yet" in capsys.readouterr().out


def test_option_values_come_from_the_knob_metadata(capsys):
    with pytest.raises(SystemExit):
        main(["profile", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    knobs = dict(all_knobs())
    for dotted, flag in (
        ("backend", "--backend"),
        ("device", "--device"),
        ("mode", "--mode"),
        ("compile.precision", "--precision"),
        ("compile.quantization", "--quantization"),
    ):
        assert f"{flag} {{{','.join(knob_info(knobs[dotted]).choices)}}}" in usage
    assert "--optimization-level {none,0,1,2,3,4,5}" in usage and "--pretrained {true,false}" in usage


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--backend", "onnx"], "backend: 'onnx' is not one of eager, tensorrt"),
        (["--device", "tpu"], "device: 'tpu' is not one of auto, cpu, cuda"),
        (["--model", "resnt18"], "model.source: unknown model 'resnt18'; did you mean resnet18"),
    ],
)
def test_a_wrong_value_is_named_by_its_field_and_nothing_runs(argv, said, data, capsys):
    assert main(["profile", "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert len(RunStore(data).list_runs()) == 0


def test_the_cli_and_a_profile_run_need_no_plotly(tmp_path):
    """plotly draws charts and reports only: the CLI (which registers ``report`` beside ``profile``) and a
    profile run must start without it (the H200 kit has none; the GPU CLI test failed on exactly this)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import runpy, sys; sys.modules['plotly'] = None; "
        "sys.argv = ['engine', 'profile', '--model', 'resnet18', '--batch', '1', '--warmup-iters', '1', "
        "'--timed-iters', '5', '--profile-iters', '1', '--accuracy', 'false', '--json']; "
        "runpy.run_module('engine', run_name='__main__')"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "TRTDASH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(done.stdout)
    assert r["request"]["model"]["source"] == "resnet18" and r["layers"]
    assert "plotly" not in done.stderr
