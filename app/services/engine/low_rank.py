"""The algebra of SAM 1's factored image side (`factored_decoder`): products of shared
image projections and per-prompt low-rank factors, per attention head.

Shapes: B prompts, N image positions, C channels, H heads of width d, T tokens per
prompt, K low-rank rows (H*T per layer so far). Per-prompt tensors over the image keep
N innermost, (B,K,N) and (B,HT,N): every softmax, sum and scale then runs along
contiguous memory, which is what lets the compiled kernels vectorise."""

import math

import torch
from segment_anything.modeling.transformer import Attention
from torch import Tensor, nn

from app.services.engine.decoder import _heads


def linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """`layer(x)` for the image state's (N,C) tensors."""
    return x @ layer.weight.T + layer.bias


def per_head(image: Tensor, tokens: Tensor) -> Tensor:
    """(N,Hd) image projections . (B,H,T,d) token projections -> (B,HT,N)."""
    b, h, t, d = tokens.shape
    return torch.einsum("bhtd,nhd->bhtn", tokens, image.view(-1, h, d)).reshape(b, h * t, -1)


def per_head_rows(rows_proj: Tensor, tokens: Tensor) -> Tensor:
    """(B,K,Hd) projected low-rank rows . (B,H,T,d) token projections -> (B,HT,K)."""
    b, h, t, d = tokens.shape
    k = rows_proj.shape[1]
    return torch.einsum("bhtd,bkhd->bhtk", tokens, rows_proj.view(b, k, h, d)).reshape(b, h * t, k)


def softmax_per_head(scores: Tensor, tokens: Tensor) -> Tensor:
    """Attention weights over each head's T tokens from (B,HT,N) scores taken against
    `tokens` (B,H,T,d): softmax(scores / sqrt(d)) over T, per head and position."""
    b, h, t, d = tokens.shape
    weights = torch.softmax(scores.view(b, h, t, -1) / math.sqrt(d), dim=2)
    return weights.reshape(b, h * t, -1)


def value_rows(tokens_v: Tensor, out_weight: Tensor) -> Tensor:
    """Each head's value rows through out_proj: (B,H,T,d) -> (B,HT,C)."""
    b, h, t, d = tokens_v.shape
    w = out_weight.view(-1, h, d)  # C,H,d
    return torch.einsum("bhtd,chd->bhtc", tokens_v, w).reshape(b, h * t, -1)


def rsqrt_var(base: Tensor, low: Tensor, cross: Tensor, rows: Tensor, eps: float) -> Tensor:
    """The layer norm's 1/sqrt(var + eps) per position of s + low @ rows, where the
    part s is centred, |s|^2 = base (B,N) and s . rows = cross (B,N,K), and the rows
    (B,K,C) are centred: |s + l r|^2 = |s|^2 + 2 l.(s r) + l (r r^T) l. Nothing of size
    N x C is formed per prompt. The terms are centred, so no large mean cancels; the
    cross term can still be negative, and rounding must not make the sum so."""
    gram = rows @ rows.transpose(1, 2)  # B,K,K
    sq = base + 2 * (low * cross).sum(1) + ((gram @ low) * low).sum(1)
    return torch.rsqrt(sq.clamp_min(0) / rows.shape[-1] + eps)


def token_to_image(attn: Attention, q_in: Tensor, scale: Tensor, low: Tensor, rows: Tensor,
                   k_shared: Tensor, k_const: Tensor, v_shared: Tensor, v_const: Tensor
                   ) -> Tensor:
    """Prompt tokens q_in (B,T,C) attend to the image side scale*shared + low^T @ rows
    + const: scale (B,N), low (B,K,N), rows (B,K,C), the shared part and the constant
    given projected to keys (N,Hd) and values (N,Hd; Hd). Returns (B,T,C), out_proj
    included. The scores are q.k per head: q against the shared keys (one product per
    head for all prompts), plus (q . rows' keys) @ low at rank K."""
    h = attn.num_heads
    q = _heads(attn.q_proj(q_in), h)  # B,H,T,d
    b, _, t, d = q.shape
    n = k_shared.shape[0]
    zk = per_head_rows(rows @ attn.k_proj.weight.T, q)  # B,HT,K: q . rows' keys
    scores = scale[:, None, :] * per_head(k_shared, q) + per_head(k_const, q) + zk @ low
    p = torch.softmax(scores / math.sqrt(d), dim=-1)
    ps = p * scale[:, None, :]
    out = torch.einsum("bhtn,nhd->bhtd", ps.view(b, h, t, n), v_shared.view(n, h, d))
    zv = (rows @ attn.v_proj.weight.T).view(b, -1, h, d)  # B,K,H,d
    mixed = (p @ low.transpose(1, 2)).view(b, h, t, -1)  # B,H,T,K
    out = out + torch.einsum("bhtk,bkhd->bhtd", mixed, zv) + v_const.view(1, h, 1, d)
    return attn.out_proj(out.transpose(1, 2).reshape(b, t, h * d))
