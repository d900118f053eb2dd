"""Registry entries beyond torchvision: timm image models and Hugging Face transformers.

Every model is built from its own configuration with random weights; nothing is downloaded.
Builders set ``HF_HUB_OFFLINE=1`` before importing timm or transformers, and pretrained weights
are loaded only from files already in the local Hugging Face cache (``local_files_only``).

Transformers are wrapped so that they take plain tensors and return one tensor, the last
hidden state: ``(input_ids, attention_mask)`` for text models, ``(pixel_values)`` for ViT.
That is the signature ``torch.export`` and Torch-TensorRT take, and the eager backend calls.

``build(**overrides)`` on a family model passes configuration overrides through (tests build
two-layer versions); the registry's own entries use the library's defaults: ``BertConfig()`` is
BERT-base.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from engine.models import catalogue
from engine.models.entry import RegistryEntry
from engine.settings.inputs import BATCH_DIM, SEQUENCE_DIM, InputSpec
from engine.settings.request import ModelSpec

OFFLINE_ENV = "HF_HUB_OFFLINE"
DEFAULT_SEQUENCE_LENGTH = 128
IMAGE_SHAPE = (3, 224, 224)  # timm's and ViTConfig's defaults, without batch
TIMM_PREFIX = catalogue.TIMM_PREFIX
HF_PREFIX = "hf/"


class TextEncoder(torch.nn.Module):
    """``(input_ids, attention_mask) -> last_hidden_state`` around a transformers model."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class ImageEncoder(torch.nn.Module):
    """``pixel_values -> last_hidden_state`` around a transformers vision model."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).last_hidden_state


class SequenceTooLong(ValueError):
    """A text model was asked for more tokens than its position embeddings hold."""


@dataclass(frozen=True)
class FamilyModel:
    """One model of a family, before it becomes a ``RegistryEntry``."""

    name: str  # registry name, e.g. "hf/bert-base"
    family: str  # "timm" | "transformers"
    input_kind: str  # "image" | "text"
    build: Callable[..., torch.nn.Module]  # build(**config_overrides), random weights
    load_pretrained: Callable[[], torch.nn.Module | None]
    default_input_shape: tuple[int, ...] = IMAGE_SHAPE  # without batch; (sequence,) for text
    make_inputs: Callable[[ModelSpec], tuple[InputSpec, ...]] | None = None  # None: one float image
    task: str = "classification"
    notes: str = ""


# -- timm ----------------------------------------------------------------------------------------
def timm_pretrained(name: str) -> Callable[[], torch.nn.Module | None]:
    def load() -> torch.nn.Module | None:
        catalogue.offline()
        import timm
        from huggingface_hub import try_to_load_from_cache

        cfg = timm.models.get_pretrained_cfg(name)
        repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if not repo:
            return None
        for filename in ("model.safetensors", "pytorch_model.bin"):
            path = try_to_load_from_cache(repo, filename)
            if isinstance(path, str):
                return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": path})
        return None

    return load


TIMM_MODELS = ("efficientnet_b0", "convnext_tiny", "deit_small_patch16_224", "resnet50")


def _timm_model(name: str) -> FamilyModel:
    return FamilyModel(
        TIMM_PREFIX + name,
        "timm",
        "image",
        catalogue.timm_builder(name),
        timm_pretrained(name),
        notes=f"timm.create_model({name!r}, pretrained=False)",
    )


# -- transformers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _HF:
    config_class: str
    model_class: str
    pretrained_repo: str
    input_kind: str = "text"
    config_overrides: tuple[tuple[str, Any], ...] = ()


def _hf_config(spec: _HF, overrides: dict[str, Any]) -> Any:
    catalogue.offline()
    import transformers

    return getattr(transformers, spec.config_class)(**dict(spec.config_overrides), **overrides)


def _hf_wrap(spec: _HF, model: torch.nn.Module) -> torch.nn.Module:
    return TextEncoder(model) if spec.input_kind == "text" else ImageEncoder(model)


def _hf_build(spec: _HF) -> Callable[..., torch.nn.Module]:
    def build(**overrides: Any) -> torch.nn.Module:
        import transformers

        config = _hf_config(spec, overrides)
        return _hf_wrap(spec, getattr(transformers, spec.model_class)(config))

    return build


def _hf_pretrained(spec: _HF) -> Callable[[], torch.nn.Module | None]:
    def load() -> torch.nn.Module | None:
        catalogue.offline()
        import transformers

        try:
            model = getattr(transformers, spec.model_class).from_pretrained(
                spec.pretrained_repo, local_files_only=True, **dict(spec.config_overrides)
            )
        except OSError:  # what transformers raises when the files are not in the cache
            return None
        return _hf_wrap(spec, model)

    return load


# use_cache off: a key/value cache is for generation, and its extra outputs break torch.export
_HF_MODELS: dict[str, _HF] = {
    "bert-base": _HF("BertConfig", "BertModel", "google-bert/bert-base-uncased"),
    "distilbert-base": _HF("DistilBertConfig", "DistilBertModel", "distilbert/distilbert-base-uncased"),
    "gpt2": _HF("GPT2Config", "GPT2Model", "openai-community/gpt2", config_overrides=(("use_cache", False),)),
    "t5-small-encoder": _HF("T5Config", "T5EncoderModel", "google-t5/t5-small"),
    "vit-base-patch16-224": _HF("ViTConfig", "ViTModel", "google/vit-base-patch16-224", input_kind="image"),
}


@functools.cache
def text_limits(short: str) -> tuple[int, int | None]:
    """(vocab size, most tokens the position embeddings hold or None) of a registry text model's config."""
    config = _hf_config(_HF_MODELS[short], {})
    max_positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(config.vocab_size), max_positions


def text_inputs(batch_size: int, sequence_length: int, vocab_size: int) -> tuple[InputSpec, ...]:
    """``input_ids`` (random token ids) and ``attention_mask`` (all ones: no padding), int64."""
    names = (BATCH_DIM, SEQUENCE_DIM)
    shape = (batch_size, sequence_length)
    return (
        InputSpec("input_ids", shape, "int64", value_range=(0, vocab_size), dim_names=names),
        InputSpec("attention_mask", shape, "int64", value_range=(1, 2), dim_names=names),
    )


def _text_inputs_for(name: str, short: str) -> Callable[[ModelSpec], tuple[InputSpec, ...]]:
    def make(spec: ModelSpec) -> tuple[InputSpec, ...]:
        vocab, max_positions = text_limits(short)
        length = spec.sequence_length or DEFAULT_SEQUENCE_LENGTH
        if max_positions is not None and length > max_positions:
            raise SequenceTooLong(
                f"{name} holds at most {max_positions} tokens (its position embeddings); "
                f"sequence length {length} is too long"
            )
        return text_inputs(spec.batch_size, length, vocab)

    return make


def _pixel_values(spec: ModelSpec) -> tuple[InputSpec, ...]:
    shape = (spec.batch_size, *(spec.input_shape or IMAGE_SHAPE))
    return (InputSpec("pixel_values", shape, "float32"),)


def _hf_model(short: str, spec: _HF) -> FamilyModel:
    notes = f"transformers.{spec.model_class}({spec.config_class}()), random weights"
    if spec.input_kind == "image":
        return FamilyModel(
            HF_PREFIX + short,
            "transformers",
            "image",
            _hf_build(spec),
            _hf_pretrained(spec),
            make_inputs=_pixel_values,
            task="feature_extraction",
            notes=notes,
        )
    return FamilyModel(
        HF_PREFIX + short,
        "transformers",
        "text",
        _hf_build(spec),
        _hf_pretrained(spec),
        default_input_shape=(DEFAULT_SEQUENCE_LENGTH,),
        make_inputs=_text_inputs_for(HF_PREFIX + short, short),
        task="feature_extraction",
        notes=notes,
    )


def family_models() -> dict[str, FamilyModel]:
    """Every timm and transformers model the registry offers, by registry name (imports neither)."""
    out = {m.name: m for m in (_timm_model(n) for n in TIMM_MODELS)}
    out |= {m.name: m for m in (_hf_model(short, spec) for short, spec in _HF_MODELS.items())}
    return out


def available() -> bool:
    """Whether timm and transformers are installed (they are optional for the core)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("timm", "transformers"))


def entries() -> dict[str, RegistryEntry]:
    """``RegistryEntry`` objects for ``engine.models.registry.REGISTRY``; empty when the libraries are missing."""
    if not available():
        return {}
    return {
        m.name: RegistryEntry(
            m.name,
            m.family,
            m.default_input_shape,
            m.build,
            task=m.task,
            notes=m.notes,
            input_kind=m.input_kind,
            make_inputs=m.make_inputs,
            load_pretrained=m.load_pretrained,
        )
        for m in family_models().values()
    }
