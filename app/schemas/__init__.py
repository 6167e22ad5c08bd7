"""Every shape that crosses a layer or the wire: request parameters, metadata.json and
the HTTP answers (the contract `/docs` publishes)."""

from app.schemas.api import (ErrorResponse, HealthResponse, InfoResponse, LiveResponse, ReadyResponse,
                             ResultFiles, ResultUrls, SegmentResponse)
from app.schemas.metadata import (CocoRle, ImageInfo, JobMetadata, Retry, SavedObject,
                                  SkippedMask, Timings)
from app.schemas.params import AppliedParameters, GenerationParams, JobRequest

__all__ = ["AppliedParameters", "CocoRle", "ErrorResponse", "GenerationParams", "HealthResponse", "ImageInfo",
           "InfoResponse", "JobMetadata", "JobRequest", "LiveResponse", "ReadyResponse", "ResultFiles",
           "ResultUrls", "Retry", "SavedObject", "SegmentResponse", "SkippedMask", "Timings"]
