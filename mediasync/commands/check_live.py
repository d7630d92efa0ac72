"""`mediasync check --live`: one round trip proving our protocol assumptions.

Uploads a tiny PNG, reads back exactly what the configured service sent, asks
one cheap question, deletes the file and reports every difference from what
mediasync expects (files-api.md, wire/). The ``inspect_*`` functions are pure:
raw headers and JSON in, an :class:`Outcome` out. The runner does the I/O
through the same GeminiClient the daemon uses; an httpx response hook keeps
the raw answers, because the client's lenient parsing would hide the very
differences this check is for.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from mediasync.commands.common import api_fatal, describe_api_error, tool_client
from mediasync.config import Config, Knobs
from mediasync.gemini import ApiError, GeminiClient, ProtocolError, TransportError
from mediasync.gemini.models import parse_time, sha256_hex
from mediasync.media.formats import FILE_TTL_SECONDS

MIME = "image/png"
SAMPLE_SIDE = 16  # pixels: one image ≤ 384 px costs 258 tokens whatever its size
PROMPT = "Colour?"  # one word: the answer's cost is the image, not the prompt
# Thinking off (or its lowest level) and a few output tokens: about 300 tokens in all on
# 2.5 (258 of them the image), about 1,150 on 3.x (an image there is 1,120 by default;
# media_resolution "low" makes it 280).
KNOBS = Knobs(thinking="off", max_output_tokens=16, media_resolution="low")


def generation_config(model: str) -> dict[str, Any]:
    """The cheap question's generationConfig, as ``model``'s family takes it."""
    return KNOBS.generation_config(model)
ACTIVE_WAIT = 60.0  # seconds: a 16 px PNG is ACTIVE at once on the live service
TTL_SLACK = 120.0  # seconds either side of createTime + 48 h (live: a few ms less)
STATES = ("PROCESSING", "ACTIVE", "FAILED")
_NAME = re.compile(r"files/[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")


@dataclass(frozen=True)
class Outcome:
    """What one step saw: a summary for its ok line, or the differences, one FAIL line each."""

    summary: str
    differences: tuple[str, ...] = ()


class Reporter(Protocol):
    def ok(self, what: str) -> None: ...

    def differ(self, what: str) -> None:
        """The service answered unlike mediasync expects (exit 1)."""

    def fail(self, what: str, *, api: bool = False) -> None:
        """With api=True: the key was refused or the service unreachable (exit 3)."""


# --- pure inspections ---------------------------------------------------------


def _shown_url(url: str) -> str:
    # Path only: the query's upload_id authorises writes to the upload session.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


def inspect_start(headers: Mapping[str, str]) -> Outcome:
    """The upload start answer's headers: an absolute upload URL, the chunk granularity."""
    diffs: list[str] = []
    url = headers.get("x-goog-upload-url")
    if not url:
        diffs.append("upload start: no X-Goog-Upload-URL header")
        where = "no upload URL"
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            diffs.append(f"upload start: X-Goog-Upload-URL is relative ({_shown_url(url)}), "
                         "expected an absolute URL (mediasync resolves it against base_url)")
        where = f"absolute upload URL {_shown_url(url)}"
    raw = headers.get("x-goog-upload-chunk-granularity")
    if raw is None:
        granularity = "no X-Goog-Upload-Chunk-Granularity header (mediasync assumes 8 MiB)"
    elif raw.strip().isdigit() and int(raw) > 0:
        granularity = f"chunk granularity {int(raw)} bytes"
    else:
        granularity = ""
        diffs.append(f"upload start: X-Goog-Upload-Chunk-Granularity is {raw!r}, expected a "
                     "positive number of bytes (mediasync assumes 8 MiB)")
    return Outcome(f"upload start: {where}; {granularity}", tuple(diffs))


def inspect_finalize(
    headers: Mapping[str, str], body: Any
) -> tuple[dict[str, Any] | None, Outcome]:
    """The finalize answer: ``X-Goog-Upload-Status: final`` and ``{"file": {File}}``.

    Returns the File resource wherever it was found (wrapped or bare), so the
    later steps, and the clean-up, can go on.
    """
    diffs: list[str] = []
    status = headers.get("x-goog-upload-status")
    if status != "final":
        shown = repr(status) if status is not None else "absent"
        diffs.append(f"finalize: X-Goog-Upload-Status is {shown}, expected 'final'")
    resource: dict[str, Any] | None = None
    if not isinstance(body, dict):
        diffs.append("finalize: the answer is not a JSON object")
    elif isinstance(body.get("file"), dict):
        resource = body["file"]
    elif "name" in body:
        resource = body
        diffs.append("finalize: answered a bare File, expected it wrapped in {file: …}")
    else:
        keys = ", ".join(sorted(body)) or "none"
        diffs.append(f"finalize: the answer has no File (top-level keys: {keys}), "
                     "expected {file: …}")
    return resource, Outcome("upload and finalize: the File wrapped in {file: …}", tuple(diffs))


def expected_hash(data: bytes) -> str:
    """The live form (wire/11): base64 of the lowercase hex digest string, 88 characters."""
    return base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode()


def inspect_hash(value: Any, data: bytes) -> Outcome:
    """``sha256Hash`` against the bytes sent, naming the form found."""
    digest = hashlib.sha256(data)
    ok = Outcome("sha256Hash: base64 of the hex digest, matches the bytes sent")
    if value is None or value == "":
        return Outcome("", ("no sha256Hash, expected base64 of the hex digest",))
    if not isinstance(value, str):
        return Outcome("", (f"sha256Hash is a JSON {type(value).__name__}, expected a string",))
    if value == expected_hash(data):
        return ok
    expected = "expected base64 of the hex digest"
    if value == base64.b64encode(digest.digest()).decode():
        return Outcome("", (f"sha256Hash is base64 of the raw digest, {expected} "
                            "(mediasync reads either)",))
    if value.lower() == digest.hexdigest():
        return Outcome("", (f"sha256Hash is the bare hex digest, {expected} (mediasync reads "
                            "either)",))
    shown = value if len(value) <= 24 else value[:24] + "…"
    if sha256_hex(value) == digest.hexdigest():
        return Outcome("", (f"sha256Hash is in another form ({shown}) that still decodes to the "
                            f"digest, {expected}",))
    return Outcome("", (f"sha256Hash {shown} does not match the SHA-256 of the bytes sent",))


def _span(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.3f} h" if abs(hours - round(hours)) > 1e-3 else f"{round(hours)} h"


def inspect_fields(
    resource: Mapping[str, Any], *, size: int, mime: str, ttl: float = FILE_TTL_SECONDS
) -> Outcome:
    """The File's fields we rely on, present and typed; one difference per field."""
    diffs: list[str] = []

    def present(key: str) -> Any:
        value = resource.get(key)
        if value is None or value == "":
            diffs.append(f"File: no {key}")
            return None
        return value

    name = present("name")
    if name is not None and not (isinstance(name, str) and _NAME.fullmatch(name)):
        diffs.append(f"File: name {name!r} is not files/<id>")
    mime_type = present("mimeType")
    if mime_type is not None and mime_type != mime:
        diffs.append(f"File: mimeType is {mime_type!r}, expected {mime!r}")
    size_bytes = present("sizeBytes")
    if isinstance(size_bytes, int | float) and not isinstance(size_bytes, bool):
        diffs.append(f"File: sizeBytes is the number {size_bytes}, expected the string "
                     f"\"{size}\" (mediasync reads either)")
    elif size_bytes is not None and size_bytes != str(size):
        diffs.append(f"File: sizeBytes is {json.dumps(size_bytes)}, expected \"{size}\"")
    times = {}
    for key in ("createTime", "expirationTime"):
        value = present(key)
        if value is not None:
            times[key] = parse_time(value)
            if times[key] is None:
                diffs.append(f"File: {key} {value!r} is not an RFC 3339 time")
    created, expires = times.get("createTime"), times.get("expirationTime")
    lifetime = ""
    if created is not None and expires is not None:
        span = (expires - created).total_seconds()
        if abs(span - ttl) > TTL_SLACK:
            diffs.append(f"File: expirationTime is createTime + {_span(span)}, "
                         f"expected + {_span(ttl)}")
        lifetime = f" = createTime + {_span(span)}"
    uri = present("uri")
    if uri is not None and not (isinstance(uri, str) and urlsplit(uri).scheme in ("http", "https")
                                and urlsplit(uri).netloc):
        diffs.append(f"File: uri {uri!r} is not an absolute URL")
    state = present("state")
    if state is not None and state not in STATES:
        diffs.append(f"File: state {state!r} is not one of {', '.join(STATES)}")
    summary = (f"File fields: name, mimeType, sizeBytes \"{size}\", createTime, "
               f"expirationTime{lifetime}, uri, state {state}")
    return Outcome(summary, tuple(diffs))


def inspect_get(body: Any) -> tuple[str, ...]:
    """files.get answers the bare File (wire/12, 13), not one wrapped in {file: …}."""
    if isinstance(body, dict) and "name" not in body and isinstance(body.get("file"), dict):
        return ("files.get: answered a File wrapped in {file: …}, expected the bare File",)
    if not isinstance(body, dict):
        return ("files.get: the answer is not a JSON object",)
    return ()


def inspect_generation(raw: Mapping[str, Any], model: str) -> Outcome:
    """The tokens spent, and the usageMetadata we account them by."""
    usage = raw.get("usageMetadata")
    if not isinstance(usage, dict):
        return Outcome("", (f"generateContent ({model}): no usageMetadata, so no token count",))
    counts = {k: usage.get(k) for k in ("promptTokenCount", "candidatesTokenCount",
                                        "thoughtsTokenCount", "totalTokenCount")}
    odd = [k for k, v in counts.items() if v is not None and not isinstance(v, int)]
    if odd or counts["totalTokenCount"] is None:
        what = ", ".join(odd) if odd else "totalTokenCount"
        return Outcome("", (f"generateContent ({model}): usageMetadata {what} missing or "
                            f"not a number ({json.dumps(usage)[:120]})",))
    parts = [f"prompt {counts['promptTokenCount'] or 0}",
             f"answer {counts['candidatesTokenCount'] or 0}"]
    if counts["thoughtsTokenCount"]:
        parts.append(f"thoughts {counts['thoughtsTokenCount']}")
    candidates = raw.get("candidates") or []
    first = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    texts = [p.get("text") for p in (first.get("content") or {}).get("parts") or []
             if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")]
    block = (raw.get("promptFeedback") or {}).get("blockReason")
    if texts:
        said = " ".join("".join(texts).split())
        said = f"answer {said[:40]!r}" + ("…" if len(said) > 40 else "")
    elif block:
        said = f"prompt blocked ({block})"
    else:
        said = f"no text (finish reason {first.get('finishReason') or 'none'})"
    served = raw.get("modelVersion")
    if isinstance(served, str) and served.removeprefix("models/") != model:
        said += f"; served by {served} (billed at its price)"
    summary = (f"generateContent ({model}): {counts['totalTokenCount']} tokens "
               f"({', '.join(parts)}); {said}")
    return Outcome(summary)


def inspect_gone(code: int, status: str) -> Outcome:
    """files.get after the delete: 403 PERMISSION_DENIED, never 404 (wire/05)."""
    ok = Outcome("delete: files.get afterwards answers 403 PERMISSION_DENIED, as expected")
    if code == 403 and status == "PERMISSION_DENIED":
        return ok
    if code == 200:
        return Outcome("", ("delete: files.get afterwards still answers 200: the file is "
                            "still there",))
    return Outcome("", (f"delete: files.get afterwards answered {code} {status}, expected 403 "
                        "PERMISSION_DENIED (mediasync knows a vanished file by that 403)",))


# --- the round trip -----------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else {}
        except ValueError:
            return None


def _operation(request: httpx.Request) -> str:
    command = request.headers.get("x-goog-upload-command", "").lower()
    if command:
        if "start" in command:
            return "start"
        if "finalize" in command:
            return "finalize"
        return "query" if "query" in command else "chunk"
    path = request.url.path
    if path.endswith(":generateContent"):
        return "generate"
    if request.method == "DELETE":
        return "delete"
    return "get" if re.search(r"/files/[^/]+$", path) else "list"


@dataclass
class Answers:
    """An httpx response hook: what the service answered, per operation, unparsed."""

    seen: dict[str, list[Answer]] = field(default_factory=dict)
    count: int = 0

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()  # the client reads the same cached bytes afterwards
        self.count += 1
        answer = Answer(response.status_code, response.headers.copy(), response.content)
        self.seen.setdefault(_operation(response.request), []).append(answer)

    def last(self, operation: str) -> Answer | None:
        answers = self.seen.get(operation)
        return answers[-1] if answers else None

    def first(self, operation: str) -> Answer | None:
        answers = self.seen.get(operation)
        return answers[0] if answers else None


class _Stop(Exception):
    """A step failed that the later steps need; the clean-up still runs."""


@dataclass
class RoundTrip:
    client: GeminiClient
    answers: Answers
    report: Reporter
    model: str
    active_wait: float = ACTIVE_WAIT
    ttl: float = FILE_TTL_SECONDS

    def _show(self, outcome: Outcome) -> None:
        for difference in outcome.differences:
            self.report.differ(difference)
        if not outcome.differences:
            self.report.ok(outcome.summary)

    def _failed(self, step: str, e: Exception) -> _Stop:
        if isinstance(e, ApiError) and api_fatal(e):
            self.report.fail(f"{step}: {describe_api_error(e)}", api=True)
        elif isinstance(e, ApiError):
            self.report.differ(f"{step}: {e}")
        else:  # the client itself broke on the answer: say so, clean up, no traceback
            self.report.differ(f"{step}: mediasync's client failed: {type(e).__name__}: {e}")
        return _Stop()

    async def run(self) -> None:
        from mediasync.rules.ownership import display_name

        # A fresh seed: bytes no mirrored folder holds, so no daemon mistakes it for its own.
        data = png_bytes_for_check()
        digest = hashlib.sha256(data).hexdigest()
        with tempfile.TemporaryDirectory(prefix="mediasync-check-") as tmp:
            path = Path(tmp) / "check-live.png"
            path.write_bytes(data)
            self.report.ok(f"sample: a {SAMPLE_SIDE}x{SAMPLE_SIDE} PNG, {len(data)} bytes, "
                           f"sha256 {digest[:12]}…, in a temporary file")
            name: str | None = None
            display = display_name(digest, path.name)
            try:
                name = await self._upload(path, data, display)
                uri = await self._active(name)
                await self._generate(uri)
            except _Stop:
                pass
            except Exception as e:  # noqa: BLE001 - reported, and the clean-up below runs
                self._failed("the round trip", e)
            finally:
                # Even when the client gave up on the answer, a committed finalize
                # left a file behind: its name is in the raw answer, or, if that
                # answer was lost, in the listing under this run's display name.
                name = (name or _committed_name(self.answers.last("finalize"))
                        or _committed_name(self.answers.last("query")))
                if name is None and _answered(self.answers.last("start")):
                    name = await self._leftover(display)
                if name:
                    await self._delete(name)

    async def _upload(self, path: Path, data: bytes, display: str) -> str:
        error: Exception | None = None
        try:
            await self.client.upload(path, MIME, display)
        except Exception as e:  # noqa: BLE001 - the raw answers below tell what went wrong
            error = e
        start = self.answers.last("start")
        if start is None or start.status != 200:
            raise self._failed("upload start", error or ProtocolError("no answer"))
        self._show(inspect_start(start.headers))
        final, via = self.answers.last("finalize"), ""
        if not _answered(final) and _answered(self.answers.last("query")):
            # The finalize answer was lost (a transient); the client asked the
            # upload URL instead, whose final answer carries the File the same way.
            final, via = self.answers.last("query"), " (its answer lost, read by query)"
        if final is None or not _answered(final):
            raise self._failed("upload and finalize", error or ProtocolError("no answer"))
        resource, outcome = inspect_finalize(final.headers, final.json())
        self._show(Outcome(outcome.summary + via, outcome.differences))
        if error is not None and not outcome.differences:
            self.report.differ(f"upload and finalize: mediasync's client failed: {error}")
        if resource is None:
            raise _Stop()
        self._show(inspect_hash(resource.get("sha256Hash"), data))
        self._show(inspect_fields(resource, size=len(data), mime=MIME, ttl=self.ttl))
        name = resource.get("name")
        if not isinstance(name, str) or not name:
            raise _Stop()
        return name

    async def _active(self, name: str) -> str:
        began = time.monotonic()
        try:
            file = await self.client.wait_processed(name, limit=self.active_wait)
        except ApiError as e:
            if e.code == 504 and e.status == "DEADLINE_EXCEEDED" and "PROCESSING" in e.message:
                self.report.differ(f"files.get: still PROCESSING after {self.active_wait:g} s "
                                   "(a 16 px PNG is ACTIVE at once on the live service)")
                raise _Stop() from None
            raise self._failed("files.get", e) from None
        first = self.answers.first("get")
        for difference in inspect_get(first.json() if first else None):
            self.report.differ(difference)
        if file.state != "ACTIVE":
            why = f": {file.error_message}" if file.error_message else ""
            self.report.differ(f"files.get: the sample ended {file.state}{why}, expected ACTIVE")
            raise _Stop()
        polls = len(self.answers.seen.get("get", []))
        self.report.ok(f"files.get: ACTIVE after {time.monotonic() - began:.1f} s "
                       f"({polls} request(s))")
        if not file.uri:
            self.report.differ("files.get: the ACTIVE File has no uri to ask with")
            raise _Stop()
        return file.uri

    async def _generate(self, uri: str) -> None:
        config = generation_config(self.model)
        note = ""
        try:
            gen = await self.client.generate(self.model, file_uri=uri, mime_type=MIME,
                                             prompt=PROMPT, generation_config=config)
        except ApiError as e:
            # Some models cannot stop thinking and refuse budget 0 with a 400:
            # ask again with their default thinking (maxOutputTokens still caps it).
            if e.code != 400 or "thinking" not in e.message.lower():
                raise self._failed(f"generateContent ({self.model})", e) from None
            config.pop("thinkingConfig")
            note = "; the model refused thinkingBudget 0, asked again with its default thinking"
            try:
                gen = await self.client.generate(self.model, file_uri=uri, mime_type=MIME,
                                                 prompt=PROMPT, generation_config=config)
            except ApiError as e2:
                raise self._failed(f"generateContent ({self.model})", e2) from None
        outcome = inspect_generation(gen.raw, self.model)
        self._show(Outcome(outcome.summary + note, outcome.differences))

    async def _leftover(self, display: str) -> str | None:
        try:
            files = await self.client.list_files()
        except ApiError as e:
            self.report.fail(f"clean-up: cannot look for the sample ({describe_api_error(e)}); "
                             "`mediasync files purge --yes` removes it", api=api_fatal(e))
            return None
        return next((f.name for f in files if f.display_name == display and f.name), None)

    async def _delete(self, name: str) -> None:
        try:
            await self.client.delete_file(name)
        except ApiError as e:
            if api_fatal(e):
                self.report.fail(f"delete {name}: {describe_api_error(e)}; it expires in 48 h, or "
                                 f"`mediasync files delete {name}` removes it", api=True)
            else:
                self.report.differ(f"delete {name}: {e}; `mediasync files delete {name}` "
                                   "removes it")
            return
        try:
            await self.client.get_file(name)
            code, status = 200, "OK"
        except ApiError as e:
            if isinstance(e, TransportError):
                self.report.fail(f"delete: files.get afterwards: {describe_api_error(e)}", api=True)
                return
            code, status = e.code, e.status
        self._show(inspect_gone(code, status))


def _answered(answer: Answer | None) -> bool:
    return answer is not None and answer.status == 200


def _committed_name(final: Answer | None) -> str | None:
    if final is None or final.status != 200:
        return None
    body = final.json()
    if not isinstance(body, dict):
        return None
    resource = body.get("file") if isinstance(body.get("file"), dict) else body
    name = resource.get("name")
    return name if isinstance(name, str) and name else None


def png_bytes_for_check() -> bytes:
    from mediasync.media.samples import png_bytes

    return png_bytes(SAMPLE_SIDE, SAMPLE_SIDE, seed=secrets.randbelow(2**31))


def run(config: Config, env: Mapping[str, str], report: Reporter) -> str:
    """The live round trip, one line per step on ``report``; nothing is left behind.

    Returns what it took, e.g. "9 requests, 1.2 s", for the verdict.
    """
    answers = Answers()

    async def go() -> None:
        # The tools' client (key, retries, time-out), with the hook that keeps the raw answers.
        async with tool_client(config, env=env, event_hooks={"response": [answers]}) as client:
            await RoundTrip(client, answers, report, config.api.model).run()

    began = time.monotonic()
    asyncio.run(go())
    return f"{answers.count} requests, {time.monotonic() - began:.1f} s"
