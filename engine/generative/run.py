"""One generative run, start to end: resolve the decoder, refuse what cannot run (before any build), measure each
backend, check the greedy tokens against eager's, and return the ``GenerativeRun`` the store keeps."""

from __future__ import annotations

import platform
from collections.abc import Callable

import torch

from engine.generative import checks, sources
from engine.generative.configs import NAMED
from engine.generative.figures import GRAPH_SUFFIX, GenerativeRun, MemoryFigures
from engine.generative.measure import Generation, Programs, add_gpu_figures, generate, measure_backend
from engine.generative.models import CausalDecoder
from engine.generative.request import GenerateRequest, check
from engine.generative.static_cache import TORCH_DTYPES, bytes_per_token, largest_batch, weight_bytes
from engine.store.paths import new_run_id, utc_now_iso

Progress = Callable[[str], None]


def environment(device: str) -> dict[str, str]:
    env = {"torch": torch.__version__, "python": platform.python_version()}
    if device.startswith("cuda"):
        env["device_name"] = torch.cuda.get_device_name()
        try:
            import torch_tensorrt  # noqa: PLC0415 - only where a GPU is

            env["torch_tensorrt"] = torch_tensorrt.__version__
        except Exception:  # a GPU without Torch-TensorRT still runs eager and inductor
            env["torch_tensorrt"] = ""
    else:
        env["device_name"] = f"CPU ({platform.processor() or platform.machine()})"
    return env


def prepare(request: GenerateRequest) -> tuple[CausalDecoder, int | None]:
    """The decoder on its device in its dtype, after ``check`` (which needs the free memory, read before the
    weights go to the device; a registry decoder is checked before it is built, a model file once built)."""
    free = torch.cuda.mem_get_info()[0] if request.device.startswith("cuda") else None
    if request.model in NAMED:  # a registry decoder's shapes are known: refuse before its weights are made
        check(request, NAMED[request.model], free)
    decoder = sources.load(request.model, request.seed)
    check(request, decoder.config, free)
    return decoder.to(device=request.device, dtype=TORCH_DTYPES[request.precision]), free


def execute(request: GenerateRequest, progress: Progress = lambda _: None) -> GenerativeRun:
    decoder, free = prepare(request)
    config = decoder.config
    warnings: list[str] = []
    measured = {name: measure_backend(decoder, request, name, progress) for name in request.backends}
    backends, generations = {}, {}
    graph_generations = {}
    for name, m in measured.items():
        backends[name] = add_gpu_figures(m, warnings, progress) if request.device.startswith("cuda") else m.figures
        generations[name] = m.generation
        if m.graph_generation is not None:
            graph_generations[name + GRAPH_SUFFIX] = m.graph_generation
    del measured, m  # the programs: their memory goes before the eager reference is generated
    if request.device.startswith("cuda"):
        torch.cuda.empty_cache()
    if "eager" not in generations:
        progress("eager: the reference greedy tokens")
        generations["eager"] = generate(Programs(decoder, "eager", request.device, request.seed), request)
    token_checks = [
        _check(name, generations[name], generations["eager"]) for name in request.backends if name != "eager"
    ] + [_check(name, g, generations["eager"]) for name, g in graph_generations.items()]
    dtype = request.precision
    memory = MemoryFigures(
        weight_bytes(config, dtype),
        bytes_per_token(config, dtype),
        free,
        {c: largest_batch(config, c, dtype, free) for c in request.contexts} if free is not None else {},
    )
    return GenerativeRun(
        new_run_id(),
        utc_now_iso(),
        request,
        config,
        environment(request.device),
        backends,
        token_checks,
        memory,
        warnings,
    )


def _check(name: str, generation: Generation, reference: Generation) -> checks.TokenCheck:
    return checks.compare(name, generation.tokens, generation.logits, "eager", reference.tokens, reference.logits)
