"""init, check, files, ask: the real CLI as a subprocess against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from mediasync.config import load_config
from mediasync.emulator import Emulator, EmulatorConfig, parse_fault_spec
from mediasync.media.samples import png_bytes, write_samples

KEY = "right-key-0123456789"


@pytest.fixture
def emu():
    e = Emulator(EmulatorConfig(port=0, key=KEY)).start()
    yield e
    e.stop()


def cli(*args: str, key: str | None = KEY, env_extra: dict[str, str] | None = None,
        home: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "CREDENTIALS_DIRECTORY",
                        "MEDIASYNC_CONFIG", "MEDIASYNC_STATE_DIR", "XDG_CONFIG_HOME",
                        "NOTIFY_SOCKET", "JOURNAL_STREAM")}
    if key is not None:
        env["GEMINI_API_KEY"] = key
    if home is not None:
        env["HOME"] = str(home)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "mediasync", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def write_config(path: Path, base_url: str, folders: list[Path], state: Path,
                 **extra_daemon: object) -> Path:
    data = {
        "api": {"base_url": base_url},
        "daemon": {"state_dir": str(state), "settle": "0s", **extra_daemon},
        "folders": [{"path": str(f)} for f in folders],
    }
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def setup(tmp_path: Path, emu: Emulator) -> tuple[Path, Path]:
    media = tmp_path / "media"
    write_samples(media)
    cfg = write_config(tmp_path / "config.toml", emu.base_url, [media], tmp_path / "state")
    return cfg, media


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr + r.stdout


# --- init ------------------------------------------------------------------------


def test_init_writes_a_config_that_loads_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "config.toml"
    folder = tmp_path / "photos"
    folder.mkdir()
    r = cli("init", "--folder", str(folder), str(target), key=None)
    assert r.returncode == 0, r.stderr
    assert str(target) in r.stdout and "check" in r.stdout and "systemd" in r.stdout
    config = load_config(target)
    assert [f.path for f in config.folders] == [folder]
    first = target.read_bytes()

    r = cli("init", "--folder", str(tmp_path / "other"), str(target), key=None)
    assert r.returncode == 2
    assert "already exists" in r.stderr and "--force" in r.stderr
    no_traceback(r)
    assert target.read_bytes() == first

    r = cli("init", "--force", "--folder", str(tmp_path / "other"), "--state-dir",
            str(tmp_path / "state"), str(target), key=None)
    assert r.returncode == 0, r.stderr
    config = load_config(target)
    assert config.folders[0].path == tmp_path / "other"
    assert config.daemon.state_dir == tmp_path / "state"
    assert "does not exist yet" in r.stdout


def test_init_default_path_under_xdg_config_home(tmp_path: Path) -> None:
    r = cli("init", key=None, env_extra={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert r.returncode == 0, r.stderr
    target = tmp_path / "xdg" / "mediasync" / "config.toml"
    assert load_config(target).folders  # a placeholder folder the user edits
    assert "folders[0].path" in r.stdout


def test_init_refuses_nested_folders(tmp_path: Path) -> None:
    r = cli("init", "--folder", str(tmp_path), "--folder", str(tmp_path / "sub"),
            str(tmp_path / "c.toml"), key=None)
    assert r.returncode == 2
    assert "nest" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.toml").exists()


# --- check -----------------------------------------------------------------------


def test_check_passes_on_a_good_setup(setup: tuple[Path, Path]) -> None:
    cfg, media = setup
    r = cli("-c", str(cfg), "check")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert all(line.startswith(("ok   ", "warn ", "verdict")) for line in lines), r.stdout
    assert any("accepted the key" in line for line in lines)
    assert "ok   api key found in $GEMINI_API_KEY" in lines
    assert any(str(media) in line and "writable" in line for line in lines)
    assert lines[-1].startswith("verdict: ready")
    assert KEY not in r.stdout + r.stderr
    assert not [p for p in media.iterdir() if p.name.startswith(".mediasync")]


def test_check_missing_folder_is_exit_2(tmp_path: Path, emu: Emulator) -> None:
    cfg = write_config(tmp_path / "c.toml", emu.base_url, [tmp_path / "nope"], tmp_path / "s")
    r = cli("-c", str(cfg), "check")
    assert r.returncode == 2
    assert any(line.startswith("FAIL") and "nope" in line and "does not exist" in line
               for line in r.stdout.splitlines())
    no_traceback(r)


def test_check_bad_config_key_is_one_line_exit_2(tmp_path: Path, emu: Emulator) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[daemon]\nsetle = "2s"\n[[folders]]\npath = "{tmp_path}"\n')
    r = cli("-c", str(cfg), "check")
    assert r.returncode == 2
    fails = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and "daemon.setle" in fails[0] and "settle" in fails[0]
    no_traceback(r)


def test_check_wrong_key_is_exit_3_and_never_printed(setup: tuple[Path, Path]) -> None:
    cfg, _ = setup
    wrong = "wrong-key-9876543210"
    r = cli("-c", str(cfg), "check", key=wrong)
    assert r.returncode == 3, r.stdout + r.stderr
    assert any(line.startswith("FAIL") and "refused" in line for line in r.stdout.splitlines())
    assert wrong not in r.stdout + r.stderr
    no_traceback(r)


def test_check_unreachable_service_is_exit_3(tmp_path: Path) -> None:
    media = tmp_path / "m"
    media.mkdir()
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    cfg = write_config(tmp_path / "c.toml", "http://127.0.0.1:9", [media], tmp_path / "s")
    r = cli("-c", str(cfg), "check")
    assert r.returncode == 3
    assert "could not be reached" in r.stdout
    no_traceback(r)


def test_check_no_key_is_a_config_fault(setup: tuple[Path, Path]) -> None:
    cfg, _ = setup
    r = cli("-c", str(cfg), "check", key=None, home=cfg.parent)
    assert r.returncode == 2
    assert "no Gemini API key found" in r.stdout
    no_traceback(r)


# --- files -----------------------------------------------------------------------


def _foreign(emu: Emulator, tmp_path: Path) -> str:
    """A file some other program uploaded with the same key."""
    import asyncio

    from mediasync.gemini import GeminiClient

    p = tmp_path / "other.png"
    p.write_bytes(png_bytes(seed=99))

    async def up() -> str:
        async with GeminiClient(KEY, emu.base_url) as c:
            return (await c.upload(p, "image/png", "someone else's")).name

    return asyncio.run(up())


def test_files_list_delete_purge(setup: tuple[Path, Path], emu: Emulator,
                                 tmp_path: Path) -> None:
    cfg, _ = setup
    assert cli("-c", str(cfg), "sync").returncode == 0
    foreign = _foreign(emu, tmp_path)
    names = {f["name"] for f in emu.list_files()}
    assert len(names) == 4

    r = cli("-c", str(cfg), "files", "list")
    assert r.returncode == 0, r.stderr
    for name in names:
        assert name in r.stdout
    assert "ACTIVE" in r.stdout and "mediasync:" in r.stdout and "someone else's" in r.stdout
    assert "4 file(s), 3 by mediasync" in r.stdout

    # delete accepts the bare id too
    ours = sorted(names - {foreign})
    r = cli("-c", str(cfg), "files", "delete", ours[0].removeprefix("files/"))
    assert r.returncode == 0, r.stderr
    assert ours[0] not in {f["name"] for f in emu.list_files()}
    r = cli("-c", str(cfg), "files", "delete", ours[0])
    assert r.returncode == 1 and "no such file" in r.stderr
    no_traceback(r)

    # purge: a dry run by default, deletes nothing
    r = cli("-c", str(cfg), "files", "purge")
    assert r.returncode == 0
    assert "dry run" in r.stdout and "--yes" in r.stdout
    assert ours[1] in r.stdout and foreign not in r.stdout
    assert len(emu.list_files()) == 3

    # --yes: only mediasync's files go
    r = cli("-c", str(cfg), "files", "purge", "--yes")
    assert r.returncode == 0, r.stderr
    assert {f["name"] for f in emu.list_files()} == {foreign}

    # --all --yes: everything
    r = cli("-c", str(cfg), "files", "purge", "--all")
    assert foreign in r.stdout and len(emu.list_files()) == 1
    r = cli("-c", str(cfg), "files", "purge", "--all", "--yes")
    assert r.returncode == 0 and emu.list_files() == []
    r = cli("-c", str(cfg), "files", "list")
    assert r.returncode == 0 and "no remote files" in r.stdout


def test_files_with_wrong_key_is_exit_3(setup: tuple[Path, Path]) -> None:
    cfg, _ = setup
    r = cli("-c", str(cfg), "files", "list", key="nope-nope-nope")
    assert r.returncode == 3 and "refused" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "nope-nope-nope" not in r.stderr


# --- ask -------------------------------------------------------------------------


def test_ask_on_a_mirrored_file_uploads_nothing(setup: tuple[Path, Path],
                                                emu: Emulator) -> None:
    cfg, media = setup
    assert cli("-c", str(cfg), "sync").returncode == 0
    before = emu.stats()
    r = cli("-c", str(cfg), "ask", str(media / "photo.png"), "What colour is it?")
    assert r.returncode == 0, r.stderr
    assert "What colour is it?" in r.stdout and "image/png" in r.stdout
    after = emu.stats()
    assert after["uploads_started"] == before["uploads_started"]
    assert after["live_files"] == before["live_files"]


def test_ask_on_an_unmirrored_file_uploads_then_deletes(tmp_path: Path, emu: Emulator) -> None:
    media = tmp_path / "m"
    media.mkdir()
    cfg = write_config(tmp_path / "c.toml", emu.base_url, [media], tmp_path / "state")
    loose = tmp_path / "loose.wav"
    from mediasync.media.samples import wav_bytes

    loose.write_bytes(wav_bytes(0.5))
    r = cli("-c", str(cfg), "ask", "--model", "gemini-3.8-flash", str(loose), "Transcribe it")
    assert r.returncode == 0, r.stderr
    assert "Transcribe it" in r.stdout
    stats = emu.stats()
    assert stats["uploads_started"] == 1 and stats["deletes"] == 1
    assert emu.list_files() == []


def test_ask_blocked_answer_exits_1(setup: tuple[Path, Path], emu: Emulator) -> None:
    cfg, media = setup
    emu.add_fault(parse_fault_spec("blocked"))
    r = cli("-c", str(cfg), "ask", str(media / "memo.wav"), "Transcribe")
    assert r.returncode == 1
    assert "blocked" in r.stderr and r.stdout == ""
    assert emu.list_files() == []  # the temporary copy is gone even so
    no_traceback(r)


def test_ask_unreadable_answer_is_not_a_network_fault(setup: tuple[Path, Path],
                                                      emu: Emulator) -> None:
    # A 200 that is not JSON (a proxy's page) is a ProtocolError, code 0 like a
    # TransportError: it must not be reported as "could not be reached" (exit 3).
    cfg, media = setup
    emu.add_fault(parse_fault_spec("garbage:match=generate:times=all"))
    r = cli("-c", str(cfg), "ask", str(media / "memo.wav"), "Transcribe")
    assert r.returncode == 1, r.stderr
    assert "not JSON" in r.stderr and "could not be reached" not in r.stderr
    assert emu.list_files() == []
    no_traceback(r)


@pytest.mark.parametrize(
    ("name", "message"), [("notes.txt", "not a supported media file"), ("gone.png", "no such file")]
)
def test_ask_usage_errors(setup: tuple[Path, Path], name: str, message: str) -> None:
    cfg, media = setup
    (media / "notes.txt").write_text("hi")
    r = cli("-c", str(cfg), "ask", str(media / name), "?")
    assert r.returncode == 2 and message in r.stderr
    no_traceback(r)


def test_tools_without_a_config_say_how_to_make_one(tmp_path: Path) -> None:
    r = cli("-c", str(tmp_path / "none.toml"), "files", "list")
    assert r.returncode == 2 and "mediasync init" in r.stderr
    no_traceback(r)
