import gzip
import json
import multiprocessing
import os
import signal
import time

import pytest

from engine.config import RunRequest
from engine.runner import execute
from engine.store import RunNotFound, RunStore

TINY = {"model": {"source": "resnet18", "input_shape": [3, 32, 32]},
        "measure": {"warmup_iters": 1, "timed_iters": 5, "profile_iters": 1}}


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
    assert other.import_samples(tmp_path / "s") == [result.run_id]   # idempotent
    sample = other.get(result.run_id)
    assert sample.is_sample and len(sample.layers) == len(result.layers)
    assert other.find_by_key(result.key) is None    # samples never answer the cache
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
    import engine.store as s

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
    assert any(x.name.startswith(".tmp-") for x in leftovers)   # the interrupted write is visible on disk...
    reopened = RunStore(root)
    assert len(reopened.list_runs()) == 0                         # ...but never as a run
    # a young leftover may be another process's write in progress: kept; an old one is swept
    assert list((root / "runs").iterdir()) == leftovers
    old = time.time() - 3600
    for p in leftovers:
        os.utime(p, (old, old))
    RunStore(root)
    assert list((root / "runs").iterdir()) == []
    with pytest.raises(RunNotFound):
        reopened.get(result.run_id)
