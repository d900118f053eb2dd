"""Every torchvision classification model and every timm model, by name, without building one.

The names come from the libraries' own lists (``torchvision.models.list_models(module=torchvision.models)``,
``timm.list_models()``), read once per process. A name becomes a ``RegistryEntry`` only when it is looked up
(``torchvision_entry`` / ``timm_entry``): its default input shape comes from the library's configuration, never
from building the model. Every build is from random weights (``weights=None`` / ``pretrained=False``, the seed
set by the caller): nothing is downloaded.

Names: torchvision models by their own name (``regnet_y_800mf``), timm models as ``timm/<name>``
(``timm/convnext_tiny``), the prefix the curated timm entries have always had.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from collections.abc import Callable, Iterable
from typing import Any

import torch

from engine.models.entry import RegistryEntry

TIMM_PREFIX = "timm/"
IMAGE_SHAPE = (3, 224, 224)  # without batch: what a model without a documented size is fed

# torchvision starts these models' classification head at zero: with random weights every output is 0 and
# no accuracy figure means anything (seen in the H200 vit_b_16 ladder). Built from a seed, their zero
# Linear weights get a small random init instead; the weights identity says so.
ZERO_HEAD_PREFIXES = ("vit_",)

# The documented size is that of the default weights (``transforms`` crop size); a few constructors fix another
# size when built without weights: vit_h_14 takes 518 only with its SWAG weights, 224 from random weights.
RANDOM_WEIGHTS_SIZE = {"vit_h_14": 224}


def offline() -> None:
    """No Hugging Face hub access from here on (huggingface_hub reads this at import; timm goes through it)."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"


@functools.cache
def torchvision_names() -> tuple[str, ...]:
    """Every torchvision classification model (detection, segmentation and video models are in sub-modules)."""
    import torchvision.models as tvm

    return tuple(tvm.list_models(module=tvm))


@functools.cache
def timm_names() -> tuple[str, ...]:
    """Every timm architecture, without the ``timm/`` prefix; empty when timm is not installed."""
    if importlib.util.find_spec("timm") is None:
        return ()
    offline()
    import timm

    return tuple(timm.list_models())


@functools.cache
def _name_sets() -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(torchvision_names()), frozenset(timm_names())


def is_torchvision(name: str) -> bool:
    return name in _name_sets()[0]


def is_timm(source: str) -> bool:
    return source.startswith(TIMM_PREFIX) and source[len(TIMM_PREFIX) :] in _name_sets()[1]


def sources() -> list[str]:
    """Every catalogue name as a model source: torchvision names, then ``timm/<name>``."""
    return [*torchvision_names(), *(TIMM_PREFIX + n for n in timm_names())]


def close_matches(source: str, known: Iterable[str], n: int = 5) -> list[str]:
    """The known names closest to a mistyped one (difflib's ratio), best first."""
    return difflib.get_close_matches(source, list(known), n=n, cutoff=0.6)


# -- torchvision ---------------------------------------------------------------------------------------------------
def torchvision_builder(name: str) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        import torchvision.models as tvm

        module = tvm.get_model(name, weights=None)
        if name.startswith(ZERO_HEAD_PREFIXES):
            for layer in module.modules():
                if isinstance(layer, torch.nn.Linear) and not layer.weight.detach().any():
                    torch.nn.init.trunc_normal_(layer.weight, std=0.02)
        return module

    return build


def _default_weights(name: str) -> Any:
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def torchvision_shape(name: str) -> tuple[int, int, int]:
    """(3, S, S): S the crop size of the model's default weights' transforms (299 for inception_v3), or the size
    its constructor fixes without weights."""
    size = RANDOM_WEIGHTS_SIZE.get(name)
    if size is None:
        transforms = _default_weights(name).transforms
        size = int(getattr(transforms, "keywords", {}).get("crop_size") or IMAGE_SHAPE[1])
    return (3, size, size)


def torchvision_parameters(name: str) -> int | None:
    """The parameter count torchvision documents for the model's default weights (the same architecture)."""
    count = _default_weights(name).meta.get("num_params")
    return int(count) if count else None


def torchvision_entry(name: str) -> RegistryEntry:
    return RegistryEntry(
        name,
        "torchvision",
        torchvision_shape(name),
        torchvision_builder(name),
        notes=f"torchvision.models.get_model({name!r}, weights=None)",
    )


# -- timm ----------------------------------------------------------------------------------------------------------
def timm_builder(name: str) -> Callable[..., torch.nn.Module]:
    def build(**overrides: Any) -> torch.nn.Module:
        offline()
        import timm

        return timm.create_model(name, pretrained=False, **overrides)

    return build


def _timm_cfg(name: str) -> Any:
    offline()
    import timm

    return timm.models.get_pretrained_cfg(name)


def timm_shape(name: str) -> tuple[int, ...]:
    """The model's ``pretrained_cfg["input_size"]`` (C, H, W), (3, 224, 224) when it has none."""
    size = getattr(_timm_cfg(name), "input_size", None)
    return tuple(int(d) for d in size) if size else IMAGE_SHAPE


def timm_task(name: str) -> str:
    """ "classification", or "feature_extraction" for a model built without a classifier (``num_classes`` 0 in
    its configuration: CLIP and other image towers return pooled features)."""
    return "feature_extraction" if getattr(_timm_cfg(name), "num_classes", 1000) == 0 else "classification"


@functools.lru_cache(maxsize=256)
def timm_parameters(name: str) -> int | None:
    """The parameter count of a timm model, from a build on the meta device (no memory, no weights initialised);
    None when the model cannot be built there."""
    offline()
    import timm

    try:
        with torch.device("meta"):
            module = timm.create_model(name, pretrained=False)
    except Exception:  # a model whose constructor computes on tensor values cannot be built on meta
        return None
    return sum(p.numel() for p in module.parameters())


def timm_entry(source: str, load_pretrained: Callable[[], torch.nn.Module | None] | None = None) -> RegistryEntry:
    name = source[len(TIMM_PREFIX) :]
    return RegistryEntry(
        source,
        "timm",
        timm_shape(name),
        timm_builder(name),
        task=timm_task(name),
        notes=f"timm.create_model({name!r}, pretrained=False)",
        load_pretrained=load_pretrained,
    )
