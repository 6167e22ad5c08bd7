"""SAM 2.1's mask decoder for single-point prompts, rearranged as the SAM 1 engine's
(`engine/decoder.py`, whose attention algebra it reuses): the first layer's image side
is projected once per image, later cross-attentions fold the few prompt tokens into
the projection matrices instead of projecting the 64x64 image side per prompt, the
transformer (which yields the predicted IoU) and the upscaling (the masks) are separate
calls so that only prompts passing the IoU filter are upscaled, and only the three
multimask outputs are predicted. Same weights and mathematics as
transformers' `Sam2MaskDecoder` with `multimask_output=True` (logits equal up to
float rounding); used for the automatic generator's point grid.
"""

from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.services.engine.decoder import (_image_to_token_update, _token_to_image,
                                         first_token_to_image)


def _attention(attn: nn.Module) -> SimpleNamespace:
    """transformers' Sam2Attention under the names the shared algebra reads."""
    return SimpleNamespace(num_heads=attn.num_attention_heads, internal_dim=attn.internal_dim,
                           q_proj=attn.q_proj, k_proj=attn.k_proj, v_proj=attn.v_proj,
                           out_proj=attn.o_proj)


def _self_attention(attn: nn.Module, q: Tensor, v: Tensor) -> Tensor:
    """transformers' attention over (B,T,C) tokens (it takes (B, points, T, C))."""
    return attn(q[:, None], q[:, None], v[:, None])[0][:, 0]


class Sam2PointDecoder(nn.Module):
    """Multimask decoding of many single-point prompts against one encoded image."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = model.mask_decoder
        self.transformer = model.mask_decoder.transformer
        layers = self.transformer.layers
        self._attn = [(_attention(layer.cross_attn_token_to_image),
                       _attention(layer.cross_attn_image_to_token)) for layer in layers]
        self._final = _attention(self.transformer.final_attn_token_to_image)

    def output_tokens(self) -> Tensor:
        """Object-score, IoU and the four mask tokens, in the decoder's order."""
        d = self.decoder
        return torch.cat([d.obj_score_token.weight, d.iou_token.weight, d.mask_tokens.weight])

    def image_state(self, embedding: Tensor, high_res: tuple[Tensor, Tensor], dense: Tensor,
                    image_pe: Tensor) -> tuple:
        """Per-image tensors shared by every prompt: for `forward` (as
        the SAM 1 decoder's image_state), and the high-resolution features for `masks`."""
        x = (embedding + dense)[0].flatten(1).transpose(0, 1).contiguous()
        pe = image_pe[0].flatten(1).transpose(0, 1).contiguous()
        to_image, from_image = self._attn[0]
        return ((x, pe, to_image.k_proj(x + pe), to_image.v_proj(x), from_image.q_proj(x + pe)),
                self.high_res_rows(high_res))

    def forward(self, tokens: Tensor, x: Tensor, pe: Tensor, k0: Tensor, v0: Tensor,
                image_q0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """tokens (B,T,C): output tokens then the point's sparse embedding. Returns the
        transformer's output tokens (B,T,C) and image side (B,N,C), which `masks` turns
        into logits, and the three multimask outputs' predicted IoU (B,3)."""
        queries, keys = tokens, None
        for layer, (to_image, from_image) in zip(self.transformer.layers, self._attn):
            if layer.skip_first_layer_pe:
                queries = layer.layer_norm1(_self_attention(layer.self_attn, queries, queries))
            else:
                q = queries + tokens
                queries = layer.layer_norm1(queries + _self_attention(layer.self_attn, q, queries))
            if keys is None:  # image side still shared by every prompt
                queries = layer.layer_norm2(queries + first_token_to_image(
                    to_image, queries + tokens, k0, v0))
                queries = layer.layer_norm3(queries + layer.mlp(queries))
                keys = layer.layer_norm4(x + _image_to_token_update(
                    from_image, image_q0, None, queries + tokens, queries))
                continue
            keys_pe = keys + pe
            queries = layer.layer_norm2(queries + _token_to_image(
                to_image, queries + tokens, keys, keys_pe))
            queries = layer.layer_norm3(queries + layer.mlp(queries))
            keys = layer.layer_norm4(keys + _image_to_token_update(
                from_image, None, keys_pe, queries + tokens, queries))
        queries = self.transformer.layer_norm_final_attn(
            queries + _token_to_image(self._final, queries + tokens, keys, keys + pe))
        return queries, keys, self.decoder.iou_prediction_head(queries[:, 1])[:, 1:]

    @staticmethod
    def high_res_rows(high_res: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """The high-resolution features in the row order of `masks`' products, once
        per image: s1 as (64x64 positions, (ki, kj, channel)), s0 as (positions x 4,
        (ki2, kj2, channel)), so they are added inside the products."""
        s0, s1 = high_res
        c1, c0, side = s1.shape[1], s0.shape[1], s1.shape[-1] // 2
        s1_rows = s1[0].view(c1, side, 2, side, 2).permute(1, 3, 2, 4, 0).reshape(side * side, -1)
        s0_rows = s0[0].view(c0, side, 2, 2, side, 2, 2).permute(1, 4, 2, 5, 3, 6, 0)
        return s0_rows.reshape(side * side * 4, -1).contiguous(), s1_rows.contiguous()

    def masks(self, queries: Tensor, keys: Tensor, s0_rows: Tensor, s1_rows: Tensor) -> Tensor:
        """The three multimask low-res logits (B,3,256,256) from `forward`'s tokens and
        image side: the two stride-2 transposed convolutions as channels-last products
        with the high-resolution features added inside them (`high_res_rows`), then the
        hypernetwork product for the three multimask tokens only."""
        d = self.decoder
        b, n, c = keys.shape
        side = int(n ** 0.5)
        up1, up2, norm = d.upscale_conv1, d.upscale_conv2, d.upscale_layer_norm
        w1 = up1.weight.permute(0, 2, 3, 1).reshape(c, -1)  # C, (ki,kj,C/4)
        y = torch.baddbmm(s1_rows + up1.bias.repeat(4), keys, w1.expand(b, -1, -1))
        y = y.view(b, n, 4, -1)
        y = F.gelu(F.layer_norm(y, y.shape[-1:], norm.weight, norm.bias, norm.eps))
        c4 = y.shape[-1]
        w2 = up2.weight.permute(0, 2, 3, 1).reshape(c4, -1)  # C/4, (ki2,kj2,C/8)
        z = F.gelu(torch.baddbmm(s0_rows + up2.bias.repeat(4), y.view(b, n * 4, c4),
                                 w2.expand(b, -1, -1)))
        hyper = torch.stack([d.output_hypernetworks_mlps[i + 1](queries[:, 3 + i])
                             for i in range(3)], 1)  # B,3,C/8
        masks = torch.bmm(z.view(b, -1, hyper.shape[-1]), hyper.transpose(1, 2))  # B,P*16,3
        # rows run over (i, j, ki, kj, ki2, kj2): pixel (4i+2ki+ki2, 4j+2kj+kj2)
        masks = masks.view(b, side, side, 2, 2, 2, 2, 3).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(b, 3, 4 * side, 4 * side)
