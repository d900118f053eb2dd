"""The ``compile.keep_high_precision`` knob: which modules a low-precision build keeps in higher precision,
and how each kind of build honours it.

- Quantized runs (``compile.quantization``): ModelOpt's quantizers inside a kept module are disabled
  (``mtq.disable_quantizer``), so it runs in ``quant_base_precision`` (fp16) like an unquantized layer.
- fp16/bf16 casts on a strongly typed network (TensorRT-RTX; full TensorRT from Torch-TensorRT 2.13): a kept
  module stays fp32; hooks cast its floating inputs to fp32 and its outputs back to the run's precision, so the
  exported graph carries the casts and TensorRT runs the module in fp32. Older full TensorRT builds fp16 weakly
  typed from an fp32 model, where a module cannot be pinned this way: ``check_request`` refuses it there.

A *unit* is what a localisation can keep: a module that runs during the forward pass and calls no child
module of its own (a leaf of the call tree: ``nn.MultiheadAttention`` counts as one, since it uses its
``out_proj`` weights without calling it). Units come in the order they first run.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Collection, Sequence
from typing import Any

import torch

from engine.capabilities import Capabilities
from engine.errors import ConfigError
from engine.models import registry
from engine.models.entry import BuiltModel
from engine.settings.request import RunRequest

FIELD = "compile.keep_high_precision"
# outputs exact in any precision (a max, a clamp, a copy): keeping them in fp32 changes nothing, so a cast run's
# search leaves them out
EXACT_IN_ANY_PRECISION = (
    "Identity",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "Flatten",
    "Unflatten",
    "ReLU",
    "ReLU6",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
)


# -- units ----------------------------------------------------------------------------------------------
def call_tree_leaves(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> list[str]:
    """Paths of the modules that run in one forward pass and call no child module, in the order they start."""
    stack: list[str] = []
    started: list[str] = []
    calls_child: set[str] = set()

    def pre(name: str) -> Any:
        def hook(_mod: Any, _args: Any) -> None:
            if stack:
                calls_child.add(stack[-1])
            stack.append(name)
            if name not in started:
                started.append(name)

        return hook

    def post(_mod: Any, _args: Any, _out: Any) -> None:
        stack.pop()

    handles = []
    for name, sub in module.named_modules():
        if name:
            handles += [sub.register_forward_pre_hook(pre(name)), sub.register_forward_hook(post)]
    try:
        with torch.inference_mode():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return [n for n in started if n not in calls_child]


def cast_candidates(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> list[str]:
    """The units a cast run's search may keep in fp32: every call-tree leaf whose output is not exact anyway."""
    modules = dict(module.named_modules())
    return [n for n in call_tree_leaves(module, inputs) if type(modules[n]).__name__ not in EXACT_IN_ANY_PRECISION]


def quantizer_owners(module: torch.nn.Module) -> dict[str, list[str]]:
    """Module path -> names of the enabled ModelOpt quantizers directly inside it ("input_quantizer" ...)."""
    owners: dict[str, list[str]] = {}
    for name, sub in module.named_modules():
        if type(sub).__name__ == "TensorQuantizer" and getattr(sub, "is_enabled", False) and "." in name:
            owner, leaf = name.rsplit(".", 1)
            owners.setdefault(owner, []).append(leaf)
    return owners


def quantized_candidates(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> list[str]:
    """The modules of a fake-quantized model that hold enabled quantizers and run in the forward pass, in the
    order they start (torchvision's ``out_proj`` inside attention holds quantizers that never run: left out)."""
    owners = quantizer_owners(module)
    started: list[str] = []
    handles = []
    for path in owners:

        def hook(_mod: Any, _args: Any, path: str = path) -> None:
            if path not in started:
                started.append(path)

        handles.append(module.get_submodule(path).register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return started


# -- checking paths ---------------------------------------------------------------------------------------
def module_names(module: torch.nn.Module) -> list[str]:
    return [n for n, _ in module.named_modules() if n]


def _natural(path: str) -> list[tuple[int, int | str]]:
    """Sort key: layer3.10 after layer3.9."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in path.split(".")]


def check_paths(names: Collection[str], paths: Sequence[str], source: str) -> None:
    """Raise ``ConfigError`` naming the ``paths`` that are not among a model's module ``names``, with a few
    names it does have (the unknown path's siblings when there are some)."""
    unknown = [p for p in paths if p not in names]
    if not unknown:
        return
    parent = unknown[0]
    while parent and parent not in names:  # the deepest part of the path that exists
        parent = parent.rpartition(".")[0]
    depth = parent.count(".") + 1 if parent else 0
    close = sorted(
        (n for n in names if n.count(".") == depth and (not parent or n.startswith(parent + "."))), key=_natural
    )[:6]
    listed = ", ".join(repr(u) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    where = f"inside {parent}: " if parent else ""
    raise ConfigError(
        FIELD,
        f"{source} has no module {listed}; {where}{', '.join(close)}"
        f"{' ...' if len(close) == 6 else ''} (module paths as in named_modules())",
    )


@functools.lru_cache(maxsize=8)
def _registry_module_names(source: str, pretrained: bool) -> frozenset[str]:
    """Module paths of a registry model, from its constructor alone (library code, no forward pass)."""
    entry = registry.REGISTRY[source]
    module = (entry.load_pretrained or (lambda: None))() if pretrained else None
    module = module if module is not None else entry.build()
    return frozenset(n for n, _ in module.named_modules() if n)


def check_request(request: RunRequest, caps: Capabilities) -> None:
    """The machine- and model-dependent part of the knob's validation (``runner.check_request``).

    Registry models are checked at submit from their constructor; a model file's paths are checked where
    the job builds it (the app process runs no administrator code)."""
    c = request.compile
    if not c.keep_high_precision or request.backend != "tensorrt":
        return
    if c.quantization == "none" and c.precision != "fp32" and caps.flavour == "tensorrt" and not caps.strongly_typed:
        raise ConfigError(
            FIELD,
            "keeping modules in fp32 inside an fp16 build needs a strongly typed network "
            "(TensorRT-RTX, or Torch-TensorRT 2.13+ on full TensorRT): this one builds fp16 weakly typed from "
            "the fp32 model and picks each layer's precision itself. Use a quantized run, or TensorRT-RTX",
        )
    if request.model.source in registry.REGISTRY:
        names = _registry_module_names(request.model.source, request.model.pretrained)
        check_paths(names, c.keep_high_precision, request.model.source)


# -- honouring the knob --------------------------------------------------------------------------------------
def _cast(obj: Any, dtype: torch.dtype, only: torch.dtype | None = None) -> Any:
    """Floating tensors in ``obj`` (tensors, tuples, lists, dicts, dataclass-like outputs) cast to ``dtype``;
    with ``only``, just the tensors of that dtype."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and (only is None or obj.dtype == only):
            return obj.to(dtype)
        return obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_cast(o, dtype, only) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cast(o, dtype, only) for o in obj)
    if isinstance(obj, dict):
        out = copy.copy(obj)  # keeps the type (transformers' ModelOutput is a dict)
        for k, v in obj.items():
            out[k] = _cast(v, dtype, only)
        return out
    return obj


def keep_in_fp32(module: torch.nn.Module, paths: Sequence[str], low: torch.dtype) -> torch.nn.Module:
    """``module`` (already cast to ``low``) with the modules at ``paths`` back in fp32 behind boundary casts:
    their floating inputs are cast to fp32, their fp32 outputs back to ``low``. In place; returns ``module``."""
    check_paths(set(module_names(module)), paths, "the model")
    if low == torch.float32:
        return module

    def to_fp32(_mod: Any, args: Any, kwargs: Any) -> tuple[Any, Any]:
        return _cast(args, torch.float32), _cast(kwargs, torch.float32)

    def back(_mod: Any, _args: Any, output: Any) -> Any:
        return _cast(output, low, only=torch.float32)

    for path in paths:
        sub = module.get_submodule(path)
        sub.to(torch.float32)
        sub.register_forward_pre_hook(to_fp32, with_kwargs=True)
        sub.register_forward_hook(back)
    return module


def prepare_cast(model: BuiltModel, dtype: torch.dtype, device: str, paths: Sequence[str]) -> torch.nn.Module:
    """A copy of the model on ``device`` in ``dtype`` with ``paths`` kept in fp32 (the shared module is left
    untouched: the hooks must not follow it into the next use)."""
    module = copy.deepcopy(model.module).to(device=device, dtype=dtype)
    return keep_in_fp32(module, paths, dtype)


def disable_quantizers(module: torch.nn.Module, paths: Sequence[str]) -> int:
    """Switch off every ModelOpt quantizer inside the modules at ``paths``; returns how many were on."""
    check_paths(set(module_names(module)), paths, "the model")
    if not paths:
        return 0
    prefixes = tuple(f"{p}." for p in paths)
    on = [
        n
        for n, m in module.named_modules()
        if type(m).__name__ == "TensorQuantizer" and getattr(m, "is_enabled", False) and n.startswith(prefixes)
    ]
    if on:
        import modelopt.torch.quantization as mtq  # noqa: PLC0415 - ModelOpt inserted the quantizers: installed

        mtq.disable_quantizer(module, lambda name: name.startswith(prefixes))
    return len(on)
