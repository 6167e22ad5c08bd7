"""Procedurally generated scenes with exact object masks, for training and testing sam_tiny.

    rng = np.random.default_rng(7)
    image, masks = generate_scene(rng)          # (256, 256, 3) uint8, list of (256, 256) bool

A scene is a textured background with a few shapes (ellipses, polygons, rings, blobs)
painted on top of each other, then global blur, noise and colour jitter. Each mask is
the *visible* part of one object after occlusion. Occlusion is kept moderate on
purpose: an object keeps at least half of its area and stays in one piece, so every
mask is something a point prompt can reasonably recover. The same seed always gives
the same scene.
"""

import cv2
import numpy as np

SHAPES = ("ellipse", "polygon", "ring", "blob")
_MIN_COLOUR_DISTANCE = 70.0  # RGB distance between an object and what lies under it
_MIN_VISIBLE_SHARE = 0.5  # an occluded object keeps at least this share of its area
# sam_tiny draws masks on a 64 x 64 grid (4 px per cell at 256 px), so a part thinner than
# about two cells cannot be drawn at all. Every visible mask must keep this share of its
# pixels through a morphological opening with a 7-px disc: no slivers, hairline rings or
# thin occlusion leftovers.
_THICK = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
_MIN_THICK_SHARE = 0.9


def generate_scene(
    rng: np.random.Generator,
    height: int = 256,
    width: int = 256,
    max_objects: int = 6,
    min_object_pixels: int = 400,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw one scene: an (H, W, 3) uint8 RGB image and one boolean (H, W) mask per object.

    rng: numpy Generator, the only source of randomness. max_objects: upper bound on
    the objects painted (at least one is). min_object_pixels: objects whose visible
    part is smaller are not painted, so every returned mask is worth finding.
    """
    scale = min(height, width)
    image = _background(rng, height, width)
    masks: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(10):  # retry placements that hide earlier objects too much
            shape = _shape_mask(rng, height, width, scale)
            colour = rng.uniform(0, 255, 3)
            if _accepts(shape, colour, image, masks, min_object_pixels):
                break
        else:
            continue
        image[shape] = _texture(rng, colour, height, width)[shape]
        masks = [m & ~shape for m in masks]
        masks.append(shape)
    return _camera_effects(rng, image), masks


def _accepts(shape, colour, image, masks, min_pixels) -> bool:
    """A new object must be big enough, contrast with what it covers, and not bury others."""
    area = int(shape.sum())
    if area < min_pixels or not _thick(shape):
        return False
    below = image[shape].reshape(-1, 3).mean(axis=0)
    if np.linalg.norm(below - colour) < _MIN_COLOUR_DISTANCE:
        return False
    for mask in masks:
        left = mask & ~shape
        kept = left.sum()
        if kept < min_pixels or kept < _MIN_VISIBLE_SHARE * mask.sum() or not _thick(left):
            return False
        if kept < mask.sum() and cv2.connectedComponents(left.astype(np.uint8))[0] > 2:
            return False  # the occluder would cut the object in two
    return True


def _thick(mask: np.ndarray) -> bool:
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _THICK)
    return opened.sum() >= _MIN_THICK_SHARE * mask.sum()


def _shape_mask(rng, height, width, scale) -> np.ndarray:
    """One shape at a random place, size, aspect ratio and rotation."""
    canvas = np.zeros((height, width), np.uint8)
    radius = scale * rng.uniform(0.07, 0.28)
    aspect = rng.uniform(0.35, 1.0)
    centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    angle = rng.uniform(0, np.pi)
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    if kind in ("ellipse", "ring"):
        axes = (int(radius), max(int(radius * aspect), 3))
        centre_px = tuple(int(v) for v in centre)
        cv2.ellipse(canvas, centre_px, axes, np.degrees(angle), 0, 360, 1, -1)
        if kind == "ring":
            inner = rng.uniform(0.4, 0.7)
            inner_axes = (max(int(axes[0] * inner), 1), max(int(axes[1] * inner), 1))
            cv2.ellipse(canvas, centre_px, inner_axes, np.degrees(angle), 0, 360, 0, -1)
    else:
        if kind == "polygon":
            count = int(rng.integers(3, 9))
            theta = np.sort(rng.uniform(0, 2 * np.pi, count))
            radii = radius * rng.uniform(0.6, 1.0, count)
        else:  # blob: a smooth random radius around the centre
            theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
            radii = np.ones_like(theta)
            for freq in (2, 3, 4):
                radii += rng.uniform(0, 0.25) * np.cos(freq * theta + rng.uniform(0, 2 * np.pi))
            radii *= radius / radii.max()
        local = np.stack([radii * np.cos(theta), aspect * radii * np.sin(theta)], axis=1)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = (local @ rotation.T + centre).round().astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
    return canvas.astype(bool)


def _texture(rng, colour, height, width) -> np.ndarray:
    """A full-frame fill around `colour`: flat, stripes, checker, gradient or mottled."""
    yy, xx = np.ogrid[0:height, 0:width]
    yy, xx = yy.astype(np.float32), xx.astype(np.float32)
    kind = int(rng.integers(5))
    amplitude = rng.uniform(10, 35)
    if kind == 0:
        pattern = np.zeros((1, 1), np.float32)
    elif kind == 1:
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 20)
        step = np.float32(2 * np.pi / period)
        pattern = np.sin(step * (xx * np.cos(angle) + yy * np.sin(angle)).astype(np.float32))
    elif kind == 2:
        cell = int(rng.integers(4, 16))
        pattern = (((xx // cell) + (yy // cell)) % 2) * 2 - 1
    elif kind == 3:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = xx * np.cos(angle) + yy * np.sin(angle)
        pattern = 2 * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6) - 1
    else:
        coarse = rng.uniform(-1, 1, (int(rng.integers(3, 12)),) * 2).astype(np.float32)
        pattern = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(0.5, 1.0, 3)  # patterns vary in hue too, not only brightness
    fill = colour.astype(np.float32) + pattern[..., None] * (amplitude * tint).astype(np.float32)
    return np.broadcast_to(np.clip(fill, 0, 255), (height, width, 3))


def _background(rng, height, width) -> np.ndarray:
    """A background as varied as the objects, sometimes with a second texture blended in."""
    image = _texture(rng, rng.uniform(0, 255, 3), height, width)
    if rng.random() < 0.5:
        other = _texture(rng, rng.uniform(0, 255, 3), height, width)
        weight = np.float32(rng.uniform(0.2, 0.5))
        image = (1 - weight) * image + weight * other
    return np.array(image, np.float32)  # a writable copy: objects are painted onto it


def _camera_effects(rng, image) -> np.ndarray:
    """Blur, sensor noise and a global brightness/contrast jitter, then back to uint8."""
    if rng.random() < 0.4:
        sigma = rng.uniform(0.3, 1.2)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    noise = rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0, 8)
    gain, offset = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    image = (image + noise - 128) * np.float32(gain) + np.float32(128 + offset)
    return np.clip(image, 0, 255).astype(np.uint8)
