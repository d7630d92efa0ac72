"""The reconciler: for each dirty path, compare what should be with what is and
take the next step. Events and timers only mark paths dirty (DESIGN.md).

One asyncio thread. Blocking file work (stat, hashing, sidecar writes) runs in
worker threads; uploads and generations are bounded by semaphores; a shared
rate limiter inside the client bounds requests per minute.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath

from mediasync import plan, sidecar
from mediasync.config import Config, FolderConfig
from mediasync.gemini import ApiError, GeminiClient, QuotaPaused, Usage
from mediasync.mirror import ContentUnavailable, Mirror, classify
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
GENERATE_ATTEMPTS = 5  # a generation that keeps failing waits for a change of file or prompt


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
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
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
        self._again: set[str] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._sweep_at: float | None = None
        self._noted: set[tuple[str, str]] = set()

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
            self._again.add(path)
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
            if self._sweep_at is not None and now >= self._sweep_at and not self._running:
                self._sweep_at = None
                await self.sweep()
            if until_idle and not self._heap and not self._running:
                await self.mirror.wait_renewals()
                if not self._heap and not self._running:
                    return
            timeout = None
            if self._heap and len(self._running) < MAX_TASKS:
                timeout = max(0.0, self._heap[0][0] - now)
            if self._sweep_at is not None:
                wait = max(0.05, self._sweep_at - now)
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
            if path in self._again:
                self._again.discard(path)
                self.schedule(path, self.monotonic())
            self._wake.set()

    # -- scans and timers -----------------------------------------------------
    async def scan(self) -> int:
        """Queue every candidate file and every recorded path; returns files found."""
        found: set[str] = set()
        temp_dirs: set[str] = set()
        reachable: list[FolderConfig] = []
        for folder in self.config.folders:
            if not await asyncio.to_thread(os.path.isdir, folder.path):
                self._note(str(folder.path), "missing", "folder %s does not exist or is not a "
                           "directory; watching the others", folder.path)
                continue
            reachable.append(folder)
            found.update(
                await asyncio.to_thread(walk_folder, folder, self._suffixes, temp_dirs)
            )
        for d in temp_dirs:
            # Temp files of a write a crash interrupted; young ones may be in flight.
            await asyncio.to_thread(sidecar.clean_stale_temps, Path(d), STALE_TEMP, self.clock())
        self._scanned.update(await asyncio.to_thread(stat_all, sorted(found)))
        known = {r.path for r in self.store.all_paths() if r.gone_at is None}
        # Vanished paths first: a rename's old path must be seen gone before its new one.
        for p in sorted(known - found):
            folder = self.config.folder_for(Path(p))
            if folder is None or folder in reachable:
                self.mark_dirty(p, event=False)
        for p in sorted(found):
            self.mark_dirty(p, event=False)
        return len(found)

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
        for c in self.store.unreferenced_contents():
            log.info("no file needs %s any more; deleting its remote copy", c.remote_name or
                     c.sha256[:12])
            self.mirror.retire(c)
        if len(gone) > len(expired):
            self._sweep_at = self.monotonic() + grace
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
            self._gone(path, folder)
            return
        try:
            facts = self._scanned.pop(path, None) or await asyncio.to_thread(local_facts, path)
        except FileNotFoundError:
            self._gone(path, folder)
            return
        except NotRegular as e:
            self._note(path, "notregular", "skipping %s: %s, not a regular file", rel, e.what)
            self._gone(path, folder)
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

    def _note(self, key: str, what: str, msg: str, *args: object) -> None:
        """Log a problem once per path, not on every rescan."""
        if (key, what) not in self._noted:
            self._noted.add((key, what))
            log.warning(msg, *args)

    def _gone(self, path: str, folder: FolderConfig | None) -> None:
        self._previous.pop(path, None)
        self._last_event.pop(path, None)
        row = self.store.get_path(path)
        if row is None or row.gone_at is not None:
            return
        if folder is not None and not os.path.isdir(folder.path):
            return  # an unmounted share is not a folder of deleted files
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
            twin = self._vanished_twin(path, facts)
            if twin is not None:
                sha = twin.sha256
            else:
                try:
                    sha = await asyncio.to_thread(hash_file, path, facts)
                except ChangedWhileHashing:
                    self.schedule(path, self.monotonic() + self.config.daemon.settle)
                    return None
                except FileNotFoundError:
                    self._gone(path, folder)
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
            self._adopt_outputs(path, sha)
        return new

    def _vanished_twin(self, path: str, facts: LocalFacts) -> PathRow | None:
        """A recorded path that no longer exists but had this very file (a rename)."""
        twin = self.store.find_twin(path, facts.inode, facts.size, facts.mtime_ns)
        if twin is not None and (twin.gone_at is not None or not os.path.lexists(twin.path)):
            return twin
        return None

    def _adopt_outputs(self, path: str, sha: str) -> None:
        """A renamed (or moved) file takes its sidecars along: no new generation."""
        if self.store.get_outputs(path):
            return
        for old in self.store.paths_with_sha(sha, exclude=path):
            if old.gone_at is None and os.path.lexists(old.path):
                continue  # a copy, not a rename
            outputs = self.store.get_outputs(old.path)
            moved: dict[str, str] = {}
            for suffix, out in outputs.items():
                target = sidecar.sidecar_path(Path(path), suffix)
                if sidecar.move_sidecar(Path(out.sidecar), target):
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
        if (
            row is not None
            and row.outcome in ("written", "kept_edit")
            and plan.is_current(row, want, sha)
            and os.path.lexists(want.sidecar)
        ):
            # Nothing would be written either way; hashing the sidecar to tell
            # "ours" from "edited" waits until a write is wanted.
            return
        target = Path(want.sidecar)
        state, on_disk = await asyncio.to_thread(_sidecar_state, target, row)
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
            knobs = self.config.knobs_for(Path(path), want.suffix)
            try:
                gen = await self.client.generate(
                    want.model, file_uri=content.uri, mime_type=content.mime, prompt=want.prompt,
                    generation_config=knobs.generation_config() or None,
                    system_instruction=knobs.system_instruction,
                )
            except QuotaPaused as e:
                # The day's quota or the owner's cap: not a failure of this file.
                self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                             message=str(e), retry_at=e.resume_at, attempts=attempts - 1)
                self._later(path, e.resume_at)
                return
            except ApiError as e:
                kind = classify(e)
                if kind == "auth":
                    self._halt(e)
                    return
                if kind == "gone":
                    self.mirror.forget_copy(sha)
                transient = kind in ("transient", "storage", "gone") or (
                    e.status == "FAILED_PRECONDITION"
                )
                retry_at = None
                if transient and attempts < GENERATE_ATTEMPTS:
                    delay = 1.0 if kind == "gone" else plan.retry_delay(attempts)
                    retry_at = self.clock() + delay
                self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                             message=str(e), retry_at=retry_at, attempts=attempts)
                log.error("%s: %s failed: %s", rel, want.suffix, e)
                if kind == "gone" and not self.once:
                    self.schedule(path, self.monotonic())
                else:
                    self._later(path, retry_at)
                return
        usage = gen.usage
        if gen.blocked or gen.text is None:
            reason = gen.block_reason or gen.finish_reason or "no text"
            self._record(path, sha, want, row, outcome="blocked", written_hash=on_disk,
                         message=f"the service gave no answer ({reason})", usage=usage)
            log.warning("%s: no %s: the service blocked the answer (%s)", rel, want.suffix, reason)
            return
        text = plan.sidecar_text(gen.text)
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
            self._record(path, sha, want, row, outcome="failed", written_hash=on_disk,
                         message=f"cannot write {Path(want.sidecar).name}: {e.strerror or e}",
                         usage=usage, attempts=attempts, retry_at=None)
            log.error("%s: cannot write %s: %s", rel, Path(want.sidecar).name, e.strerror or e)
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


def _sidecar_state(target: Path, row: OutputRow | None) -> tuple[plan.SidecarState, str | None]:
    """Who owns the sidecar, and the hash of our bytes on disk when they are ours.

    A write recorded as pending (crash between write and record) counts as ours.
    """
    written = row.written_hash if row else None
    state = sidecar.inspect(target, written)
    if state == "edited" and row is not None and row.pending_hash:
        if sidecar.inspect(target, row.pending_hash) == "ours":
            return "ours", row.pending_hash
    if state == "foreign" and row is not None and row.pending_hash:
        if sidecar.inspect(target, row.pending_hash) == "ours":
            return "ours", row.pending_hash
    return state, written if state == "ours" else None
