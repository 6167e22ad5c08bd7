"""The point decoders' shared pieces: attention with prompt tokens folded into the
projections, and upscaling only the prompts that pass the IoU filter.

SAM 1 (`factored_decoder`) and SAM 2.1 (`sam2.decoder`) decode many single-point
prompts against one image. The first layer's image side is the same for every prompt,
so its keys, values and image queries are projected once per image
(`first_token_to_image`); SAM 2.1's later cross-attentions never project its per-prompt
64x64 image side to the attention width: the few prompt tokens are folded into the
projection matrices instead (scores = (x W_q^T) k^T = x (W_q^T k^T)). The transformer
(which yields the predicted IoU) and the upscaling (which yields the masks) are
separate calls, so a caller that filters on predicted IoU upscales only the prompts
that pass (`upscale_passing`). Results equal the stock decoders' up to float rounding.
"""

import math
from collections.abc import Callable

import torch
from segment_anything.modeling.transformer import Attention
from torch import Tensor


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """(..., T, H*d) -> (..., H, T, d)."""
    *lead, t, c = x.shape
    return x.reshape(*lead, t, num_heads, c // num_heads).transpose(-2, -3)


def _token_to_image(attn: Attention, q_in: Tensor, keys: Tensor, keys_pe: Tensor) -> Tensor:
    """Prompt tokens (B,T,C) attend to per-prompt image keys (B,N,C) whose attention keys
    are `keys_pe` (keys + positions); returns (B,T,C).

    The key bias adds a per-row constant to the scores (softmax ignores it), and the
    value projection commutes with the attention average (its rows sum to one)."""
    h = attn.num_heads
    d = attn.internal_dim // h
    q = _heads(attn.q_proj(q_in), h)  # B,H,T,d
    q_wide = q @ attn.k_proj.weight.view(h, d, -1)  # B,H,T,C
    b, _, t, c = q_wide.shape
    q_wide = q_wide.reshape(b, h * t, c) / math.sqrt(d)
    scores = q_wide @ keys_pe.transpose(1, 2)  # B,H*T,N
    mixed = torch.softmax(scores, dim=-1) @ keys  # B,H*T,C
    w_v = attn.v_proj.weight.view(h, d, -1)  # H,d,C
    v = mixed.view(b, h, t, c) @ w_v.transpose(1, 2) + attn.v_proj.bias.view(h, 1, d)
    return attn.out_proj(v.transpose(1, 2).reshape(b, t, h * d))


def _image_to_token_update(attn: Attention, image_q: Tensor | None, x_plus_pe: Tensor | None,
                           tokens_k: Tensor, tokens_v: Tensor) -> Tensor:
    """What the image (N positions) gathers from the prompt tokens: (B,N,C), out_proj
    included. Pass `image_q` (the image queries already projected, shared by all
    prompts) or `x_plus_pe` (per-prompt image + position, projected by folding)."""
    h = attn.num_heads
    d = attn.internal_dim // h
    k = _heads(attn.k_proj(tokens_k), h)  # B,H,T,d
    v = _heads(attn.v_proj(tokens_v), h)  # B,H,T,d
    b, _, t, _ = k.shape
    if image_q is not None:  # shared image queries (N,H*d): one product for the batch
        q = image_q.view(-1, h, d).transpose(0, 1)  # H,N,d
        scores = (q @ k.permute(1, 3, 0, 2).reshape(h, d, b * t))  # H,N,B*T
        scores = scores.view(h, -1, b, t).permute(2, 1, 0, 3).reshape(b, -1, h * t)
    else:
        w_q = attn.q_proj.weight.view(h, d, -1)  # H,d,C
        folded = (w_q.transpose(1, 2) @ k.transpose(2, 3))  # B,H,C,T
        folded = folded.permute(0, 2, 1, 3).reshape(b, -1, h * t)  # B,C,H*T
        bias = (attn.q_proj.bias.view(1, h, 1, d) @ k.transpose(2, 3)).reshape(b, 1, h * t)
        scores = x_plus_pe @ folded + bias  # B,N,H*T
    n = scores.shape[1]
    attn_w = torch.softmax(scores.view(b, n, h, t) / math.sqrt(d), dim=-1)
    w_o = attn.out_proj.weight.view(-1, h, d).permute(1, 2, 0)  # H,d,C
    values_out = (v @ w_o).reshape(b, h * t, -1)  # B,H*T,C
    return attn_w.view(b, n, h * t) @ values_out + attn.out_proj.bias


def upscale_batch_size(batch_size: int) -> int:
    """Prompts upscaled per call (one compiled shape, padded): a quarter of the decode
    batch, so few are wasted when only some prompts of a batch pass the IoU filter."""
    return max(1, batch_size // 4)


def upscale_passing(upscale: Callable[..., Tensor], per_prompt: tuple[Tensor, ...],
                    iou: Tensor, min_iou: float | None, batch: int, side: int,
                    *image: Tensor) -> Tensor:
    """The multimask logits (n,3,side,side), fp32, of the n prompts whose IoU is `iou`
    (n,3): `upscale(*per_prompt, *image)` (per-prompt tensors indexed by prompt) runs
    in padded batches of `batch` (one compiled shape) and, with `min_iou`, only for
    prompts with some IoU above it; the other prompts' logits stay zero, for a caller
    that drops masks not above `min_iou`."""
    n, device = len(iou), per_prompt[0].device
    wanted = (torch.arange(n) if min_iou is None
              else torch.nonzero((iou > min_iou).any(1)).flatten()).to(device)
    low_res = torch.zeros(n, 3, side, side, device=device)
    for rows in wanted.split(batch) if len(wanted) else ():
        padded = torch.cat([rows, rows[-1:].expand(batch - len(rows))])
        low_res[rows] = upscale(*(t[padded] for t in per_prompt), *image)[:len(rows)].float()
    return low_res


def first_token_to_image(attn: Attention, q_in: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Stock attention of every prompt's tokens (B,T,C) against image keys and values
    projected once for all prompts (N,Hd); returns (B,T,C), out_proj included."""
    h = attn.num_heads
    q = _heads(attn.q_proj(q_in), h)  # B,H,T,d
    b, _, t, d = q.shape
    q = q.transpose(0, 1).reshape(h, b * t, d)  # every prompt's tokens in one product
    attn_w = torch.softmax(q @ _heads(k, h).transpose(1, 2) / math.sqrt(d), dim=-1)
    out = (attn_w @ _heads(v, h)).view(h, b, t, d).permute(1, 2, 0, 3)  # B,T,H,d
    return attn.out_proj(out.reshape(b, t, h * d))
