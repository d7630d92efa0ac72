"""The HTTP boundary to the Gemini File API (asyncio + httpx, no SDK).

Its names are imported on first use (PEP 562): `status` and the other commands that
never call the service need not load httpx and asyncio (a tenth of their start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batches import BatchJob, Results, parse_results
    from .client import GeminiClient
    from .errors import ApiError, FileChanged, ProtocolError, TransportError, UploadSessionLost
    from .models import (
        File,
        Generation,
        ModelInfo,
        UploadSession,
        UploadStatus,
        Usage,
        parse_sha256,
        tier_name,
    )
    from .pacing import (
        Budgets,
        ClassLimits,
        ConfigPause,
        ConfigPaused,
        Pause,
        QuotaPaused,
        generate_class,
        model_pause,
        tier_pause,
    )
    from .resumable_upload import ProgressCallback
    from .retry import RetryPolicy
    from .tiers import FlexFallback, flex_refusal

_HOME = {
    "BatchJob": "batches",
    "Results": "batches",
    "parse_results": "batches",
    "GeminiClient": "client",
    "ApiError": "errors",
    "FileChanged": "errors",
    "ProtocolError": "errors",
    "TransportError": "errors",
    "UploadSessionLost": "errors",
    "File": "models",
    "Generation": "models",
    "ModelInfo": "models",
    "UploadSession": "models",
    "UploadStatus": "models",
    "Usage": "models",
    "parse_sha256": "models",
    "tier_name": "models",
    "Budgets": "pacing",
    "ClassLimits": "pacing",
    "ConfigPause": "pacing",
    "ConfigPaused": "pacing",
    "Pause": "pacing",
    "QuotaPaused": "pacing",
    "generate_class": "pacing",
    "model_pause": "pacing",
    "tier_pause": "pacing",
    "ProgressCallback": "resumable_upload",
    "RetryPolicy": "retry",
    "FlexFallback": "tiers",
    "flex_refusal": "tiers",
}



def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value

__all__ = [
    "ApiError",
    "BatchJob",
    "Results",
    "parse_results",
    "Budgets",
    "ClassLimits",
    "ConfigPause",
    "ConfigPaused",
    "FlexFallback",
    "ModelInfo",
    "flex_refusal",
    "model_pause",
    "tier_name",
    "tier_pause",
    "Pause",
    "QuotaPaused",
    "generate_class",
    "File",
    "FileChanged",
    "GeminiClient",
    "Generation",
    "ProgressCallback",
    "ProtocolError",
    "RetryPolicy",
    "TransportError",
    "UploadSession",
    "UploadSessionLost",
    "UploadStatus",
    "Usage",
    "parse_sha256",
]
