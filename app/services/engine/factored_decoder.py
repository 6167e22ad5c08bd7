"""SAM 1's mask decoder for many single-point prompts, rearranged to do less work.

Same weights, same mathematics as `MaskDecoder` + `TwoWayTransformer`. Every prompt
attends to the same 64x64 image embedding x, so the first layer's image keys, values
and image queries are projected once per image. After each layer a prompt's image side
is the layer norm of x plus what the image gathered from that prompt's 7 tokens:
attention weights (N x 7 per head) times 7 value rows per head, a low-rank update. So
the image side is never built per prompt (N x 256, then projected again); it is kept as

    keys = r * (x_c * g + L @ R) + b

with x_c the centred image (shared), r a per-prompt, per-position scale (the layer
norms'), L the attention weights so far (N x 56 per layer, each layer's a separate
piece: no concatenated copy) and R their value rows.
Every product the transformer takes then runs on x's projections, computed once per
image, plus products of rank 56 or 112 per prompt (`low_rank`), and the layer norms'
statistics come from the same factors: about half the multiply-adds of the unfactored
form. The transformer (predicted IoU) and the upscaling (masks, `factored_masks`) are
separate calls, so only prompts that pass the IoU filter are upscaled; the final
attention runs in the first for the IoU token, in the second for the mask tokens.
Results equal the stock decoder's up to float rounding (about 1e-6 on the tokens).
"""

from typing import NamedTuple

import torch
from segment_anything.modeling import MaskDecoder
from torch import Tensor, nn

from app.services.engine.decoder import _heads, first_token_to_image
from app.services.engine.low_rank import (first_upscaling, linear, per_head, per_head_rows,
                                          rsqrt_var, softmax_per_head, token_to_image, upscale,
                                          value_rows)


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
    kf: Tensor  # xg2 @ W_k^T, final token-to-image (N, Hd); xg2 = xg_c*g2 (N, C)
    kf_const: Tensor  # (b2 + pe) @ W_k^T + b_k (N, Hd)
    vf: Tensor  # xg2 @ W_v^T (N, Hd)
    vf_const: Tensor  # b2 @ W_v^T + b_v (Hd)
    up_shared: Tensor  # xg2 @ W_up, the first upscaling's matrix (N, 4*C/4)
    up_const: Tensor  # b2 @ W_up + its bias (4*C/4)


class PointMaskDecoder(nn.Module):
    """Multimask decoding of many single-point prompts against one image embedding (fp32
    in both precisions: the image side's statistics are sums of several terms)."""

    def __init__(self, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.decoder = mask_decoder
        self.transformer = mask_decoder.transformer
        self.multimask = slice(2, 1 + mask_decoder.num_mask_tokens)  # tokens 2-4 of 7
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
        w_up, b_up = first_upscaling(self.decoder.output_upscaling)
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
            kf=xg2 @ final.k_proj.weight.T, kf_const=linear(final.k_proj, b2 + pe),
            vf=xg2 @ final.v_proj.weight.T, vf_const=linear(final.v_proj, b2),
            up_shared=xg2 @ w_up, up_const=b2 @ w_up + b_up)
        return tuple(t.contiguous() for t in state)

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """tokens (B,T,C). Returns what `factored_masks` takes per prompt (the three
        multimask tokens and their positions before the final attention; the factors
        of the final image side: scale, the two pieces of low, rows) and the three
        multimask IoU predictions (B,3). The final attention runs here for the IoU
        token only: each token attends on its own, and the mask tokens' outputs are
        needed only for the prompts that are upscaled (a seventh of the work)."""
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
        r1 = rsqrt_var(s.xx, (a0,), (cross,), w0, l0.norm4.eps)
        rows0 = w0 * l0.norm4.weight  # image side: r1 * (xg + a0^T @ rows0) + b1
        # Layer 1.
        q = queries + tokens
        queries = l1.norm1(queries + l1.self_attn(q=q, k=q, v=queries))
        t1 = l1.cross_attn_token_to_image
        queries = l1.norm2(queries + token_to_image(
            t1, queries + tokens, r1, (a0,), rows0, s.k1, s.k1_const, s.v1, s.v1_const))
        queries = l1.norm3(queries + l1.mlp(queries))
        i1 = l1.cross_attn_image_to_token
        h1 = i1.num_heads
        kt1, vt1 = _heads(i1.k_proj(queries + tokens), h1), _heads(i1.v_proj(queries), h1)
        zq = per_head_rows(rows0 @ i1.q_proj.weight.T, kt1)  # B,HT,HT
        a1 = softmax_per_head(r1[:, None, :] * (per_head(s.q1, kt1) + zq @ a0)
                              + per_head(s.q1_const, kt1), kt1)
        # Its update enters outside layer 0's scale: image side r1 * (xg + low^T @ rows)
        # + b1 with low = (a0, a1 / r1) (kept as two pieces: no concatenated copy).
        low = (a0, a1 / r1[:, None, :])
        b1, bias1 = l0.norm4.bias, i1.out_proj.bias
        rows = torch.cat([rows0, value_rows(vt1, i1.out_proj.weight) + (b1 + bias1) / h1], 1)
        cross = (per_head(s.xgg_out0, vt) - mean_v0[..., None] * s.xgg_sum + s.xgg_bias0 / h0,
                 per_head(s.xg_out1, vt1) + s.xg_const1 / h1)
        rows = rows - rows.mean(-1, keepdim=True)
        r2 = rsqrt_var(s.xg_sq, low, cross, rows, l1.norm4.eps, factor=r1 * r1)
        scale, rows = r1 * r2, rows * l1.norm4.weight  # image side scale*(xg2 + low^T rows) + b2
        iou_token = self._final_attention(queries[:, :1], tokens[:, :1], scale, low, rows,
                                          s.kf, s.kf_const, s.vf, s.vf_const)[:, 0]
        masks = self.multimask
        return (queries[:, masks], tokens[:, masks], scale, *low, rows,
                self.decoder.iou_prediction_head(iou_token)[:, 1:])

    def _final_attention(self, queries: Tensor, tokens: Tensor, scale: Tensor,
                         low: tuple[Tensor, ...], rows: Tensor, *image: Tensor) -> Tensor:
        """The transformer's last step for some of the tokens (B,t,C): they attend to
        the final image side (`ImageState` kf, kf_const, vf, vf_const), then norm."""
        attend = self.transformer.final_attn_token_to_image
        return self.transformer.norm_final_attn(queries + token_to_image(
            attend, queries + tokens, scale, low, rows, *image))

    def factored_masks(self, queries: Tensor, tokens: Tensor, scale: Tensor, low0: Tensor,
                       low1: Tensor, rows: Tensor, kf: Tensor, kf_const: Tensor, vf: Tensor,
                       vf_const: Tensor, up_shared: Tensor, up_const: Tensor) -> Tensor:
        """The three multimask low-res logits (B,3,4h,4w) from `forward`'s per-prompt
        outputs: the multimask tokens' final attention, then `low_rank.upscale` from
        the final image side's factors."""
        queries = self._final_attention(queries, tokens, scale, (low0, low1), rows,
                                        kf, kf_const, vf, vf_const)
        mlps = self.decoder.output_hypernetworks_mlps
        hyper = torch.stack([mlps[i](queries[:, i - 1]) for i in range(1, len(mlps))], 1)
        return upscale(self.decoder.output_upscaling, hyper, scale, (low0, low1), rows,
                       up_shared, up_const)

    @staticmethod
    def upscale_inputs(state: tuple) -> tuple[Tensor, ...]:
        """What `factored_masks` takes of the image state, after the prompts' own."""
        s = ImageState(*state)
        return s.kf, s.kf_const, s.vf, s.vf_const, s.up_shared, s.up_const
