"""Dependencies shared by routes, declared once as Annotated aliases."""

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from app.core.config import Settings, get_settings
from app.core.errors import Unauthorized
from app.services.jobs import Jobs

_API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="Required when the server sets API_KEY")


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


def _require_api_key(settings: Annotated[Settings, Depends(get_settings)],
                     key: Annotated[str | None, Security(_API_KEY_HEADER)]) -> None:
    if settings.API_KEY is None:
        return
    expected = settings.API_KEY.get_secret_value().encode()
    if key is None or not hmac.compare_digest(key.encode(), expected):
        raise Unauthorized("A valid X-API-Key header is required")


SettingsDep = Annotated[Settings, Depends(get_settings)]
# Where jobs run: in this process (embedded) or on Celery workers (broker mode).
JobsDep = Annotated[Jobs, Depends(_jobs)]
# Attach to a route or router: `dependencies=[RequireApiKey]` (a no-op while API_KEY is unset).
RequireApiKey = Depends(_require_api_key)
