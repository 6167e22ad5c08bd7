"""SAM segmentation service: POST an image, get every object cut out."""

__version__ = "0.1.0"
