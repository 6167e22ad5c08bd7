"""The image encoder's attention, rearranged: a few heads at a time (`exact`), or fused
(`fast`).

segment_anything's `Attention` scores every head at once: in a global block of vit_b
at 1024 px that is 12 x 4096 x 4096 scores (805 MB in fp32), and adding the relative
positions makes a second copy, so one encoder pass peaks near 2 GB whatever the
image. `attend_by_head_groups` runs the same operations on groups of heads: each
head's products, positions and softmax are stock's, on matrices of stock's shapes (so
the same numbers), and only one group's scores exist at a time. Windowed blocks (14 x
14 tokens) are left as they are.

`attend_fused` (bf16, PRECISION=fast) hands every block's attention to PyTorch's
fused `scaled_dot_product_attention`, the relative positions as its additive mask: the
scores are never written out, softmaxed and read back. Profiled on an AVX512-BF16 CPU
(vit_b, docs/performance.md), the global blocks' attention took 1.82 s against 1.96 s,
the windowed blocks' 0.36 s against 0.62 s. Same mathematics; the sums run in another
order."""

from types import MethodType

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import (Attention, ImageEncoderViT,
                                                     add_decomposed_rel_pos, get_rel_pos)
from torch import Tensor

HEADS_AT_ONCE = 2
# Fused: as many heads (or windows x heads) at once as keep the mask under this many
# elements: two global heads of vit_b at 1024 px (67 MB in bf16), every windowed head.
MASK_ELEMENTS = 2 * 4096 * 4096


def attend_by_head_groups(encoder: ImageEncoderViT) -> None:
    """Make every global-attention block of `encoder` score HEADS_AT_ONCE heads at a time."""
    for block in encoder.blocks:
        if block.window_size == 0:
            block.attn.forward = MethodType(_forward_by_head_groups, block.attn)


def attend_fused(encoder: ImageEncoderViT) -> None:
    """Make every block of `encoder` attend through `scaled_dot_product_attention`."""
    for block in encoder.blocks:
        block.attn.forward = MethodType(_forward_fused, block.attn)


def _split_heads(self: Attention, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v (B*heads, H*W, d) of x (B,H,W,C), as stock's `Attention.forward`."""
    B, H, W, _ = x.shape
    qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, B * self.num_heads, H * W, -1).unbind(0)
    return q, k, v


def _merge_heads(self: Attention, out: Tensor, x: Tensor) -> Tensor:
    B, H, W, _ = x.shape
    x = out.view(B, self.num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return self.proj(x)


def _forward_by_head_groups(self: Attention, x: Tensor) -> Tensor:
    """`Attention.forward`, one group of heads at a time."""
    _, H, W, _ = x.shape
    q, k, v = _split_heads(self, x)
    out = torch.empty(q.shape[:2] + v.shape[2:], dtype=v.dtype, device=v.device)
    for start in range(0, len(q), HEADS_AT_ONCE):
        group = slice(start, start + HEADS_AT_ONCE)
        attn = (q[group] * self.scale) @ k[group].transpose(-2, -1)
        if self.use_rel_pos:
            attn = add_decomposed_rel_pos(attn, q[group], self.rel_pos_h, self.rel_pos_w,
                                          (H, W), (H, W))
        out[group] = attn.softmax(dim=-1) @ v[group]
    return _merge_heads(self, out, x)


def _forward_fused(self: Attention, x: Tensor) -> Tensor:
    """`Attention.forward` through the fused kernel, the relative positions (as
    `add_decomposed_rel_pos` computes them) as the mask, a few heads at a time."""
    _, H, W, _ = x.shape
    q, k, v = _split_heads(self, x)
    if not self.use_rel_pos:
        return _merge_heads(self, F.scaled_dot_product_attention(q, k, v, scale=self.scale), x)
    rel_h, rel_w = get_rel_pos(H, H, self.rel_pos_h), get_rel_pos(W, W, self.rel_pos_w)
    out = torch.empty_like(q)
    step = max(1, MASK_ELEMENTS // (H * W) ** 2)
    for start in range(0, len(q), step):
        group = slice(start, start + step)
        rows = q[group].reshape(-1, H, W, q.shape[-1])
        by_row = torch.einsum("bhwc,hkc->bhwk", rows, rel_h)  # B,H,W,kh
        by_col = torch.einsum("bhwc,wkc->bhwk", rows, rel_w)  # B,H,W,kw
        mask = (by_row[..., None] + by_col[..., None, :]).reshape(len(rows), H * W, H * W)
        out[group] = F.scaled_dot_product_attention(q[group], k[group], v[group],
                                                    attn_mask=mask, scale=self.scale)
    return _merge_heads(self, out, x)
