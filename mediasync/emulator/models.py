"""The models the emulator serves: ``models.list`` and ``models.get`` in the live shapes,
retired models answering 404 as wire/41 to every call, re-routed names, and what each
model does with thinking, media resolution and media kinds.

The default catalogue is the service of late 2026 (docs/service.md): the Gemini 3.x
models, the 2.5 models (shut down on 2026-12-01 by the deprecations page, still served
here so that tests and benchmarks can compare with them; retire them with
``EmulatorConfig.retired_models`` or ``Catalog.retire``), the 2.0 models the wire
samples name, aliases that follow the newest models, an audio-only model and an
embedding model. Settable at run time (``Catalog.add``, ``retire``, ``restore``,
``route``; ``POST /_emulator/models``).
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ApiError

GENERATE = "generateContent"
_METHODS = (GENERATE, "countTokens", "createCachedContent", "batchGenerateContent")
LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")


@dataclass(frozen=True)
class ModelSpec:
    """One model as the catalogue holds it."""

    id: str
    display_name: str
    version: str = "001"
    description: str = ""
    input_token_limit: int = 1_048_576
    output_token_limit: int = 65_536
    methods: tuple[str, ...] = _METHODS
    family: str = "3"  # "3" (thinkingLevel), "2.5" (thinkingBudget), "2.0" (no thinking)
    levels: tuple[str, ...] = LEVELS  # thinking levels it takes (3.x)
    default_level: str | None = "HIGH"  # its thinking with no thinkingConfig (None: none)
    minimal_thinks: bool = True  # MINIMAL still thinks a little (3.x Flash cannot stop)
    can_turn_off: bool = True  # 2.5: a thinkingBudget of 0 stops thinking
    inputs: tuple[str, ...] = ("image", "audio", "video")  # media kinds it takes
    max_temperature: float = 2.0

    @property
    def thinking(self) -> bool:
        return self.family != "2.0"

    def resource(self) -> dict[str, Any]:
        """The Model as models.get answers it (files-api.md, "Models")."""
        out: dict[str, Any] = {
            "name": f"models/{self.id}",
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description or f"{self.display_name} (mediasync emulator)",
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(self.methods),
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": self.max_temperature,
        }
        if self.thinking:
            out["thinking"] = True
        return out


def _v3(model_id: str, name: str, **kw: Any) -> ModelSpec:
    return ModelSpec(model_id, name, **kw)


def _v25(model_id: str, name: str, **kw: Any) -> ModelSpec:
    kw.setdefault("levels", ())
    return ModelSpec(model_id, name, family="2.5", **kw)


_LITE = {"default_level": "MINIMAL", "minimal_thinks": False}  # thinks only when asked
_PRO = {"levels": ("LOW", "HIGH")}

DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    _v3("gemini-3.8-flash", "Gemini 3.8 Flash"),
    _v3("gemini-3.7-flash", "Gemini 3.7 Flash"),
    _v3("gemini-3.6-flash", "Gemini 3.6 Flash"),
    _v3("gemini-3.5-flash", "Gemini 3.5 Flash"),
    _v3("gemini-3.5-flash-lite", "Gemini 3.5 Flash-Lite", **_LITE),
    _v3("gemini-3.1-flash-lite", "Gemini 3.1 Flash-Lite", **_LITE),
    _v3("gemini-3.1-pro-preview", "Gemini 3.1 Pro Preview", version="3.1-pro-preview",
        **_PRO),
    _v3("gemini-3-flash-preview", "Gemini 3 Flash Preview", version="3-flash-preview"),
    _v3("gemini-flash-latest", "Gemini Flash Latest", version="latest"),
    _v3("gemini-flash-lite-latest", "Gemini Flash-Lite Latest", version="latest", **_LITE),
    _v3("gemini-3.5-transcribe", "Gemini 3.5 Transcribe", inputs=("audio",),
        methods=(GENERATE, "countTokens"), **_LITE),
    _v25("gemini-2.5-flash", "Gemini 2.5 Flash", default_level="dynamic"),
    _v25("gemini-2.5-pro", "Gemini 2.5 Pro", default_level="dynamic", can_turn_off=False),
    _v25("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", default_level=None),
    ModelSpec("gemini-2.0-flash", "Gemini 2.0 Flash", family="2.0", levels=(),
              default_level=None, output_token_limit=8192),
    ModelSpec("gemini-2.0-flash-lite", "Gemini 2.0 Flash-Lite", family="2.0", levels=(),
              default_level=None, output_token_limit=8192),
    ModelSpec("gemini-embedding-001", "Gemini Embedding 001", family="2.0", levels=(),
              default_level=None, methods=("embedContent", "countTextTokens"),
              input_token_limit=2048, output_token_limit=1),
)
# Aliases answer as the model they follow (modelVersion names it).
DEFAULT_ROUTES = {"gemini-flash-latest": "gemini-3.8-flash",
                  "gemini-flash-lite-latest": "gemini-3.5-flash-lite"}


def not_found(model_id: str, ver: str, method: str) -> ApiError:
    """A retired or unknown model, as the live service says it (wire/41): 404 NOT_FOUND
    naming the model, the API version and the method, no details."""
    return ApiError(
        404,
        f"models/{model_id} is not found for API version {ver}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their "
        "supported methods.",
        "NOT_FOUND",
    )


def page_token(last_name: str) -> str:
    """A list page token as wire/37 shows it: standard base64 (padded) of a protobuf
    message whose field 1 is the last resource name returned."""
    raw = last_name.encode()
    if len(raw) >= 128:
        raise ValueError("resource name too long for a one-byte length")
    return base64.b64encode(b"\x0a" + bytes([len(raw)]) + raw).decode()


def after_token(token: str) -> str:
    """The resource name a page token continues after (:func:`page_token`'s inverse)."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "Invalid page token.") from None
    if len(raw) < 2 or raw[0] != 0x0A or raw[1] != len(raw) - 2:
        raise ApiError(400, "Invalid page token.")
    return raw[2:].decode("utf-8", "replace")


@dataclass
class Catalog:
    """The models served, in listing order, and what has been done to them."""

    models: dict[str, ModelSpec] = field(default_factory=dict)
    retired: set[str] = field(default_factory=set)
    routes: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def default(cls, retired: Iterable[str] = (), routes: dict[str, str] | None = None
                ) -> Catalog:
        c = cls({m.id: m for m in DEFAULT_MODELS}, set(), dict(DEFAULT_ROUTES))
        for model in retired:
            c.retire(model)
        for old, new in (routes or {}).items():
            c.route(old, new)
        return c

    # -- settings ------------------------------------------------------------
    def add(self, spec: ModelSpec) -> None:
        with self._lock:
            self.models[spec.id] = spec
            self.retired.discard(spec.id)

    def retire(self, model: str) -> None:
        """Shut a model down: 404 to every call (wire/41), gone from the listing."""
        with self._lock:
            self.retired.add(model.removeprefix("models/"))

    def restore(self, model: str) -> None:
        with self._lock:
            self.retired.discard(model.removeprefix("models/"))

    def route(self, old: str, new: str) -> None:
        """Answer calls to ``old`` with ``new`` (reported: retired names re-routed to a
        newer model, billed at its price); ``old`` is served, not listed, if unknown."""
        with self._lock:
            self.routes[old.removeprefix("models/")] = new.removeprefix("models/")

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"models": list(self.models), "retired": sorted(self.retired),
                    "routes": dict(self.routes)}

    # -- answers -------------------------------------------------------------
    def get(self, model: str, ver: str, method: str = "get") -> ModelSpec:
        """The model as models.get sees it; 404 for a retired or unknown one."""
        model = model.removeprefix("models/")
        with self._lock:
            spec = self.models.get(model)
            if spec is None or model in self.retired:
                raise not_found(model, ver, method)
            return spec

    def serving(self, model: str, ver: str, method: str = GENERATE) -> ModelSpec:
        """The model that answers a call to ``model`` (a route's target), or the 404 of
        wire/41 when none does or it does not support ``method``."""
        model = model.removeprefix("models/")
        with self._lock:
            target = self.routes.get(model, model)
            spec = self.models.get(target)
            gone = model in self.retired and model not in self.routes
            if spec is None or gone or target in self.retired or method not in spec.methods:
                raise not_found(model, ver, method)
            return spec

    def page(self, size: int, token: str) -> tuple[list[ModelSpec], str | None]:
        """One page of the listing, and the token of the next (None: the last page)."""
        with self._lock:
            listed = [m for m in self.models.values() if m.id not in self.retired]
        start = 0
        if token:
            after = after_token(token).removeprefix("models/")
            start = next((i + 1 for i, m in enumerate(listed) if m.id == after), len(listed))
        chunk = listed[start:start + size]
        more = start + size < len(listed)
        return chunk, page_token(f"models/{chunk[-1].id}") if more and chunk else None


def with_inputs(spec: ModelSpec, *kinds: str) -> ModelSpec:
    """A copy of ``spec`` that takes only these media kinds (tests)."""
    return replace(spec, inputs=tuple(kinds))
