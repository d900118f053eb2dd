"""Two GPUs in one box: is a TensorRT job timed the same while another job runs on the other GPU?

Through the job system, the way the dashboard runs jobs (one worker per GPU pinned with
CUDA_VISIBLE_DEVICES, each job in a fresh process): the same resnet18 fp16 TensorRT job runs alone on
each GPU, then one per GPU submitted at once, then alone on each GPU again (other seeds, so nothing is
answered from the store). Before each step every GPU worker is idle with its next job process warmed up.
Prints each job's e2e median, the together/alone ratio per GPU (alone = mean of the two alone medians)
and the run-to-run spread of the alone medians, which is the noise the ratio is read against.

    python bench/multi_gpu.py [--timed-iters 10000] [--model resnet18 --batch 1] [--data-dir DIR]

Uses a temporary data directory unless --data-dir is given. Ends with
``RESULT multi_gpu together_over_alone=<max ratio> goal=<=1.10 PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import jobs  # noqa: E402
from engine.jobs import Job, JobSystem  # noqa: E402
from engine.settings.request import RunRequest  # noqa: E402

GOAL_MAX_RATIO = 1.10
GPU_JOB_S = 300.0  # one TensorRT job in a fresh process: compile ~5 s, timing a few seconds
TIMED_ITERS = 10_000  # ~3.5 s of timing at 0.35 ms: long enough for the two timings to overlap
POLL_S = 0.1
# NVLink multicast stays off on the shared box; the workers and their job processes inherit these
MULTICAST_OFF = ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS")


def trt_request(seed: int, timed_iters: int = TIMED_ITERS, model: str = "resnet18", batch: int = 1) -> RunRequest:
    """An fp16 TensorRT job, timing only (no layer profile, accuracy or eager baseline). resnet18 at batch 1
    (0.35 ms) is launch-bound: its fresh-process medians swing by up to 2x with the host side; resnet50 at
    batch 32 (~2 ms) is GPU-bound, so what another GPU's job does to it is not hidden in host noise."""
    return RunRequest.from_dict(
        {
            "backend": "tensorrt",
            "device": "cuda",
            "model": {"source": model, "batch_size": batch},
            "compile": {"precision": "fp16"},
            "measure": {
                "warmup_iters": 200,
                "timed_iters": timed_iters,
                "seed": seed,
                "layer_profile": False,
                "accuracy": False,
                "compare_eager": False,
            },
        }
    )


def gpu_worker(system: JobSystem, index: int) -> dict | None:
    return next((w for w in system.workers() if w["alive"] and w.get("gpu_index") == index), None)


def wait_gpu_workers_idle(system: JobSystem, gpus: tuple[int, ...], timeout_s: float = GPU_JOB_S) -> None:
    """Until each GPU's worker is registered, runs no job and has its next job process warmed up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ws = [gpu_worker(system, i) for i in gpus]
        if all(w and w.get("standby_ready") and not w.get("job_id") for w in ws):
            return
        time.sleep(POLL_S)
    raise RuntimeError(
        f"GPU workers {gpus} not idle and warmed up within {timeout_s:.0f} s; see workers/gpu<i>.log in {system.root}"
    )


def environ_of(pid: int) -> dict[str, str]:
    """The environment a process started with (Linux /proc)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def multicast_settings_lost(pid: int) -> dict[str, tuple[str, str | None]]:
    """NVLink-multicast settings of this process that ``pid`` does not have: name -> (ours, theirs)."""
    theirs = environ_of(pid)
    return {
        k: (os.environ[k], theirs.get(k)) for k in MULTICAST_OFF if k in os.environ and theirs.get(k) != os.environ[k]
    }


@dataclass
class Watched:
    """Jobs followed to the end, with when each was first and last seen in each stage (epoch s)."""

    jobs: list[Job]
    stages: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def stage_overlap_s(self, stage: str) -> float:
        """Seconds during which every job was in ``stage`` at once (<= 0: never)."""
        spans = [self.stages.get(j.job_id, {}).get(stage) for j in self.jobs]
        if not all(spans):
            return 0.0
        return min(s[1] for s in spans if s) - max(s[0] for s in spans if s)

    @property
    def overlap_s(self) -> float:
        """Seconds during which every job was running at once (started to finished; <= 0: never)."""
        return min(j.finished_ts or 0.0 for j in self.jobs) - max(j.started_ts or 0.0 for j in self.jobs)


def watch(system: JobSystem, job_ids: list[str], timeout_s: float = GPU_JOB_S) -> Watched:
    """Poll jobs until all are final; ``get`` also fails a job whose worker died."""
    stages: dict[str, dict[str, tuple[float, float]]] = {j: {} for j in job_ids}
    deadline = time.monotonic() + timeout_s
    while True:
        now = time.time()
        current = [system.get(j) for j in job_ids]
        for job in current:
            if job.state == "running" and job.stage:
                first = stages[job.job_id].get(job.stage, (now, now))[0]
                stages[job.job_id][job.stage] = (first, now)
        if all(j.state in jobs.FINAL_STATES for j in current):
            return Watched(current, stages)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"jobs not finished within {timeout_s:.0f} s: "
                + ", ".join(f"{j.job_id} {j.state}/{j.stage}" for j in current)
            )
        time.sleep(POLL_S)


def run_at_once(system: JobSystem, placed: list[tuple[RunRequest, int]], timeout_s: float = GPU_JOB_S) -> Watched:
    """Submit (request, GPU index) pairs back to back, follow them to the end; each must run and be stored."""
    submitted = [system.submit(request, gpu=gpu) for request, gpu in placed]
    watched = watch(system, [j.job_id for j in submitted], timeout_s)
    for job, (_, gpu) in zip(watched.jobs, placed, strict=True):
        if job.state != "done" or job.cached:
            raise RuntimeError(
                f"job {job.job_id} on GPU {gpu}: {job.state}"
                + (" (answered from the store)" if job.cached else f": {job.error} {job.hint}")
                + f"\n{job.traceback[-3000:]}"
            )
    return watched


@dataclass
class TogetherVsAlone:
    """e2e medians (ms) per GPU index: of the job run alone (twice) and with the other GPU busy."""

    alone_ms: dict[int, list[float]]
    together_ms: dict[int, float]
    together: Watched
    run_ids: dict[str, list[str]]  # "alone" / "together" -> run ids
    together_request: RunRequest  # the one request the together phase ran on every GPU

    def ratio(self, gpu: int) -> float:
        return self.together_ms[gpu] / statistics.fmean(self.alone_ms[gpu])

    def noise(self, gpu: int) -> float:
        """Run-to-run spread of the alone medians, relative to their mean (0.03 = 3%)."""
        a = self.alone_ms[gpu]
        return (max(a) - min(a)) / statistics.fmean(a)

    def within_noise(self, gpu: int, margin: float = 0.10) -> bool:
        """The together median inside the range of the alone medians, widened by ``margin`` each side."""
        a = self.alone_ms[gpu]
        return min(a) * (1 - margin) <= self.together_ms[gpu] <= max(a) * (1 + margin)

    @property
    def max_ratio(self) -> float:
        return max(self.ratio(g) for g in self.together_ms)

    def lines(self) -> list[str]:
        out = []
        for g in sorted(self.together_ms):
            alone = " / ".join(f"{ms:.4f}" for ms in self.alone_ms[g])
            out.append(
                f"GPU {g}: alone {alone} ms (spread {self.noise(g) * 100:.1f}%), together "
                f"{self.together_ms[g]:.4f} ms, together/alone {self.ratio(g):.3f}, inside the alone range "
                f"(+-10%): {self.within_noise(g)}"
            )
        out.append(
            f"together: jobs overlapped {self.together.overlap_s:.1f} s, their timing phases "
            f"{self.together.stage_overlap_s('timing'):.1f} s"
        )
        return out


def measure_together_vs_alone(
    system: JobSystem, gpus: tuple[int, int] = (0, 1), timed_iters: int = TIMED_ITERS, log=print, **workload
) -> TogetherVsAlone:
    """Alone on each GPU (seed 1), both at once (seed 3, the same request on both), alone again (seed 2)."""
    alone: dict[int, list[float]] = {g: [] for g in gpus}
    run_ids: dict[str, list[str]] = {"alone": [], "together": []}

    def median_of(job: Job, gpu: int) -> float:
        result = system.store.get(job.run_id)
        if result.env.get("gpu_index") != gpu:
            raise RuntimeError(f"job pinned to GPU {gpu} ran on {result.env.get('gpu_index')}")
        return result.latency.median_ms

    def alone_on_each(seed: int) -> None:
        for g in gpus:
            wait_gpu_workers_idle(system, gpus)
            job = run_at_once(system, [(trt_request(seed, timed_iters, **workload), g)]).jobs[0]
            alone[g].append(median_of(job, g))
            run_ids["alone"].append(job.run_id)
            log(f"alone on GPU {g} (seed {seed}): {alone[g][-1]:.4f} ms, job {job.elapsed_s:.1f} s")

    alone_on_each(1)
    wait_gpu_workers_idle(system, gpus)
    together_request = trt_request(3, timed_iters, **workload)
    together = run_at_once(system, [(together_request, g) for g in gpus])
    together_ms = {g: median_of(j, g) for j, g in zip(together.jobs, gpus, strict=True)}
    run_ids["together"] = [j.run_id for j in together.jobs]
    log("together: " + ", ".join(f"GPU {g} {ms:.4f} ms" for g, ms in together_ms.items()))
    alone_on_each(2)
    return TogetherVsAlone(alone, together_ms, together, run_ids, together_request)


def resubmit_together(system: JobSystem, figures: TogetherVsAlone, gpu: int) -> Job:
    """The together phase's request again, pinned to ``gpu``: the store answers it with that GPU's own run.
    (Rebuilding it from defaults would ask for another workload, which nothing answers.)"""
    return system.submit(figures.together_request, gpu=gpu)


def result_line(max_ratio: float) -> str:
    verdict = "PASS" if max_ratio <= GOAL_MAX_RATIO else "FAIL"
    return f"RESULT multi_gpu together_over_alone={max_ratio:.3f} goal=<={GOAL_MAX_RATIO:.2f} {verdict}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timed-iters", type=int, default=TIMED_ITERS)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--batch", type=int, default=1)
    ns = p.parse_args(argv)
    import torch  # noqa: PLC0415

    if torch.cuda.device_count() < 2:
        print(f"needs 2 GPUs, this machine has {torch.cuda.device_count()}")
        print(f"RESULT multi_gpu together_over_alone=nan goal=<={GOAL_MAX_RATIO:.2f} FAIL")
        return 1
    root = Path(ns.data_dir or tempfile.mkdtemp(prefix="trtdash-bench-"))
    os.environ["TRTDASH_DATA_DIR"] = str(root)
    os.environ.pop(jobs.QUEUE_URL_ENV, None)
    system = JobSystem(root)
    print(f"workers: {system.ensure_workers()} (data in {root})", flush=True)
    try:
        wait_gpu_workers_idle(system, (0, 1))
        for i in (0, 1):
            w = gpu_worker(system, i) or {}
            lost = multicast_settings_lost(w["pid"])
            print(
                f"GPU {i}: {w['gpu_name']} {w.get('gpu_uuid')}, worker {w['pid']}; "
                + (f"multicast settings lost: {lost}" if lost else "multicast settings kept"),
                flush=True,
            )
        figures = measure_together_vs_alone(
            system, timed_iters=ns.timed_iters, model=ns.model, batch=ns.batch, log=lambda s: print(s, flush=True)
        )
        for line in figures.lines():
            print(line)
        print(result_line(figures.max_ratio))
        return 0 if figures.max_ratio <= GOAL_MAX_RATIO else 1
    finally:
        system.stop_workers(timeout_s=5)


if __name__ == "__main__":
    sys.exit(main())
