"""A small, readable GPT-2 (nanoGPT style) whose parameters are named and laid out exactly like
Hugging Face's GPT2LMHeadModel, so a state dict saved from here loads in HF and in our TS engine.

Layout notes (the things that differ from nanoGPT):
- Every projection is a GPT-2 "Conv1D": weight stored [in, out] and applied as y = x @ W + b.
- GELU is GPT-2's tanh approximation ("gelu_new").
- lm_head is tied to transformer.wte (not stored separately).
The modules only hold the parameters (so names match HF); the computation is one function,
functional_forward, used for pretraining, editing and evaluation alike. Works on torch 1.13 (CPU) and 2.x (CUDA).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 4096
    n_positions: int = 128
    n_embd: int = 256
    n_layer: int = 6
    n_head: int = 8
    n_inner: int = None  # None -> 4 * n_embd, as in HF
    layer_norm_epsilon: float = 1e-5
    bos_token_id: int = 0
    eos_token_id: int = 0

    @property
    def inner(self):
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def to_hf(self):
        """config.json for GPT2LMHeadModel (HF field names)."""
        return {
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "vocab_size": self.vocab_size, "n_positions": self.n_positions, "n_ctx": self.n_positions,
            "n_embd": self.n_embd, "n_layer": self.n_layer, "n_head": self.n_head, "n_inner": self.n_inner,
            "activation_function": "gelu_new", "layer_norm_epsilon": self.layer_norm_epsilon,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.02,
            "bos_token_id": self.bos_token_id, "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": True, "scale_attn_weights": True, "use_cache": True,
        }

    @classmethod
    def from_hf(cls, d):
        return cls(vocab_size=d["vocab_size"], n_positions=d["n_positions"], n_embd=d["n_embd"],
                   n_layer=d["n_layer"], n_head=d["n_head"], n_inner=d.get("n_inner"),
                   layer_norm_epsilon=d.get("layer_norm_epsilon", 1e-5),
                   bos_token_id=d.get("bos_token_id", 0), eos_token_id=d.get("eos_token_id", 0))


def gelu_new(x):
    # GPT-2's tanh approximation of GELU (HF "gelu_new").
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight [in, out], y = x @ W + b (applied in functional_forward)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(std=0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = Conv1D(cfg.n_embd, cfg.inner)
        self.c_proj = Conv1D(cfg.inner, cfg.n_embd)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)


class GPT(nn.Module):
    """GPT2LMHeadModel-compatible: state_dict keys are transformer.* (lm_head tied, not a separate key)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.transformer = Transformer(cfg)
        nn.init.normal_(self.transformer.wte.weight, std=0.02)
        nn.init.normal_(self.transformer.wpe.weight, std=0.01)
        # GPT-2 scales the residual projections by 1/sqrt(2 n_layer) at init.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, idx, weights=None, taps=None):
        """idx [B, T] -> logits [B, T, V]. `weights` optionally overrides parameters by name (the functional
        view MEND needs: edited weights are p + update, never changed in place). `taps` (a dict name -> None)
        asks to record (layer input, layer output) for those Conv1D weights, see functional_forward."""
        return functional_forward(self, idx, weights or {}, taps)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())


def attention(q, k, v):
    """Causal softmax attention, q/k/v [B, H, T, hs]. Fused kernel on torch 2.x; the explicit form on 1.13.
    Future positions get exactly zero weight, so right-padding never changes earlier positions."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    att = F.softmax(att.masked_fill(~causal, torch.finfo(att.dtype).min), dim=-1)
    return att @ v


def functional_forward(model, idx, overrides, taps=None):
    """The GPT-2 forward pass. Any parameter named in `overrides` is replaced by the given tensor (which may
    carry autograd history back to an editor network). For every weight name in `taps`, taps[name] is set to
    (input rows detached [B, T, in], output [B, T, out] that requires grad), so that
    autograd.grad(loss, output) gives the per-token deltas MEND consumes."""
    P = dict(model.named_parameters())
    P.update(overrides)
    cfg = model.cfg
    eps = cfg.layer_norm_epsilon
    T = idx.shape[1]

    def ln(x, pre):
        return F.layer_norm(x, (x.shape[-1],), P[pre + ".weight"], P[pre + ".bias"], eps)

    def conv(x, pre):
        out = torch.addmm(P[pre + ".bias"], x.reshape(-1, x.shape[-1]), P[pre + ".weight"]).reshape(*x.shape[:-1], -1)
        if taps is not None and pre + ".weight" in taps:
            if not out.requires_grad:
                out.requires_grad_(True)  # a leaf: the frozen base model has no grad path of its own here
            taps[pre + ".weight"] = (x.detach(), out)
        return out

    wte = P["transformer.wte.weight"]
    x = F.embedding(idx, wte) + P["transformer.wpe.weight"][:T][None]
    B, C, H = idx.shape[0], cfg.n_embd, cfg.n_head
    hs = C // H
    for i in range(cfg.n_layer):
        pre = f"transformer.h.{i}"
        q, k, v = conv(ln(x, pre + ".ln_1"), pre + ".attn.c_attn").split(C, dim=2)
        q, k, v = (t.view(B, T, H, hs).transpose(1, 2) for t in (q, k, v))
        x = x + conv(attention(q, k, v).transpose(1, 2).reshape(B, T, C), pre + ".attn.c_proj")
        h = ln(x, pre + ".ln_2")
        x = x + conv(gelu_new(conv(h, pre + ".mlp.c_fc")), pre + ".mlp.c_proj")
    x = ln(x, "transformer.ln_f")
    return x @ wte.T


def hf_state_dict(model):
    """Tensors to export, with HF names (lm_head omitted: it is tied)."""
    return {k: v.detach() for k, v in model.state_dict().items()}


def load_hf_state_dict(model, sd):
    """Accept HF names with or without the 'transformer.' prefix; ignore lm_head and attn buffers."""
    clean = {}
    for k, v in sd.items():
        if k.startswith("lm_head") or k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"):
            continue
        clean[k if k.startswith("transformer.") else "transformer." + k] = v.float()
    model.load_state_dict(clean, strict=True)
    return model
