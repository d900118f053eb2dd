"""What the registry lists and what building a model gives: ``RegistryEntry`` and ``BuiltModel``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.settings.inputs import InputSpec
from engine.settings.request import ModelSpec


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    family: str  # "torchvision" | "timm" | "transformers"
    default_input_shape: tuple[int, ...]  # without batch; (sequence,) for text models
    build: Callable[[], torch.nn.Module]
    task: str = "classification"
    notes: str = ""
    input_kind: str = "image"  # "image": one float input; "text": token ids + attention mask
    # the inputs for a spec (text models); None: one float image of default_input_shape
    make_inputs: Callable[[ModelSpec], tuple[InputSpec, ...]] | None = None
    # weights from the local cache only, None when not cached; None here: torchvision's hub cache
    load_pretrained: Callable[[], torch.nn.Module | None] | None = None


@dataclass
class BuiltModel:
    module: torch.nn.Module
    example_inputs: tuple[torch.Tensor, ...]  # on CPU, fp32 unless integer inputs
    identity: str  # weights identity for the cache key
    info: dict[str, Any] = field(default_factory=dict)
    exported_program: Any = None  # torch.export.ExportedProgram for .pt2 files
    # what the inputs are (names, dtypes, dynamic min/opt/max): torch_tensorrt.Input objects come from these
    input_specs: tuple[InputSpec, ...] = ()


# torchvision starts these models' classification head at zero: with random weights every output is 0 and
# no accuracy figure means anything (seen in the H200 vit_b_16 ladder). Built from a seed, their zero
# Linear weights get a small random init instead; the weights identity says so.
