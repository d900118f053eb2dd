"""One request → one stored result. The dashboard (through the job queue), the CLI and the
benchmarks all go through ``execute``: validate, look up the cache, build, measure, store."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine import capabilities
from engine.backends import keep_high_precision
from engine.backends.base import ProgressFn, get_backend, no_progress
from engine.errors import ConfigError, ModelError, UserError
from engine.models import memory, registry
from engine.quantization import calibration
from engine.result import RunResult
from engine.settings.identity import cache_key
from engine.settings.request import RunRequest, validate
from engine.store import RunStore, new_run_id, utc_now_iso

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    result: RunResult
    cached: bool  # True: answered from the store, nothing was run


def request_key(
    request: RunRequest, caps: capabilities.Capabilities | None = None, gpu_index: int = 0
) -> tuple[str, dict]:
    """The cache key of a request on this machine and its environment fingerprint; runs no model code."""
    caps = caps or capabilities.detect()
    device = capabilities.resolve_device(request, caps)
    env = capabilities.fingerprint(caps, device, gpu_index)
    return cache_key(request, env, registry.identity(request.model, request.measure.seed)), env


def check_request(request: RunRequest, caps: capabilities.Capabilities, gpu_index: int = 0) -> None:
    """Whether this machine can run a validated request, checked before anything is queued or built: device and
    Torch-TensorRT flavour, the quantization scheme and its calibration data, the modules kept in higher precision,
    the model's name, the weights' and inputs' memory. Raises ConfigError naming the field and what to do."""
    registry.check_source(request.model)
    _check_torch_executed_ops(request)
    device = capabilities.resolve_device(request, caps)
    if device == "cuda" and not caps.cuda_available:
        raise ConfigError("device", "cuda was asked for but this machine has no NVIDIA GPU; choose cpu or auto")
    if request.backend == "tensorrt":
        reason = caps.disabled_reason("backend", "tensorrt")
        if reason:
            raise ConfigError("backend", f"tensorrt {reason.rstrip('.')}; use the eager backend or open a sample run")
        if device != "cuda":
            raise ConfigError("device", "the tensorrt backend runs on the GPU; choose cuda or auto")
        for knob in ("compile.precision", "compile.hardware_compatible", "compile.use_python_runtime"):
            value = getattr(request.compile, knob.split(".")[1])
            reason = caps.disabled_reason(knob, value)
            if reason:
                raise ConfigError(knob, f"{value!r} is not available: {reason}")
    calibration.check_request(request, caps)
    keep_high_precision.check_request(request, caps)  # module paths the model has
    gpu = caps.gpus[min(gpu_index, len(caps.gpus) - 1)] if device == "cuda" and caps.gpus else None
    memory.check_input_memory(
        request, ram_bytes=capabilities.ram_bytes(), gpu_memory_bytes=gpu.memory_bytes if gpu else None
    )
    # fp16 on the CPU is allowed: recent torch has fp16 convolutions there (slow, some ops missing), and the
    # backend adds a warning


def _check_torch_executed_ops(request: RunRequest) -> None:
    """Every op forced to PyTorch is an operator of this torch, on every backend: a misspelt op would otherwise
    be ignored without a word (eager) or be no help to a build (tensorrt)."""
    import torch  # noqa: PLC0415

    for op in request.compile.torch_executed_ops:
        path = op.split(".")[2:]  # validate() checked the torch.ops.<namespace>.<op>[.<overload>] form
        if path and path[0] == "torchvision":
            import torchvision  # noqa: F401, PLC0415 - registers its operators

        target: object = torch.ops
        try:
            for name in path:
                target = getattr(target, name)
        except (AttributeError, RuntimeError):
            target = None
        if not isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
            raise ConfigError(
                "compile.torch_executed_ops",
                f"{op} is not an operator of this torch ({torch.__version__}); give an existing op such as "
                "torch.ops.aten.relu.default (the names a run's per-layer table and partition show)",
            )


def execute(
    request: RunRequest,
    store: RunStore,
    progress: ProgressFn = no_progress,
    *,
    use_cache: bool = True,
    gpu_index: int = 0,
    submitted_by: str = "",
) -> Outcome:
    """Validate, answer from the cache when possible, otherwise build, measure and store.

    Raises ``ConfigError`` / ``ModelError`` / backend errors with user-facing messages. Model code that
    calls ``sys.exit()`` fails the run (``ModelError``): it never ends the caller as if all went well.
    """
    try:
        return _execute(request, store, progress, use_cache=use_cache, gpu_index=gpu_index, submitted_by=submitted_by)
    except SystemExit as e:
        raise ModelError(
            f"The model's code called sys.exit({e.code!r}) during the run; nothing was stored.",
            "A model file must return from build_model() and forward(), never exit.",
        ) from None


def _execute(
    request: RunRequest, store: RunStore, progress: ProgressFn, *, use_cache: bool, gpu_index: int, submitted_by: str
) -> Outcome:
    validate(request)
    caps = capabilities.detect()
    check_request(request, caps, gpu_index)
    key, env = request_key(request, caps, gpu_index)
    if use_cache:
        hit = store.find_by_key(key)
        if hit is not None:
            return Outcome(hit, cached=True)
    progress("build_model", None, request.model.source)
    gpu = caps.gpus[min(gpu_index, len(caps.gpus) - 1)] if env["device"] == "cuda" and caps.gpus else None
    limits = memory.limits_for(
        request, ram_bytes=capabilities.ram_bytes(), gpu_memory_bytes=gpu.memory_bytes if gpu else None
    )
    built = registry.build(request.model, request.measure.seed, limits)
    device = env["device"]
    if device == "cuda" and (driver := capabilities.nvidia_driver_version()):
        env = {**env, "driver": driver}  # shown with the run, not part of its cache key
    if device == "cuda" and caps.gpus:
        memory.check_activation_memory(
            built, request.model, caps.gpus[min(gpu_index, len(caps.gpus) - 1)].memory_bytes, "GPU memory"
        )
    elif (ram := capabilities.ram_bytes()) is not None:
        memory.check_activation_memory(built, request.model, ram, "RAM")
    backend = get_backend(request.backend)
    with tempfile.TemporaryDirectory(prefix="trtdash-") as tmp:
        m = backend(request, built, device, progress, Path(tmp))
        result = RunResult(
            run_id=new_run_id(),
            key=key,
            created_at=utc_now_iso(),
            request=request.to_dict(),
            env=env,
            model_info=built.info,
            latency=m.latency,
            latency_samples_ms=m.latency_samples_ms,
            stages_s=m.stages_s,
            engine_count=m.engine_count,
            engine_bytes=m.engine_bytes,
            peak_memory_bytes=m.peak_memory_bytes,
            accuracy=m.accuracy,
            segmentation=m.segmentation,
            profiled_sum_ms=m.profiled_sum_ms,
            baselines=m.baselines,
            baseline_compile_s=m.baseline_compile_s,
            warnings=m.warnings,
            layers=m.layers,
            quantization=m.quantization,
            gpu_time=m.gpu_time,
            graph_replay=m.graph_replay,
            plan_fingerprint=m.plan_fingerprint,
            engine_precision=m.engine_precision,
            submitted_by=submitted_by,
        )
        progress("store", None, "saving")
        store.save(result, m.raw_files)
    log.info("run %s stored: %s median %.3f ms", result.run_id, result.label, result.latency.median_ms)
    return Outcome(result, cached=False)


def execute_for_parent(conn, request: dict, use_cache: bool) -> None:
    """Body of a child process that runs one request for its parent (the CLI's ``--timeout``, a model file): sends
    ("progress", stage, detail) as it goes, then ("done", run_id, cached) or ("error", is_user_error, message,
    hint). A .pt2 load that overruns its limit ends this process (engine/models/load_limit.py)."""
    from engine.models import load_limit  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_limit.end_process_on_overrun()

    def progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
        conn.send(("progress", stage, detail))

    try:
        outcome = execute(RunRequest.from_dict(request), RunStore(), progress, use_cache=use_cache)
    except (ConfigError, ModelError) as e:
        conn.send(("error", True, str(e), ""))
    except UserError as e:  # backend errors carry a user-facing message and a hint
        conn.send(("error", False, e.message, e.hint))
    except Exception as e:
        conn.send(("error", False, f"{type(e).__name__}: {e}", ""))
    else:
        conn.send(("done", outcome.result.run_id, outcome.cached))
