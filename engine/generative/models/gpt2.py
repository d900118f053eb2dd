"""GPT-2 (learned positions, LayerNorm, GELU-tanh MLP, fused QKV) on the static cache. Module names follow Hugging
Face's ``GPT2LMHeadModel`` (``transformer.h.0.attn.c_attn`` ...), so its state dicts load unchanged."""

from __future__ import annotations

import torch
from torch import nn

from engine.generative.configs import DecoderConfig
from engine.generative.models.decoder import Cache, CachedAttention, CausalDecoder, Rot
from engine.generative.models.layers import Conv1D


class GPT2Attention(CachedAttention):
    def __init__(self, config: DecoderConfig):
        super().__init__(config)
        self.c_attn = Conv1D(config.hidden_size, 3 * config.hidden_size)
        self.c_proj = Conv1D(config.hidden_size, config.hidden_size)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        return q, k, v

    def output(self, o: torch.Tensor) -> torch.Tensor:
        return self.c_proj(o)


class GPT2MLP(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.c_fc = Conv1D(config.hidden_size, config.intermediate_size)
        self.c_proj = Conv1D(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(nn.functional.gelu(self.c_fc(x), approximate="tanh"))


class GPT2Block(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.attn = GPT2Attention(config)
        self.ln_2 = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.mlp = GPT2MLP(config)

    def forward(
        self, h: torch.Tensor, rot: Rot, cache: Cache, position: torch.Tensor, cache_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, k, v = self.attn(self.ln_1(h), rot, cache, position, cache_len)
        h = h + a
        return h + self.mlp(self.ln_2(h)), k, v


class GPT2Body(nn.Module):
    """``transformer.*`` of Hugging Face's names."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.wpe = nn.Embedding(config.max_positions, config.hidden_size)
        self.h = nn.ModuleList(GPT2Block(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)


class GPT2Decoder(CausalDecoder):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        self.transformer = GPT2Body(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        for emb in (self.transformer.wte, self.transformer.wpe):
            nn.init.normal_(emb.weight, std=0.02)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

    def blocks(self) -> nn.ModuleList:
        return self.transformer.h

    def embed(self, ids: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, Rot]:
        return self.transformer.wte(ids) + self.transformer.wpe(positions)[None], None

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.transformer.ln_f(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h)
