"""The algebra of SAM 1's factored image side (`factored_decoder`): products of shared
image projections and per-prompt low-rank factors, per attention head, and the
upscaling of masks from those factors.

Shapes: B prompts, N image positions, C channels, H heads of width d, T tokens per
prompt, K low-rank rows (H*T per layer so far). Per-prompt tensors over the image keep
N innermost, (B,K,N) and (B,HT,N): every softmax, sum and scale then runs along
contiguous memory, which is what lets the compiled kernels vectorise."""

import math

import torch
import torch.nn.functional as F
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


def rsqrt_var(base: Tensor, low: tuple[Tensor, ...], cross: tuple[Tensor, ...],
              rows: Tensor, eps: float, factor: Tensor | None = None) -> Tensor:
    """The layer norm's 1/sqrt(var + eps) per position of f * (s + low @ rows), with
    factor = f^2 (a per-position scale on the image side, squared), where s is
    centred, |s|^2 = base (B,N) and s . rows = cross (B,K,N), and the rows (B,K,C) are
    centred: |s + l r|^2 = |s|^2 + 2 l.(s r) + l (r r^T) l.
    low and cross come in matching pieces along K; the quadratic form takes each pair
    of pieces once (r r^T is symmetric: 3 of 4 blocks' products for two pieces).
    Nothing of size N x C is formed per prompt. The terms are centred, so no large mean
    cancels; the cross term can still be negative, and rounding must not make the sum so."""
    gram = rows @ rows.transpose(1, 2)  # B,K,K
    sizes = [piece.shape[1] for piece in low]
    blocks = [row.split(sizes, 2) for row in gram.split(sizes, 1)]
    sq = base
    for i, (piece, piece_cross) in enumerate(zip(low, cross)):
        weighted = blocks[i][i] @ piece
        for j in range(i + 1, len(low)):
            weighted = torch.baddbmm(weighted, blocks[i][j], low[j], alpha=2)
        sq = sq + ((2 * piece_cross + weighted) * piece).sum(1)
    if factor is not None:
        sq = sq * factor
    return torch.rsqrt(sq.clamp_min(0) / rows.shape[-1] + eps)


def token_to_image(attn: Attention, q_in: Tensor, scale: Tensor, low: tuple[Tensor, ...],
                   rows: Tensor, k_shared: Tensor, k_const: Tensor, v_shared: Tensor,
                   v_const: Tensor) -> Tensor:
    """Prompt tokens q_in (B,T,C) attend to the image side scale * (shared + low^T @
    rows) + const: scale (B,N), low (B,K,N) in pieces along K, rows (B,K,C), the shared
    part and the constant given projected to keys (N,Hd) and values (N,Hd; Hd). Returns
    (B,T,C), out_proj included. The scores are q.k per head: q against the shared keys
    (one product per head for all prompts), plus (q . rows' keys) @ low at rank K."""
    h = attn.num_heads
    q = _heads(attn.q_proj(q_in), h)  # B,H,T,d
    b, _, t, d = q.shape
    n = k_shared.shape[0]
    zk = per_head_rows(rows @ attn.k_proj.weight.T, q)  # B,HT,K: q . rows' keys
    sizes = [piece.shape[1] for piece in low]
    by_rows = sum(z @ piece for z, piece in zip(zk.split(sizes, 2), low))
    scores = scale[:, None, :] * (per_head(k_shared, q) + by_rows) + per_head(k_const, q)
    ps = torch.softmax(scores / math.sqrt(d), dim=-1) * scale[:, None, :]
    out = torch.einsum("bhtn,nhd->bhtd", ps.view(b, h, t, n), v_shared.view(n, h, d))
    zv = (rows @ attn.v_proj.weight.T).view(b, -1, h, d)  # B,K,H,d
    mixed = torch.cat([ps @ piece.transpose(1, 2) for piece in low], -1)  # B,HT,K
    out = out + torch.einsum("bhtk,bkhd->bhtd", mixed.view(b, h, t, -1), zv)
    return attn.out_proj((out + v_const.view(1, h, 1, d)).transpose(1, 2).reshape(b, t, h * d))


def first_upscaling(upscaling: nn.Sequential) -> tuple[Tensor, Tensor]:
    """The mask decoder's first upscaling step, a 2x2 stride-2 transposed convolution,
    as the matrix C x (ki,kj,C/4) and the bias it applies at each position (a position
    maps to its own 2x2 outputs): linear per position, so it applies to the factors."""
    conv = upscaling[0]
    return conv.weight.permute(0, 2, 3, 1).reshape(conv.weight.shape[0], -1), conv.bias.repeat(4)


def upscale(upscaling: nn.Sequential, hyper: Tensor, scale: Tensor, low: tuple[Tensor, ...],
            rows: Tensor, up_shared: Tensor, up_const: Tensor) -> Tensor:
    """Low-res logits (B,M,4h,4w) of M masks over the image side scale * (shared + low^T
    @ rows) + b, which is never built: the first upscaling step is applied to the
    factors (`up_shared` and `up_const` once per image, the rows per prompt at rank K),
    half the upscaling's multiply-adds. Then its layer norm, GELU, the second step
    (channels last) and the dot product with the hypernetworks' outputs `hyper` (B,M,C/8)."""
    norm, second = upscaling[1], upscaling[3]
    b, _, n = low[0].shape
    side, m = math.isqrt(n), hyper.shape[1]
    w_up, _ = first_upscaling(upscaling)
    by_position = torch.cat(low, 1).transpose(1, 2)  # B,N,K
    # A plain product, the additions fused into the layer norm's kernel (baddbmm
    # would first copy its broadcast addend into the output).
    y = scale[..., None] * (by_position @ (rows @ w_up) + up_shared) + up_const
    y = F.gelu(F.layer_norm(y.view(b, n, 4, -1), norm.weight.shape, norm.weight, norm.bias,
                            norm.eps))
    w2 = second.weight.permute(0, 2, 3, 1).reshape(y.shape[-1], -1)  # C/4, (ki,kj,C/8)
    z = F.gelu(torch.addmm(second.bias.repeat(4), y.view(-1, y.shape[-1]), w2))
    # The dot product as one batched matrix product: the broadcast multiply-then-sum
    # it replaces wrote a (B, 64*64*16, M, C/8) tensor, the decoder's costliest op.
    masks = torch.bmm(z.view(b, -1, hyper.shape[-1]), hyper.transpose(1, 2))  # B,P*4,M
    # rows run over (i, j, ki, kj, ki2, kj2): pixel (4i+2ki+ki2, 4j+2kj+kj2)
    masks = masks.view(b, side, side, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return masks.reshape(b, m, 4 * side, 4 * side)
