"""The shipped unit files load cleanly in systemd and keep their key settings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SYSTEM_UNIT = UNITS / "mediasync.service"
USER_UNIT = UNITS / "mediasync-user.service"

ANALYZE = shutil.which("systemd-analyze") or (
    "/usr/bin/systemd-analyze" if os.path.exists("/usr/bin/systemd-analyze") else None
)
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def settings(path: Path) -> dict[str, list[str]]:
    """Key → values of the non-comment assignments (section names ignored)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def prepare(unit: Path, tmp_path: Path) -> Path:
    """Copy the unit as mediasync.service with Exec lines pointing at binaries that exist.

    verify refuses a unit whose ExecStart= binary is missing, and the real
    mediasync script is not installed at /usr/local/bin or ~/.local/bin here.
    """
    fake = tmp_path / "fake-mediasync"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={fake}", unit.read_text())
    if not os.path.exists("/bin/kill"):
        text = re.sub(r"(?m)^ExecReload=/bin/kill", f"ExecReload={fake}", text)
    target_dir = tmp_path / "units"
    target_dir.mkdir()
    target = target_dir / "mediasync.service"
    target.write_text(text)
    return target


def verify(unit: Path, tmp_path: Path, *, user: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSTEMD_LOG_LEVEL="warning", SYSTEMD_LOG_COLOR="0")
    args = [ANALYZE, "--man=no"]
    if user:
        # The user manager needs a runtime dir; use a private one.
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        args.append("--user")
    args += ["verify", str(unit)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def our_warnings(result: subprocess.CompletedProcess[str]) -> list[str]:
    # Other units on the host may warn; only lines about ours count.
    text = result.stdout + result.stderr
    return [line for line in text.splitlines() if "mediasync" in line]


@needs_analyze
def test_system_unit_verifies(tmp_path):
    result = verify(prepare(SYSTEM_UNIT, tmp_path), tmp_path, user=False)
    assert result.returncode == 0, result.stderr
    assert our_warnings(result) == []


@needs_analyze
def test_user_unit_verifies(tmp_path):
    result = verify(prepare(USER_UNIT, tmp_path), tmp_path, user=True)
    assert result.returncode == 0, result.stderr
    assert our_warnings(result) == []


@needs_analyze
def test_verify_catches_a_bad_key(tmp_path):
    # Guards the two tests above: a typo must show up as a warning about our file.
    unit = prepare(SYSTEM_UNIT, tmp_path)
    unit.write_text(unit.read_text().replace("PrivateTmp=yes", "PrivateTpm=yes"))
    result = verify(unit, tmp_path, user=False)
    assert any("PrivateTpm" in line for line in our_warnings(result))


def test_system_unit_settings():
    s = settings(SYSTEM_UNIT)
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "User": "mediasync",
        "Group": "mediasync",
        "ExecStart": "/usr/local/bin/mediasync -c /etc/mediasync/config.toml run",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "StateDirectory": "mediasync",
        "Environment": "MEDIASYNC_STATE_DIR=%S/mediasync",
        "LoadCredential": "gemini-api-key:/etc/mediasync/gemini-api-key",
        "WatchdogSec": "60",
        "Restart": "on-failure",
        "RestartSec": "5",
        "TimeoutStopSec": "30",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "read-only",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter": "@system-service",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "UMask": "0022",
        "WantedBy": "multi-user.target",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], key
    # The media-folder example is documented but left to the admin.
    assert "#ReadWritePaths=/srv/media" in SYSTEM_UNIT.read_text()


def test_user_unit_settings():
    s = settings(USER_UNIT)
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == ["%h/.local/bin/mediasync run"]
    assert s["Restart"] == ["on-failure"]
    assert s["WatchdogSec"] == ["60"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["WantedBy"] == ["default.target"]
    # System-only settings would fail or be ignored in a user manager.
    for key in ("User", "Group", "LoadCredential", "ProtectSystem", "StateDirectory"):
        assert key not in s, key
