"""The image encoder's global attention, a few heads at a time.

segment_anything's `Attention` scores every head at once: in a global block of vit_b
at 1024 px that is 12 x 4096 x 4096 scores (805 MB in fp32), and adding the relative
positions makes a second copy, so one encoder pass peaks near 2 GB whatever the
image. Here the same operations run on groups of heads: each head's products,
positions and softmax are stock's, on matrices of stock's shapes (so the same
numbers), and only one group's scores exist at a time. Windowed blocks (14 x 14
tokens) are left as they are."""

from types import MethodType

import torch
from segment_anything.modeling.image_encoder import (Attention, ImageEncoderViT,
                                                     add_decomposed_rel_pos)

HEADS_AT_ONCE = 2


def attend_by_head_groups(encoder: ImageEncoderViT) -> None:
    """Make every global-attention block of `encoder` score HEADS_AT_ONCE heads at a time."""
    for block in encoder.blocks:
        if block.window_size == 0:
            block.attn.forward = MethodType(_forward_by_head_groups, block.attn)


def _forward_by_head_groups(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """`Attention.forward`, one group of heads at a time."""
    B, H, W, _ = x.shape
    qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, B * self.num_heads, H * W, -1).unbind(0)
    out = torch.empty(q.shape[:2] + v.shape[2:], dtype=v.dtype, device=v.device)
    for start in range(0, B * self.num_heads, HEADS_AT_ONCE):
        group = slice(start, start + HEADS_AT_ONCE)
        attn = (q[group] * self.scale) @ k[group].transpose(-2, -1)
        if self.use_rel_pos:
            attn = add_decomposed_rel_pos(attn, q[group], self.rel_pos_h, self.rel_pos_w,
                                          (H, W), (H, W))
        out[group] = attn.softmax(dim=-1) @ v[group]
    x = out.view(B, self.num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return self.proj(x)
