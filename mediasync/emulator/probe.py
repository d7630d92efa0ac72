"""The emulator's view of the daemon's header probes (mediasync.probe): it keeps
only the first and last KEEP_BYTES of an upload, never the whole file."""

from mediasync.probe import Probe, probe, sniff

KEEP_BYTES = 64 * 1024  # how much of the head and of the tail an upload keeps

__all__ = ["KEEP_BYTES", "Probe", "probe", "sniff"]
