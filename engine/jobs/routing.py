"""Routing: which queue a request goes to, which queues a worker serves, and which stored run may answer
a job pinned to one GPU.

One huey queue per route: ``cpu``, ``gpu`` (any GPU), ``gpu<i>`` (GPU index i of a host), ``gputype-<name>``
(any GPU of that type, e.g. ``gputype-nvidiah10080gbhbm3``).
"""

from __future__ import annotations

import re
from typing import Any

from engine.result import RunResult
from engine.settings.request import RunRequest
from engine.store import RunStore


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def route_for(request: RunRequest, gpu: int | str | None, cuda_available: bool) -> str:
    """The queue a request goes to: CPU work to the CPU worker, CUDA work to the chosen GPU."""
    device = request.device
    if device == "auto":
        device = "cuda" if (cuda_available or gpu is not None) else "cpu"
    if device == "cpu":
        return "cpu"
    if gpu is None or gpu == "":
        return "gpu"
    if isinstance(gpu, int) or (isinstance(gpu, str) and gpu.isdigit()):
        return f"gpu{int(gpu)}"
    return f"gputype-{slug(gpu)}"


def pinned_gpu(route: str) -> int | None:
    """The GPU index a route pins its jobs to ("gpu1" -> 1), or None (CPU, any GPU, a GPU type)."""
    return int(route[3:]) if re.fullmatch(r"gpu\d+", route) else None


def worker_routes(gpu_index: int | None, gpu_name: str | None) -> list[str]:
    """Queues a worker serves, most specific first."""
    if gpu_index is None:
        return ["cpu"]
    return [f"gpu{gpu_index}", f"gputype-{slug(gpu_name or '')}", "gpu"]


def worker_device(worker_id: str, info: dict[str, Any] | None) -> str:
    """The device a worker served ("GPU 1", "the CPU"), from its registration or its id (host/slot/pid)."""
    index = info.get("gpu_index") if info else None
    if index is None:
        slot = worker_id.rsplit("/", 2)[-2] if worker_id.count("/") >= 2 else ""
        index = pinned_gpu(slot)
    return "the CPU" if index is None else f"GPU {index}"


def measured_on(env: dict[str, Any], gpu_index: int | None, host: str | None) -> bool:
    """Whether a result's environment records this GPU index (on ``host``; any host when None)."""
    return env.get("gpu_index") == gpu_index and (host is None or env.get("host") == host)


def stored_run_on(store: RunStore, key: str, gpu_index: int | None, host: str | None) -> RunResult | None:
    """The newest stored run with this cache key measured on this GPU, or None. Runs of one key from
    GPUs of one type are equal for the cache; the newest may come from the other GPU."""
    hit = store.find_by_key(key)
    if hit is None or measured_on(hit.env, gpu_index, host):
        return hit
    runs = store.list_runs(is_sample=False)  # newest first
    for run_id in runs.loc[runs["key"] == key, "run_id"]:
        run = store.get(run_id)
        if measured_on(run.env, gpu_index, host):
            return run
    return None
