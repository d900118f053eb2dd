"""Buildable models: the built-in registry (curated torchvision, timm and Hugging Face configurations, engine/models/
families.py, then every torchvision classification and timm model by name, engine/models/catalogue.py) and the
admin's model files (engine/models/files.py), by name, with the inputs each is fed.

Registry models get random weights from a fixed seed; pretrained weights are used only when already in the local
torch hub cache (nothing is downloaded). ``build`` returns the model in eval mode on CPU with example inputs,
after checking it runs on them (engine/models/checks.py).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path

import torch

from engine.errors import ConfigError, ModelError
from engine.models import catalogue, families
from engine.models.checks import check_dynamic_ranges, check_memory, check_runs, model_info
from engine.models.entry import BuiltModel, RegistryEntry
from engine.models.files import FILE_PREFIX, build_file, custom_model_files, file_identity, resolve_file
from engine.models.footprint import MemoryLimits
from engine.models.input_tensors import example_tensors
from engine.settings.inputs import InputSpec, measured_shapes
from engine.settings.request import ModelSpec

ZERO_HEAD_PREFIXES = catalogue.ZERO_HEAD_PREFIXES
NONZERO_HEAD_TAG = ":nonzero-head"

_TV_224 = [
    "resnet18",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
    "regnet_y_400mf",
    "densenet121",
]

# the hand-picked models, listed first in the picker: their entries (and so their runs' cache keys) never change
CURATED: dict[str, RegistryEntry] = {
    n: RegistryEntry(n, "torchvision", (3, 224, 224), catalogue.torchvision_builder(n)) for n in _TV_224
}
for _name, _entry in families.entries().items():
    CURATED.setdefault(_name, _entry)


class Registry(MutableMapping[str, RegistryEntry]):
    """Every registry model by name: the curated entries, then every torchvision classification model and every
    timm model (engine/models/catalogue.py), whose entries are made when first looked up. Setting an entry (a
    test's smaller configuration) replaces or adds a curated one."""

    def __init__(self, curated: dict[str, RegistryEntry]):
        self._curated = curated
        self._made: dict[str, RegistryEntry] = {}

    def __getitem__(self, name: str) -> RegistryEntry:
        if name in self._curated:
            return self._curated[name]
        if name not in self._made:
            if catalogue.is_timm(name):
                short = name[len(catalogue.TIMM_PREFIX) :]
                self._made[name] = catalogue.timm_entry(name, families.timm_pretrained(short))
            elif catalogue.is_torchvision(name):
                self._made[name] = catalogue.torchvision_entry(name)
            else:
                raise KeyError(name)
        return self._made[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            name in self._curated or catalogue.is_timm(name) or catalogue.is_torchvision(name)
        )

    def __iter__(self) -> Iterator[str]:
        yield from self._curated
        yield from (n for n in catalogue.sources() if n not in self._curated)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, name: str, entry: RegistryEntry) -> None:
        self._curated[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._curated[name]


REGISTRY = Registry(CURATED)


def available_sources() -> list[str]:
    """What the model picker lists: the curated models, every other torchvision and timm model, then ``file:``
    entries (names only: no model is built, the catalogue's lists are read once per process)."""
    return list(REGISTRY) + [FILE_PREFIX + n for n in custom_model_files()]


def unknown_model(source: str) -> tuple[str, str]:
    """(message, hint) for a source that names no model, the hint listing the closest names."""
    close = catalogue.close_matches(source, list(REGISTRY) + [FILE_PREFIX + n for n in custom_model_files()])
    message = f"Unknown model {source!r}" + (f"; did you mean {', '.join(close)}?" if close else ".")
    return message, (
        "Torchvision models go by their name (resnet50), timm models as timm/<name> "
        "(timm/convnext_tiny), model files as file:<name> from the models directory."
    )


def check_source(spec: ModelSpec) -> None:
    """Refuse, at submit, a source that names no model (or a model file the picker hides): ConfigError on
    model.source with the closest names."""
    if spec.source.startswith(FILE_PREFIX):
        try:
            resolve_file(spec.source)
        except ModelError as e:
            raise ConfigError("model.source", e.message.rstrip(".") + ". " + e.hint) from None
        return
    entry = REGISTRY.get(spec.source)
    if entry is not None:
        try:
            input_specs(entry, spec)  # an input shape for a text model, a sequence length for an image model
        except ModelError as e:
            text_shape = entry.input_kind == "text" and spec.input_shape is not None
            knob = "model.input_shape" if text_shape else "model.sequence_length"
            raise ConfigError(knob, e.message.rstrip(".") + ". " + e.hint) from None
        return
    message, hint = unknown_model(spec.source)
    raise ConfigError("model.source", message[0].lower() + message[1:] + " " + hint)


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
    zero_head = spec.source.startswith(ZERO_HEAD_PREFIXES) and (
        spec.source in _TV_224 or catalogue.is_torchvision(spec.source)
    )
    tag = NONZERO_HEAD_TAG if zero_head else ""
    return f"registry:{spec.source}:seed{seed}{tag}"


def build(spec: ModelSpec, seed: int = 0, limits: MemoryLimits | None = None) -> BuiltModel:
    """Build the model in eval mode on CPU, with example inputs for ``spec``'s batch and shape; with ``limits``,
    refuse one whose memory estimate does not fit before its check run allocates anything."""
    if spec.source.startswith(FILE_PREFIX):
        return build_file(spec, seed, limits)
    entry = REGISTRY.get(spec.source)
    if entry is None:
        raise ModelError(*unknown_model(spec.source))
    torch.manual_seed(seed)
    module = None
    weights = identity(spec, seed)
    specs = input_specs(entry, spec)
    if spec.pretrained:
        module = (entry.load_pretrained or (lambda: _pretrained_from_cache(entry.name)))()
        if module is None:
            raise ModelError(
                f"No cached pretrained weights for {entry.name}.",
                "Pretrained weights are never downloaded; untick 'Pretrained weights' or place "
                "the file in the local cache (torch hub for torchvision, the Hugging Face hub "
                "cache for timm and transformers).",
            )
    if module is None:
        module = entry.build()
    module.eval()
    try:
        shapes = measured_shapes(specs, spec.batch_size, spec.sequence_length)
    except ConfigError as e:
        raise ModelError(f"{e.field}: {e.message}.") from None
    example = example_tensors(specs, shapes, seed=seed + 1)
    check_memory(module, example, spec, limits)
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
            raise ModelError(
                f"{entry.name} is a text model: it takes no input shape.",
                "Set 'Sequence length' instead and leave 'Input shape' empty.",
            )
    elif spec.sequence_length is not None:
        raise ModelError(
            f"{entry.name} is an image model: sequence length does not apply.",
            "Leave 'Sequence length' empty, or set 'Input shape (without batch)'.",
        )
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
        return (
            "Inputs: from the model file's example_inputs()"
            if spec.source.endswith(".py")
            else "Inputs: from the ExportedProgram's signature"
        )
    entry = REGISTRY.get(spec.source)
    if entry is not None:
        specs = input_specs(entry, spec)
    elif spec.inputs is not None:
        specs = spec.inputs
    else:
        return ""
    parts = []
    for s in specs:
        shape = "x".join(map(str, s.shape))
        if s.is_dynamic:
            shape = f"{'x'.join(map(str, s.lower))} … {shape} … {'x'.join(map(str, s.upper))}"
        parts.append(f"{s.name} {shape} {s.dtype}")
    return "Inputs: " + ", ".join(parts)
