"""Buildable models: the built-in registry and custom models from the admin's models directory.

Registry models get random weights from a fixed seed; pretrained weights are used only when
already in the local torch hub cache (nothing is downloaded). Custom models are files an
administrator placed in the models directory: ``<name>.py`` exposing ``build_model()`` and
``example_inputs()``, or ``<name>.pt2`` ExportedProgram files. Only ``.py`` files run code: a ``.pt2``
is read as data (engine/pt2_files.py refuses one that would unpickle or execute anything). Nothing
uploaded through the browser is ever executed.

Memory is checked twice before a large allocation: the inputs' size at submit (``check_input_memory``,
no model code runs), and the activations after the batch-1 check run (``check_activation_memory``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine import input_tensors, pt2_files
from engine.errors import ConfigError, ModelError
from engine.settings import inputs as settings_inputs
from engine.settings.inputs import InputSpec
from engine.settings.request import ModelSpec, RunRequest

MODELS_DIR_ENV = "TRTDASH_MODELS_DIR"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
FILE_PREFIX = "file:"


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    family: str                         # "torchvision" | "timm" | "transformers"
    default_input_shape: tuple[int, ...]  # without batch; (sequence,) for text models
    build: Callable[[], torch.nn.Module]
    task: str = "classification"
    notes: str = ""
    input_kind: str = "image"           # "image": one float input; "text": token ids + attention mask
    # the inputs for a spec (text models); None: one float image of default_input_shape
    make_inputs: Callable[[ModelSpec], tuple[InputSpec, ...]] | None = None
    # weights from the local cache only, None when not cached; None here: torchvision's hub cache
    load_pretrained: Callable[[], torch.nn.Module | None] | None = None


@dataclass
class BuiltModel:
    module: torch.nn.Module
    example_inputs: tuple[torch.Tensor, ...]     # on CPU, fp32 unless integer inputs
    identity: str                                 # weights identity for the cache key
    info: dict[str, Any] = field(default_factory=dict)
    exported_program: Any = None                  # torch.export.ExportedProgram for .pt2 files
    # what the inputs are (names, dtypes, dynamic min/opt/max): torch_tensorrt.Input objects come from these
    input_specs: tuple[InputSpec, ...] = ()


# torchvision starts these models' classification head at zero: with random weights every output is 0 and
# no accuracy figure means anything (seen in the H200 vit_b_16 ladder). Built from a seed, their zero
# Linear weights get a small random init instead; the weights identity says so.
ZERO_HEAD_PREFIXES = ("vit_",)
NONZERO_HEAD_TAG = ":nonzero-head"


def _torchvision(name: str) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        import torchvision.models as tvm

        module = tvm.get_model(name, weights=None)
        if name.startswith(ZERO_HEAD_PREFIXES):
            for layer in module.modules():
                if isinstance(layer, torch.nn.Linear) and not layer.weight.detach().any():
                    torch.nn.init.trunc_normal_(layer.weight, std=0.02)
        return module

    return build


_TV_224 = ["resnet18", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
           "convnext_tiny", "vit_b_16", "swin_t", "regnet_y_400mf", "densenet121"]

REGISTRY: dict[str, RegistryEntry] = {
    n: RegistryEntry(n, "torchvision", (3, 224, 224), _torchvision(n)) for n in _TV_224
}


def _with_families() -> None:
    from engine import model_families

    for name, entry in model_families.entries().items():
        REGISTRY.setdefault(name, entry)


_with_families()


def models_dir() -> Path:
    return Path(os.environ.get(MODELS_DIR_ENV) or DEFAULT_MODELS_DIR)


def custom_model_files(directory: Path | None = None) -> list[str]:
    d = directory or models_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.suffix in (".py", ".pt2") and not p.name.startswith("_"))


def available_sources() -> list[str]:
    """What the model picker lists: registry names, then ``file:`` entries."""
    return list(REGISTRY) + [FILE_PREFIX + n for n in custom_model_files()]


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def _pretrained_from_cache(name: str) -> torch.nn.Module | None:
    """The torchvision model with its default weights, only when the file is already cached."""
    import torchvision.models as tvm

    weights = tvm.get_model_weights(name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not cached.is_file():
        return None
    return tvm.get_model(name, weights=weights)


def identity(spec: ModelSpec, seed: int = 0) -> str:
    """The weights identity of a spec, for the cache key, without building or running model code:
    registry name + seed (or "pretrained"), or a model file's content hash + seed."""
    if spec.source.startswith(FILE_PREFIX):
        path = _resolve_file(spec.source)
        return f"file:{path.name}:{_file_digest(path)}:seed{seed}"
    if spec.pretrained:
        return f"registry:{spec.source}:pretrained"
    tag = NONZERO_HEAD_TAG if spec.source.startswith(ZERO_HEAD_PREFIXES) and spec.source in _TV_224 else ""
    return f"registry:{spec.source}:seed{seed}{tag}"


def build(spec: ModelSpec, seed: int = 0) -> BuiltModel:
    """Build the model in eval mode on CPU, with example inputs for ``spec``'s batch and shape."""
    if spec.source.startswith(FILE_PREFIX):
        return _build_file(spec, seed)
    entry = REGISTRY.get(spec.source)
    if entry is None:
        raise ModelError(f"Unknown model {spec.source!r}.",
                         f"Choose one of {', '.join(REGISTRY)} or a file: model from the models directory.")
    _seeded(seed)
    module = None
    weights = identity(spec, seed)
    specs = input_specs(entry, spec)
    if spec.pretrained:
        module = (entry.load_pretrained or (lambda: _pretrained_from_cache(entry.name)))()
        if module is None:
            raise ModelError(f"No cached pretrained weights for {entry.name}.",
                             "Pretrained weights are never downloaded; untick 'Pretrained weights' or place "
                             "the file in the local cache (torch hub for torchvision, the Hugging Face hub "
                             "cache for timm and transformers).")
    if module is None:
        module = entry.build()
    module.eval()
    try:
        shapes = settings_inputs.measured_shapes(specs, spec.batch_size, spec.sequence_length)
    except ConfigError as e:
        raise ModelError(f"{e.field}: {e.message}.") from None
    example = input_tensors.example_tensors(specs, shapes, seed=seed + 1)
    largest = _check_runs(module, example, spec)
    if spec.inputs is not None and any(s.is_dynamic for s in specs):
        _check_dynamic_ranges(module, specs, weights)
    info = _info(module, example, entry.family, entry.task, specs) | {"largest_activation_bytes": largest}
    return BuiltModel(module, example, weights, info, input_specs=specs)


def input_specs(entry: RegistryEntry, spec: ModelSpec) -> tuple[InputSpec, ...]:
    """The inputs a registry model is fed: ``spec.inputs`` when given, else the entry's own."""
    if spec.inputs is not None:
        return spec.inputs
    if entry.input_kind == "text":
        if spec.input_shape is not None:
            raise ModelError(f"{entry.name} is a text model: it takes no input shape.",
                             "Set 'Sequence length' instead and leave 'Input shape' empty.")
    elif spec.sequence_length is not None:
        raise ModelError(f"{entry.name} is an image model: sequence length does not apply.",
                         "Leave 'Sequence length' empty, or set 'Input shape (without batch)'.")
    if entry.make_inputs is not None:
        try:
            return entry.make_inputs(spec)
        except ValueError as e:
            raise ModelError(str(e) + ".", "Lower 'Sequence length'.") from None
    shape = (spec.batch_size, *(spec.input_shape or entry.default_input_shape))
    return (InputSpec("x", shape, "float32"),)


# (model identity, specs) pairs whose dynamic ranges the model was seen to accept in this process
_ACCEPTED_RANGES: set[tuple[str, tuple[InputSpec, ...]]] = set()


def _check_dynamic_ranges(module: torch.nn.Module, specs: tuple[InputSpec, ...], identity: str) -> None:
    if (identity, specs) in _ACCEPTED_RANGES:
        return
    try:
        input_tensors.check_model_accepts(module, specs)
    except ConfigError as e:
        raise ModelError(f"{e.field}: {e.message}.") from None
    _ACCEPTED_RANGES.add((identity, specs))


def _check_runs(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], spec: ModelSpec) -> int:
    """Fail early, with the shape in the message, when the model rejects the inputs. Returns the largest
    tensor a module produced on that batch-1 run, in bytes (the activation estimate's per-sample figure)."""
    largest = 0

    def measure(module: torch.nn.Module, args: Any, output: Any) -> None:
        nonlocal largest
        stack = [output]
        while stack:
            item = stack.pop()
            if isinstance(item, torch.Tensor):
                largest = max(largest, item.numel() * item.element_size())
            elif isinstance(item, (tuple, list)):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())

    hook = torch.nn.modules.module.register_module_forward_hook(measure)
    try:
        with torch.inference_mode():
            # a batch of one is enough to find shape errors cheaply
            module(*(t[:1] for t in inputs))
    except Exception as e:
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        raise ModelError(f"{spec.source} cannot run on input of shape {shapes}: {type(e).__name__}: "
                         f"{str(e).splitlines()[0][:300]}",
                         "Check 'Input shape (without batch)'; leave it empty for the model's default.") from e
    finally:
        hook.remove()
    return largest


# -- memory, before it is allocated -----------------------------------------------------------------
def input_bytes(spec: ModelSpec) -> tuple[int, str] | None:
    """The inputs' size at the measured shapes, in bytes, and a description ("x 4096x3x224x224 float32"),
    without building the model; None when only the model file knows its inputs."""
    if spec.inputs is not None:
        specs = spec.inputs
    else:
        entry = REGISTRY.get(spec.source)
        if entry is None:
            return None
        try:
            specs = input_specs(entry, spec)
        except ModelError:
            return None   # the build reports this with its hint
    try:
        shapes = settings_inputs.measured_shapes(specs, spec.batch_size, spec.sequence_length)
    except ConfigError:
        return None       # validate() reports this
    total, parts = 0, []
    for s in specs:
        shape = shapes[s.name]
        numel = 1
        for d in shape:
            numel *= d
        total += numel * torch.empty((), dtype=s.torch_dtype).element_size()
        parts.append(f"{s.name} {'x'.join(map(str, shape))} {s.dtype}")
    return total, ", ".join(parts)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def check_input_memory(request: RunRequest, *, ram_bytes: int | None, gpu_memory_bytes: int | None) -> None:
    """Refuse, with the figures, a request whose inputs alone exceed the machine's RAM (inputs are made on the
    CPU) or the GPU's memory (a CUDA run holds them there). Raises ``ConfigError`` on model.batch_size."""
    size = input_bytes(request.model)
    if size is None:
        return
    total, described = size
    for limit, what in ((ram_bytes, "RAM"), (gpu_memory_bytes if request.device != "cpu" else None, "GPU memory")):
        if limit and total > limit:
            raise ConfigError("model.batch_size", f"the inputs alone take {_gib(total)} ({described}), more than "
                                                  f"this machine's {_gib(limit)} of {what}; use a smaller batch or "
                                                  "input shape")


def check_activation_memory(built: BuiltModel, spec: ModelSpec, limit_bytes: int, what: str) -> None:
    """Refuse a run whose activations would not fit, before the full batch runs: the largest tensor the batch-1
    check run produced, times the batch, held twice (a layer's input and output live together), plus the
    inputs. A lower bound of the peak, so a refusal is certain to be right."""
    per_sample = int(built.info.get("largest_activation_bytes", 0))
    inputs = sum(t.numel() * t.element_size() for t in built.example_inputs)
    need = 2 * per_sample * spec.batch_size + inputs
    if per_sample and need > limit_bytes:
        fits = max(1, int((limit_bytes - inputs) // (2 * per_sample))) if limit_bytes > inputs else 0
        raise ModelError(f"Batch {spec.batch_size} needs at least {_gib(need)} of {what}: its largest activation "
                         f"is {_gib(per_sample)} per sample (measured at batch 1), held with the next layer's "
                         f"output, plus {_gib(inputs)} of inputs; this machine has {_gib(limit_bytes)}.",
                         f"Use a batch of at most {fits}." if fits else "Use a smaller input shape.")


def _info(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], family: str, task: str,
          specs: tuple[InputSpec, ...] = ()) -> dict[str, Any]:
    described = [{"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")} for t in inputs]
    for d, s in zip(described, specs, strict=False):
        d["name"] = s.name
        if s.is_dynamic:
            d |= {"min_shape": list(s.lower), "opt_shape": list(s.shape), "max_shape": list(s.upper)}
    return {"family": family, "task": task,
            "parameters": sum(p.numel() for p in module.parameters()), "inputs": described}


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _resolve_file(source: str) -> Path:
    name = source[len(FILE_PREFIX):]
    directory = models_dir().resolve()
    path = (directory / name).resolve()
    if path.parent != directory or path.suffix not in (".py", ".pt2"):
        raise ModelError(f"{name!r} is not a .py or .pt2 file directly inside the models directory.",
                         f"Custom models live in {directory} (set {MODELS_DIR_ENV} to change it).")
    if not path.is_file():
        raise ModelError(f"Model file {name!r} not found in {directory}.",
                         "Ask the administrator to place it there; uploads are never executed.")
    return path


def _build_file(spec: ModelSpec, seed: int) -> BuiltModel:
    path = _resolve_file(spec.source)
    weights = identity(spec, seed)
    _seeded(seed)
    if path.suffix == ".pt2":
        try:
            ep = pt2_files.load_exported_program(path)
        except pt2_files.UnsafePt2File as e:
            raise ModelError(f"{path.name} was not loaded: {e.reason}. A .pt2 file is read as data, never run; "
                             "only .py model files run code.", pt2_files.SAFE_HINT) from None
        except Exception as e:
            raise ModelError(f"{path.name} is not a loadable torch.export ExportedProgram: "
                             f"{type(e).__name__}: {str(e)[:200]}", "Save it with torch.export.save().") from e
        inputs = _example_inputs_from_ep(ep, spec)
        module = ep.module()
        inputs, specs = _with_given_inputs(module, inputs, spec, weights, seed)
        return BuiltModel(module, inputs, weights, _info(module, inputs, "exported_program", "unknown", specs), ep,
                          input_specs=specs)
    mod = _import_file(path)
    for fn in ("build_model", "example_inputs"):
        if not callable(getattr(mod, fn, None)):
            raise ModelError(f"{path.name} has no {fn}() function.",
                             "A model file must define build_model() -> nn.Module and "
                             "example_inputs(batch_size) -> tuple of tensors.")
    try:
        module = mod.build_model().eval()
        inputs = mod.example_inputs(spec.batch_size)
    except Exception as e:
        raise ModelError(f"{path.name} failed while building: {type(e).__name__}: {str(e)[:300]}") from e
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    if not isinstance(module, torch.nn.Module) or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise ModelError(f"{path.name}: build_model() must return an nn.Module and example_inputs() tensors.")
    inputs, specs = _with_given_inputs(module, tuple(inputs), spec, weights, seed)
    largest = _check_runs(module, inputs, spec)
    info = _info(module, inputs, "custom", "unknown", specs) | {"largest_activation_bytes": largest}
    return BuiltModel(module, inputs, weights, info, input_specs=specs)


def _with_given_inputs(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], spec: ModelSpec, identity: str,
                       seed: int) -> tuple[tuple[torch.Tensor, ...], tuple[InputSpec, ...]]:
    """A file model's own example inputs, or tensors made from ``spec.inputs`` when those are given."""
    if spec.inputs is None:
        try:
            return inputs, input_tensors.specs_from_tensors(inputs)
        except ConfigError:   # a dtype the specs do not cover (float64 ...): the model still runs as is
            return inputs, ()
    if len(spec.inputs) != len(inputs):
        raise ModelError(f"{spec.source} takes {len(inputs)} input(s) but model.inputs lists {len(spec.inputs)}.",
                         "Give one entry per input, in the order example_inputs() returns them.")
    try:
        shapes = settings_inputs.measured_shapes(spec.inputs, spec.batch_size, spec.sequence_length)
    except ConfigError as e:
        raise ModelError(f"{e.field}: {e.message}.") from None
    given = input_tensors.example_tensors(spec.inputs, shapes, seed=seed + 1)
    if any(s.is_dynamic for s in spec.inputs):
        _check_dynamic_ranges(module, spec.inputs, identity)
    return given, spec.inputs


def _import_file(path: Path) -> Any:
    name = f"trtdash_custom_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{path.name} cannot be imported.")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise ModelError(f"{path.name} failed to import: {type(e).__name__}: {str(e)[:300]}") from e
    sys.modules.pop(name, None)
    return mod


def _example_inputs_from_ep(ep: Any, spec: ModelSpec) -> tuple[torch.Tensor, ...]:
    inputs = []
    for node in ep.graph.nodes:
        if node.op != "placeholder" or node.name in ep.graph_signature.inputs_to_parameters or \
                node.name in ep.graph_signature.inputs_to_buffers:
            continue
        val = node.meta.get("val")
        if val is None:
            continue
        shape = [int(d) if isinstance(d, int) else spec.batch_size for d in val.shape]
        if val.dtype.is_floating_point:
            inputs.append(torch.randn(*shape, dtype=val.dtype))
        else:
            inputs.append(torch.zeros(*shape, dtype=val.dtype))
    return tuple(inputs)


def describe_inputs(spec: ModelSpec) -> str:
    """One line naming the inputs a spec feeds the model (name, shape, dtype, dynamic range), without building it."""
    if spec.source.startswith(FILE_PREFIX) and spec.inputs is None:
        return "Inputs: from the model file's example_inputs()" if spec.source.endswith(".py") \
            else "Inputs: from the ExportedProgram's signature"
    entry = REGISTRY.get(spec.source)
    if entry is None and spec.inputs is None:
        return ""
    specs = spec.inputs if entry is None else input_specs(entry, spec)
    parts = []
    for s in specs:
        shape = "x".join(map(str, s.shape))
        if s.is_dynamic:
            shape = f"{'x'.join(map(str, s.lower))} … {shape} … {'x'.join(map(str, s.upper))}"
        parts.append(f"{s.name} {shape} {s.dtype}")
    return "Inputs: " + ", ".join(parts)
