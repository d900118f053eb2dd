"""Our own decoder implementations in plain torch (no transformers needed where they run): GPT-2 and the Llama
architecture, built from a ``DecoderConfig`` with random weights from a seed, loading Hugging Face state dicts by
their own names. ``as_decoder`` turns what a user's ``build_model()`` returned into one of them.

What ``build_model()`` in a user's ``.py`` file may return (a causal LM, one of):

- a ``CausalDecoder`` (``engine.generative.models.build(DecoderConfig(...))``, or a subclass of your own that
  provides ``prefill(input_ids, cache_len)`` and ``decode(token, position, keys, values)`` with these shapes);
- a Hugging Face causal LM of the GPT-2 or Llama family (``GPT2LMHeadModel``, ``LlamaForCausalLM``): its
  configuration and weights are copied into ours, which carries the static cache;
- a dict of Hugging Face configuration values of a GPT-2 or Llama model (random weights).

A model without a causal-LM head (``GPT2Model``, an encoder, a classifier) is refused with ``NoCausalLMHead``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from engine.errors import ModelError
from engine.generative.configs import DecoderConfig
from engine.generative.models.decoder import CausalDecoder
from engine.generative.models.gpt2 import GPT2Decoder
from engine.generative.models.llama import LlamaDecoder

# Hugging Face keys that hold no weight of ours: GPT-2's causal-mask buffers, Llama's rotary frequencies
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")
_CAUSAL_LM_CLASSES = ("GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")


class NoCausalLMHead(ModelError):
    """The model built has no causal-LM head: it cannot generate tokens."""


def build(config: DecoderConfig, seed: int = 0) -> CausalDecoder:
    """Our decoder of ``config`` in eval mode on CPU, random weights from ``seed``."""
    torch.manual_seed(seed)
    model: CausalDecoder = GPT2Decoder(config) if config.arch == "gpt2" else LlamaDecoder(config)
    return model.eval()


def load_hf_state_dict(model: CausalDecoder, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a Hugging Face ``GPT2LMHeadModel`` / ``LlamaForCausalLM`` state dict into ``model`` by its names."""
    wanted = {k: v for k, v in state_dict.items() if not k.endswith(_IGNORED_SUFFIXES)}
    missing, unexpected = model.load_state_dict(wanted, strict=False)
    tied = {"lm_head.weight"} if model.config.tie_embeddings else set()
    missing = [k for k in missing if k not in tied and not k.endswith(_IGNORED_SUFFIXES)]
    if missing or unexpected:
        raise ModelError(
            f"The weights do not match a {model.config.arch} decoder: "
            f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}.",
            "Give a GPT-2 or Llama-family causal LM whose configuration matches its weights.",
        )


def as_decoder(obj: Any, seed: int = 0) -> CausalDecoder:
    """What a user's ``build_model()`` returned, as our static-cache decoder (see the module's docstring)."""
    if isinstance(obj, CausalDecoder):
        return obj.eval()
    if isinstance(obj, Mapping):
        return build(DecoderConfig.from_hf(obj), seed)
    name = type(obj).__name__
    hf_config = getattr(obj, "config", None)
    if isinstance(obj, torch.nn.Module) and hf_config is not None and hasattr(hf_config, "to_dict"):
        if name not in _CAUSAL_LM_CLASSES:
            raise NoCausalLMHead(
                f"{name} has no causal-LM head: generation needs logits over the vocabulary at every position.",
                "Return the causal-LM class of the family (GPT2LMHeadModel, LlamaForCausalLM) from build_model().",
            )
        model = build(DecoderConfig.from_hf(hf_config.to_dict()), seed)
        load_hf_state_dict(model, obj.state_dict())
        return model
    raise NoCausalLMHead(
        f"build_model() returned a {name}, which is not a causal LM this tool can generate with.",
        "Return a GPT-2 / Llama causal LM (Hugging Face or engine.generative.models.build(DecoderConfig(...))), "
        "or a dict of its Hugging Face configuration values.",
    )


__all__ = ["CausalDecoder", "NoCausalLMHead", "as_decoder", "build", "load_hf_state_dict"]
