"""Llama architecture (RoPE, grouped-query attention, RMSNorm, SwiGLU MLP) on the static cache. Module names follow
Hugging Face's ``LlamaForCausalLM`` (``model.layers.0.self_attn.q_proj`` ...), so its state dicts load unchanged."""

from __future__ import annotations

import torch
from torch import nn

from engine.generative.configs import DecoderConfig
from engine.generative.models.decoder import Cache, CachedAttention, CausalDecoder, Rot
from engine.generative.models.layers import RMSNorm, Rotary


class LlamaAttention(CachedAttention):
    def __init__(self, config: DecoderConfig):
        super().__init__(config)
        kv = config.num_kv_heads * config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, config.num_heads * config.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, kv, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, kv, bias=False)
        self.o_proj = nn.Linear(config.num_heads * config.head_dim, config.hidden_size, bias=False)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.q_proj(x), self.k_proj(x), self.v_proj(x)

    def output(self, o: torch.Tensor) -> torch.Tensor:
        return self.o_proj(o)


class LlamaMLP(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaBlock(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.norm_eps)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.norm_eps)
        self.mlp = LlamaMLP(config)

    def forward(
        self, h: torch.Tensor, rot: Rot, cache: Cache, position: torch.Tensor, cache_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, k, v = self.self_attn(self.input_layernorm(h), rot, cache, position, cache_len)
        h = h + a
        return h + self.mlp(self.post_attention_layernorm(h)), k, v


class LlamaBody(nn.Module):
    """``model.*`` of Hugging Face's names."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LlamaBlock(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.norm_eps)
        self.rotary_emb = Rotary(config.head_dim, config.rope_theta)


class LlamaDecoder(CausalDecoder):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        self.model = LlamaBody(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def blocks(self) -> nn.ModuleList:
        return self.model.layers

    def embed(self, ids: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, Rot]:
        h = self.model.embed_tokens(ids)
        return h, self.model.rotary_emb(positions, h.dtype)

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.norm(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h)
