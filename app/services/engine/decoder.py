"""SAM's mask decoder for single-point prompts, rearranged to do less work.

Same weights, same mathematics as `MaskDecoder` + `TwoWayTransformer`, but:
- the image side of the first layer (its keys, values and image queries) is the same
  for every prompt, so it is projected once per image instead of once per prompt;
- in every later cross-attention the 64x64 image side is never projected to the
  attention width: the few prompt tokens are folded into the projection matrices
  instead (scores = (x W_q^T) k^T = x (W_q^T k^T)), which cuts the transformer's
  per-prompt multiply-adds about 3x (about 2x for the whole decoder);
- the two stride-2 transposed convolutions run as channels-last matrix products,
  and only the three multimask outputs are predicted;
- the transformer (which yields the predicted IoU) and the upscaling (which yields the
  masks, half the multiply-adds) are separate calls, so a caller that filters on
  predicted IoU upscales only the prompts that pass.
Results equal the stock decoder's up to float rounding (about 1e-5 on the logits).
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder
from segment_anything.modeling.transformer import Attention
from torch import Tensor, nn


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


def upscale_passing(upscale: Callable[..., Tensor], queries: Tensor, keys: Tensor, iou: Tensor,
                    min_iou: float | None, batch: int, *image: Tensor) -> Tensor:
    """The multimask logits (n,3,4h,4w), fp32, of the n prompts whose IoU is `iou` (n,3):
    `upscale(queries, keys, *image)` runs in padded batches of `batch` (one compiled
    shape) and, with `min_iou`, only for prompts with some IoU above it; the other
    prompts' logits stay zero, for a caller that drops masks not above `min_iou`."""
    n = len(iou)
    wanted = (torch.arange(n) if min_iou is None
              else torch.nonzero((iou > min_iou).any(1)).flatten()).to(keys.device)
    side = 4 * math.isqrt(keys.shape[1])
    low_res = torch.zeros(n, 3, side, side, device=keys.device)
    for rows in wanted.split(batch) if len(wanted) else ():
        padded = torch.cat([rows, rows[-1:].expand(batch - len(rows))])
        low_res[rows] = upscale(queries[padded], keys[padded], *image)[:len(rows)].float()
    return low_res


class PointMaskDecoder(nn.Module):
    """Multimask decoding of many single-point prompts against one image embedding,
    in the dtype of `mask_decoder`'s weights (fp32, or bf16 in PRECISION=fast)."""

    def __init__(self, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.decoder = mask_decoder
        self.transformer = mask_decoder.transformer
        up = mask_decoder.output_upscaling
        self.up1, self.up_norm, self.up2 = up[0], up[1], up[3]
        self.dtype = mask_decoder.iou_token.weight.dtype

    def image_state(self, image_embedding: Tensor, dense: Tensor, image_pe: Tensor) -> tuple:
        """Per-image, prompt-independent tensors in the decoder's dtype: image keys
        (N,C), positions (N,C), and the first layer's projected keys, values and image
        queries. The sums are taken in fp32, then rounded once."""
        x = (image_embedding.float() + dense)[0].flatten(1).transpose(0, 1).contiguous()
        pe = image_pe[0].flatten(1).transpose(0, 1).contiguous()
        x_pe = (x + pe).to(self.dtype)
        x, pe = x.to(self.dtype), pe.to(self.dtype)
        first = self.transformer.layers[0]
        k = first.cross_attn_token_to_image.k_proj(x_pe)
        v = first.cross_attn_token_to_image.v_proj(x)
        image_q = first.cross_attn_image_to_token.q_proj(x_pe)
        return x, pe, k, v, image_q

    def forward(self, tokens: Tensor, x: Tensor, pe: Tensor, k0: Tensor, v0: Tensor,
                image_q0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """tokens: (B,T,C) output + point tokens. Returns the transformer's output tokens
        (B,T,C) and image side (B,N,C), which `masks` turns into logits, and the three
        multimask outputs' predicted IoU (B,3)."""
        queries, keys = tokens, None
        for layer in self.transformer.layers:
            if layer.skip_first_layer_pe:
                queries = layer.norm1(layer.self_attn(q=queries, k=queries, v=queries))
            else:
                q = queries + tokens
                queries = layer.norm1(queries + layer.self_attn(q=q, k=q, v=queries))
            if keys is None:  # image side still shared by every prompt
                queries = layer.norm2(queries + self._first_token_to_image(
                    layer.cross_attn_token_to_image, queries + tokens, k0, v0))
                queries = layer.norm3(queries + layer.mlp(queries))
                keys = layer.norm4(x + _image_to_token_update(
                    layer.cross_attn_image_to_token, image_q0, None, queries + tokens, queries))
                continue
            keys_pe = keys + pe
            queries = layer.norm2(queries + _token_to_image(
                layer.cross_attn_token_to_image, queries + tokens, keys, keys_pe))
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = layer.norm4(keys + _image_to_token_update(
                layer.cross_attn_image_to_token, None, keys_pe, queries + tokens, queries))
        final = self.transformer.final_attn_token_to_image
        queries = self.transformer.norm_final_attn(
            queries + _token_to_image(final, queries + tokens, keys, keys + pe))
        return queries, keys, self.decoder.iou_prediction_head(queries[:, 0])[:, 1:]

    @staticmethod
    def _first_token_to_image(attn: Attention, q_in: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Stock attention against keys/values projected once for all prompts."""
        h = attn.num_heads
        q = _heads(attn.q_proj(q_in), h)  # B,H,T,d
        b, _, t, d = q.shape
        q = q.transpose(0, 1).reshape(h, b * t, d)  # every prompt's tokens in one product
        attn_w = torch.softmax(q @ _heads(k, h).transpose(1, 2) / math.sqrt(d), dim=-1)
        out = (attn_w @ _heads(v, h)).view(h, b, t, d).permute(1, 2, 0, 3)  # B,T,H,d
        return attn.out_proj(out.reshape(b, t, h * d))

    def masks(self, queries: Tensor, keys: Tensor) -> Tensor:
        """The three multimask low-res logits (B,3,4h,4w) from `forward`'s tokens and
        image side: upscaling (two 2x2 stride-2 transposed convolutions, channels last)
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
