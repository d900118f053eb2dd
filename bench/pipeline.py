"""Time to result through the job queue.

1. A cached request: submit() of a request whose result is already stored, until get() says done
   (goal < 1 s).
2. A fresh CPU eager resnet18 job through the queue (submit, worker, job process, store, get) against
   the same job called in-process with ``runner.execute`` (goal: overhead < 10%). Pairs alternate,
   each with a new seed so nothing is cached, and each starts with the worker's job process warmed up,
   as it is for an interactive user. The ratio is the median over the pairs.

    .venv/bin/python bench/pipeline.py [--pairs 3] [--data-dir DIR]

Uses a temporary data directory unless --data-dir is given. Ends with RESULT lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.jobs import JobSystem  # noqa: E402
from engine.runner import execute  # noqa: E402
from engine.settings.request import RunRequest  # noqa: E402

POLL_S = 0.01


def request(seed: int, timed_iters: int) -> RunRequest:
    return RunRequest.from_dict(
        {
            "device": "cpu",
            "backend": "eager",
            "model": {"source": "resnet18"},
            "measure": {
                "seed": seed,
                "timed_iters": timed_iters,
                "warmup_iters": 10,
                "layer_profile": True,
                "accuracy": False,
            },
        }
    )


def wait_idle_worker(system: JobSystem, timeout_s: float = 120) -> None:
    """Until the CPU worker is idle with its next job process warmed up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ws = [w for w in system.workers() if w["alive"] and "cpu" in w["routes"]]
        if ws and ws[0].get("standby_ready") and not ws[0].get("job_id"):
            return
        time.sleep(0.05)
    raise SystemExit("the CPU worker did not become ready; see workers/cpu.log in the data directory")


def through_queue(system: JobSystem, req: RunRequest) -> tuple[float, float, str]:
    """(seconds from submit to seeing the result, seconds of that outside the worker's job: submit,
    queue wait, hand-off and seeing the result, the run's id). The second is less sensitive to a busy machine."""
    t0, w0 = time.perf_counter(), time.time()
    job = system.submit(req)
    while job.state in ("queued", "running"):
        time.sleep(POLL_S)
        job = system.get(job.job_id)
    elapsed, seen = time.perf_counter() - t0, time.time()
    if job.state != "done":
        raise SystemExit(f"job {job.job_id} {job.state}: {job.error} {job.hint}\n{job.traceback}")
    outside = (job.started_ts or w0) - w0 + seen - (job.finished_ts or seen)
    return elapsed, outside, str(job.run_id)


def in_process(system: JobSystem, req: RunRequest) -> tuple[float, str]:
    t0 = time.perf_counter()
    outcome = execute(req, system.store)
    return time.perf_counter() - t0, outcome.result.run_id


def median_ms(system: JobSystem, run_id: str) -> float:
    """The run's median timed iteration: equal on both paths when the time lost is outside the timed loop
    (a fixed cost of the job process), higher through the queue when something slows every iteration."""
    return system.store.get(run_id).latency.median_ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--timed-iters", type=int, default=100)
    p.add_argument("--data-dir", default=None)
    ns = p.parse_args(argv)
    root = Path(ns.data_dir or tempfile.mkdtemp(prefix="trtdash-bench-"))
    os.environ["TRTDASH_DATA_DIR"] = str(root)
    os.environ.pop("TRTDASH_QUEUE_URL", None)
    system = JobSystem(root)
    system.ensure_workers()
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
        "(ratios mean little on a busy machine)",
        flush=True,
    )
    try:
        # warm this process the way a long-running server is warm: imports, first inference
        in_process(system, request(10_000, 5))
        wait_idle_worker(system)

        ratios = []
        for i in range(ns.pairs):
            wait_idle_worker(system)
            direct, direct_run = in_process(system, request(2 * i + 1, ns.timed_iters))
            wait_idle_worker(system)
            queued, outside, queued_run = through_queue(system, request(2 * i + 2, ns.timed_iters))
            ratios.append(queued / direct)
            print(
                f"pair {i + 1}: in-process {direct:.2f} s, through the queue {queued:.2f} s "
                f"(of which {outside:.3f} s outside the job: submit, queue wait, result seen), "
                f"ratio {queued / direct:.3f}; median iteration {median_ms(system, direct_run):.2f} ms "
                f"in-process, {median_ms(system, queued_run):.2f} ms through the queue",
                flush=True,
            )

        cached_s = []
        for i in range(3):  # requests run through the queue above (fewer than 3 pairs: one of them again)
            t0 = time.perf_counter()
            job = system.submit(request(2 * (i % ns.pairs) + 2, ns.timed_iters))
            while job.state in ("queued", "running"):
                time.sleep(POLL_S)
                job = system.get(job.job_id)
            cached_s.append(time.perf_counter() - t0)
            assert job.cached and job.state == "done", job
        cached = max(cached_s)
        ratio = statistics.median(ratios)
        print(f"cached request answered in {cached * 1000:.1f} ms (worst of 3)")
        print(
            f"queue overhead ratio (median of {len(ratios)} pairs): {ratio:.3f}; "
            f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        print(f"RESULT pipeline_cached seconds={cached:.4f} goal=<1 {'PASS' if cached < 1 else 'FAIL'}")
        print(f"RESULT pipeline_overhead ratio={ratio:.3f} goal=<1.10 {'PASS' if ratio < 1.10 else 'FAIL'}")
    finally:
        system.stop_workers()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
