"""SAM 1's mask decoder for many single-point prompts, rearranged to do less work.

Same weights, same mathematics as `MaskDecoder` + `TwoWayTransformer`. Every prompt
attends to the same 64x64 image embedding x, so the first layer's image keys, values
and image queries are projected once per image. After each layer a prompt's image side
is the layer norm of x plus what the image gathered from that prompt's 7 tokens:
attention weights (N x 7 per head) times 7 value rows per head, a low-rank update. So
the image side is never built per prompt (N x 256, then projected again); it is kept as

    keys = r * (x_c * g) + L @ R + b

with x_c the centred image (shared), r a per-prompt, per-position scale (the layer
norm's), L the attention weights so far (N x 56 per layer) and R their value rows.
Every product the transformer takes then runs on x's projections, computed once per
image, plus products of rank 56 or 112 per prompt (`low_rank`), and the layer norms'
statistics come from the same factors: about half the multiply-adds of the unfactored
form. The transformer (predicted IoU) and the upscaling (masks) are separate calls;
only prompts that are upscaled get their image side built (`image_side`), and the
upscaling runs as channels-last matrix products for the three multimask outputs only.
Results equal the stock decoder's up to float rounding (about 1e-6 on the tokens).
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder
from torch import Tensor, nn

from app.services.engine.decoder import _heads, first_token_to_image
from app.services.engine.low_rank import (linear, per_head, per_head_rows, rsqrt_var,
                                          softmax_per_head, token_to_image, value_rows)


class ImageState(NamedTuple):
    """Per-image tensors, shared by every prompt (N positions, C channels, H heads of d)."""
    k0: Tensor  # layer 0, token-to-image: projected keys (N, Hd)
    v0: Tensor  # ... and values (N, Hd)
    image_q0: Tensor  # layer 0, image-to-token: projected image queries (N, Hd)
    xx: Tensor  # |x_c|^2 (N): x_c = x minus its mean over channels
    x_out0: Tensor  # x_c @ W_out (layer 0, image-to-token) (N, Hd)
    x_bias0: Tensor  # x_c . b_out (N)
    k1: Tensor  # (x_c*g1) @ W_k^T, layer 1 token-to-image (N, Hd)
    k1_const: Tensor  # (b1 + pe) @ W_k^T + b_k (N, Hd)
    v1: Tensor  # (x_c*g1) @ W_v^T (N, Hd)
    v1_const: Tensor  # b1 @ W_v^T + b_v (Hd)
    q1: Tensor  # (x_c*g1) @ W_q^T, layer 1 image-to-token (N, Hd)
    q1_const: Tensor  # (b1 + pe) @ W_q^T + b_q (N, Hd)
    xg_sq: Tensor  # |xg_c|^2 (N): xg_c = x_c*g1 minus its mean
    xgg_out0: Tensor  # (xg_c*g1) @ W_out (layer 0) (N, Hd)
    xgg_sum: Tensor  # sum(xg_c*g1) (N)
    xgg_bias0: Tensor  # (xg_c*g1) . (b_out - mean b_out) (layer 0) (N)
    xg_out1: Tensor  # xg_c @ W_out (layer 1, image-to-token) (N, Hd)
    xg_const1: Tensor  # xg_c . (b1 + b_out1) (N)
    xg2: Tensor  # xg_c * g2 (N, C): the final image side's shared part
    kf: Tensor  # xg2 @ W_k^T, final token-to-image (N, Hd)
    kf_const: Tensor  # (b2 + pe) @ W_k^T + b_k (N, Hd)
    vf: Tensor  # xg2 @ W_v^T (N, Hd)
    vf_const: Tensor  # b2 @ W_v^T + b_v (Hd)
    b2: Tensor  # the last layer norm's bias (C)


class PointMaskDecoder(nn.Module):
    """Multimask decoding of many single-point prompts against one image embedding (fp32
    in both precisions: the image side's statistics are sums of several terms)."""

    def __init__(self, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.decoder = mask_decoder
        self.transformer = mask_decoder.transformer
        up = mask_decoder.output_upscaling
        self.up1, self.up_norm, self.up2 = up[0], up[1], up[3]
        layers = self.transformer.layers
        if len(layers) != 2 or not layers[0].skip_first_layer_pe:
            raise ValueError("the factored form is written for SAM 1's two-layer decoder")

    def image_state(self, image_embedding: Tensor, dense: Tensor, image_pe: Tensor) -> tuple:
        """`ImageState` of an embedding (fp32, or bf16 from PRECISION=fast's encoder)."""
        x = (image_embedding.float() + dense)[0].flatten(1).transpose(0, 1)
        pe = image_pe[0].flatten(1).transpose(0, 1)
        l0, l1 = self.transformer.layers
        t0, i0 = l0.cross_attn_token_to_image, l0.cross_attn_image_to_token
        t1, i1 = l1.cross_attn_token_to_image, l1.cross_attn_image_to_token
        final = self.transformer.final_attn_token_to_image
        g1, b1, g2, b2 = l0.norm4.weight, l0.norm4.bias, l1.norm4.weight, l1.norm4.bias
        out0, bias0 = i0.out_proj.weight, i0.out_proj.bias
        x_c = x - x.mean(-1, keepdim=True)
        xg = x_c * g1  # the image side after layer 0 is r1 * xg + (low rank) + b1
        xg_c = xg - xg.mean(-1, keepdim=True)
        xgg = xg_c * g1
        xg2 = xg_c * g2  # ... and after layer 1, r1 * r2 * xg2 + (low rank) + b2
        state = ImageState(
            k0=linear(t0.k_proj, x + pe), v0=linear(t0.v_proj, x),
            image_q0=linear(i0.q_proj, x + pe),
            xx=(x_c * x_c).sum(-1), x_out0=x_c @ out0, x_bias0=x_c @ bias0,
            k1=xg @ t1.k_proj.weight.T, k1_const=linear(t1.k_proj, b1 + pe),
            v1=xg @ t1.v_proj.weight.T, v1_const=linear(t1.v_proj, b1),
            q1=xg @ i1.q_proj.weight.T, q1_const=linear(i1.q_proj, b1 + pe),
            xg_sq=(xg_c * xg_c).sum(-1), xgg_out0=xgg @ out0, xgg_sum=xgg.sum(-1),
            xgg_bias0=xgg @ (bias0 - bias0.mean()),
            xg_out1=xg_c @ i1.out_proj.weight, xg_const1=xg_c @ (b1 + i1.out_proj.bias),
            xg2=xg2, kf=xg2 @ final.k_proj.weight.T, kf_const=linear(final.k_proj, b2 + pe),
            vf=xg2 @ final.v_proj.weight.T, vf_const=linear(final.v_proj, b2), b2=b2)
        return tuple(t.contiguous() for t in state)

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """tokens (B,T,C). Returns the output tokens (B,T,C), the factors of the final
        image side (`image_side`'s scale, low, rows) and the three multimask IoU
        predictions (B,3)."""
        s = ImageState(*state)
        l0, l1 = self.transformer.layers
        queries = l0.norm1(l0.self_attn(q=tokens, k=tokens, v=tokens))
        queries = l0.norm2(queries + first_token_to_image(
            l0.cross_attn_token_to_image, queries + tokens, s.k0, s.v0))
        queries = l0.norm3(queries + l0.mlp(queries))
        # Layer 0, image to token: A0 (B,HT,N) weights, W0 (B,HT,C) value rows; the
        # image side becomes LN(x + A0^T @ W0), with its bias folded into W0 (each
        # position's weights sum to H).
        i0 = l0.cross_attn_image_to_token
        h0 = i0.num_heads
        kt, vt = _heads(i0.k_proj(queries + tokens), h0), _heads(i0.v_proj(queries), h0)
        a0 = softmax_per_head(per_head(s.image_q0, kt), kt)
        v0_rows = value_rows(vt, i0.out_proj.weight)
        mean_v0 = v0_rows.mean(-1)
        bias0 = i0.out_proj.bias
        w0 = v0_rows - mean_v0[..., None] + (bias0 - bias0.mean()) / h0
        cross = per_head(s.x_out0, vt) + s.x_bias0 / h0
        r1 = rsqrt_var(s.xx, a0, cross, w0, l0.norm4.eps)
        g1 = l0.norm4.weight
        low0 = r1[:, None, :] * a0  # image side: r1*xg + low0^T @ (w0*g1) + b1
        rows0 = w0 * g1
        # Layer 1.
        q = queries + tokens
        queries = l1.norm1(queries + l1.self_attn(q=q, k=q, v=queries))
        t1 = l1.cross_attn_token_to_image
        queries = l1.norm2(queries + token_to_image(
            t1, queries + tokens, r1, low0, rows0, s.k1, s.k1_const, s.v1, s.v1_const))
        queries = l1.norm3(queries + l1.mlp(queries))
        i1 = l1.cross_attn_image_to_token
        h1 = i1.num_heads
        kt1, vt1 = _heads(i1.k_proj(queries + tokens), h1), _heads(i1.v_proj(queries), h1)
        zq = per_head_rows(rows0 @ i1.q_proj.weight.T, kt1)  # B,HT,HT
        a1 = softmax_per_head(r1[:, None, :] * per_head(s.q1, kt1) + per_head(s.q1_const, kt1)
                              + zq @ low0, kt1)
        b1, bias1 = l0.norm4.bias, i1.out_proj.bias
        rows = torch.cat([rows0, value_rows(vt1, i1.out_proj.weight) + (b1 + bias1) / h1], 1)
        low = torch.cat([low0, a1], 1)  # B,2HT,N: image side r1*xg + low^T @ rows
        cross = torch.cat([
            per_head(s.xgg_out0, vt) - mean_v0[..., None] * s.xgg_sum + s.xgg_bias0 / h0,
            per_head(s.xg_out1, vt1) + s.xg_const1 / h1], 1)
        rows = rows - rows.mean(-1, keepdim=True)
        r2 = rsqrt_var(r1 * r1 * s.xg_sq, low, r1[:, None, :] * cross, rows, l1.norm4.eps)
        scale, low, rows = r1 * r2, r2[:, None, :] * low, rows * l1.norm4.weight
        final = self.transformer.final_attn_token_to_image
        queries = self.transformer.norm_final_attn(queries + token_to_image(
            final, queries + tokens, scale, low, rows, s.kf, s.kf_const, s.vf, s.vf_const))
        return queries, scale, low, rows, self.decoder.iou_prediction_head(queries[:, 0])[:, 1:]

    @staticmethod
    def image_side(scale: Tensor, low: Tensor, rows: Tensor, xg2: Tensor, b2: Tensor) -> Tensor:
        """The final image side (B,N,C) of the prompts whose factors these are, from
        the image's shared part `ImageState.xg2` and bias `ImageState.b2`."""
        return torch.baddbmm(scale[..., None] * xg2 + b2, low.transpose(1, 2), rows)

    def factored_masks(self, queries: Tensor, scale: Tensor, low: Tensor, rows: Tensor,
                       xg2: Tensor, b2: Tensor) -> Tensor:
        """`masks` of the prompts with these output tokens and image-side factors."""
        return self.masks(queries, self.image_side(scale, low, rows, xg2, b2))

    def masks(self, queries: Tensor, keys: Tensor) -> Tensor:
        """The three multimask low-res logits (B,3,4h,4w) from the output tokens
        and the image side: upscaling (two 2x2 stride-2 transposed convolutions, channels last)
        and the hypernetwork dot product, for the three multimask tokens only."""
        b, n, c = keys.shape
        side = math.isqrt(n)
        w1 = self.up1.weight.permute(0, 2, 3, 1).reshape(c, -1)  # C, (ki,kj,C/4)
        # addmm adds the bias inside the product: no extra pass over image-sized tensors.
        y = torch.addmm(self.up1.bias.repeat(4), keys.reshape(-1, c), w1).view(b, n, 4, -1)
        y = F.gelu(F.layer_norm(y, y.shape[-1:], self.up_norm.weight, self.up_norm.bias,
                                self.up_norm.eps))
        w2 = self.up2.weight.permute(0, 2, 3, 1).reshape(y.shape[-1], -1)  # C/4, (ki,kj,C/8)
        z = F.gelu(torch.addmm(self.up2.bias.repeat(4), y.view(-1, y.shape[-1]), w2))
        mlps = self.decoder.output_hypernetworks_mlps
        hyper = torch.stack([mlps[i](queries[:, 1 + i]) for i in range(1, len(mlps))], 1)
        # The dot product as one batched matrix product: the broadcast multiply-then-sum
        # it replaces wrote a (B, 64*64*16, 3, C/8) tensor, the decoder's costliest op.
        masks = torch.bmm(z.view(b, -1, hyper.shape[-1]), hyper.transpose(1, 2))  # B,P*4,3
        # rows run over (i, j, ki, kj, ki2, kj2): pixel (4i+2ki+ki2, 4j+2kj+kj2)
        masks = masks.view(b, side, side, 2, 2, 2, 2, 3).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(b, 3, 4 * side, 4 * side)

    @staticmethod
    def upscale_inputs(state: tuple) -> tuple[Tensor, Tensor]:
        """What `factored_masks` takes of the image state, after the prompts' own."""
        s = ImageState(*state)
        return s.xg2, s.b2
