"""The emulator's file table keeps its answers while no request scans every file:
expiry (a heap), the storage quota (a running sum) and list pages (seqs in order)
answer as the obvious scans over all files did, checked against such a reference
through random uploads, deletes, clock jumps and pages."""

from __future__ import annotations

import random

import pytest

from mediasync.emulator.errors import ApiError
from mediasync.emulator.store import Clock, FileRecord, Store
from mediasync.media.samples import png_bytes


class SetClock(Clock):
    """A clock that stands still unless moved: expiry exactly at "now" can be met."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _store(max_project_bytes: int = 10**12) -> Store:
    return Store(SetClock(), ttl=1000.0, processing_delay=0.0, video_processing_delay=0.0,
                 max_file_bytes=10**9, max_project_bytes=max_project_bytes)


def _upload(store: Store, seed: int) -> FileRecord:
    data = png_bytes(2, 2, seed=seed)
    upload = store.start_upload("v1beta", None, None, "image/png", len(data))
    progress = upload.progress.copy()
    progress.feed(memoryview(data))
    with upload.lock:
        store.commit(upload, progress, len(data))
        return store.finalize(upload)


class Reference:
    """What the table answered when every request looked at every file."""

    def __init__(self) -> None:
        self.files: dict[str, FileRecord] = {}

    def live(self, now: float) -> list[FileRecord]:
        self.files = {k: f for k, f in self.files.items() if now < f.expire_time}
        return sorted(self.files.values(), key=lambda f: f.seq)

    def page(self, now: float, size: int, after: int) -> tuple[list[str], int | None]:
        files = [f for f in self.live(now) if f.seq > after]
        chunk = files[:size]
        return [f.id for f in chunk], (chunk[-1].seq if len(files) > size else None)


def _pages(store: Store, size: int) -> list[list[str]]:
    pages, after = [], 0
    while True:
        chunk, after_next = store.page(size, after)
        pages.append([f.id for f in chunk])
        if after_next is None:
            return pages
        after = after_next


@pytest.mark.parametrize("seed", range(6))
def test_the_file_table_answers_as_a_scan_of_every_file(seed: int) -> None:
    rng = random.Random(seed)
    store, ref = _store(), Reference()
    for step in range(600):
        op = rng.random()
        now = store.clock.now()
        if op < 0.45:
            rec = _upload(store, seed * 10_000 + step)
            ref.files[rec.id] = rec
        elif op < 0.7 and ref.live(now):
            victim = rng.choice(ref.live(now))
            store.delete(victim.id)
            del ref.files[victim.id]
        elif op < 0.8 and ref.live(now) and rng.random() < 0.3:
            # to the very moment a file expires: it is gone then
            store.clock.t = rng.choice(ref.live(now)).expire_time  # type: ignore[attr-defined]
        elif op < 0.8:
            store.clock.advance(rng.choice([1.0, 50.0, 300.0, 999.0]))
        else:
            size = rng.choice([1, 2, 3, 10, 100])
            last = store.index_sizes()["last_seq"]
            after = rng.choice([0, *[f.seq for f in ref.live(now)][:5], last])
            chunk, nxt = store.page(size, after)
            assert ([f.id for f in chunk], nxt) == ref.page(store.clock.now(), size, after)
        now = store.clock.now()
        assert [f.id for f in store.files()] == [f.id for f in ref.live(now)]
        assert store.live_bytes() == sum(f.size for f in ref.live(now))
    # stale entries of deleted and expired files do not pile up
    sizes = store.index_sizes()
    assert sizes["seqs"] <= 2 * sizes["live"] + 64
    assert sizes["expiry"] <= 2 * sizes["live"] + 64


def test_pages_walk_every_live_file_once_in_order() -> None:
    store = _store()
    recs = [_upload(store, i) for i in range(25)]
    for rec in recs[3:20:2]:
        store.delete(rec.id)
    live = [r.id for r in recs if r.id in {f.id for f in store.files()}]
    for size in (1, 4, 7, 16, 100):
        pages = _pages(store, size)
        assert [i for p in pages for i in p] == live
        assert all(len(p) == size for p in pages[:-1])


def test_expired_and_deleted_files_leave_the_quota() -> None:
    size = len(png_bytes(2, 2, seed=0))
    store = _store(max_project_bytes=3 * size)
    first = [_upload(store, i) for i in range(3)]
    with pytest.raises(ApiError) as e:
        _upload(store, 3)
    assert e.value.code == 429
    store.delete(first[0].id)
    _upload(store, 4)  # room again
    store.clock.advance(1000.0)  # every file expires
    assert store.live_bytes() == 0 and store.files() == []
    assert [_upload(store, 5 + i).id for i in range(3)]


def test_a_saved_listing_restores_the_same_files_and_skips_the_expired() -> None:
    # `mediasync emulator --files`: a benchmark's synced library, reloaded.
    old = _store()
    recs = []
    for seed in range(3):
        recs.append(_upload(old, seed))
        old.clock.advance(10.0)
    saved = [r.resource(old.clock.now(), "http://x", "v1beta") for r in recs]
    new = _store()
    new.clock.advance(recs[0].expire_time - new.clock.now())  # the first one just expired
    assert new.restore(saved) == 2
    now = new.clock.now()
    again = [f.resource(now, "http://x", "v1beta") for f in new.files()]
    assert [f["name"] for f in again] == [f["name"] for f in saved[1:]]
    for was, now_ in zip(saved[1:], again, strict=True):
        assert was["expirationTime"][:26] == now_["expirationTime"][:26]
        assert {**was, "expirationTime": ""} == {**now_, "expirationTime": ""}
    assert new.live_bytes() == sum(r.size for r in recs[1:])
    with pytest.raises(ValueError, match="not a File resource"):
        new.restore([{"name": "files/abc"}])


def test_a_jsonl_uploads_bytes_are_kept_once_not_copied_per_chunk():
    """A batch's input file keeps every byte; a chunk fed to a copy and then refused
    (never committed) leaves nothing behind, and no chunk copies what came before."""
    from mediasync.emulator.store import Progress

    p = Progress(whole=bytearray())
    kept = p.whole
    for block in (b"a" * 10, b"b" * 10):
        nxt = p.copy()
        nxt.feed(memoryview(block))
        p = nxt  # committed
    refused = p.copy()
    refused.feed(memoryview(b"junk"))  # the chunk failed its checks: not committed
    nxt = p.copy()
    nxt.feed(memoryview(b"c" * 5))
    assert nxt.whole is kept  # one buffer for the whole upload
    assert bytes(nxt.whole[:nxt.received]) == b"a" * 10 + b"b" * 10 + b"c" * 5
    assert len(nxt.whole) == nxt.received == 25
