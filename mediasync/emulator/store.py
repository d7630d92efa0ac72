"""Files, upload sessions and the virtual clock: the emulator's file table.

All methods are thread-safe (one lock for the tables, one per upload so a
chunk's bytes stream without holding the table lock).
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import heapq
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mediasync.media.formats import kind_of_mime
from mediasync.media.probe import Probe, probe, sniff

from .errors import NAME_RULE_MESSAGE, ApiError, file_not_found, quota_exceeded

# An upload keeps only its first and last KEEP_BYTES (for the header probes of
# mediasync.media.probe), never the whole file: memory stays flat whatever the size.
KEEP_BYTES = 64 * 1024
_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class Clock:
    """Wall clock plus an offset tests can advance (TTL, processing delays)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += float(seconds)


def rfc3339(ts: float, digits: int = 6) -> str:
    """UTC with exactly ``digits`` fractional digits: the live service writes 6 for
    createTime/updateTime and 9 for expirationTime (wire/01, 11, 13)."""
    whole = math.floor(ts)
    nanos = round((ts - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    base = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}"[: len(base) + 1 + digits] + "Z"


# The service computes expirationTime a little before it stamps createTime: it reads
# createTime + 48 h minus some milliseconds (19 ms in wire/11, 18 ms in 13).
EXPIRY_LEAD = 0.0185


def _epoch(stamp: Any) -> float:
    # fromisoformat keeps 6 of expirationTime's 9 fractional digits: enough here.
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def valid_file_id(file_id: str) -> bool:
    return bool(_NAME_RE.fullmatch(file_id))


# Standard names the live service accepts besides the table's (audio/mpeg: wire/13, 17).
MIME_ALIASES = {"audio/mpeg": "audio/mp3"}


def canonical_mime(mime: str) -> str:
    return MIME_ALIASES.get(mime, mime)


def media_kind(mime: str) -> str | None:
    return kind_of_mime(canonical_mime(mime))


HASH_FORMS = ("hex", "raw", "none")
# A batch's JSONL input file; the bare "jsonl" is refused as the live service does (wire/04).
JSONL_MIMES = ("application/jsonl", "application/json-lines")


@dataclass(frozen=True)
class Quirks:
    """Ways to answer unlike the live service, to prove a client copes or reports it.

    hash_form: "hex" (the live form: base64 of the lowercase hex digest, wire/11),
    "raw" (base64 of the 32 raw bytes), "none" (no sha256Hash at all).
    omit_fields: File resource keys to leave out (e.g. "expirationTime").
    """

    hash_form: str = "hex"
    omit_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hash_form not in HASH_FORMS:
            raise ValueError(f"hash_form must be one of {', '.join(HASH_FORMS)}")
        if self.hash_form == "none" and "sha256Hash" not in self.omit_fields:
            object.__setattr__(self, "omit_fields", (*self.omit_fields, "sha256Hash"))

    def hash_text(self, digest: bytes) -> str:
        if self.hash_form == "raw":
            return base64.b64encode(digest).decode()
        return base64.b64encode(digest.hex().encode()).decode()


@dataclass
class FileRecord:
    id: str
    display_name: str | None
    mime: str
    size: int
    sha256: bytes
    create_time: float
    ready_time: float  # end of PROCESSING
    expire_time: float
    seq: int  # stable list order
    probe: Probe
    failure: str | None  # why processing will end FAILED, if it will
    data: bytes | None = None  # whole bytes, kept for JSONL (batch input and results)

    # The record's times as the service writes them, formatted once: a listing of
    # 100,000 files formatted three times per file per page otherwise.
    @functools.cached_property
    def _created(self) -> str:
        return rfc3339(self.create_time)

    @functools.cached_property
    def _ready(self) -> str:
        return rfc3339(self.ready_time)

    @functools.cached_property
    def _expires(self) -> str:
        return rfc3339(self.expire_time, 9)

    def state(self, now: float) -> str:
        if now < self.ready_time:
            return "PROCESSING"
        return "FAILED" if self.failure else "ACTIVE"

    def resource(
        self, now: float, base: str, ver: str, quirks: Quirks | None = None
    ) -> dict[str, Any]:
        quirks = quirks or Quirks()
        state = self.state(now)
        out: dict[str, Any] = {"name": f"files/{self.id}"}
        if self.display_name is not None:
            out["displayName"] = self.display_name
        out.update(
            mimeType=self.mime,
            sizeBytes=str(self.size),
            createTime=self._created,
            updateTime=self._created if state == "PROCESSING" else self._ready,
            expirationTime=self._expires,
            sha256Hash=quirks.hash_text(self.sha256),
            uri=f"{base}/{ver}/files/{self.id}",
            state=state,
            source="UPLOADED",
        )
        if state == "FAILED":
            out["error"] = {"code": 3, "message": self.failure}
        if media_kind(self.mime) == "video" and state == "ACTIVE":
            # Known once processed: none while PROCESSING (wire/11), then 12's shape.
            dur = self.probe.duration
            out["videoMetadata"] = {"videoDuration": _duration(dur)} if dur is not None else {}
        for key in quirks.omit_fields:
            out.pop(key, None)
        return out


def _duration(seconds: float) -> str:
    # Whole seconds, as a Duration string: a 9:56.46 film reads "596s" (wire/12).
    return f"{int(seconds)}s"


@dataclass
class Progress:
    """Bytes of one upload so far: count, running hash, kept head and tail."""

    received: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    head: bytearray = field(default_factory=bytearray)
    tail: bytes = b""
    tail_from: int = 0  # blocks ending before this offset cannot reach the final tail
    whole: bytearray | None = None  # every byte, for JSONL (a batch's input file)

    def copy(self) -> Progress:
        """A copy a chunk is fed to, committed only when the chunk is whole. ``whole``
        is shared, not copied (a copy per chunk made a JSONL upload quadratic): a
        chunk that failed left bytes past ``received`` in it, cut off here."""
        if self.whole is not None:
            del self.whole[self.received:]
        return Progress(
            self.received, self.hasher.copy(), bytearray(self.head), self.tail, self.tail_from,
            self.whole,
        )

    def feed(self, block: memoryview) -> None:
        n = len(block)
        self.hasher.update(block)
        if self.whole is not None:
            self.whole += block
        if len(self.head) < KEEP_BYTES:
            self.head += block[: KEEP_BYTES - len(self.head)]
        if self.received + n > self.tail_from:  # skip copies far from the end
            if n >= KEEP_BYTES:
                self.tail = bytes(block[-KEEP_BYTES:])
            else:
                self.tail = (self.tail + bytes(block))[-KEEP_BYTES:]
        self.received += n


@dataclass
class Upload:
    id: str
    ver: str
    file_id: str | None  # chosen at start, or None for a server-made id
    display_name: str | None
    mime: str
    declared: int | None
    progress: Progress = field(default_factory=Progress)
    lock: threading.Lock = field(default_factory=threading.Lock)
    file: FileRecord | None = None  # set once finalized
    error: ApiError | None = None  # set when finalize ended the session with an error
    cancelled: bool = False

    @property
    def final(self) -> bool:
        return self.file is not None or self.error is not None or self.cancelled


class Store:
    def __init__(
        self,
        clock: Clock,
        *,
        ttl: float,
        processing_delay: float,
        video_processing_delay: float,
        max_file_bytes: int,
        max_project_bytes: int,
        storage_form: str = "json",
    ) -> None:
        self.clock = clock
        self.ttl = ttl
        self.processing_delay = processing_delay
        self.video_processing_delay = video_processing_delay
        self.max_file_bytes = max_file_bytes
        # Settable while serving (tests and benchmarks shrink the store).
        self.max_project_bytes = max_project_bytes
        self.storage_form = storage_form
        self._lock = threading.Lock()
        self._uploads: dict[str, Upload] = {}
        self._generated: dict[str, FileRecord] = {}  # batch results: download only
        self._seq = 0
        # Live files three ways, so that no request costs time in the number of files
        # (a library of 100,000 would make every upload and page quadratic): by id;
        # by seq (a dict in insertion order, which is seq order: a file gets its seq
        # as it is added) with the seqs in a sorted list for paging; and by expiry
        # in a heap. Deleted files leave stale entries in the list and the heap,
        # skipped when met and compacted away when they outnumber the live ones.
        self._files: dict[str, FileRecord] = {}
        self._by_seq: dict[int, FileRecord] = {}
        self._seqs: list[int] = []
        self._expiry: list[tuple[float, int, str]] = []
        self._used = 0  # bytes of the live files: the project's storage quota
        self.counters = {"uploads_started": 0, "uploads_finalized": 0, "deletes": 0}
        self.bytes_received = 0

    # -- files -----------------------------------------------------------
    def _add(self, rec: FileRecord) -> None:
        self._files[rec.id] = rec
        self._by_seq[rec.seq] = rec
        self._seqs.append(rec.seq)  # seqs only grow: the list stays sorted
        heapq.heappush(self._expiry, (rec.expire_time, rec.seq, rec.id))
        self._used += rec.size

    def _remove(self, rec: FileRecord) -> None:
        del self._files[rec.id]
        del self._by_seq[rec.seq]
        self._used -= rec.size
        live = len(self._by_seq)
        if len(self._seqs) > 2 * live + 64:
            self._seqs = list(self._by_seq)
        if len(self._expiry) > 2 * live + 64:
            self._expiry = [(f.expire_time, f.seq, f.id) for f in self._by_seq.values()]
            heapq.heapify(self._expiry)

    def _purge(self, now: float) -> None:
        # Expired files vanish: from get, list and the quota.
        while self._expiry and self._expiry[0][0] <= now:
            _, seq, _ = heapq.heappop(self._expiry)
            rec = self._by_seq.get(seq)
            if rec is not None:
                self._remove(rec)

    def index_sizes(self) -> dict[str, int]:
        """Entries of the indexes beside the live files (deleted and expired files leave
        stale ones until compaction), and the last sequence number given."""
        with self._lock:
            return {"live": len(self._by_seq), "seqs": len(self._seqs),
                    "expiry": len(self._expiry), "last_seq": self._seq}

    def live_bytes(self) -> int:
        with self._lock:
            self._purge(self.clock.now())
            return self._used

    def files(self) -> list[FileRecord]:
        with self._lock:
            self._purge(self.clock.now())
            return list(self._by_seq.values())

    def get(self, file_id: str) -> FileRecord:
        with self._lock:
            self._purge(self.clock.now())
            rec = self._files.get(file_id)
        if rec is None:
            raise file_not_found(file_id)
        return rec

    def delete(self, file_id: str) -> None:
        with self._lock:
            self._purge(self.clock.now())
            rec = self._files.get(file_id)
            if rec is None:
                raise file_not_found(file_id)
            self._remove(rec)
            self.counters["deletes"] += 1

    def page(self, page_size: int, after_seq: int) -> tuple[list[FileRecord], int | None]:
        """Up to ``page_size`` files after ``after_seq`` in list order, and the seq to
        continue after when more follow (else None)."""
        with self._lock:
            self._purge(self.clock.now())
            chunk: list[FileRecord] = []
            seqs = self._seqs
            for i in range(bisect.bisect_right(seqs, after_seq), len(seqs)):
                rec = self._by_seq.get(seqs[i])
                if rec is None:
                    continue  # deleted
                if len(chunk) == page_size:
                    return chunk, chunk[-1].seq  # one more exists
                chunk.append(rec)
            return chunk, None

    # -- uploads ---------------------------------------------------------
    def start_upload(
        self,
        ver: str,
        file_id: str | None,
        display_name: str | None,
        mime: str,
        declared: int | None,
    ) -> Upload:
        if file_id is not None and not valid_file_id(file_id):
            raise ApiError(400, NAME_RULE_MESSAGE)
        if display_name is not None and len(display_name) > 512:
            raise ApiError(400, "The display name must be no more than 512 characters long.")
        if declared is not None and declared > self.max_file_bytes:
            raise ApiError(
                400,
                f"Request size {declared} bytes exceeds the maximum file size of "
                f"{self.max_file_bytes} bytes.",
            )
        with self._lock:
            now = self.clock.now()
            self._purge(now)
            if file_id is not None and (
                file_id in self._files
                or any(u.file_id == file_id and not u.final for u in self._uploads.values())
            ):
                raise ApiError(409, f"File files/{file_id} already exists.", "ALREADY_EXISTS")
            self._check_quota(declared or 0)
            upload = Upload(secrets.token_urlsafe(24), ver, file_id, display_name, mime, declared)
            if declared is not None:
                upload.progress.tail_from = declared - KEEP_BYTES
            if canonical_mime(mime) in JSONL_MIMES:
                upload.progress.whole = bytearray()
            self._uploads[upload.id] = upload
            self.counters["uploads_started"] += 1
            return upload

    def _check_quota(self, wanted: int) -> None:
        if self._used + wanted > self.max_project_bytes:
            raise quota_exceeded(self.max_project_bytes, self.storage_form)

    def upload(self, upload_id: str) -> Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            raise ApiError(404, f"No upload session with id {upload_id}.", "NOT_FOUND")
        return upload

    def commit(self, upload: Upload, progress: Progress, added: int) -> None:
        """Adopt a chunk's bytes (caller holds ``upload.lock``)."""
        upload.progress = progress
        with self._lock:
            self.bytes_received += added

    def finalize(self, upload: Upload) -> FileRecord:
        """Turn a complete upload into a file (caller holds ``upload.lock``)."""
        prog = upload.progress
        final = {"X-Goog-Upload-Status": "final"}
        kind = media_kind(upload.mime)
        mime = canonical_mime(upload.mime)
        jsonl = mime in JSONL_MIMES
        if kind is None and not jsonl:
            upload.error = ApiError(400, f"Unsupported MIME type: {upload.mime}", headers=final)
            raise upload.error
        with self._lock:
            now = self.clock.now()
            self._purge(now)
            try:
                self._check_quota(prog.received)
            except ApiError as e:
                e.headers.update(final)
                upload.error = e
                raise
            file_id = upload.file_id or self._new_id()
            if file_id in self._files:
                upload.error = ApiError(
                    409, f"File files/{file_id} already exists.", "ALREADY_EXISTS", headers=final
                )
                raise upload.error
            head, tail = bytes(prog.head), prog.tail
            failure = None
            if prog.received == 0:
                failure = "The file is empty."
            elif not jsonl and not sniff(mime, head):
                failure = f"The file's contents are not valid {upload.mime} media."
            delay = self.video_processing_delay if kind == "video" else self.processing_delay
            self._seq += 1
            rec = FileRecord(
                id=file_id,
                display_name=upload.display_name,
                mime=upload.mime,
                size=prog.received,
                sha256=prog.hasher.digest(),
                create_time=now,
                ready_time=now + delay,
                expire_time=now + self.ttl - min(EXPIRY_LEAD, self.ttl / 1000),
                seq=self._seq,
                probe=(probe(mime, head, tail, prog.received) if not failure and not jsonl
                       else Probe()),
                failure=failure,
                data=bytes(memoryview(prog.whole)[:prog.received])
                if prog.whole is not None else None,
            )
            self._add(rec)
            upload.file = rec
            upload.progress = Progress(prog.received)  # drop kept bytes and hasher
            self.counters["uploads_finalized"] += 1
            return rec

    def add_generated(self, file_id: str, mime: str, data: bytes) -> FileRecord:
        """A file the service made (a batch's results): ACTIVE, kept whole, not listed."""
        with self._lock:
            now = self.clock.now()
            self._seq += 1
            rec = FileRecord(id=file_id, display_name=None, mime=mime, size=len(data),
                             sha256=hashlib.sha256(data).digest(), create_time=now,
                             ready_time=now, expire_time=now + self.ttl, seq=self._seq,
                             probe=Probe(), failure=None, data=data)
            self._generated[file_id] = rec
            return rec

    def generated(self, file_id: str) -> FileRecord:
        with self._lock:
            rec = self._generated.get(file_id)
            if rec is not None and self.clock.now() >= rec.expire_time:
                del self._generated[file_id]
                rec = None
        if rec is None:
            raise file_not_found(file_id)
        return rec

    def restore(self, resources: list[dict[str, Any]]) -> int:
        """Add files as a listing showed them (``GET /_emulator/files``): a benchmark
        reloads a synced library of 100,000 files instead of uploading it again.
        Their bytes are not kept (a file's probe is empty); expired ones are skipped.
        Returns how many were added."""
        added = 0
        with self._lock:
            now = self.clock.now()
            for res in resources:
                rec = self._record_of(res)
                if rec.expire_time <= now or rec.id in self._files:
                    continue
                self._add(rec)
                added += 1
        return added

    def _record_of(self, res: dict[str, Any]) -> FileRecord:
        # Caller holds the lock (the sequence number).
        try:
            file_id = str(res["name"]).removeprefix("files/")
            digest = base64.b64decode(res.get("sha256Hash") or "")
            created = _epoch(res["createTime"])
            rec = FileRecord(
                id=file_id, display_name=res.get("displayName"), mime=str(res["mimeType"]),
                size=int(res["sizeBytes"]),
                sha256=bytes.fromhex(digest.decode()) if len(digest) == 64 else digest,
                create_time=created, ready_time=_epoch(res.get("updateTime") or created),
                expire_time=_epoch(res["expirationTime"]), seq=self._seq + 1, probe=Probe(),
                failure=(res.get("error") or {}).get("message"))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a File resource ({e!r}): {str(res)[:200]}") from None
        self._seq += 1
        return rec

    def _new_id(self) -> str:
        while True:
            fid = "".join(secrets.choice(_ALPHABET) for _ in range(12))
            if fid not in self._files:
                return fid
