"""The /segment answer for a finished job, made in one place for the server (both
modes), the job API and the workers."""

from app.schemas import ResultFiles, ResultUrls, SegmentResponse
from app.services.pipeline import JobResult
from app.services.results import layout


def segment_response(result: JobResult) -> SegmentResponse:
    """Where a finished job's files are: in the storage (`files`: paths relative to
    the results folder's parent, or s3:// URLs) and over HTTP (`urls`)."""
    metadata = result.metadata
    masks = [o.mask_file for o in metadata.objects]
    objects = [o.object_file for o in metadata.objects]
    url_base = f"/results/{result.job_id}"
    return SegmentResponse(
        job_id=result.job_id,
        objects_count=len(metadata.objects),
        output_dir=result.output_dir,
        files=ResultFiles(**layout.result_paths(result.output_dir, masks, objects)),
        urls=ResultUrls(**layout.result_paths(url_base, masks, objects),
                        archive=f"{url_base}/{layout.ARCHIVE}"),
        parameters=metadata.parameters,
        timings=metadata.timings_ms,
    )
