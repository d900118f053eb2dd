"""The two-GPU proof's bookkeeping, on the CPU (issue 15, defect 9): after the together phase, the test asks for
the together phase's request again, pinned to GPU 1, and expects GPU 1's own run. It used to rebuild the request
from ``trt_request``'s defaults (resnet18 b1) while the phase had run resnet50 b32, so nothing answered it.

The job system here is a recording double (the real one needs two GPUs: tests/gpu/test_multi_gpu.py): each
submitted request is "run" on the GPU it is pinned to and answered from a dict by (request, GPU), as the store
answers a pinned request only with a run measured on that GPU."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from bench.multi_gpu import measure_together_vs_alone, resubmit_together


@dataclass
class _Result:
    env: dict
    latency: object


@dataclass
class _Latency:
    median_ms: float


class RecordingSystem:
    """submit / get / workers / store.get, enough for bench.multi_gpu's orchestration."""

    def __init__(self):
        self.runs: dict[tuple[str, int], str] = {}  # (request json, gpu) -> run id
        self.results: dict[str, _Result] = {}
        self.jobs: dict[str, object] = {}
        self.ids = itertools.count()
        self.store = self

    def workers(self):
        return [{"alive": True, "gpu_index": i, "standby_ready": True, "job_id": None} for i in (0, 1)]

    def submit(self, request, gpu=None):
        from engine.jobs import Job

        key = (str(request.to_dict()), gpu)
        cached = key in self.runs
        if not cached:
            run_id = f"run-{next(self.ids)}"
            self.runs[key] = run_id
            self.results[run_id] = _Result({"gpu_index": gpu}, _Latency(2.0 + 0.01 * gpu))
        now = time.time()
        job = Job(
            job_id=f"job-{next(self.ids)}",
            request=request.to_dict(),
            key="k",
            route=f"gpu{gpu}",
            state="done",
            run_id=self.runs[key],
            cached=cached,
            started_ts=now,
            finished_ts=now + 1,
            worker_id=f"h/gpu{gpu}/1",
        )
        self.jobs[job.job_id] = job
        return job

    def get(self, job_id_or_run_id):
        return self.jobs.get(job_id_or_run_id) or self.results[job_id_or_run_id]


def test_the_together_request_is_asked_again_and_answered_by_gpu_1s_own_run():
    system = RecordingSystem()
    figures = measure_together_vs_alone(system, timed_iters=2000, model="resnet50", batch=32, log=lambda s: None)
    assert figures.together_request.model.source == "resnet50" and figures.together_request.model.batch_size == 32
    assert figures.together_request.measure.timed_iters == 2000
    again = resubmit_together(system, figures, 1)
    assert again.cached and again.run_id == figures.together.jobs[1].run_id
    assert again.run_id != figures.together.jobs[0].run_id
