"""GET /results/{job_id}/...: download a finished job's files, one by one or as a zip,
streamed from the storage (a local folder or a bucket).

Only server-made job ids and the result file names are served (see
app.services.results.downloads); anything else answers 404 in the error envelope.
Plain `def` routes: FastAPI runs them in its thread pool, off the event loop.
"""

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.routes.deps import RequireApiKey, SettingsDep
from app.schemas import ErrorResponse
from app.services.results.storage import open_storage
from app.services.results.downloads import job_folder, media_type, result_file, zip_chunks

router = APIRouter(prefix="/results", tags=["results"], dependencies=[RequireApiKey])
# 503 STORAGE_UNAVAILABLE: the bucket did not answer within the storage bounds.
_NOT_FOUND = {status: {"model": ErrorResponse} for status in (401, 404, 503, 507)}


@router.get("/{job_id}/archive.zip", response_class=StreamingResponse, responses=_NOT_FOUND)
def download_archive(job_id: str, settings: SettingsDep) -> StreamingResponse:
    """Every file of the result as one zip archive, streamed."""
    storage = open_storage(settings)
    folder = job_folder(storage, job_id)
    disposition = f'attachment; filename="{job_id}.zip"'
    return StreamingResponse(zip_chunks(storage, folder), media_type="application/zip",
                             headers={"Content-Disposition": disposition})


@router.get("/{job_id}/{file}", response_class=StreamingResponse, responses=_NOT_FOUND)
def download_file(job_id: str, file: str, settings: SettingsDep) -> StreamingResponse:
    """One result file: overlay.png, metadata.json, annotations.json, mask_N.png or object_N.png."""
    size, chunks = result_file(open_storage(settings), job_id, file)
    return StreamingResponse(chunks, media_type=media_type(file),
                             headers={"Content-Length": str(size)})
