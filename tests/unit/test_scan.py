"""Hashing a file: the checked read (hash_file) and the plain one (digest) share one loop."""

from __future__ import annotations

import dataclasses
import hashlib
import os

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
