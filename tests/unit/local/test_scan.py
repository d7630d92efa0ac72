"""Hashing a file: the checked read (hash_file) and the plain one (digest) share one loop."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import PurePath

import pytest

from mediasync.local.scan import ChangedWhileHashing, NotRegular, digest, hash_file, local_facts


def test_hash_file_and_digest_agree_and_check_what_they_should(tmp_path):
    p = tmp_path / "a.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one read block
    p.write_bytes(data)
    facts = local_facts(str(p))
    want = hashlib.sha256(data).hexdigest()
    assert hash_file(str(p), facts) == want
    assert digest(str(p)) == want
    with pytest.raises(ChangedWhileHashing):
        hash_file(str(p), dataclasses.replace(facts, size=facts.size + 1))
    fifo = tmp_path / "f.fifo"
    os.mkfifo(fifo)
    for read in (lambda: digest(str(fifo)), lambda: hash_file(str(fifo), facts)):
        with pytest.raises(NotRegular):
            read()


@pytest.mark.parametrize("patterns", [{}, {"exclude": ("private",)}, {"include": ("*.png",)}])
@pytest.mark.parametrize("recursive", [True, False])
def test_walk_finds_what_is_candidate_says_of_every_file(tmp_path, patterns, recursive):
    """The walk decides by name alone when there are no patterns: it finds exactly the
    files is_candidate accepts, whatever the names and folders."""
    from mediasync.config import FolderConfig
    from mediasync.local.candidates import is_candidate
    from mediasync.local.scan import walk_folder

    names = ["a.png", "B.JPG", ".hidden.png", "~lock.png", "a.png.caption.md", "x.part",
             "clip.MP4", "notes.txt", "a.png.tmp", "v.wav.PART", "trailing.", ".png", "é.heic",
             "stem.caption.md.png"]
    dirs = ["", "sub", "sub/deeper", "@eaDir", ".git", "private", "sub/#recycle", "Private"]
    for d in dirs:
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
        for n in names:
            (tmp_path / d / n).write_bytes(b"x")
    folder = FolderConfig(path=tmp_path, recursive=recursive, **patterns)
    suffixes = {".caption.md"}
    every = []
    for dirpath, _, files in os.walk(tmp_path):
        for n in files:
            rel = PurePath(os.path.relpath(os.path.join(dirpath, n), tmp_path))
            if is_candidate(rel, folder, suffixes) is not None:
                every.append(os.path.join(dirpath, n))
    assert walk_folder(folder, suffixes) == sorted(every)
    assert every  # the tree has candidates at all
