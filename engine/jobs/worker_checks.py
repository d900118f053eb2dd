"""Submit-time checks against workers on other hosts (Redis): what their registrations say they would refuse.

With one host, ``JobSystem.submit`` checks a request against this machine (``runner.check_request``); with workers
elsewhere it cannot, so it asks here, from each worker's registration (flavour, GPU generation, memory). The job
process checks again on the worker's own host.
"""

from __future__ import annotations

from typing import Any

from engine import capabilities
from engine.errors import ConfigError
from engine.jobs.routing import worker_device
from engine.quantization import schemes
from engine.settings.request import RunRequest


def check_against_workers(request: RunRequest, route: str, workers: list[dict[str, Any]]) -> None:
    """Refuse (raise the first ``ConfigError``) a request that every live worker of its route would refuse, as
    ``workers`` (``JobSystem.workers()``) describe them. When no worker of the route has described itself yet,
    nothing is known and nothing is refused here; the job process checks again."""
    candidates = [w for w in workers if w["alive"] and route in w.get("routes", ())]
    described = [w for w in candidates if w.get("flavour") is not None]
    if not described or len(described) < len(candidates):
        return
    refusals = [e for w in described if (e := worker_refusal(request, w)) is not None]
    if len(refusals) == len(described):
        raise refusals[0]


def worker_refusal(request: RunRequest, info: dict[str, Any]) -> ConfigError | None:
    """Why the worker a registration describes would refuse ``request`` (a ConfigError naming the field and the
    worker), or None. The rules of ``runner.check_request``, applied to the worker's flavour, GPU and memory instead
    of this machine's; ModelOpt and calibration files are the worker host's business and are checked there."""
    from engine.models.memory import check_input_memory  # noqa: PLC0415 - torch only where a worker is asked

    gpu = None
    if info.get("gpu_index") is not None:
        gpu = capabilities.Gpu(
            0,
            info.get("gpu_name") or "GPU",
            int(info.get("gpu_memory_bytes") or 0),
            info.get("compute_capability") or "",
        )
    caps = capabilities.Capabilities(
        torch_version="",
        cuda_available=gpu is not None,
        gpus=(gpu,) if gpu else (),
        torch_tensorrt_version=info.get("torch_tensorrt_version"),
        flavour=info.get("flavour") or "none",
        cpu_name=info.get("device_name") or "",
    )
    where = f" (the worker of {info.get('device_name') or worker_device(info['worker_id'], info)} on {info['host']})"
    try:
        if request.backend == "tensorrt":
            reason = caps.disabled_reason("backend", "tensorrt")
            if reason:
                raise ConfigError("backend", f"tensorrt {reason.rstrip('.')}")
            for knob in ("compile.precision", "compile.hardware_compatible"):
                value = getattr(request.compile, knob.split(".")[1])
                reason = caps.disabled_reason(knob, value)
                if reason:
                    raise ConfigError(knob, f"{value!r} is not available: {reason}")
            scheme = request.compile.quantization
            reason = schemes.scheme_unavailable_reason(
                scheme, flavour=caps.flavour, modelopt=True, compute_capability=gpu.compute_capability if gpu else None
            )
            if scheme != "none" and reason:
                raise ConfigError("compile.quantization", f"{scheme!r} is not available: {reason}")
        check_input_memory(
            request,
            ram_bytes=info.get("ram_bytes"),
            gpu_memory_bytes=gpu.memory_bytes if gpu and request.device != "cpu" else None,
        )
    except ConfigError as e:
        return ConfigError(e.field, e.message + where)
    return None
