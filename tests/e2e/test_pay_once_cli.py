"""Money through the real CLI (issue 18, item 7): a file whose mtime changes while its
answer is on its way keeps the paid answer. (Item 8, the same bytes at several paths,
runs the CLI in tests/integration/test_pay_once.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

from mediasync.emulator import Fault
from mediasync.media.samples import png_bytes
from tests.helpers import env, wait_for, write_config


def test_a_file_touched_while_sync_generates_is_paid_for_once(tmp_path, emu):
    cfg = write_config(tmp_path, emu.base_url)
    photo = tmp_path / "inbox" / "photo.png"
    photo.write_bytes(png_bytes(seed=190))
    # The answer takes a while: the file is touched (a backup tool, `touch`) meanwhile.
    emu.add_fault(Fault(kind="slow", match="generate", delay=2.0))
    proc = subprocess.Popen([sys.executable, "-m", "mediasync", "-c", str(cfg), "sync"],
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: emu.stats()["requests"].get("generate", 0) == 1,
                 what="the generation to start", proc=proc)
        st = photo.stat()
        os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert emu.stats()["requests"]["generate"] == 1  # not paid a second time
    assert (tmp_path / "inbox" / "photo.png.caption.md").read_text().strip()
