"""What one sam_tiny training step computes: prompts, SAM's losses, and a held-out check.

Used by sam_tiny/train.py. One-point prompts get SAM's three mask outputs; only the
output with the lowest pixel + dice loss is backpropagated, and the IoU head regresses the
true IoU of all three outputs (0 for background points). The pixel loss is SAM's focal loss
(20:1 to dice) or binary cross-entropy (1:1); both can demand a logit margin.
"""

import numpy as np
import torch
import torch.nn.functional as F

from sam_tiny.scenes import generate_scene

PIXEL_WEIGHT = {"focal": 20.0, "bce": 1.0}  # to dice at 1: SAM's ratio for focal
# Scenes for the final check: the same set for every run and phase (seed 0's old offset), so
# the figure compares across phases; no training seed in use draws this stream.
HELD_OUT_SEED = 1_000_003


def sample_prompts(rng, masks, count, background_share):
    """Pick `count` points; return (x, y) pairs, target masks and whether each is an object."""
    background = ~np.any(masks, axis=0) if masks else None
    points, targets, is_object = [], [], []
    for _ in range(count):
        on_background = background is not None and background.any() and (
            rng.random() < background_share)
        region = background if on_background else masks[int(rng.integers(len(masks)))]
        ys, xs = np.nonzero(region)
        pick = int(rng.integers(len(xs)))
        points.append((xs[pick], ys[pick]))
        targets.append(region)
        is_object.append(not on_background)
    return np.array(points, np.float32), np.stack(targets), np.array(is_object)


def mask_losses(logits, target, kind="focal", margin=0.0):
    """Per-output weighted pixel loss and dice loss: logits (P, 3, H, W), target (P, 1, H, W) in {0, 1}.

    margin: the pixel loss wants object logits above +margin and background below -margin.
    """
    target = target.expand_as(logits)
    prob = torch.sigmoid(logits)
    shifted = logits - margin * (2 * target - 1)
    ce = F.binary_cross_entropy_with_logits(shifted, target, reduction="none")
    shifted_prob = torch.sigmoid(shifted)
    p_t = shifted_prob * target + (1 - shifted_prob) * (1 - target)
    # No alpha class weighting: with the detection default (0.25 on positives) training from
    # scratch collapsed to all-background masks for the first hundreds of steps.
    pixel = (ce * (1 - p_t) ** 2).mean(dim=(2, 3)) if kind == "focal" else ce.mean(dim=(2, 3))
    overlap = (prob * target).sum(dim=(2, 3))
    dice = 1 - (2 * overlap + 1) / (prob.sum(dim=(2, 3)) + target.sum(dim=(2, 3)) + 1)
    return PIXEL_WEIGHT[kind] * pixel, dice


def true_iou(logits, target):
    """IoU of each thresholded output with the target, (P, 3)."""
    pred = logits > 0
    target = target.expand_as(pred).bool()
    inter = (pred & target).sum(dim=(2, 3)).float()
    union = (pred | target).sum(dim=(2, 3)).float()
    return inter / union.clamp(min=1)


def forward_scene(sam, embedding, points, size):
    """Decoder pass for one scene's prompts; logits resized to (P, 3, size, size)."""
    coords = torch.from_numpy(points)[:, None, :]
    labels = torch.ones(coords.shape[:2], dtype=torch.int)
    sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    low_res, iou_pred = sam.mask_decoder(
        image_embeddings=embedding[None], image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
    logits = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
    return logits, iou_pred


def train_step(sam, rng, args, size):
    """Loss and stats for one batch of fresh scenes."""
    scenes = [generate_scene(rng, size, size) for _ in range(args.images)]
    pixels = torch.from_numpy(np.stack([image for image, _ in scenes])).permute(0, 3, 1, 2)
    embeddings = sam.image_encoder(sam.preprocess(pixels.float()))
    total, ious = 0.0, []
    for embedding, (_, masks) in zip(embeddings, scenes):
        points, targets, is_object = sample_prompts(rng, masks, args.prompts, args.background_share)
        # The mask loss runs at loss_size (cheaper than full size on 2 cores) against a hard
        # target: hard targets push logits to confident values, which the stability filter needs.
        logits, iou_pred = forward_scene(sam, embedding, points, args.loss_size)
        target = torch.from_numpy(targets)[:, None].float()
        small_target = (F.interpolate(target, args.loss_size, mode="area") > 0.5).float()
        pixel, dice = mask_losses(logits, small_target, args.mask_loss, args.margin)
        mask_loss = pixel + dice
        best = mask_loss.argmin(dim=1)
        with torch.no_grad():  # the IoU head learns the IoU the generator will see: full size
            full = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
            iou = true_iou(full, target) * torch.from_numpy(is_object)[:, None]
        iou_loss = F.mse_loss(iou_pred, iou)
        total = total + mask_loss.gather(1, best[:, None]).mean() + iou_loss
        chosen = iou.gather(1, best[:, None])[:, 0]
        ious.extend(chosen[torch.from_numpy(is_object)].tolist())
    return total / len(scenes), float(np.mean(ious)) if ious else 0.0


@torch.no_grad()
def held_out_miou(sam, scenes=20, size=256):
    """Point-prompt mIoU (output with the highest predicted IoU) on scenes never trained on."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    ious = []
    for _ in range(scenes):
        image, masks = generate_scene(rng, size, size)
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        embedding = sam.image_encoder(sam.preprocess(pixels))[0]
        points, targets, _ = sample_prompts(rng, masks, 8, background_share=0.0)
        logits, iou_pred = forward_scene(sam, embedding, points, size)
        iou = true_iou(logits, torch.from_numpy(targets)[:, None])
        ious.extend(iou.gather(1, iou_pred.argmax(1, keepdim=True))[:, 0].tolist())
    return float(np.mean(ious))
