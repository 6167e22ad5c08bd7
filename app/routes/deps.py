"""Dependencies shared by routes, declared once as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings, get_settings
from app.services.model_manager import ModelManager


def _manager(request: Request) -> ModelManager:
    return request.app.state.manager


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[ModelManager, Depends(_manager)]
