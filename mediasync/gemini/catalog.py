"""The service's catalogue of models: ``models.list`` (every page) and ``models.get``.

Answers in the live shapes of files-api.md ("Models"): ``{"models": [...],
"nextPageToken": "…"}`` with the token as wire/37 shows it, and the bare Model for a
get. Parsed leniently (:class:`ModelInfo`): no capture proves the field set.
"""

from __future__ import annotations

from .models import ModelInfo, json_object, model_name
from .transport import Transport

PAGE_SIZE = 1000  # the most one page may hold: the catalogue is a page or two


async def list_models(transport: Transport, page_size: int = PAGE_SIZE) -> list[ModelInfo]:
    """Every model on every page (the service's default page size is smaller)."""
    return [ModelInfo.from_json(m)
            for m in await transport.pages("models.list", "models", "models", page_size)]


async def get_model(transport: Transport, model: str) -> ModelInfo:
    """One model; a retired or unknown one raises ApiError 404 (``model_missing``)."""
    response = await transport.call("models.get", "GET", transport.url(model_name(model)))
    info = ModelInfo.from_json(json_object(response.content))
    return info if info.name else ModelInfo(model_name(model))
