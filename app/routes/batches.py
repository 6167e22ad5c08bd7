"""Batches over HTTP: POST /batches (a folder under BATCH_INPUT_ROOT or an s3:// prefix,
and the generator parameters) starts one and answers 202; GET /batches/{batch_id}
counts its inputs; DELETE /batches/{batch_id} cancels what has not started."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.core.errors import NotFound
from app.routes.deps import RequireApiKey
from app.schemas import ErrorResponse
from app.schemas.batches import BatchRequest, BatchView
from app.services.batches.service import BatchService

router = APIRouter(prefix="/batches", tags=["batches"], dependencies=[RequireApiKey])
_ERRORS = {status: {"model": ErrorResponse} for status in (401, 404, 422, 503, 507)}


def _batches(request: Request) -> BatchService:
    return request.app.state.batches


BatchesDep = Annotated[BatchService, Depends(_batches)]


@router.post("", status_code=202, response_model=BatchView, responses=_ERRORS)
async def start_batch(body: BatchRequest, batches: BatchesDep, response: Response) -> BatchView:
    """Segment every image under `input` in the background; follow it at `status_url`."""
    view = await batches.start(body)
    response.headers["Location"] = view.status_url
    return view


@router.get("/{batch_id}", response_model=BatchView, responses=_ERRORS)
def get_batch(batch_id: str, batches: BatchesDep) -> BatchView:
    """The batch's counts (queued, running, succeeded, failed, ...) and its manifest."""
    return _found(batch_id, batches.get(batch_id))


@router.delete("/{batch_id}", response_model=BatchView, responses=_ERRORS)
async def cancel_batch(batch_id: str, batches: BatchesDep) -> BatchView:
    """Cancel the batch: queued jobs and inputs not yet submitted never run; running
    jobs finish and are recorded in the manifest."""
    return _found(batch_id, await batches.cancel(batch_id))


def _found(batch_id: str, view: BatchView | None) -> BatchView:
    if view is None:
        raise NotFound("No batch with this id", {"batch_id": batch_id})
    return view
