"""Upload proxies: when one is made (media/proxy.py wants_proxy), what it is (read
back with PyAV, as the service's decoder would), and how it sits on disk
(local/proxies.py): a temporary name renamed when complete, a cache within a cap,
nothing half-written left by a broken file or a full disk."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import av
import pytest

from mediasync.local.proxies import ProxyCache
from mediasync.media import proxy
from mediasync.media.formats import MAX_FILE_BYTES
from mediasync.media.proxy import Spec, wants_proxy
from tests.real_media import audio, video

MB = 1000**2


def test_when_a_proxy_is_made():
    # auto: the original, except video over 2 GB and media over the documented sizes.
    assert wants_proxy("video", 50 * MB, "auto") is None
    assert wants_proxy("video", 101 * MB, "auto") == Spec("video", 720)
    assert wants_proxy("video", MAX_FILE_BYTES + 1, "auto") == Spec("video", 720)
    assert wants_proxy("audio", 20 * MB, "auto") is None
    assert wants_proxy("audio", 26 * MB, "auto") == Spec("audio", 0)
    assert wants_proxy("video", 1, "proxy", "low") == Spec("video", 360)
    assert wants_proxy("video", MAX_FILE_BYTES + 1, "original") is None  # the user's word
    assert wants_proxy("image", 500 * MB, "proxy") is None  # images go as they are
    assert Spec("video").mime == "video/mp4" and Spec("audio").mime == "audio/ogg"


def test_a_video_proxy_is_720p_at_most_10_fps_with_16k_mono_sound(tmp_path):
    src = video(tmp_path / "clip.mp4", seconds=3, width=1280, height=960, fps=30, noise=True,
                bitrate=8_000_000)
    size, digest = proxy.make(src, tmp_path / "p.mp4", Spec("video", 720))
    assert size == (tmp_path / "p.mp4").stat().st_size < src.stat().st_size / 2
    assert len(digest) == 64
    with av.open(str(tmp_path / "p.mp4")) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (960, 720)
        assert v.codec_context.name == "h264"
        assert (a.codec_context.sample_rate, a.codec_context.channels) == (16000, 1)
        frames = sum(1 for _ in c.decode(v))
        assert 25 <= frames <= 31  # 3 s at 10 fps, not 90
        assert c.duration / 1e6 == pytest.approx(3.0, abs=0.2)  # timestamps kept


def test_an_audio_proxy_is_16k_mono_opus_in_ogg(tmp_path):
    src = audio(tmp_path / "memo.wav", seconds=4)
    size, _ = proxy.make(src, tmp_path / "p.ogg", Spec("audio"))
    assert size < src.stat().st_size / 10
    with av.open(str(tmp_path / "p.ogg")) as c:
        (a,) = c.streams.audio
        assert a.codec_context.name == "opus" and a.codec_context.channels == 1
        assert c.duration / 1e6 == pytest.approx(4.0, abs=0.1)


def test_a_broken_video_is_the_files_own_verdict_and_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 500)
    cache = ProxyCache(tmp_path / "state" / "proxies")
    with pytest.raises(proxy.ProxyFailed, match="Invalid data"):
        cache.get_or_make(str(bad), "ab" * 32, Spec("video"))
    assert list(cache.directory.iterdir()) == []


def test_a_proxy_is_made_once_and_found_again_under_its_name(tmp_path):
    src = video(tmp_path / "clip.mp4", seconds=1)
    cache = ProxyCache(tmp_path / "proxies")
    first = cache.get_or_make(str(src), "cd" * 32, Spec("video", 360))
    assert first.path == str(cache.path_for("cd" * 32, Spec("video", 360)))
    assert Path(first.path).parent == cache.directory  # never next to the user's file
    src.unlink()  # a renewal finds it without the original's bytes being read
    assert cache.get_or_make(str(src), "cd" * 32, Spec("video", 360)) == first
    assert sorted(p.name for p in cache.directory.iterdir()) == [
        f"{'cd' * 32}.360p.mp4", f"{'cd' * 32}.360p.mp4.sha256"]


def test_the_cache_keeps_within_its_cap_least_recently_used_first(tmp_path):
    cache = ProxyCache(tmp_path / "proxies", cap=1)  # every older proxy must go
    a = cache.get_or_make(str(audio(tmp_path / "a.wav", 1)), "a" * 64, Spec("audio"))
    b = cache.get_or_make(str(audio(tmp_path / "b.wav", 1)), "b" * 64, Spec("audio"))
    assert not Path(a.path).exists() and Path(b.path).exists()  # the new one stays


def test_a_full_state_disk_is_transient_and_leaves_nothing_half_written(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(state)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    try:
        src = video(tmp_path / "clip.mp4", seconds=4, width=640, height=480, noise=True)
        cache = ProxyCache(state / "proxies")
        with pytest.raises(OSError) as e:
            cache.get_or_make(str(src), "ef" * 32, Spec("video", 480))
        assert e.value.errno == errno.ENOSPC and not isinstance(e.value, proxy.ProxyFailed)
        assert list(cache.directory.iterdir()) == []  # no partial proxy, no temp file
    finally:
        subprocess.run(["umount", str(state)], check=False)
