"""SAM 2.1 models as transformers' `Sam2Model`, loaded from Meta's checkpoints.

Meta publishes `{"model": state_dict}` files whose keys name Meta's modules
(`image_encoder.trunk...`, `sam_mask_decoder...`). transformers ships no converter in
its wheel, so the mapping below is ours: 311 image keys are renamed (the four point
embeddings become one table), and the 160 keys that only Meta's video predictor uses
(memory attention and encoder, object pointers, mask downsampling) are dropped.
"""

import re
from pathlib import Path

import torch
from torch import nn

from app.core.errors import ModelLoadFailed

# Meta's Hiera configurations (sam2.1_hiera_*.yaml, as published on 2024-09-28).
SAM2_SIZES: dict[str, dict] = {
    "tiny": dict(hidden_size=96, blocks_per_stage=[1, 2, 7, 2], global_attention_blocks=[5, 7, 9],
                 num_attention_heads_per_stage=[1, 2, 4, 8]),
    "small": dict(hidden_size=96, blocks_per_stage=[1, 2, 11, 2],
                  global_attention_blocks=[7, 10, 13], num_attention_heads_per_stage=[1, 2, 4, 8]),
    "base_plus": dict(hidden_size=112, blocks_per_stage=[2, 3, 16, 3],
                      global_attention_blocks=[12, 16, 20], num_attention_heads_per_stage=[2, 4, 8, 16],
                      window_positional_embedding_background_size=[14, 14]),
    "large": dict(hidden_size=144, blocks_per_stage=[2, 6, 36, 4],
                  global_attention_blocks=[23, 33, 43], num_attention_heads_per_stage=[2, 4, 8, 16],
                  window_size_per_stage=[8, 4, 16, 8]),
}

_VIDEO_ONLY = re.compile(r"^(memory_attention\.|memory_encoder\.|obj_ptr|mask_downsample\.|"
                         r"maskmem_tpos_enc|no_obj_ptr|no_obj_embed_spatial|no_mem_pos_enc)")
# Renames applied in order to every kept key.
_RENAMES = [
    (r"^image_encoder\.trunk\.", "vision_encoder.backbone."),
    (r"^image_encoder\.neck\.convs\.(\d+)\.conv\.", r"vision_encoder.neck.convs.\1."),
    (r"patch_embed\.proj\.", "patch_embed.projection."),
    (r"(blocks\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^no_mem_embed$", "no_memory_embedding"),
    (r"^sam_mask_decoder\.", "mask_decoder."),
    (r"\.out_proj\.", ".o_proj."),
    (r"(transformer\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"transformer\.norm_final_attn\.", "transformer.layer_norm_final_attn."),
    (r"output_upscaling\.0\.", "upscale_conv1."),
    (r"output_upscaling\.1\.", "upscale_layer_norm."),
    (r"output_upscaling\.3\.", "upscale_conv2."),
    (r"^sam_prompt_encoder\.", "prompt_encoder."),
    (r"mask_downscaling\.0\.", "mask_embed.conv1."),
    (r"mask_downscaling\.1\.", "mask_embed.layer_norm1."),
    (r"mask_downscaling\.3\.", "mask_embed.conv2."),
    (r"mask_downscaling\.4\.", "mask_embed.layer_norm2."),
    (r"mask_downscaling\.6\.", "mask_embed.conv3."),
    (r"pe_layer\.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"),
]
_MLP = re.compile(r"^(.*\.(?:mlp|iou_prediction_head|pred_obj_score_head|"
                  r"output_hypernetworks_mlps\.\d+))\.layers\.(\d+)\.(weight|bias)$")
_POINT = re.compile(r"^prompt_encoder\.point_embeddings\.(\d+)\.weight$")


def build_sam2(size: str | dict) -> nn.Module:
    """An untrained SAM 2.1 image model (transformers' `Sam2Model`) of one Meta size, or
    of a Hiera configuration given as a dict (the tests' tiny trunk)."""
    from transformers import Sam2Config, Sam2HieraDetConfig, Sam2Model, Sam2VisionConfig

    hiera = SAM2_SIZES[size] if isinstance(size, str) else size
    width = hiera["hidden_size"]
    backbone = Sam2HieraDetConfig(**hiera, embed_dim_per_stage=[width * 2**i for i in range(4)])
    vision = Sam2VisionConfig(backbone_config=backbone,
                              backbone_channel_list=[width * 2**i for i in (3, 2, 1, 0)])
    return Sam2Model(Sam2Config(vision_config=vision)).eval()


def meta_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Meta's SAM 2 state dict under `Sam2Model`'s names, video-only keys dropped."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if _VIDEO_ONLY.match(key):
            continue
        for pattern, replacement in _RENAMES:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    # Meta's MLPs are `layers.0..n-1`; transformers' are proj_in, layers.0..n-3, proj_out.
    depth: dict[str, int] = {}
    for key in renamed:
        if m := _MLP.match(key):
            depth[m[1]] = max(depth.get(m[1], 0), int(m[2]) + 1)
    out: dict[str, torch.Tensor] = {}
    points: dict[int, torch.Tensor] = {}
    for key, value in renamed.items():
        if m := _MLP.match(key):
            i, last = int(m[2]), depth[m[1]] - 1
            name = "proj_in" if i == 0 else "proj_out" if i == last else f"layers.{i - 1}"
            key = f"{m[1]}.{name}.{m[3]}"
        elif m := _POINT.match(key):
            points[int(m[1])] = value
            continue
        out[key] = value
    if points:  # Meta keeps one Embedding per point label; transformers one table
        out["prompt_encoder.point_embed.weight"] = torch.cat([points[i] for i in sorted(points)])
    if "prompt_encoder.shared_embedding.positional_embedding" in out:
        out["shared_image_embedding.positional_embedding"] = \
            out["prompt_encoder.shared_embedding.positional_embedding"]
    return out


def load_meta_checkpoint(model: nn.Module, path: Path) -> None:
    """Load Meta's `.pt` (`{"model": state_dict}`, as published) into `model`. A file
    that is not one raises ModelLoadFailed naming the missing and unexpected keys."""
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ModelLoadFailed(f"{path} is not a SAM 2 checkpoint (no state dict inside)",
                              {"checkpoint": str(path)})
    mapped = meta_to_transformers(state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(mapped)
                        if expected[k].shape != mapped[k].shape)
    if missing or unexpected or mismatched:
        raise ModelLoadFailed(
            f"{path} does not fit this SAM 2.1 model: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(mismatched)} wrongly shaped keys",
            {"checkpoint": str(path), "missing_keys": missing[:20],
             "unexpected_keys": unexpected[:20], "mismatched_keys": mismatched[:20],
             "remedies": ["use Meta's published sam2.1_hiera_*.pt for the chosen DEFAULT_MODEL",
                          "or pick the DEFAULT_MODEL the checkpoint was trained as"]})
    model.load_state_dict(mapped)
