"""Decoder configurations: the shapes of a decoder-only model, read from Hugging Face-style configuration values.

``DecoderConfig`` is the one type the models, the static cache and the memory estimate read. It is built from a
Hugging Face ``config.json``-like mapping (``from_hf``: GPT-2's ``n_embd``/``n_layer``/``n_head``/``n_positions``,
Llama's ``hidden_size``/``num_hidden_layers``/``num_attention_heads``/``num_key_value_heads``/...), so a user's
configuration file reads the same way the library reads it. ``NAMED`` holds the registry's decoders: GPT-2 124M, a
Llama-architecture model of the shapes of a 1B model with grouped-query attention, and tiny ones for CPU tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ModelError

ARCHITECTURES = ("gpt2", "llama")


@dataclass(frozen=True)
class DecoderConfig:
    """The shapes of one decoder-only causal LM."""

    arch: str  # "gpt2" | "llama"
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int  # == num_heads without grouped-query attention
    intermediate_size: int
    max_positions: int  # the most tokens (prompt + generated) the model's positions hold
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0  # llama only
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ModelError(f"Unknown decoder architecture {self.arch!r}.", f"Use one of {', '.join(ARCHITECTURES)}.")
        if self.hidden_size % self.num_heads:
            raise ModelError(
                f"hidden size {self.hidden_size} is not a multiple of the {self.num_heads} attention heads.",
                "Pick a head count that divides the hidden size.",
            )
        if self.num_heads % self.num_kv_heads:
            raise ModelError(
                f"{self.num_heads} attention heads cannot be grouped over {self.num_kv_heads} key/value heads.",
                "The key/value head count must divide the attention head count.",
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def replace(self, **changes: Any) -> DecoderConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_hf(cls, hf: Mapping[str, Any]) -> DecoderConfig:
        """From Hugging Face configuration values (a ``config.json`` as a dict, or ``PretrainedConfig.to_dict()``)."""
        model_type = str(hf.get("model_type", "")).lower()
        if model_type == "gpt2" or "n_embd" in hf:
            hidden = int(hf.get("n_embd", 768))
            return cls(
                arch="gpt2",
                vocab_size=int(hf.get("vocab_size", 50257)),
                hidden_size=hidden,
                num_layers=int(hf.get("n_layer", 12)),
                num_heads=int(hf.get("n_head", 12)),
                num_kv_heads=int(hf.get("n_head", 12)),
                intermediate_size=int(hf.get("n_inner") or 4 * hidden),
                max_positions=int(hf.get("n_positions", 1024)),
                norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
                tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
            )
        if model_type in ("llama", "mistral", "qwen2") or "num_key_value_heads" in hf:
            if hf.get("rope_scaling"):
                raise ModelError(
                    "RoPE scaling (rope_scaling) is not implemented by the built-in Llama decoder.",
                    "Remove rope_scaling from the configuration (the shapes and the cost stay the same).",
                )
            heads = int(hf["num_attention_heads"])
            return cls(
                arch="llama",
                vocab_size=int(hf["vocab_size"]),
                hidden_size=int(hf["hidden_size"]),
                num_layers=int(hf["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(hf.get("num_key_value_heads") or heads),
                intermediate_size=int(hf["intermediate_size"]),
                max_positions=int(hf.get("max_position_embeddings", 2048)),
                norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
                rope_theta=float(hf.get("rope_theta", 10000.0)),
                tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            )
        raise ModelError(
            f"Configuration of model type {model_type or '?'!r} is not a decoder this tool builds.",
            "Use a GPT-2 or Llama-architecture configuration, or a model file with build_model().",
        )

    def hf_dict(self) -> dict[str, Any]:
        """The Hugging Face configuration values of this shape (what ``GPT2Config(**d)`` / ``LlamaConfig(**d)``
        take): the tests build the library's own model from it."""
        if self.arch == "gpt2":
            return {
                "vocab_size": self.vocab_size,
                "n_embd": self.hidden_size,
                "n_layer": self.num_layers,
                "n_head": self.num_heads,
                "n_inner": self.intermediate_size,
                "n_positions": self.max_positions,
                "layer_norm_epsilon": self.norm_eps,
                "tie_word_embeddings": self.tie_embeddings,
            }
        return {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_positions,
            "rms_norm_eps": self.norm_eps,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_embeddings,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
        }


GPT2_124M = DecoderConfig(
    arch="gpt2",
    vocab_size=50257,
    hidden_size=768,
    num_layers=12,
    num_heads=12,
    num_kv_heads=12,
    intermediate_size=3072,
    max_positions=1024,
)
# the shapes of Llama 3.2 1B (grouped-query attention: 32 query heads over 8 key/value heads), without its
# rope_scaling (a change of the rotary frequencies only: the same ops and cost)
LLAMA_1B = DecoderConfig(
    arch="llama",
    vocab_size=128256,
    hidden_size=2048,
    num_layers=16,
    num_heads=32,
    num_kv_heads=8,
    intermediate_size=8192,
    max_positions=8192,
    norm_eps=1e-5,
    rope_theta=500000.0,
    tie_embeddings=True,
)
TINY_GPT2 = DecoderConfig(
    arch="gpt2",
    vocab_size=256,
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=4,
    intermediate_size=256,
    max_positions=128,
)
TINY_LLAMA = DecoderConfig(
    arch="llama",
    vocab_size=256,
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    intermediate_size=128,
    max_positions=128,
    tie_embeddings=False,
)

NAMED: dict[str, DecoderConfig] = {
    "hf/gpt2": GPT2_124M,
    "hf/llama-1b": LLAMA_1B,
    "hf/tiny-gpt2": TINY_GPT2,
    "hf/tiny-llama": TINY_LLAMA,
}
