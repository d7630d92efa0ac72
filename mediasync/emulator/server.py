"""HTTP handling: routes, keys, streaming upload bodies, fault injection."""

from __future__ import annotations

import ast
import base64
import binascii
import json
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from . import generate, thinking
from .errors import (
    SERVER_MESSAGES,
    ApiError,
    file_not_found,
    key_invalid,
    not_active,
    quota_exceeded,
    retry_info,
)
from .faults import GENERATE_KINDS, RATE_KINDS, Fault, parse_duration
from .models import GENERATE, ModelSpec
from .state import EmulatorState
from .store import Upload, media_kind, valid_file_id

VERSIONS = ("v1beta", "v1")
BLOCK = 1024 * 1024  # body read size: large enough for >500 MB/s, small enough to stay flat
MAX_JSON_BODY = 128 * 1024 * 1024
_ALL_KINDS = ("status", "slow", "cut", "short", "garbage")
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


def _escape_controls_in_strings(text: str) -> str:
    """Raw control characters inside quoted strings as escapes, so that Python's
    literal parser takes what the live service's lenient one does (wire/38)."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            elif ch < " ":
                out.append(f"\\x{ord(ch):02x}")
                continue
        elif ch in "\"'":
            quote = ch
        out.append(ch)
    return "".join(out)


class _Dropped(Exception):
    """Close the connection without answering (cut / lost_finalize faults)."""


class _Garbage(Exception):
    """Answer 200 with a body that is not JSON (the garbage fault)."""


TIERS = ("flex", "standard", "priority")
# Our shapes (no capture shows them; docs/service.md): Flex shedding load is a 503, which
# every client retries; Priority for a key whose billing tier may not use it is a 400
# that names the service tier.
FLEX_REFUSED = "The flex service tier is at capacity. Please try again later or use the " \
    "standard tier."
PRIORITY_REFUSED = ("The priority service tier is not available for this project: it needs "
                    "paid tier 2 or 3.")
_GARBAGE = b"<html><head><title>502</title></head><body>upstream unavailable</body></html>\n"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: EmulatorState) -> None:
        self.state = state
        self.connections: set[socket.socket] = set()
        super().__init__(address, Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.discard(request)

    @property
    def base_url(self) -> str:
        host = self.state.config.host
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.server_address[1]}"

    def drop_connections(self) -> None:
        # Idle keep-alive connections would otherwise outlive stop().
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mediasync-emulator"
    sys_version = ""
    timeout = 300  # a stalled client must not hold a thread forever
    server: Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet, and request lines could carry ?key=

    # -- plumbing --------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        self.state = self.server.state
        self._body_left: int | None = None  # bytes still unread; None = chunked not started
        self._body_done = False
        self._chunk_left = 0
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.endpoint = "other"
        self.model = "gemini-2.5-flash"  # the quota dimension of a 429 off generateContent
        self._counted = False
        te = self.headers.get("Transfer-Encoding", "").lower()
        self._chunked = "chunked" in te
        if not self._chunked:
            self._body_left = int(self.headers.get("Content-Length") or 0)
            self._body_done = self._body_left == 0
        try:
            try:
                self._route(method, url.path)
            except ApiError as e:
                self._send(e.code, e.body(), e.headers)
            except _Garbage:
                self._send_raw(200, _GARBAGE, "text/html; charset=UTF-8", {})
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True
        except Exception as e:  # a bug must still answer in the service's shape
            self._send(500, ApiError(500, f"Internal emulator error: {e!r}").body(), {})
        finally:
            if not self._counted:
                self.state.count(self.endpoint)

    def _at(self, endpoint: str) -> None:
        # Count on arrival: a client may read stats() as soon as it has the answer.
        self.endpoint = endpoint
        self._counted = True
        self.state.count(endpoint)

    def _send(self, code: int, body: dict[str, Any] | None, headers: dict[str, str]) -> None:
        # Pretty-printed with a final newline, as the live service sends (wire/08, 20).
        data = (
            (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode()
            if body is not None
            else b""
        )
        self._send_raw(code, data, "application/json; charset=UTF-8", headers)

    def _send_raw(self, code: int, data: bytes, ctype: str, headers: dict[str, str]) -> None:
        self._drain()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        # Headers and body in one write: two small writes meet Nagle + delayed ACK (40 ms).
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    def _blocks(self, limit: int | None = None) -> Iterator[memoryview]:
        """The request body in ≤1 MiB blocks (Content-Length or chunked)."""
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        got = 0
        while not self._body_done and (limit is None or got < limit):
            if self._chunked:
                if self._chunk_left == 0:
                    line = self.rfile.readline(1024)
                    if not line:
                        raise ConnectionError("body ended early")
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        self._body_done = True
                        return
                    self._chunk_left = size
                want = self._chunk_left
            else:
                want = self._body_left or 0
            want = min(want, BLOCK)
            if limit is not None:
                want = min(want, limit - got)
            n = self.rfile.readinto(view[:want])
            if not n:
                raise ConnectionError("body ended early")
            got += n
            if self._chunked:
                self._chunk_left -= n
                if self._chunk_left == 0:
                    self.rfile.readline(16)  # CRLF after chunk data
            else:
                self._body_left = (self._body_left or 0) - n
                self._body_done = self._body_left == 0
            yield view[:n]

    def _drain(self) -> None:
        for _ in self._blocks():
            pass

    def _json_body(self) -> Any:
        data = bytearray()
        for block in self._blocks():
            data += block
            if len(data) > MAX_JSON_BODY:
                raise ApiError(400, "Request payload size exceeds the limit.")
        text = data.decode("utf-8", "replace").strip()
        if not text:
            return {}
        try:
            # strict=False: raw control characters inside strings, as the live parser
            # accepts (wire/38: a prompt with a raw newline).
            return json.loads(text, strict=False)
        except ValueError:
            pass
        try:  # the REST samples send single-quoted pseudo-JSON, trailing commas too
            return ast.literal_eval(_escape_controls_in_strings(text))
        except (ValueError, SyntaxError):
            raise ApiError(
                400, f"Invalid JSON payload received. Unexpected token: {text[:40]!r}"
            ) from None

    def _base(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def _check_key(self) -> None:
        key = self.headers.get("x-goog-api-key") or self.query.get("key")
        if not key:
            raise ApiError(403, _NO_KEY, "PERMISSION_DENIED")
        want = self.state.config.key
        if want is not None and key != want:
            raise key_invalid(key)

    def _fault(self, kinds: tuple[str, ...] = _ALL_KINDS) -> Fault | None:
        """Apply a pending fault: status answers, slow waits, cut drops; others returned."""
        fault = self.state.faults.take(self.endpoint, kinds)
        if fault is None:
            return None
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return None
        if fault.kind == "status":
            raise self._fault_error(fault)
        if fault.kind == "garbage":
            raise _Garbage
        if fault.kind == "cut" and self.endpoint not in ("chunk", "finalize"):
            raise _Dropped
        return fault

    def _fault_error(self, fault: Fault) -> ApiError:
        quotas = fault.quotas
        if fault.status == 429 and "storage" in quotas:
            return quota_exceeded(self.state.store.max_project_bytes,
                                  self.state.store.storage_form)
        if fault.status == 429 and quotas:
            rates = [RATE_KINDS[q] for q in quotas if q != "bare"]  # none: the bare form
            delay = parse_duration(fault.retry_delay) if fault.retry_delay else 47.434392449
            return self.state.quota.refusal(self.model, rates, delay)
        details = [retry_info(fault.retry_delay)] if fault.retry_delay else []
        msg = fault.message
        if msg is None:
            msg = SERVER_MESSAGES.get(fault.status, "Injected fault.")
            if fault.status == 503 and self.endpoint != "generate":
                msg = "The service is currently unavailable."
        return ApiError(fault.status, msg, details=details)

    # -- routes ----------------------------------------------------------
    def _route(self, method: str, path: str) -> None:
        parts = path.strip("/").split("/")
        if parts[0] == "_emulator":
            self._at("control")
            return self._control(method, parts[1:])
        if (len(parts) == 4 and parts[0] == "download" and parts[1] in VERSIONS
                and parts[2] == "files" and parts[3].endswith(":download") and method == "GET"):
            self._at("download")
            return self._download(parts[3].removesuffix(":download"))
        if len(parts) == 3 and parts[0] == "upload" and parts[1] in VERSIONS:
            if parts[2] == "files" and method == "POST":
                if "upload_id" in self.query:
                    return self._upload_op(parts[1], self.query["upload_id"])
                self._at("start")
                return self._start(parts[1])
        elif len(parts) >= 2 and parts[0] in VERSIONS:
            ver = parts[1:]
            if ver == ["files"] and method == "GET":
                self._at("list")
                return self._list(parts[0])
            if ver == ["models"] and method == "GET":
                self._at("models.list")
                return self._models(parts[0])
            if len(ver) == 2 and ver[0] == "models" and method == "GET" and ":" not in ver[1]:
                self._at("models.get")
                return self._model(parts[0], ver[1])
            if len(ver) == 2 and ver[0] == "files" and ver[1].endswith(":download"):
                if method == "GET":
                    self._at("download")
                    return self._download(ver[1].removesuffix(":download"))
            if ver[0] == "batches":
                return self._batches(parts[0], method, ver[1:])
            if len(ver) == 2 and ver[0] == "files" and method in ("GET", "DELETE"):
                self._at("get" if method == "GET" else "delete")
                return self._file(parts[0], ver[1], method)
            if len(ver) == 2 and ver[0] == "models" and method == "POST":
                model, _, verb = ver[1].partition(":")
                if verb == "batchGenerateContent":
                    self.model = model
                    self._at("batch.create")
                    return self._batch_create(parts[0], model)
                if verb == "generateContent":
                    self.model = model
                    self._at("generate")
                    self.state.asked(model)
                    return self._generate(parts[0], model)
                if verb:
                    self._check_key()
                    # Known models, other methods (countTokens, embedContent…): not
                    # emulated; a retired or unknown model is a 404 whatever the method.
                    self.state.models.serving(model, parts[0], verb)
                    raise ApiError(501, f"{verb} is not emulated.", "NOT_IMPLEMENTED")
        raise ApiError(404, f"Method not found: {method} {path}", "NOT_FOUND")

    def _control(self, method: str, rest: list[str]) -> None:
        state = self.state
        if rest == ["stats"] and method == "GET":
            return self._send(200, state.stats(), {})
        if rest == ["files"] and method == "GET":
            return self._send(200, {"files": state.list_files(self.server.base_url)}, {})
        if rest == ["faults"] and method == "POST":
            body = self._json_body()
            try:
                for item in body if isinstance(body, list) else [body]:
                    state.faults.add(Fault.from_dict(item))
            except (TypeError, ValueError) as e:
                raise ApiError(400, f"Bad fault: {e}") from None
            return self._send(200, {"faults": [f.to_dict() for f in state.faults.pending()]}, {})
        if rest == ["faults"] and method == "DELETE":
            state.faults.clear()
            return self._send(200, {}, {})
        if rest == ["models"] and method == "GET":
            return self._send(200, state.models.to_dict(), {})
        if rest == ["models"] and method == "POST":
            body = self._json_body()
            for model in body.get("retire") or []:
                state.models.retire(str(model))
            for model in body.get("restore") or []:
                state.models.restore(str(model))
            for old, new in (body.get("route") or {}).items():
                state.models.route(str(old), str(new))
            return self._send(200, state.models.to_dict(), {})
        if rest == ["tiers"] and method == "POST":
            body = self._json_body()
            if "flex_latency" in body:
                state.flex_latency = float(body["flex_latency"])
            if "flex_capacity" in body:
                cap = body["flex_capacity"]
                state.flex_capacity = None if cap is None else int(cap)
            if "priority" in body:
                state.priority = str(body["priority"])
            return self._send(200, {"flex_latency": state.flex_latency,
                                    "flex_capacity": state.flex_capacity,
                                    "priority": state.priority}, {})
        if rest == ["batches"] and method == "POST":
            body = self._json_body()
            b = state.batches
            if "pending" in body:
                b.pending = parse_duration(body["pending"])
            if "duration" in body:
                b.duration = parse_duration(body["duration"])
            if "bad_lines" in body:
                b.bad_lines = int(body["bad_lines"])
            for job_id, end in (body.get("end") or {}).items():
                b.end(str(job_id), "BATCH_STATE_" + str(end).upper().removeprefix("BATCH_STATE_"))
            return self._send(200, {"pending": b.pending, "duration": b.duration,
                                    "jobs": [j.name for j in b.jobs()]}, {})
        if rest == ["advance"] and method == "POST":
            body = self._json_body()
            state.clock.advance(float(body.get("seconds", 0)))
            return self._send(200, {"now": state.clock.now()}, {})
        raise ApiError(404, f"Unknown control endpoint {'/'.join(rest)}", "NOT_FOUND")

    def _start(self, ver: str) -> None:
        self._fault()
        self._check_key()
        h = self.headers
        if (h.get("X-Goog-Upload-Protocol") or "").lower() != "resumable":
            raise ApiError(400, "This emulator only supports X-Goog-Upload-Protocol: resumable.")
        if (h.get("X-Goog-Upload-Command") or "").lower() != "start":
            raise ApiError(400, "The first request of a resumable upload must be 'start'.")
        body = self._json_body()
        meta = body.get("file") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        name = meta.get("name") or None
        file_id = name.removeprefix("files/") if isinstance(name, str) else None
        display = meta.get("display_name", meta.get("displayName"))
        mime = (
            h.get("X-Goog-Upload-Header-Content-Type")
            or meta.get("mime_type")
            or meta.get("mimeType")
            or "application/octet-stream"
        )
        raw_size = h.get("X-Goog-Upload-Header-Content-Length") or meta.get(
            "size_bytes", meta.get("sizeBytes")
        )
        try:
            declared = int(raw_size) if raw_size not in (None, "") else None
        except (TypeError, ValueError):
            raise ApiError(
                400, f"Invalid X-Goog-Upload-Header-Content-Length: {raw_size!r}"
            ) from None
        if declared is not None and declared < 0:
            raise ApiError(400, f"Invalid X-Goog-Upload-Header-Content-Length: {raw_size!r}")
        upload = self.state.store.start_upload(
            ver, file_id, display if isinstance(display, str) else None, mime, declared
        )
        url = f"/upload/{ver}/files?upload_id={upload.id}&upload_protocol=resumable"
        # A start sent with ?key= gets the key back inside its upload URL (wire/16).
        embed = self.query.get("key")
        if embed is None and self.state.config.key_in_upload_url:
            embed = self.headers.get("x-goog-api-key")
        if embed:
            url += "&key=" + quote(embed, safe="")
        if not self.state.config.relative_upload_url:
            url = self._base() + url
        self._send(
            200,
            {},
            {
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-Chunk-Granularity": str(self.state.config.granularity),
            },
        )

    def _upload_op(self, ver: str, upload_id: str) -> None:
        raw = self.headers.get("X-Goog-Upload-Command") or ""
        command = {c.strip() for c in raw.lower().split(",")}
        if "query" in command:
            self._at("query")
        elif "finalize" in command:
            self._at("finalize")
        elif "upload" in command:
            self._at("chunk")
        elif "cancel" in command:
            self._at("cancel")
        else:
            raise ApiError(400, "Missing or unknown X-Goog-Upload-Command.")
        kinds = (*_ALL_KINDS, "lost_finalize") if self.endpoint == "finalize" else _ALL_KINDS
        fault = self._fault(kinds)
        upload = self.state.store.upload(upload_id)
        if self.endpoint == "query":
            # No lock: a stalled chunk must not hold up the client's recovery.
            return self._answer_final_or_status(upload, ver)
        if not upload.lock.acquire(timeout=30):
            raise ApiError(503, "Another request is writing to this upload session; retry.")
        try:
            if self.endpoint == "cancel":
                upload.cancelled = upload.file is None and upload.error is None
                return self._send(200, {}, {"X-Goog-Upload-Status": "cancelled"})
            if upload.final:
                # A retried finalize after a lost answer gets the same outcome.
                return self._answer_final_or_status(upload, ver)
            self._chunk(upload, ver, fault)
        finally:
            upload.lock.release()

    def _status_headers(self, upload: Upload, status: str) -> dict[str, str]:
        return {
            "X-Goog-Upload-Status": status,
            "X-Goog-Upload-Size-Received": str(upload.progress.received),
            "X-Goog-Upload-Chunk-Granularity": str(self.state.config.granularity),
        }

    def _answer_final_or_status(self, upload: Upload, ver: str) -> None:
        if upload.error is not None:
            if self.state.config.empty_final_after_refusal:
                return self._send(200, {}, self._status_headers(upload, "final"))
            raise upload.error
        if upload.cancelled:
            cancelled = {"X-Goog-Upload-Status": "cancelled"}
            raise ApiError(400, "The upload session was cancelled.", headers=cancelled)
        if upload.file is not None:
            res = upload.file.resource(self.state.clock.now(), self._base(), ver, self.state.quirks)
            return self._send(200, {"file": res}, self._status_headers(upload, "final"))
        self._send(200, {}, self._status_headers(upload, "active"))

    def _chunk(self, upload: Upload, ver: str, fault: Fault | None) -> None:
        finalize = self.endpoint == "finalize"
        gran = self.state.config.granularity
        received = upload.progress.received
        active = self._status_headers(upload, "active")
        try:
            offset = int(self.headers.get("X-Goog-Upload-Offset", ""))
        except ValueError:
            raise ApiError(
                400, "Missing or invalid X-Goog-Upload-Offset.", headers=active
            ) from None
        if offset != received:
            raise ApiError(
                400,
                f"Invalid upload offset {offset}: the server has received {received} bytes; "
                f"resume at offset {received}.",
                headers=active,
            )
        length = None if self._chunked else self._body_left
        self._check_chunk(upload, length, finalize, gran, active)
        progress = upload.progress.copy()
        limit = fault.after_bytes if fault is not None and fault.kind == "cut" else None
        # Short: the whole chunk is read, only its head kept (the count tells the client).
        keep = (fault.after_bytes if fault is not None and fault.kind == "short" and not finalize
                else None)
        for block in self._blocks(limit):
            if keep is not None:
                block = block[:max(0, keep - (progress.received - received))]
            progress.feed(block)
        added = progress.received - received
        if limit is not None:
            # Cut: keep what arrived, then vanish as a broken connection would.
            self.state.store.commit(upload, progress, added)
            raise _Dropped
        self._check_chunk(upload, added, finalize, gran, active)
        self.state.store.commit(upload, progress, added)
        if not finalize:
            headers = self._status_headers(upload, "active")
            if keep is not None and fault is not None and not fault.counted:
                del headers["X-Goog-Upload-Size-Received"]
            return self._send(200, {}, headers)
        rec = self.state.store.finalize(upload)
        if fault is not None and fault.kind == "lost_finalize":
            raise _Dropped
        res = rec.resource(self.state.clock.now(), self._base(), ver, self.state.quirks)
        self._send(200, {"file": res}, self._status_headers(upload, "final"))

    @staticmethod
    def _check_chunk(
        upload: Upload, length: int | None, finalize: bool, gran: int, headers: dict[str, str]
    ) -> None:
        if length is None:
            return  # chunked body: checked once its length is known
        total = upload.progress.received + length
        if not finalize and length % gran:
            raise ApiError(
                400,
                f"Chunk size {length} is not a multiple of the upload granularity {gran}; "
                "only the final chunk may be smaller.",
                headers=headers,
            )
        if upload.declared is not None:
            if total > upload.declared or (finalize and total != upload.declared):
                raise ApiError(
                    400,
                    f"Upload size mismatch: {total} bytes {'finalized' if finalize else 'sent'} "
                    f"but X-Goog-Upload-Header-Content-Length declared {upload.declared}.",
                    headers=headers,
                )

    def _batch_create(self, ver: str, model: str) -> None:
        fault = self._fault((*_ALL_KINDS, "lost_answer"))
        self._check_key()
        op = self.state.batches.create(model, ver, self._json_body())
        if fault is not None and fault.kind == "lost_answer":
            raise _Dropped  # made, never told: a retried create would make a second job
        self._send(200, op, {})

    def _batches(self, ver: str, method: str, rest: list[str]) -> None:
        """batches.list / get / cancel / delete: Operations (wire/40), ``{}`` for the rest."""
        job_id, _, verb = (rest[0] if len(rest) == 1 else "").partition(":")
        op = {("GET", 0, ""): "batch.list", ("GET", 1, ""): "batch.get",
              ("POST", 1, "cancel"): "batch.cancel",
              ("DELETE", 1, ""): "batch.delete"}.get((method, len(rest), verb))
        if op is None:
            raise ApiError(404, f"Method not found: {method} batches/{'/'.join(rest)}",
                           "NOT_FOUND")
        self._at(op)
        self._fault()
        self._check_key()
        batches = self.state.batches
        if op == "batch.list":
            size, token = self._paging(50, 1000)
            return self._send(200, batches.list(ver, size, token), {})
        if op == "batch.get":
            return self._send(200, batches.get(job_id, ver), {})
        (batches.cancel if op == "batch.cancel" else batches.delete)(job_id)
        self._send(200, {}, {})

    def _paging(self, default: int, most: int) -> tuple[int, str]:
        """(pageSize, pageToken) of a listing, either spelling; a size ≤ 0 is the default."""
        try:
            size = int(self.query.get("pageSize") or self.query.get("page_size") or default)
        except ValueError:
            raise ApiError(400, "Invalid pageSize.") from None
        size = default if size <= 0 else min(size, most)
        return size, self.query.get("pageToken") or self.query.get("page_token") or ""

    def _download(self, file_id: str) -> None:
        """``files/{id}:download?alt=media``: the bytes of a file the service made."""
        self._fault()
        self._check_key()
        rec = self.state.store.generated(file_id.removeprefix("files/"))
        self._send_raw(200, rec.data or b"", "application/octet-stream", {})

    def _file(self, ver: str, file_id: str, method: str) -> None:
        self._fault()
        self._check_key()
        if method == "GET" and not valid_file_id(file_id):
            # A batch's results file: files.get refuses its long id (files-api.md).
            raise ApiError(400, f"Invalid file name: files/{file_id}")
        if method == "GET":
            rec = self.state.store.get(file_id)
            res = rec.resource(self.state.clock.now(), self._base(), ver, self.state.quirks)
            return self._send(200, res, {})
        self.state.store.delete(file_id)
        self._send(200, {}, {})

    def _list(self, ver: str) -> None:
        self._fault()
        self._check_key()
        size, token = self._paging(10, 100)
        after = 0
        if token:
            try:
                after = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("seq:"))
            except (ValueError, binascii.Error):
                raise ApiError(400, "Invalid page token.") from None
        files, last = self.state.store.page(size, after)
        now, base = self.state.clock.now(), self._base()
        body: dict[str, Any] = {}
        if files:
            body["files"] = [f.resource(now, base, ver, self.state.quirks) for f in files]
        if last is not None:
            body["nextPageToken"] = base64.urlsafe_b64encode(f"seq:{last}".encode()).decode()
        self._send(200, body, {})

    def _models(self, ver: str) -> None:
        """models.list: ``{"models": [...], "nextPageToken"}`` (token as wire/37)."""
        self._fault()
        self._check_key()
        size, token = self._paging(50, 1000)
        specs, next_token = self.state.models.page(size, token)
        body: dict[str, Any] = {"models": [m.resource() for m in specs]}
        if next_token:
            body["nextPageToken"] = next_token  # the last key, as in wire/37
        self._send(200, body, {})

    def _model(self, ver: str, model: str) -> None:
        """models.get: the bare Model; a retired or unknown one is a 404 (wire/41)."""
        self._fault()
        self._check_key()
        self._send(200, self.state.models.get(model, ver).resource(), {})

    def _tier(self, body: dict[str, Any]) -> str | None:
        """The serviceTier asked for (top-level, either spelling), checked."""
        raw = body.get("serviceTier", body.get("service_tier"))
        if raw is None:
            return None
        tier = str(raw).strip().lower().removeprefix("service_tier_")
        if tier in ("unspecified", ""):
            return None
        if tier not in TIERS:
            raise ApiError(400, f"Invalid value at 'service_tier' ({raw!r}).")
        return tier

    def _check_parts(self, spec: ModelSpec, records: list[Any]) -> None:
        """A model that does not take a media kind refuses the part: the file's verdict."""
        for rec in records:
            kind = media_kind(rec.mime)
            if kind is not None and kind not in spec.inputs:
                raise ApiError(400, f"models/{spec.id} does not support {kind} input "
                                    f"({rec.mime}).")

    def _generate(self, ver: str, model: str) -> None:
        fault = self._fault((*_ALL_KINDS, *GENERATE_KINDS))
        self._check_key()
        spec = self.state.models.serving(model, ver, GENERATE)  # 404 as wire/41
        body = self._json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload: expected an object.")
        config = body.get("generationConfig", body.get("generation_config"))
        thinking.check(spec, config)
        tier = self._tier(body)
        uris, prompt = generate.file_parts(body)
        store, now = self.state.store, self.state.clock.now()
        records, resolutions = [], []
        wide = generate.resolution(_get(config, "mediaResolution", "media_resolution"))
        for uri, _mime, own in uris:
            file_id = generate.file_id_of(uri)
            if not valid_file_id(file_id):
                raise file_not_found(file_id)
            rec = store.get(file_id)
            if rec.state(now) != "ACTIVE":
                raise not_active(file_id)
            records.append(rec)
            resolutions.append(own or wide)
        self._check_parts(spec, records)
        served = tier or "standard"
        if tier == "priority":
            if self.state.priority == "refuse":
                raise ApiError(400, PRIORITY_REFUSED)
            if self.state.priority == "standard":
                served = "standard"  # silently, as the live service may
        clip = generate.clip_of(body)
        tokens = generate.prompt_tokens(records, prompt, spec.family, resolutions, clip)
        generate.check_length(records, clip, sum(tokens.values()))
        self.state.quota.admit(model, sum(tokens.values()), now)
        if tier == "flex":
            if not self.state.flex_enter():
                raise ApiError(503, FLEX_REFUSED)
            try:
                if self.state.flex_latency > 0:
                    time.sleep(self.state.flex_latency)
            finally:
                self.state.flex_leave()
        elif self.state.config.generate_latency > 0:
            time.sleep(self.state.config.generate_latency)
        block = cut = None
        if fault is not None and fault.kind == "blocked":
            block = (fault.stage, str(fault.reason))
        elif fault is not None and fault.kind == "truncated":
            cut = (str(fault.reason), fault.keep)
        self.state.served(served)
        answer = generate.answer(spec, records, prompt, tokens, block, config,
                                 served if tier else None, clip=clip,
                                 output_limit=self.state.config.output_token_limit, cut=cut)
        if fault is not None and fault.kind == "answer":
            answer = generate.scripted(answer, fault.text or "", str(fault.reason))
        self.state.generated(records)
        # The tier that served, also as a header (files-api.md, "Service tiers").
        self._send(200, answer, {"x-gemini-service-tier": served})


def _get(mapping: Any, camel: str, snake: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    return mapping.get(camel, mapping.get(snake))
