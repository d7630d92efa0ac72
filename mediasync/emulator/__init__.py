"""A local emulator of the Gemini File API (resumable upload, files, generateContent).

Part of the product: tests, the demo and the benchmarks run against it, and the
official google-genai SDK works against it. It imports nothing from the daemon
but :mod:`mediasync.media.formats` (formats, limits, token rules) and :mod:`mediasync.media.probe`
(the header probes that read a file's dimensions and length).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from mediasync.media.formats import FILE_TTL_SECONDS, MAX_PROJECT_BYTES
from mediasync.media.sizes import parse_size

from .app import Emulator
from .config import VIDEO_PROCESSING_DELAY, EmulatorConfig
from .errors import STORAGE_FORMS
from .faults import Fault, parse_duration, parse_fault_spec
from .models import DEFAULT_MODELS, Catalog, ModelSpec

__all__ = [
    "DEFAULT_MODELS",
    "Catalog",
    "Emulator",
    "EmulatorConfig",
    "Fault",
    "ModelSpec",
    "add_arguments",
    "parse_duration",
    "parse_fault_spec",
    "run_from_args",
]


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fault(text: str) -> Fault:
    try:
        return parse_fault_spec(text)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _route(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not OLD=NEW")
    return old.strip(), new.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``mediasync emulator`` flags."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port (0 = any free port)")
    parser.add_argument("--key", default=None, help="the only API key accepted (default: any)")
    parser.add_argument(
        "--ttl", type=_duration, default=float(FILE_TTL_SECONDS), help="file lifetime, e.g. 48h"
    )
    parser.add_argument(
        "--processing-delay",
        type=_duration,
        default=0.0,
        help="PROCESSING time of images and audio, e.g. 500ms (default 0: ACTIVE at "
        "finalize, as live; above 0 every kind goes through PROCESSING)",
    )
    parser.add_argument(
        "--video-processing-delay",
        type=_duration,
        default=VIDEO_PROCESSING_DELAY,
        help=f"PROCESSING time of video, e.g. 10s (default {VIDEO_PROCESSING_DELAY:g}s)",
    )
    parser.add_argument(
        "--generate-latency",
        type=_duration,
        default=0.0,
        help="added to each generateContent, e.g. 2s",
    )
    parser.add_argument(
        "--granularity", type=int, default=8 * 1024 * 1024, help="upload chunk granularity in bytes"
    )
    parser.add_argument(
        "--hash-form",
        choices=("hex", "raw", "none"),
        default="hex",
        help="sha256Hash as the live service writes it (hex: base64 of the hex digest), "
        "as base64 of the raw digest, or absent",
    )
    parser.add_argument(
        "--omit-field",
        action="append",
        default=[],
        metavar="KEY",
        help="leave this key out of every File resource (repeatable), e.g. expirationTime",
    )
    parser.add_argument(
        "--relative-upload-url",
        action="store_true",
        help="answer upload start with a relative X-Goog-Upload-URL (the live one is absolute)",
    )
    parser.add_argument(
        "--key-in-upload-url",
        action="store_true",
        help="put the API key into every upload URL, header-keyed starts too (the live "
        "service does so for a start sent with ?key=)",
    )
    parser.add_argument("--max-project-bytes", type=_size, default=MAX_PROJECT_BYTES,
                        metavar="SIZE", help="the project's file store, e.g. 6MB (default "
                        "20 GiB, as live)")
    parser.add_argument("--storage-form", choices=STORAGE_FORMS, default="json",
                        help="a full store answers as wire/02 (json) or with wire/03's RetryInfo "
                        "of 9223372036854775807 s (retryinfo)")
    parser.add_argument("--quota-rpm", type=int, default=None, metavar="N",
                        help="generateContent requests a minute per model (default: unlimited)")
    parser.add_argument("--quota-tpm", type=int, default=None, metavar="N",
                        help="input tokens a minute per model (default: unlimited)")
    parser.add_argument("--quota-rpd", type=int, default=None, metavar="N",
                        help="generateContent requests a day per model, reset at midnight "
                        "Pacific time (default: unlimited)")
    parser.add_argument("--quota-tier", choices=("free", "paid"), default="free",
                        help="name the quotas in 429s as this tier does")
    parser.add_argument("--quota-shape", choices=("full", "novalue", "bare"), default="full",
                        help="429 wording: full (late 2025: limit lines, quotaValue on a lone "
                        "violation), novalue (mid 2025: no numbers but RetryInfo), or bare "
                        "(a Help detail only, as wire/29)")
    parser.add_argument("--retire-model", action="append", default=[], metavar="MODEL",
                        help="shut this model down: 404 NOT_FOUND to every call, as wire/41, "
                        "and gone from models.list (repeatable)")
    parser.add_argument("--route-model", type=_route, action="append", default=[],
                        metavar="OLD=NEW", help="answer calls to OLD with NEW (modelVersion "
                        "names NEW), as reported for some retired names (repeatable)")
    parser.add_argument("--flex-latency", type=_duration, default=0.0,
                        help="how long a serviceTier \"flex\" call takes, e.g. 2s (live: 1-15 "
                        "minutes)")
    parser.add_argument("--flex-capacity", type=int, default=None, metavar="N",
                        help="Flex calls in flight at once; more are refused with 503 "
                        "UNAVAILABLE (default: no limit; 0 refuses every Flex call)")
    parser.add_argument("--priority", choices=("refuse", "serve", "standard"),
                        default="refuse", help="serviceTier \"priority\": refused as for a key "
                        "below paid tier 2 (400), served, or served at standard")
    parser.add_argument("--batch-pending", type=_duration, default=5.0,
                        help="how long a batch job stays PENDING, e.g. 5s (live: up to a day)")
    parser.add_argument("--batch-duration", type=_duration, default=30.0,
                        help="how long after its creation a batch job SUCCEEDS, e.g. 30s; "
                        "one still open at 48h ends EXPIRED")
    parser.add_argument("--files", type=Path, default=None, metavar="FILE",
                        help="start with these files: a saved GET /_emulator/files answer "
                        "(a benchmark's synced library, reloaded instead of uploaded again)")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, repeatable: 503:match=chunk:times=2, "
        "429:retry_delay=1s, 429:quota=per_day+per_minute (live quota wording; also "
        "input_tokens, bare, storage), cut:after_bytes=1000, lost_finalize, "
        "slow:delay=2, blocked (reason=PROHIBITED_CONTENT, stage=candidate)",
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop."""
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        key=args.key,
        ttl=args.ttl,
        processing_delay=args.processing_delay,
        video_processing_delay=args.video_processing_delay,
        generate_latency=args.generate_latency,
        granularity=args.granularity,
        hash_form=args.hash_form,
        omit_fields=tuple(args.omit_field),
        relative_upload_url=args.relative_upload_url,
        key_in_upload_url=args.key_in_upload_url,
        max_project_bytes=args.max_project_bytes,
        storage_form=args.storage_form,
        quota_rpm=args.quota_rpm,
        quota_tpm=args.quota_tpm,
        quota_rpd=args.quota_rpd,
        quota_tier=args.quota_tier,
        quota_shape=args.quota_shape,
        retired_models=tuple(args.retire_model),
        model_routes=tuple(args.route_model),
        flex_latency=args.flex_latency,
        flex_capacity=args.flex_capacity,
        priority=args.priority,
        batch_pending=args.batch_pending,
        batch_duration=args.batch_duration,
    )
    emu = Emulator(config)
    for fault in args.fault:
        emu.add_fault(fault)
    if args.files is not None:
        try:
            saved = json.loads(args.files.read_bytes())
            emu.store.restore(saved["files"] if isinstance(saved, dict) else saved)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"mediasync emulator: --files {args.files}: {e}", file=sys.stderr)
            return 2
    try:
        emu.start()
    except OSError as e:
        print(f"mediasync emulator: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    print(f"mediasync emulator listening on {emu.base_url} (api versions v1beta, v1)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediasync.emulator")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
