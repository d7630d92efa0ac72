"""The HTTP boundary to the Gemini File API (asyncio + httpx, no SDK)."""

from .client import GeminiClient, ProgressCallback
from .errors import ApiError, ProtocolError, TransportError, UploadSessionLost
from .limits import Budgets, ClassLimits, Pause, QuotaPaused, generate_class
from .models import File, Generation, UploadSession, UploadStatus, Usage, parse_sha256
from .retry import RetryPolicy
from .upload import FileChanged

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
