"""The HTTP boundary to the Gemini File API (asyncio + httpx, no SDK)."""

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
