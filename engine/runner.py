"""One request → one stored result. The dashboard (through the job queue), the CLI and the
benchmarks all go through ``execute``: validate, look up the cache, build, measure, store."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine import capabilities, models
from engine.backends.base import ProgressFn, get_backend, no_progress
from engine.config import RunRequest, cache_key, validate
from engine.result import RunResult
from engine.store import RunStore, new_run_id, utc_now_iso

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    result: RunResult
    cached: bool     # True: answered from the store, nothing was run


def request_key(request: RunRequest, caps: capabilities.Capabilities | None = None,
                gpu_index: int = 0) -> tuple[str, dict]:
    """The cache key of a request on this machine and its environment fingerprint; runs no model code."""
    caps = caps or capabilities.detect()
    device = capabilities.resolve_device(request, caps)
    env = capabilities.fingerprint(caps, device, gpu_index)
    return cache_key(request, env, models.identity(request.model, request.measure.seed)), env


def execute(request: RunRequest, store: RunStore, progress: ProgressFn = no_progress, *,
            use_cache: bool = True, gpu_index: int = 0) -> Outcome:
    """Validate, answer from the cache when possible, otherwise build, measure and store.

    Raises ``ConfigError`` / ``ModelError`` / backend errors with user-facing messages.
    """
    validate(request)
    caps = capabilities.detect()
    capabilities.check_request(request, caps)
    key, env = request_key(request, caps, gpu_index)
    if use_cache:
        hit = store.find_by_key(key)
        if hit is not None:
            return Outcome(hit, cached=True)
    progress("build_model", None, request.model.source)
    built = models.build(request.model, request.measure.seed)
    device = env["device"]
    backend = get_backend(request.backend)
    with tempfile.TemporaryDirectory(prefix="trtdash-") as tmp:
        m = backend(request, built, device, progress, Path(tmp))
        result = RunResult(
            run_id=new_run_id(), key=key, created_at=utc_now_iso(), request=request.to_dict(), env=env,
            model_info=built.info, latency=m.latency, latency_samples_ms=m.latency_samples_ms,
            stages_s=m.stages_s, engine_count=m.engine_count, engine_bytes=m.engine_bytes,
            peak_memory_bytes=m.peak_memory_bytes, accuracy=m.accuracy, segmentation=m.segmentation,
            profiled_sum_ms=m.profiled_sum_ms, baselines=m.baselines,
            baseline_compile_s=m.baseline_compile_s, warnings=m.warnings, layers=m.layers,
            quantization=m.quantization, gpu_time=m.gpu_time, graph_replay=m.graph_replay,
            plan_fingerprint=m.plan_fingerprint)
        progress("store", None, "saving")
        store.save(result, m.raw_files)
    log.info("run %s stored: %s median %.3f ms", result.run_id, result.label, result.latency.median_ms)
    return Outcome(result, cached=False)
