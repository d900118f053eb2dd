"""Chaos: job processes and workers killed at random points of a 20-job run (issue 15). Every job must end done,
failed with a reason, or cancelled; no run may be lost or stored twice; the store must stay whole. Among them, model
files that must fail with their own reason (issue 25: a .pt2 torch would load for ever, model code that exits).

Real processes on the CPU (eager jobs on a small model), the embedded SQLite queue and the supervisor, which
replaces killed workers and requeues jobs whose queue message a killed worker took with it. Prints its figures
(``pytest -s``): jobs, kills, outcomes, lost, duplicated."""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from test_jobs import file_request, tiny, wait_until

from engine import jobs
from engine.jobs.host import pid_alive
from engine.store import RunStore, is_run_id

pytestmark = pytest.mark.slow

JOBS = 20  # + the bad model files of BAD_FILES
KILLS = {"job process": 5, "worker": 4}
CANCELS = 2
DEADLINE_S = 1800.0  # a cap only a hang reaches: a loaded 2-core machine took 900 s once


def _integrity(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# issue 25: model files that fail their job among the chaos, with what their failure must say (unless a kill
# landed on them first)
BAD_FILES = {
    "sympy.pt2": "too large to compute",  # a .pt2 whose shape expression torch would compute for ever
    "exits7.py": "exited with code 7 during build_model",  # model code that ends its process
}


def _bad_model_files(models: Path) -> None:
    from test_pt2_files import save_plain_files, with_huge_expression

    models.mkdir()
    with_huge_expression(save_plain_files(models.parent), models / "sympy.pt2")
    (models / "exits7.py").write_text(
        "import os\n\ndef build_model():\n    os._exit(7)\n\ndef example_inputs(batch_size):\n    return ()\n"
    )


def test_random_kills_of_job_processes_and_workers_lose_nothing(system, tmp_path, monkeypatch):
    # a fixed seed, so a failure reproduces; CHAOS_SEED=<n> explores other kill schedules
    seed = int(os.environ.get("CHAOS_SEED", "15"))
    rng = random.Random(seed)
    t0 = time.monotonic()
    _bad_model_files(tmp_path / "models")
    monkeypatch.setenv("TRTDASH_MODELS_DIR", str(tmp_path / "models"))  # before the workers start: they inherit it
    system.ensure_workers()
    # 20 distinct requests, some slow enough (a few seconds) for a kill to land mid-run; and 4 identical
    # resubmissions, which must join their job rather than run twice
    requests = [tiny(200 + i, timed_iters=rng.choice([5, 5, 150])) for i in range(JOBS)]
    submitted = [system.submit(r) for r in requests]
    bad = {name: system.submit(file_request(name)) for name in BAD_FILES}
    joined = [system.submit(requests[i]) for i in rng.sample(range(JOBS), 4)]
    assert all(j.joined or j.cached for j in joined)
    ids = [j.job_id for j in submitted] + [j.job_id for j in bad.values()]

    kills: collections.Counter[str] = collections.Counter()
    budget = dict(KILLS)
    cancelled_by_us: set[str] = set()
    deadline = time.monotonic() + DEADLINE_S
    while True:
        current = [system.get(i) for i in ids]
        if all(j.state in jobs.FINAL_STATES for j in current):
            break
        assert time.monotonic() < deadline, [(j.job_id, j.state, j.stage) for j in current if j.active]
        time.sleep(rng.uniform(1.0, 6.0))
        running = [j for j in (system.get(i) for i in ids) if j.state == "running" and j.pid]
        live_workers = [w["pid"] for w in system.workers() if w["alive"]]
        choices = [k for k, left in budget.items() if left and (k == "worker" and live_workers or running)]
        if len(cancelled_by_us) < CANCELS and rng.random() < 0.15:
            queued = [j for j in (system.get(i) for i in ids) if j.active]
            if queued:
                victim = rng.choice(queued)
                system.cancel(victim.job_id)
                cancelled_by_us.add(victim.job_id)
            continue
        if not choices or rng.random() < 0.3:
            continue
        what = rng.choice(choices)
        pid = rng.choice(running).pid if what == "job process" else rng.choice(live_workers)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        budget[what] -= 1
        kills[what] += 1

    outcomes = [system.get(i) for i in ids]
    by_state = collections.Counter(j.state for j in outcomes)
    for j in outcomes:
        assert j.state in jobs.FINAL_STATES
        if j.state == "failed":
            assert j.error and j.hint, j
        if j.state == "cancelled":
            assert j.job_id in cancelled_by_us
    store = RunStore(system.root)
    runs = store.list_runs()
    lost = [j.job_id for j in outcomes if j.state == "done" and not store.exists(j.run_id)]
    per_key = runs["key"].value_counts()
    duplicated = int((per_key - 1).clip(lower=0).sum())
    done_runs = {j.run_id for j in outcomes if j.state == "done"}
    # a job killed after its run was saved but before it reported: the run is kept, the job failed
    orphans = [r for r in runs["run_id"] if r not in done_runs]
    for j in joined:
        assert system.get(j.job_id).state in jobs.FINAL_STATES
    # the store is whole: databases check out, every row has its files and loads, no stray directories
    for db in ("runs.sqlite", "jobs.sqlite", "queue.sqlite"):
        assert _integrity(system.root / db) == "ok", db
    for run_id in runs["run_id"]:
        assert (store.runs_dir / run_id / "result.json").is_file() and store.get(run_id).latency.iters > 0
    strays = [p.name for p in store.runs_dir.iterdir() if not (is_run_id(p.name) and store.exists(p.name))]
    requeues = sum(j.requeues for j in outcomes)
    assert all(pid_alive(p) for p in (w["pid"] for w in system.workers() if w["alive"]))
    print(
        f"\nchaos (seed {seed}): {JOBS} jobs (+{len(joined)} identical resubmissions that joined), "
        f"kills: {kills['job process']} job processes, {kills['worker']} workers; cancelled {len(cancelled_by_us)}; "
        f"outcomes {dict(by_state)}; requeued after a lost message {requeues}; lost {len(lost)}, "
        f"duplicated {duplicated}; runs stored {len(runs)} (of which kept after their job was killed: "
        f"{len(orphans)}); stray files in runs/ {strays}; {time.monotonic() - t0:.0f} s"
    )
    assert lost == [] and duplicated == 0
    for name, job in bad.items():  # failed with their own reason, or with a kill's (or cancelled by us)
        ended = system.get(job.job_id)
        if ended.job_id in cancelled_by_us:
            continue
        assert ended.state == "failed", (name, ended.state)
        assert BAD_FILES[name] in ended.error or "killed" in ended.error or "worker" in ended.error, ended.error
    assert strays == [] or all(p.startswith(".tmp-") for p in strays)  # a killed write's temp dir, swept later
    assert sum(kills.values()) >= 4, f"the run ended before enough kills landed: {dict(kills)}"
    # after the chaos the box still works: the supervisor has a worker that runs the next job
    nxt = system.submit(tiny(299))
    assert wait_until(lambda: (j := system.get(nxt.job_id)).state in jobs.FINAL_STATES and j, 600).state == "done"
