"""The reconciler: for each dirty path, compare what should be with what is and
take the next step. Events and timers only mark paths dirty (DESIGN.md).

One asyncio thread. Blocking file work (stat, hashing, sidecar writes) runs in
worker threads; uploads and generations are bounded by semaphores; a shared
rate limiter inside the client bounds requests per minute.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath

from mediasync import failures, naming, outputs, plan, sidecar, structured
from mediasync.config import Config, FolderConfig
from mediasync.failures import classify
from mediasync.folderio import FolderIO, FolderUnavailable, folder_devices
from mediasync.gemini import ApiError, GeminiClient, Usage
from mediasync.mirror import ContentUnavailable, Mirror
from mediasync.plan import Desired, LocalFacts
from mediasync.scan import (
    ChangedWhileHashing,
    NotRegular,
    hash_file,
    local_facts,
    stat_all,
    walk_folder,
)
from mediasync.select import is_candidate
from mediasync.store import OutputRow, PathRow, Store

log = logging.getLogger("mediasync")

MAX_TASKS = 64  # paths reconciled at once; uploads/generations have their own bounds
STALE_TEMP = 600.0  # seconds before a leftover sidecar temp file is removed
SWEEP_BUSY_WAIT = 1.0  # a content still being uploaded is retired on a later sweep
WALK_TIMEOUT = 1800.0  # a walk of a huge tree may take long; a hung share must still end it
UNAVAILABLE_RETRY = 60.0  # seconds before a path in a folder that did not answer is looked at


def instance_id(store: Store) -> str:
    """This state directory's id in remote display names (made once, kept in ``meta``)."""
    value = store.get_meta("instance_id")
    if not value:
        value = secrets.token_hex(4)
        store.set_meta("instance_id", value)
    return value


class Engine:
    def __init__(
        self,
        config: Config,
        store: Store,
        client: GeminiClient,
        *,
        once: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        fs: FolderIO | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        # Every file call that touches a watched folder goes through here (hung shares).
        self.fs = fs or FolderIO()
        self.fs.on_recover = self._folder_answers
        # folder → why it is unavailable; JSON in meta "unavailable" for `status`
        self._unavailable: dict[str, str] = json.loads(store.get_meta("unavailable") or "{}")
        self._rescans: set[asyncio.Task[int]] = set()
        self.once = once  # `sync`: no retries scheduled for later, vanished paths swept at once
        self.clock = clock
        self.monotonic = monotonic
        self.upload_slots = asyncio.Semaphore(config.daemon.max_uploads)
        self.generate_slots = asyncio.Semaphore(config.daemon.max_generations)
        self.mirror = Mirror(
            client,
            store,
            renew_before=config.daemon.renew_before,
            upload_slots=self.upload_slots,
            clock=clock,
            sleep=sleep,
            fs=self.fs,
            instance=instance_id(store),
        )
        self._halted: str | None = None
        # A new process tries the key afresh; a key still refused halts again on its
        # first call. Without this, `status` would show a halt an earlier run left.
        store.set_meta("halted", "")
        self._suffixes = config.sidecar_suffixes()
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = 0
        self._last_event: dict[str, float] = {}
        self._previous: dict[str, LocalFacts] = {}
        self._scanned: dict[str, LocalFacts] = {}  # stat taken by the last scan
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: dict[str, float] = {}  # asked for while running: when to look again
        self._wake = asyncio.Event()
        self._stopping = False
        self._sweep_at: float | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._noted: set[tuple[str, str]] = set()
        self._answers: dict[tuple[str, ...], structured.Answer] = {}

    # -- configuration --------------------------------------------------------
    @property
    def halted(self) -> str | None:
        """Why API calls are halted (the key was refused), or None."""
        return self._halted

    @halted.setter
    def halted(self, value: str | None) -> None:
        # One truth: every change writes through to the store `status` reads, so a
        # reload that clears the halt clears it there too.
        self._halted = value or None
        self.store.set_meta("halted", value or "")

    def reconfigure(self, config: Config, client: GeminiClient | None = None) -> None:
        """Take a reloaded config (SIGHUP); the caller rescans afterwards."""
        self.config = config
        self._suffixes = config.sidecar_suffixes()
        self.mirror.renew_before = config.daemon.renew_before
        # New bounds for new work; steps holding a slot of the old ones finish as they are.
        self.upload_slots = asyncio.Semaphore(config.daemon.max_uploads)
        self.generate_slots = asyncio.Semaphore(config.daemon.max_generations)
        self.mirror.upload_slots = self.upload_slots
        if client is not None:
            self.set_client(client)

    def set_client(self, client: GeminiClient) -> None:
        # `halted` stays until a call succeeds, so a still-bad key is logged once.
        self.client = client
        self.mirror.client = client

    # -- the queue ------------------------------------------------------------
    def mark_dirty(self, path: str, *, event: bool = True) -> None:
        """A hint that ``path`` may have changed (watcher thread hands it over here)."""
        now = self.monotonic()
        if event:
            self._last_event[path] = now
            self._scanned.pop(path, None)  # the scan's stat is stale now
        self.schedule(path, now)

    def schedule(self, path: str, due: float) -> None:
        if path in self._running:
            self._again[path] = min(due, self._again.get(path, due))
            return
        current = self._due.get(path)
        if current is not None and current <= due:
            return
        self._due[path] = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, path))
        self._wake.set()

    def _later(self, path: str, at_wall: float | None) -> None:
        """Look at a path again at a wall-clock time (retries), never in `sync`."""
        if self.once or at_wall is None:
            return
        self.schedule(path, self.monotonic() + max(0.0, at_wall - self.clock()))

    @property
    def busy(self) -> bool:
        return bool(self._heap or self._running)

    async def run(self, *, until_idle: bool = False) -> None:
        """Dispatch due paths until stopped (or, with ``until_idle``, until nothing is left)."""
        while not self._stopping:
            now = self.monotonic()
            while self._heap and self._heap[0][0] <= now and len(self._running) < MAX_TASKS:
                due, _, path = heapq.heappop(self._heap)
                if self._due.get(path) != due:
                    continue  # superseded by an earlier entry
                del self._due[path]
                self._running[path] = asyncio.create_task(self._process(path), name=path)
            # Sweep on time whatever else runs (one slow video must not hold back
            # deletions), in its own task so its HTTP calls never stall dispatch.
            # `sync` has no grace period: there the pass's renames must be seen first.
            can_sweep = not self._sweeping and not (self.once and self._running)
            if self._sweep_at is not None and now >= self._sweep_at and can_sweep:
                self._sweep_at = None
                self._sweeper = asyncio.create_task(self._sweep_in_background(), name="sweep")
            if until_idle and not self._heap and not self._running and not self._sweeping:
                await self.mirror.wait_renewals()
                if not self._heap and not self._running:
                    return
            timeout = None
            if self._heap and len(self._running) < MAX_TASKS:
                timeout = max(0.0, self._heap[0][0] - now)
            if self._sweep_at is not None and can_sweep:  # else an ending task wakes us
                wait = max(0.0, self._sweep_at - now)
                timeout = wait if timeout is None else min(timeout, wait)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop taking work; in-flight steps are cancelled (their offsets are already recorded)."""
        self._stopping = True
        self._wake.set()
        self.mirror.cancel_renewals()
        tasks = list(self._running.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _process(self, path: str) -> None:
        try:
            await self.reconcile(path)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error on %s; will look again later", path)
            self._later(path, self.clock() + 300)
        finally:
            self._running.pop(path, None)
            again = self._again.pop(path, None)
            if again is not None:
                self.schedule(path, again)
            self._wake.set()

    @property
    def _sweeping(self) -> bool:
        return self._sweeper is not None and not self._sweeper.done()

    async def _sweep_in_background(self) -> None:
        try:
            await self.sweep()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("removing vanished files failed; will try again")
            self._sweep_at = self.monotonic() + self.remove_grace + SWEEP_BUSY_WAIT
        finally:
            self._wake.set()

    # -- scans and timers -----------------------------------------------------
    async def scan(self) -> int:
        """Queue every candidate file and every recorded path; returns files found.

        Folders are walked side by side, each in its own threads: one that does not
        answer ends its walk at the time-out and holds up none of the others.
        """
        walks = await asyncio.gather(*(self._scan_folder(f) for f in self.config.folders))
        found: set[str] = set()
        reachable: set[str] = set()
        for folder, walked in zip(self.config.folders, walks, strict=True):
            if walked is not None:
                reachable.add(str(folder.path))
                found.update(walked)
        known = {r.path for r in self.store.all_paths() if r.gone_at is None}
        # Vanished paths first: a rename's old path must be seen gone before its new one.
        for p in sorted(known - found):
            folder = self.config.folder_for(Path(p))
            if folder is None or str(folder.path) in reachable:
                self.mark_dirty(p, event=False)
        for p in sorted(found):
            self.mark_dirty(p, event=False)
        return len(found)

    async def _scan_folder(self, folder: FolderConfig) -> list[str] | None:
        """The folder's candidate files (their stat cached), or None when it is unavailable."""
        key = str(folder.path)
        dev = await self._available(folder)
        if dev is None:
            return None
        temp_dirs: set[str] = set()
        try:
            files = await self.fs.call(key, walk_folder, folder, self._suffixes, temp_dirs,
                                       timeout=WALK_TIMEOUT)
            self._scanned.update(await self.fs.call(key, stat_all, files, timeout=WALK_TIMEOUT))
            for d in temp_dirs:
                # Temp files of a write a crash interrupted; young ones may be in flight.
                await self.fs.call(key, sidecar.clean_stale_temps, Path(d), STALE_TEMP,
                                   self.clock())
        except FolderUnavailable:
            self._set_unavailable(key, "does not answer")
            return None
        if files and self.store.get_meta(f"folder_dev:{key}") != str(dev):
            # Seen with files on this device: an empty mount point later is an unmount.
            self.store.set_meta(f"folder_dev:{key}", str(dev))
        return files

    async def _available(self, folder: FolderConfig) -> int | None:
        """The folder's st_dev when its listing can be trusted, else None (said once).

        Missing, an empty mount point whose file system is gone, or not answering:
        then nothing in it counts as deleted.
        """
        key = str(folder.path)
        try:
            dev, parent_dev = await self.fs.call(key, folder_devices, key)
        except FolderUnavailable:
            self._set_unavailable(key, "does not answer")
            return None
        recorded = self.store.get_meta(f"folder_dev:{key}")
        why = plan.folder_unavailable(dev, parent_dev, int(recorded) if recorded else None)
        self._set_unavailable(key, why)
        return dev if why is None else None

    def _set_unavailable(self, folder: str, why: str | None) -> None:
        if self._unavailable.get(folder) == why:
            return
        if why is None:
            del self._unavailable[folder]
            log.info("folder %s is available again", folder)
        else:
            self._unavailable[folder] = why
            log.warning("folder %s %s; nothing in it counts as deleted while it is unavailable",
                        folder, why)
        self.store.set_meta("unavailable", json.dumps(self._unavailable, sort_keys=True))

    def _folder_answers(self, folder: str) -> None:
        """A stuck call in a folder returned: look at everything again."""
        log.info("folder %s answers again; rescanning", folder)
        task = asyncio.ensure_future(self.scan())
        self._rescans.add(task)
        task.add_done_callback(self._rescans.discard)

    async def refresh(self) -> None:
        """Reconcile with the server's listing: vanished copies, orphans, renewals."""
        try:
            vanished = await self.mirror.refresh()
            await self.mirror.delete_doomed()
        except ApiError as e:
            if classify(e) == "auth":
                self._halt(e)
            else:
                log.warning("could not list the remote files: %s", e)
            return
        if self.halted:
            log.info("the API key works again; resuming")
            self.halted = None
            await self.scan()
        for sha in vanished:
            for p in self.store.live_paths_for(sha):
                self.mark_dirty(p, event=False)

    async def sweep(self) -> None:
        """Forget paths gone for longer than a rename takes; retire unneeded contents."""
        grace = 0.0 if self.once else self.remove_grace
        gone = {r.path: r.gone_at or 0.0 for r in self.store.gone_paths()}
        expired = plan.removable(gone, self.clock(), grace)
        for p in expired:
            self.store.delete_path(p)
        busy = False
        for c in self.store.unreferenced_contents():
            if self.mirror.busy(c.sha256):
                busy = True  # an upload of it is under way: retire it once that ends
                continue
            log.info("no file needs %s any more; deleting its remote copy", c.remote_name or
                     c.sha256[:12])
            self.mirror.retire(c)
        if len(gone) > len(expired):
            self._sweep_at = self.monotonic() + grace
        if busy:
            at = self.monotonic() + SWEEP_BUSY_WAIT
            self._sweep_at = at if self._sweep_at is None else min(self._sweep_at, at)
        try:
            await self.mirror.delete_doomed()
        except ApiError as e:
            log.warning("could not delete remote files yet: %s", e)

    @property
    def remove_grace(self) -> float:
        # Long enough for a renamed file's new name to settle and be recognised.
        return 2 * self.config.daemon.settle + 2.0

    # -- one path -------------------------------------------------------------
    async def reconcile(self, path: str) -> None:
        folder = self.config.folder_for(Path(path))
        rel = PurePath(os.path.relpath(path, folder.path)) if folder else None
        mt = is_candidate(rel, folder, self._suffixes) if folder and rel else None
        if folder is None or mt is None:
            await self._gone(path, folder)
            return
        try:
            facts = self._scanned.pop(path, None) or await self.fs.call(
                str(folder.path), local_facts, path
            )
        except FolderUnavailable:
            self._later(path, self.clock() + UNAVAILABLE_RETRY)
            return
        except FileNotFoundError:
            await self._gone(path, folder)
            return
        except NotRegular as e:
            self._note(path, "notregular", "skipping %s: %s, not a regular file", rel, e.what)
            await self._gone(path, folder)
            return
        except OSError as e:
            self._note(path, "stat", "cannot look at %s: %s", rel, e.strerror or e)
            return
        wait = plan.settle_wait(
            facts,
            self._previous.get(path),
            self._last_event.get(path),
            self.clock(),
            self.monotonic(),
            self.config.daemon.settle,
        )
        if wait > 0:
            self._previous[path] = facts
            self.schedule(path, self.monotonic() + wait)
            return
        self._previous.pop(path, None)
        self._last_event.pop(path, None)
        row = await self._identify(path, folder, rel, mt.kind, mt.mime, facts)
        if row is None or row.problem or not row.sha256 or self.halted:
            return
        if self.store.get_content(row.sha256) is None:
            self.store.ensure_content(row.sha256, row.size, row.mime, row.kind, self.clock())
        try:
            content = await self.mirror.ensure(row.sha256)
        except ContentUnavailable as e:
            if e.changed:  # not a retry: the new bytes need hashing (in `sync` too)
                self.schedule(path, self.monotonic() + self.config.daemon.settle)
            else:
                self._later(path, e.retry_at)
            return
        except ApiError as e:
            self._halt(e)
            return
        for want in plan.desired(folder, path, row.kind, self.config.api.model):
            await self._output(path, rel, content.sha256, want)
        # Answers are shared within one pass only: a deleted sidecar asks afresh.
        for key in [k for k in self._answers if k[0] == content.sha256]:
            del self._answers[key]

    def _note(self, key: str, what: str, msg: str, *args: object) -> None:
        """Log a problem once per path, not on every rescan."""
        if (key, what) not in self._noted:
            self._noted.add((key, what))
            log.warning(msg, *args)

    async def _gone(self, path: str, folder: FolderConfig | None) -> None:
        self._previous.pop(path, None)
        self._last_event.pop(path, None)
        row = self.store.get_path(path)
        if row is None or row.gone_at is not None:
            return
        if folder is not None and await self._available(folder) is None:
            return  # an unmounted or hung share is not a folder of deleted files
        self.store.mark_gone(path, self.clock())
        log.info("%s is gone; its sidecars are kept", path)
        self._sweep_at = self.monotonic() + (0.0 if self.once else self.remove_grace)
        self._wake.set()

    async def _identify(
        self,
        path: str,
        folder: FolderConfig,
        rel: PurePath,
        kind: str,
        mime: str,
        facts: LocalFacts,
    ) -> PathRow | None:
        """The path's row with its content hash, reading the file only when its stat changed."""
        row = self.store.get_path(path)
        same = row is not None and (row.size, row.mtime_ns, row.inode) == (
            facts.size,
            facts.mtime_ns,
            facts.inode,
        )
        if row is not None and same and row.gone_at is None and (row.sha256 or row.problem):
            return row
        problem = plan.local_problem(facts.size)
        sha = row.sha256 if (row is not None and same) else None
        if problem is None and sha is None:
            twin = await self._vanished_twin(path, facts)
            if twin is not None:
                sha = twin.sha256
            else:
                try:
                    sha = await self.fs.call(str(folder.path), hash_file, path, facts,
                                             timeout=None)
                except FolderUnavailable:
                    self._later(path, self.clock() + UNAVAILABLE_RETRY)
                    return None
                except ChangedWhileHashing:
                    self.schedule(path, self.monotonic() + self.config.daemon.settle)
                    return None
                except FileNotFoundError:
                    await self._gone(path, folder)
                    return None
                except NotRegular as e:
                    self._note(path, "notregular", "skipping %s: %s", rel, e.what)
                    return None
                except OSError as e:
                    problem = f"cannot read it: {e.strerror or e}"
        new = PathRow(
            path=path,
            folder=str(folder.path),
            size=facts.size,
            mtime_ns=facts.mtime_ns,
            inode=facts.inode,
            sha256=None if problem else sha,
            kind=kind,
            mime=mime,
            problem=problem,
            gone_at=None,
            updated_at=self.clock(),
        )
        self.store.put_path(new)
        if problem:
            if row is None or row.problem != problem:
                log.warning("%s: %s", rel, problem)
            return new
        assert sha is not None
        if row is not None and row.sha256 and row.sha256 != sha:
            log.info("%s changed; uploading the new version", rel)
            self._sweep_at = self.monotonic()  # the old content may be unneeded now
        if row is None or row.sha256 != sha:
            await self._adopt_outputs(path, folder, sha)
        return new

    async def _exists(self, folder: str, path: str) -> bool:
        """``lexists`` in the folder's threads; a folder that does not answer counts as
        still holding the path (nothing is taken for moved or deleted on a hung share)."""
        try:
            return await self.fs.call(folder, os.path.lexists, path)
        except FolderUnavailable:
            return True

    async def _vanished_twin(self, path: str, facts: LocalFacts) -> PathRow | None:
        """A recorded path that no longer exists but had this very file (a rename)."""
        twin = self.store.find_twin(path, facts.inode, facts.size, facts.mtime_ns)
        if twin is not None and (
            twin.gone_at is not None or not await self._exists(twin.folder, twin.path)
        ):
            return twin
        return None

    async def _adopt_outputs(self, path: str, folder: FolderConfig, sha: str) -> None:
        """A renamed (or moved) file takes its sidecars along: no new generation."""
        if self.store.get_outputs(path):
            return
        for old in self.store.paths_with_sha(sha, exclude=path):
            if old.gone_at is None and await self._exists(old.folder, old.path):
                continue  # a copy, not a rename
            recorded = self.store.get_outputs(old.path)
            moved: dict[str, str] = {}
            for suffix, out in recorded.items():
                target = naming.sidecar_for(Path(path), suffix)
                try:
                    ok = await self.fs.call(str(folder.path), sidecar.move_sidecar,
                                            Path(out.sidecar), target)
                except FolderUnavailable:
                    ok = False
                if ok:
                    moved[suffix] = str(target)
            self.store.move_outputs(old.path, path, moved)
            self.store.delete_path(old.path)
            if moved:
                log.info(
                    "%s moved to %s; moved %d sidecar(s) with it",
                    old.path, path, len(moved),
                )
            return

    # -- outputs --------------------------------------------------------------
    async def _output(self, path: str, rel: PurePath, sha: str, want: Desired) -> None:
        row = self.store.get_outputs(path).get(want.suffix)
        folder = self.config.folder_for(Path(path))
        key = str(folder.path) if folder else os.path.dirname(path)
        if (
            row is not None
            and row.outcome in ("written", "kept_edit")
            and plan.is_current(row, want, sha)
            and await self._exists(key, want.sidecar)
        ):
            # Nothing would be written either way; hashing the sidecar to tell
            # "ours" from "edited" waits until a write is wanted.
            return
        target = Path(want.sidecar)
        try:
            if want.format == "xmp":
                state, on_disk = await self.fs.call(key, outputs.xmp_state, target)
            else:
                state, on_disk = await self.fs.call(key, _sidecar_state, target, row)
        except FolderUnavailable:
            self._later(path, self.clock() + UNAVAILABLE_RETRY)
            return
        step = plan.output_step(row, want, sha, state, self.clock())
        if step == "skip":
            return
        if step == "wait":
            self._later(path, row.retry_at if row else None)
            return
        if step == "keep_edit":
            self._record(path, sha, want, row, outcome="kept_edit", written_hash=on_disk,
                         message="kept the owner's edit")
            log.info("kept the owner's edit of %s", target.name)
            return
        if step == "confirm":
            # Written just before a crash, recorded as pending: it is current.
            self._record(path, sha, want, row, outcome="written", written_hash=on_disk)
            return
        await self._generate(path, rel, sha, want, row, on_disk)

    async def _generate(
        self, path: str, rel: PurePath, sha: str, want: Desired, row: OutputRow | None,
        on_disk: str | None,
    ) -> None:
        attempts = (row.attempts if row and row.outcome == "failed" else 0) + 1
        async with self.generate_slots:
            content = self.store.get_content(sha)
            if content is None or not content.uri:
                return
            try:
                req = await asyncio.to_thread(outputs.prepare, want, path, rel, content.mime)
                answer = await self._ask(want, sha, req, content.uri, content.mime)
            except structured.InvalidAnswer as e:
                # Asked twice already; a later try may do better (transient).
                retry_at = self.clock() + failures.backoff(attempts, self.mirror.jitter())
                self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                             message=f"invalid answer: {e.reason}", retry_at=retry_at,
                             attempts=attempts, usage=e.usage)
                log.error("%s: %s: invalid answer twice: %s", rel, want.suffix, e.reason)
                self._later(path, retry_at)
                return
            except ApiError as e:
                self._generate_failed(path, rel, sha, want, row, on_disk, e, attempts)
                return
        gen, usage = answer.generation, answer.usage
        if gen.blocked or gen.text is None:
            reason = gen.block_reason or gen.finish_reason or "no text"
            self._record(path, sha, want, row, outcome="blocked", written_hash=on_disk,
                         message=f"the service gave no answer ({reason})", usage=usage)
            log.warning("%s: no %s: the service blocked the answer (%s)", rel, want.suffix, reason)
            return
        try:
            rendered = await asyncio.to_thread(outputs.render, want, gen.text, answer.value, req,
                                               on_disk)
        except outputs.Refused as e:
            # A sidecar we may not touch (not XMP, a DTD): its owner can fix it.
            retry_at = self.clock() + failures.backoff(attempts, self.mirror.jitter())
            self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                         message=str(e), usage=usage, attempts=attempts, retry_at=retry_at)
            log.error("%s: %s", rel, e)
            self._later(path, retry_at)
            return
        if rendered.note:
            log.info("%s: %s", Path(want.sidecar).name, rendered.note)
        text, on_disk = rendered.text, rendered.base
        if await asyncio.to_thread(_moved, path, self.store.get_path(path)):
            # Renamed, deleted or replaced while the answer was on its way: a sidecar
            # here would sit beside nothing. The rename/delete logic takes over.
            log.info("%s moved or changed while its %s was generated; not writing it",
                     rel, want.suffix)
            self.schedule(path, self.monotonic())
            return
        new_hash = sidecar.text_hash(text)
        # Record what we are about to write, so a crash between the write and the
        # record still recognises the file as ours.
        self._record(path, sha, want, row, outcome="writing", written_hash=on_disk,
                     pending=new_hash, usage=usage)
        try:
            written = await asyncio.to_thread(
                sidecar.write_atomic, Path(want.sidecar), text, expected=on_disk
            )
        except OSError as e:
            # Disk full, folder read-only for a while: the owner can fix it; try again.
            v = failures.judge_os(e, attempts, self.clock(), self.mirror.jitter())
            name = Path(want.sidecar).name
            self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                         message=f"cannot write {name}: {v.reason}",
                         usage=usage, attempts=attempts, retry_at=v.retry_at)
            log.error("%s: cannot write %s: %s; will try again", rel, name, v.reason)
            self._later(path, v.retry_at)
            return
        if written is None and want.format == "xmp":
            # Another tool wrote the sidecar while we asked: merge into its version soon.
            retry_at = self.clock() + 1.0
            self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                         message="the sidecar changed while generating; merging again",
                         usage=usage, attempts=attempts, retry_at=retry_at)
            self._later(path, retry_at)
            return
        if written is None:
            self._record(path, sha, want, row, outcome="kept_edit", written_hash=on_disk,
                         message="kept the owner's edit", usage=usage)
            log.info("kept the owner's edit of %s", Path(want.sidecar).name)
            return
        self._record(path, sha, want, row, outcome="written", written_hash=written, usage=usage)
        log.info(
            "wrote %s (%d tokens)", Path(want.sidecar).name, usage.total_tokens
        )

    def _generate_failed(
        self, path: str, rel: PurePath, sha: str, want: Desired, row: OutputRow | None,
        on_disk: str | None, error: ApiError, attempts: int,
    ) -> None:
        v = failures.judge_api(error, attempts, self.clock(), self.mirror.jitter())
        if v.kind == "config":
            self._halt(error)
            return
        gone = classify(error) == "gone"
        if gone:
            self.mirror.forget_copy(sha)
        self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                     message=str(error), retry_at=v.retry_at, attempts=attempts)
        if v.transient:
            log.warning("%s: %s failed, will try again: %s", rel, want.suffix, error)
        else:
            log.error("%s: %s failed: %s", rel, want.suffix, error)
        if gone and not self.once:
            self.schedule(path, self.monotonic())
        elif error.file_not_active and v.retry_at is not None:
            # Processing ends within seconds: look again then, in `sync` too.
            self.schedule(path, self.monotonic() + max(0.0, v.retry_at - self.clock()))
        else:
            self._later(path, v.retry_at)

    async def _ask(self, want: Desired, sha: str, req: outputs.Request, uri: str,
                   mime: str) -> structured.Answer:
        """One answer per content and request: .srt and .vtt of one language share it."""
        key = (sha, want.model, req.prompt, req.system, json.dumps(req.schema, sort_keys=True))
        if key in self._answers:
            # Its tokens were counted with the first output that used it.
            return dataclasses.replace(self._answers[key], usage=Usage())
        answer = await structured.ask(self.client, want.model, file_uri=uri, mime_type=mime,
                                      prompt=req.prompt, system=req.system, schema=req.schema)
        if answer.value is not None:
            if len(self._answers) >= 32:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = answer
        return answer

    def _record(
        self,
        path: str,
        sha: str,
        want: Desired,
        row: OutputRow | None,
        *,
        outcome: str,
        written_hash: str | None,
        message: str | None = None,
        pending: str | None = None,
        usage: Usage | None = None,
        retry_at: float | None = None,
        attempts: int = 0,
    ) -> None:
        self.store.put_output(
            OutputRow(
                path=path,
                suffix=want.suffix,
                sha256=sha,
                prompt_hash=want.prompt_hash,
                model=want.model,
                sidecar=want.sidecar,
                written_hash=written_hash,
                pending_hash=pending,
                outcome=outcome,
                message=message,
                prompt_tokens=usage.prompt_tokens if usage else (row.prompt_tokens if row else 0),
                output_tokens=(
                    usage.candidates_tokens if usage else (row.output_tokens if row else 0)
                ),
                retry_at=retry_at,
                attempts=attempts,
                at=self.clock(),
                thoughts_tokens=(
                    usage.thoughts_tokens if usage else (row.thoughts_tokens if row else 0)
                ),
            )
        )

    def _halt(self, error: ApiError) -> None:
        if classify(error) != "auth":
            log.error("unexpected API error: %s", error)
            return
        if not self.halted:
            self.halted = (
                f"the API key was refused ({error.reason or error.status}); "
                "fix it and reload (systemctl reload mediasync)"
            )
            log.error("%s", self.halted)


def _moved(path: str, row: PathRow | None) -> bool:
    """The file is no longer the one identified (renamed, deleted, replaced)."""
    try:
        facts = local_facts(path)
    except (OSError, NotRegular):
        return True
    return row is None or (facts.size, facts.mtime_ns, facts.inode) != (
        row.size, row.mtime_ns, row.inode
    )


def _sidecar_state(target: Path, row: OutputRow | None) -> tuple[plan.SidecarState, str | None]:
    """Who owns the sidecar, and the hash of our bytes on disk when they are ours.

    While a write is recorded as pending, only the pending bytes are current; the
    bytes written before are ours but stale (a crash mid-rewrite), never current.
    """
    written = row.written_hash if row else None
    if row is not None and row.outcome == "writing" and row.pending_hash:
        if sidecar.inspect(target, row.pending_hash) == "ours":
            return "ours", row.pending_hash
        state = sidecar.inspect(target, written)
        if state == "ours":
            return "stale", written
        return state, None  # not the pending bytes, not our old ones: the owner's
    state = sidecar.inspect(target, written)
    return state, written if state == "ours" else None
