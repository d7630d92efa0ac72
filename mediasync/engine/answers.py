"""Paid answers, kept by what decides them, so the same bytes cost one generation.

A hard link, a copy in another folder, the .srt and .vtt of one request: when the
content, the model, the prompt as sent (placeholders filled), the system
instruction, the schema, the knobs and the ranges are equal, the answer is too.
The first asks and pays; the others are written from its answer, in this pass or
a later one (the store's ``answers`` table). Asks for one key run one at a time,
so two paths processed side by side never pay twice (issue 18, item 8).

Kept: whole answers, and answers that are an outcome for these bytes (a block, a
cut): asking again would buy the same. Not kept: errors (transient), answers that
did not parse twice. A sidecar of ours the owner deleted asks afresh (a re-roll):
its key is dropped first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from mediasync.gemini import Usage
from mediasync.gemini.models import Generation
from mediasync.outputs import structured
from mediasync.rules import completeness
from mediasync.store import Store, StoredAnswer


def answer_key(sha: str, model: str, prompt: str, system: str | None,
               schema: dict[str, Any] | None, knobs: dict[str, Any],
               ranges: float | str | None) -> str:
    """What decides an answer, as one digest."""
    blob = json.dumps([sha, model.removeprefix("models/"), prompt, system or "", schema,
                       knobs, ranges], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AnswerBook:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._asking: dict[str, asyncio.Event] = {}

    def forget(self, key: str) -> None:
        """Ask afresh next time (the owner deleted a sidecar written from it)."""
        self._store.delete_answer(key)

    def has(self, key: str, parse: Callable[[str], Any]) -> bool:
        """A kept answer for ``key`` that still reads: ``get`` gives it without asking."""
        kept = self._store.get_answer(key)
        return kept is not None and self._revive(kept, parse) is not None

    def keep(self, key: str, sha: str, path: str, gen: Generation) -> None:
        """Keep an answer paid elsewhere (a batch job's) as if ``get`` had asked it."""
        self._store.put_answer(key, sha, StoredAnswer(
            gen.text, gen.finish_reason, gen.block_reason, path), self._clock())

    async def get(self, key: str, sha: str, path: str,
                  ask: Callable[[], Awaitable[structured.Answer]],
                  parse: Callable[[str], Any]) -> tuple[structured.Answer, str | None]:
        """The answer for ``key``: kept, or asked now by ``ask`` (and kept). The second
        item is the path that paid for a kept answer (None: asked now); a kept answer
        costs nothing (its usage is empty: its tokens were counted where it was paid)."""
        while True:
            kept = self._store.get_answer(key)
            revived = self._revive(kept, parse) if kept is not None else None
            if kept is not None and revived is not None:
                return revived, kept.paid_by
            asking = self._asking.get(key)
            if asking is None:
                break
            await asking.wait()  # asked for elsewhere right now: take its answer
        done = self._asking[key] = asyncio.Event()
        try:
            # Whatever comes back is kept (a whole answer, a block, a cut: asking again
            # buys the same); an error or twice unparsable JSON raises and is not.
            answer = await ask()
            self.keep(key, sha, path, answer.generation)
            return answer, None
        finally:
            del self._asking[key]
            done.set()

    @staticmethod
    def _revive(kept: StoredAnswer, parse: Callable[[str], Any]) -> structured.Answer | None:
        """The kept answer as the producer takes it; None when it no longer reads
        (then it is asked for again)."""
        gen = Generation(kept.text, kept.finish, kept.block, Usage())
        value = None
        if kept.text is not None and completeness.cut_reason(gen.finish_reason, gen.text) is None:
            try:
                value = parse(kept.text)
            except ValueError:
                return None
        return structured.Answer(gen, value, Usage())
