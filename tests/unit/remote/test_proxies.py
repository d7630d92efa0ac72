"""Which bytes an upload sends (remote/proxies.py): the proxy, the original when no
proxy can be made, and a verdict naming both when the original cannot go either."""

from __future__ import annotations

import asyncio

import pytest

from mediasync.local.proxies import ProxyCache
from mediasync.media.formats import MAX_FILE_BYTES
from mediasync.media.proxy import Spec
from mediasync.remote.proxies import NoUpload, Proxies
from tests.helpers import content_row
from tests.real_media import video

B = "b" * 64


def test_a_proxy_is_made_else_the_original_goes_else_both_reasons(ctx, tmp_path) -> None:
    proxies = Proxies(ctx, ProxyCache(tmp_path / "state" / "proxies"),
                      lambda c, path: Spec("video", 240))
    clip = video(tmp_path / "clip.mp4", seconds=1)
    got = asyncio.run(proxies.for_upload(content_row(sha256=B, size=10, kind="video"),
                                         str(clip)))
    assert got is not None and got.mime == "video/mp4" and got.size > 0

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    small = content_row(sha256="c" * 64, size=4096, kind="video")
    assert asyncio.run(proxies.for_upload(small, str(broken))) is None  # the original goes
    assert proxies.why_not("c" * 64).startswith("; no upload proxy could be made either (")

    # Over 2 GB (its size as recorded): the original cannot go either, a verdict.
    huge = content_row(sha256="d" * 64, size=MAX_FILE_BYTES + 1, kind="video")
    with pytest.raises(NoUpload, match=r"no upload proxy could be made \(.*too large"):
        asyncio.run(proxies.for_upload(huge, str(broken)))
