"""Meta's own SAM 2.1 code (PyPI `sam2==1.1.0`, a test-only dependency: byte-identical
to Meta's commit 2b90b9f) as the oracle, and seeded random checkpoints in Meta's format.

A real Hiera trunk at 1024 px costs seconds per image on two cores, so the oracle
tests use a tiny trunk (8 wide, five blocks) with Meta's real decoder, prompt
encoder and neck; the API tests use the real hiera-tiny architecture."""

from pathlib import Path

import torch

# The same tiny trunk, as Meta's Hydra overrides and as our build_sam2 configuration.
TINY_TRUNK_OVERRIDES = ["++model.image_encoder.trunk.embed_dim=8",
                        "++model.image_encoder.trunk.stages=[1,1,2,1]",
                        "++model.image_encoder.trunk.global_att_blocks=[3]",
                        "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]"]
TINY_TRUNK = dict(hidden_size=8, blocks_per_stage=[1, 1, 2, 1], global_attention_blocks=[3],
                  num_attention_heads_per_stage=[1, 2, 4, 8])
_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def meta_model(checkpoint: Path | None = None, tiny_trunk: bool = False, seed: int | None = None):
    """Meta's SAM2Base (eval mode, CPU), loaded from `checkpoint` when given, else with
    random weights (seeded by `seed`)."""
    from sam2.build_sam import build_sam2

    if seed is not None:
        torch.manual_seed(seed)
    return build_sam2(_CONFIG, None if checkpoint is None else str(checkpoint), device="cpu",
                      mode="eval", hydra_overrides_extra=TINY_TRUNK_OVERRIDES if tiny_trunk else [])


def save_meta_checkpoint(model, path: Path) -> Path:
    """`model`'s weights saved as Meta publishes them: `{"model": state_dict}`, video-only
    keys included."""
    torch.save({"model": model.state_dict()}, path)
    return path


def make_meta_checkpoint(path: Path, seed: int = 0, tiny_trunk: bool = False) -> Path:
    """Seeded random weights of the real architecture, in Meta's published format."""
    return save_meta_checkpoint(meta_model(tiny_trunk=tiny_trunk, seed=seed), path)


if __name__ == "__main__":  # a checkpoint to try SAM 2.1 with where Meta's files cannot be fetched
    import argparse

    parser = argparse.ArgumentParser(description="Write a seeded random SAM 2.1 hiera-tiny "
                                     "checkpoint in Meta's format (needs `make install-dev`).")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make_meta_checkpoint(args.out, args.seed))
