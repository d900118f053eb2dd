import gzip
import json
import multiprocessing
import os
import signal
import time

import pytest

from engine.runner import execute
from engine.settings.request import RunRequest
from engine.store import RunNotFound, RunStore

TINY = {
    "model": {"source": "resnet18", "input_shape": [3, 32, 32]},
    "measure": {"warmup_iters": 1, "timed_iters": 5, "profile_iters": 1},
}


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("data"))
    outcome = execute(RunRequest.from_dict(TINY), store)
    return store, outcome.result


def test_round_trip_keeps_every_field_and_the_layer_table(stored_run):
    store, result = stored_run
    loaded = store.get(result.run_id)
    assert loaded.to_dict() == result.to_dict()
    assert loaded.layers["name"].tolist() == result.layers["name"].tolist()
    assert loaded.layers["avg_ms"].tolist() == pytest.approx(result.layers["avg_ms"].tolist(), rel=1e-13)
    assert store.find_by_key(result.key).run_id == result.run_id
    row = store.list_runs().iloc[0]
    assert row["model"] == "resnet18" and row["backend"] == "eager"
    assert row["e2e_median_ms"] == pytest.approx(result.latency.median_ms)


def test_export_import_and_samples(stored_run, tmp_path):
    store, result = stored_run
    blob = store.export_run(result.run_id)
    doc = json.loads(blob)
    assert doc["format"] == "trt-dashboard-run" and "eager_module_profile.csv" in doc["raw_files"]
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "x.json.gz").write_bytes(gzip.compress(blob))
    other = RunStore(tmp_path / "other")
    assert other.import_samples(tmp_path / "s") == [result.run_id]
    assert other.import_samples(tmp_path / "s") == [result.run_id]  # idempotent
    sample = other.get(result.run_id)
    assert sample.is_sample and len(sample.layers) == len(result.layers)
    assert other.find_by_key(result.key) is None  # samples never answer the cache
    assert other.list_runs(is_sample=True)["run_id"].tolist() == [result.run_id]
    with pytest.raises(ValueError, match="not a run export"):
        other.import_run(b'{"x": 1}')


def test_delete_filters_baseline(stored_run, tmp_path):
    _, result = stored_run
    store = RunStore(tmp_path / "d")
    store.import_run(RunStore(stored_run[0].root).export_run(result.run_id))
    store.set_baseline(result.run_id)
    assert store.list_runs()["is_baseline"].tolist() == [True]
    assert len(store.list_runs(model="resnet50")) == 0
    assert len(store.list_runs(model=["resnet18", "resnet50"], precision="fp32")) == 1
    store.delete(result.run_id)
    assert not (store.runs_dir / result.run_id).exists()
    with pytest.raises(RunNotFound, match="deleted or the link is wrong"):
        store.get(result.run_id)
    with pytest.raises(RunNotFound):
        store.delete(result.run_id)


def _save_slowly_then_die(root, blob, started):
    """Child: begin saving a run, get killed mid-write by the parent."""
    import engine.store.runs as s

    store = s.RunStore(root)
    real_copy = s.shutil.copyfile

    def slow_copy(a, b):
        started.set()
        time.sleep(30)
        return real_copy(a, b)

    s.shutil.copyfile = slow_copy
    doc = json.loads(blob)
    from engine.result import RunResult

    result = RunResult.from_dict(doc["result"])
    src = os.path.join(root, "raw.bin")
    with open(src, "wb") as f:
        f.write(b"x" * 1000)
    store.save(result, {"raw.bin": __import__("pathlib").Path(src)})


def test_a_crash_mid_write_leaves_nothing_half_written(stored_run, tmp_path):
    store, result = stored_run
    blob = store.export_run(result.run_id)
    root = tmp_path / "crash"
    RunStore(root)
    started = multiprocessing.get_context("fork").Event()
    p = multiprocessing.get_context("fork").Process(target=_save_slowly_then_die, args=(str(root), blob, started))
    p.start()
    assert started.wait(20)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    leftovers = list((root / "runs").iterdir())
    assert any(x.name.startswith(".tmp-") for x in leftovers)  # the interrupted write is visible on disk...
    reopened = RunStore(root)
    assert len(reopened.list_runs()) == 0  # ...but never as a run
    # a young leftover may be another process's write in progress: kept; an old one is swept
    assert list((root / "runs").iterdir()) == leftovers
    old = time.time() - 3600
    for p in leftovers:
        os.utime(p, (old, old))
    RunStore(root)
    assert list((root / "runs").iterdir()) == []
    with pytest.raises(RunNotFound):
        reopened.get(result.run_id)


def test_a_run_document_names_no_path_and_the_sweep_spares_stored_runs(stored_run, tmp_path):
    """Issue 15, defect 7: import_run trusted the run id inside the document (``.tmp-/../../x`` wrote outside the
    data directory) and the orphan sweep deleted committed runs whose id started with ``.tmp-``."""
    store, result = stored_run
    doc = json.loads(store.export_run(result.run_id))
    root = tmp_path / "victim" / "data"
    target = RunStore(root)
    for bad in (".tmp-/../../x", "../../escaped", ".tmp-20260101-000000-deadbeef-abcdef", "x" * 300, 7, None):
        evil = dict(doc, result={**doc["result"], "run_id": bad})
        with pytest.raises(ValueError, match="is not a run id"):
            target.import_run(json.dumps(evil).encode())
    assert sorted(p.name for p in (tmp_path / "victim").rglob("*") if p.is_file()) == ["runs.sqlite"] + sorted(
        p.name for p in root.glob("runs.sqlite-*")
    )  # nothing was written anywhere else
    # raw file names from a document become plain names inside the run's raw/
    sneaky = dict(doc, raw_files={"../../../outside.txt": "x", "..": "y", ".hidden": "z"})
    run_id = target.import_run(json.dumps(sneaky).encode())
    raw = sorted(p.name for p in (target.runs_dir / run_id / "raw").iterdir())
    assert raw == ["_..", "_.hidden", "outside.txt"] and not (tmp_path / "outside.txt").exists()
    # the sweep: only .tmp-<run id>-<6 hex> and run-id folders are its business; a stored run never is
    stray = target.runs_dir / ".tmp-not-ours"
    stray.mkdir()
    old = time.time() - 3600
    for p in (stray, target.runs_dir / run_id):
        os.utime(p, (old, old))
    RunStore(root)
    assert target.get(run_id).run_id == run_id and stray.exists()
    # a run id from a link never reaches the file system
    for bad in ("../runs.sqlite", ".tmp-x", "[Session expired](https://example.com)"):
        with pytest.raises(RunNotFound):
            target.get(bad)
        with pytest.raises(RunNotFound):
            target.delete(bad)
        assert not target.exists(bad)
    with pytest.raises(FileNotFoundError):
        target.artifact_path(run_id, "../../runs.sqlite")
    assert (root / "runs.sqlite").exists()


def test_calibration_paths_stay_inside_their_directory(tmp_path):
    """Issue 15, defect 7: a symlink inside the calibration directory led out of it."""
    from engine.errors import ConfigError
    from engine.quantization.calibration import calibration_path

    calib = tmp_path / "calibration"
    (calib / "images").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "data.pt").write_bytes(b"x")
    (calib / "ok.pt").write_bytes(b"x")
    (calib / "link.pt").symlink_to(outside / "data.pt")
    (calib / "linkdir").symlink_to(outside)
    assert calibration_path("file:ok.pt", calib) == calib / "ok.pt"
    assert calibration_path("dir:images", calib) == calib / "images"
    for source in ("file:link.pt", "dir:linkdir", "file:linkdir/data.pt", "file:../secret/data.pt"):
        with pytest.raises(ConfigError, match="inside the calibration data directory") as e:
            calibration_path(source, calib)
        assert e.value.field == "compile.calibration_data"


def test_runs_record_who_submitted_them_and_old_stores_read_unknown(tmp_path):
    import sqlite3

    from engine.result import RunResult

    root = tmp_path / "old"
    RunStore(root)
    with sqlite3.connect(root / "runs.sqlite") as conn:  # a store from before the column existed
        conn.execute("ALTER TABLE runs DROP COLUMN submitted_by")
    store = RunStore(root)
    run = execute(RunRequest.from_dict(TINY), store, submitted_by="alice").result
    assert store.get(run.run_id).submitted_by == "alice"
    assert store.list_runs()["submitted_by"].tolist() == ["alice"]
    old = RunResult.from_dict({k: v for k, v in run.to_dict().items() if k != "submitted_by"})
    assert old.submitted_by == ""  # a run stored before: shown as unknown
