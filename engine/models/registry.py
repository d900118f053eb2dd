"""Buildable models: the built-in registry (torchvision, timm and Hugging Face configurations, engine/models/
families.py) and the admin's model files (engine/models/files.py), by name, with the inputs each is fed.

Registry models get random weights from a fixed seed; pretrained weights are used only when already in the local
torch hub cache (nothing is downloaded). ``build`` returns the model in eval mode on CPU with example inputs,
after checking it runs on them (engine/models/checks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from engine.errors import ConfigError, ModelError
from engine.models import families
from engine.models.checks import check_dynamic_ranges, check_runs, model_info
from engine.models.entry import BuiltModel, RegistryEntry
from engine.models.files import FILE_PREFIX, build_file, custom_model_files, file_identity
from engine.models.input_tensors import example_tensors
from engine.settings.inputs import InputSpec, measured_shapes
from engine.settings.request import ModelSpec

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


for _name, _entry in families.entries().items():
    REGISTRY.setdefault(_name, _entry)


def available_sources() -> list[str]:
    """What the model picker lists: registry names, then ``file:`` entries."""
    return list(REGISTRY) + [FILE_PREFIX + n for n in custom_model_files()]


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
        return file_identity(spec, seed)
    if spec.pretrained:
        return f"registry:{spec.source}:pretrained"
    tag = NONZERO_HEAD_TAG if spec.source.startswith(ZERO_HEAD_PREFIXES) and spec.source in _TV_224 else ""
    return f"registry:{spec.source}:seed{seed}{tag}"


def build(spec: ModelSpec, seed: int = 0) -> BuiltModel:
    """Build the model in eval mode on CPU, with example inputs for ``spec``'s batch and shape."""
    if spec.source.startswith(FILE_PREFIX):
        return build_file(spec, seed)
    entry = REGISTRY.get(spec.source)
    if entry is None:
        raise ModelError(f"Unknown model {spec.source!r}.",
                         f"Choose one of {', '.join(REGISTRY)} or a file: model from the models directory.")
    torch.manual_seed(seed)
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
        shapes = measured_shapes(specs, spec.batch_size, spec.sequence_length)
    except ConfigError as e:
        raise ModelError(f"{e.field}: {e.message}.") from None
    example = example_tensors(specs, shapes, seed=seed + 1)
    largest = check_runs(module, example, spec)
    if spec.inputs is not None and any(s.is_dynamic for s in specs):
        check_dynamic_ranges(module, specs, weights)
    info = model_info(module, example, entry.family, entry.task, specs) | {"largest_activation_bytes": largest}
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


def describe_inputs(spec: ModelSpec) -> str:
    """One line naming the inputs a spec feeds the model (name, shape, dtype, dynamic range), without building it."""
    if spec.source.startswith(FILE_PREFIX) and spec.inputs is None:
        return "Inputs: from the model file's example_inputs()" if spec.source.endswith(".py") \
            else "Inputs: from the ExportedProgram's signature"
    entry = REGISTRY.get(spec.source)
    if entry is None and spec.inputs is None:
        return ""
    specs = input_specs(entry, spec) if entry is not None else spec.inputs or ()
    parts = []
    for s in specs:
        shape = "x".join(map(str, s.shape))
        if s.is_dynamic:
            shape = f"{'x'.join(map(str, s.lower))} … {shape} … {'x'.join(map(str, s.upper))}"
        parts.append(f"{s.name} {shape} {s.dtype}")
    return "Inputs: " + ", ".join(parts)
