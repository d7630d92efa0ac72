"""The HTTP boundary to the Gemini File API (asyncio + httpx, no SDK)."""

from .client import GeminiClient
from .errors import ApiError, FileChanged, ProtocolError, TransportError, UploadSessionLost
from .models import File, Generation, UploadSession, UploadStatus, Usage, parse_sha256
from .pacing import Budgets, ClassLimits, Pause, QuotaPaused, generate_class
from .resumable_upload import ProgressCallback
from .retry import RetryPolicy

__all__ = [
    "ApiError",
    "Budgets",
    "ClassLimits",
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
