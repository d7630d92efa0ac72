"""FolderIO: a folder's calls at a time-out, in its own threads (no real hung share:
the slow calls wait on events the test sets)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading

import pytest

from mediasync.local.folderio import WORKERS, FolderIO, FolderUnavailable, MountTable


def test_short_calls_do_not_queue_behind_untimed_hashes():
    fs = FolderIO(timeout=0.3)
    release = threading.Event()

    async def main() -> int:
        # More long reads than a folder has threads: each holds one until released.
        hashes = [asyncio.ensure_future(fs.call("/f", release.wait, 10, timeout=None))
                  for _ in range(WORKERS + 1)]
        await asyncio.sleep(0.05)
        try:
            answer = await fs.call("/f", lambda: 42)  # a stat, at the folder time-out
            assert not fs.hung("/f")
        finally:
            release.set()
        assert await asyncio.gather(*hashes) == [True] * (WORKERS + 1)
        return answer

    assert asyncio.run(main()) == 42


def test_a_timed_call_that_hangs_still_marks_the_folder_until_it_returns():
    fs = FolderIO(timeout=0.1)
    release = threading.Event()
    recovered: list[str] = []
    fs.on_recover = recovered.append

    async def main() -> None:
        with pytest.raises(FolderUnavailable):
            await fs.call("/f", release.wait, 10)
        assert fs.hung("/f")
        with pytest.raises(FolderUnavailable):
            await fs.call("/f", lambda: 1)  # fails at once while the stuck call is stuck
        assert await fs.call("/g", lambda: 2) == 2  # another folder is not held up
        release.set()
        for _ in range(100):
            if recovered:
                break
            await asyncio.sleep(0.01)
        assert await fs.call("/f", lambda: 3) == 3

    asyncio.run(main())
    assert recovered == ["/f"]


def test_the_mount_table_is_read_again_only_after_a_mount_or_unmount(tmp_path):
    table = MountTable()
    first = table.points()
    if first is None:
        pytest.skip("no /proc/self/mountinfo here")
    for _ in range(100):  # a burst of vanished files, each asking whether its disk is away
        assert table.points() == first
    assert table.reads == 1
    point = os.path.realpath(tmp_path / "card")
    os.mkdir(point)
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", point]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        assert point in table.points()
        assert table.reads == 2
    finally:
        subprocess.run(["umount", point], check=True)
    assert point not in table.points()
    assert table.points() == first
    assert table.reads == 3


def test_a_call_returning_as_its_time_runs_out_is_recovered_once():
    """The time-out and the answer race (a time-out of 0 s lets either win): every
    call given up on is told back exactly once, and the folder answers again."""
    fs = FolderIO(timeout=0.0)
    recovered: list[str] = []
    fs.on_recover = recovered.append

    async def main() -> int:
        timeouts = 0
        for i in range(60):
            try:
                assert await fs.call("/f", lambda i=i: i) == i
            except FolderUnavailable:
                timeouts += 1
            for _ in range(200):
                if not fs.hung("/f"):
                    break
                await asyncio.sleep(0.005)
            assert not fs.hung("/f")
        for _ in range(20):
            await asyncio.sleep(0.005)  # any second word of a recovery would come now
        return timeouts

    timeouts = asyncio.run(main())
    assert timeouts > 0
    assert recovered == ["/f"] * timeouts


def test_a_caller_that_is_cancelled_leaves_the_call_to_finish():
    fs = FolderIO(timeout=5.0)
    release, finished = threading.Event(), threading.Event()

    def slow() -> int:
        release.wait(10)
        finished.set()
        return 1

    async def main() -> None:
        task = asyncio.ensure_future(fs.call("/f", slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert await fs.call("/f", lambda: 2) == 2
        assert not fs.hung("/f")

    asyncio.run(main())
    assert finished.wait(5)
