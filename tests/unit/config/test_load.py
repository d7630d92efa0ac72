from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from mediasync.config import (
    DEFAULT_PROMPTS,
    ApiConfig,
    Config,
    ConfigError,
    FolderConfig,
    PromptConfig,
    default_config_path,
    find_api_key,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
    render_init_config,
    resolve_api_key,
)

REPO = Path(__file__).resolve().parents[3]
HOME = Path("/home/alice")
SECRET = "AIzaSy-very-secret-key-0123456789"


def parse(text: str, source: Path | None = Path("/etc/mediasync/config.toml")) -> Config:
    return parse_config(tomllib.loads(text), source=source, home=HOME)


def err(text: str) -> str:
    with pytest.raises(ConfigError) as ei:
        parse(text)
    msg = str(ei.value)
    assert "\n" not in msg, msg
    return msg


MINIMAL = '[[folders]]\npath = "~/Media/inbox"\n'


# --- durations --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("500ms", 0.5),
        ("2s", 2),
        ("10m", 600),
        ("6h", 21600),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1.5s", 1.5),
        ("2d", 172800),
        ("0s", 0),
        ("30", 30),
        ("2.5", 2.5),
        (45, 45),
        (0.25, 0.25),
        ("1m500ms", 60.5),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["2 secs", "", "s", "10x", "1h30", "-5s", -1, True, None, "nan", "inf", "1e3x", [1]]
)
def test_parse_duration_rejects(bad):
    with pytest.raises(ConfigError) as ei:
        parse_duration(bad, "daemon.settle")
    assert str(ei.value).startswith("daemon.settle: ")
    assert "(use e.g. 500ms, 2s, 10m, 6h)" in str(ei.value)


def test_duration_message_matches_the_brief():
    assert str(ConfigError("x")) == "x"
    with pytest.raises(ConfigError) as ei:
        parse_duration("2 secs", "daemon.settle")
    assert (
        str(ei.value) == 'daemon.settle: "2 secs" is not a duration (use e.g. 500ms, 2s, 10m, 6h)'
    )


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (0.5, "500ms"),
        (2, "2s"),
        (600, "10m"),
        (21600, "6h"),
        (5400, "1h30m"),
        (172800, "48h"),
        (61.5, "1m1s500ms"),
        (3661, "1h1m1s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 0.001, 0.5, 1, 59, 61, 3599, 3600, 5400, 86399.999, 1e6])
def test_duration_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


# --- defaults ---------------------------------------------------------------


def test_minimal_config_gets_defaults():
    c = parse(MINIMAL)
    assert c.api == ApiConfig(
        base_url="https://generativelanguage.googleapis.com",
        api_version="v1beta",
        model="gemini-3.5-flash-lite",
        key_file=None,
        timeout=60.0,
    )
    d = c.daemon
    assert d.state_dir == HOME / ".local/state/mediasync"
    assert (d.settle, d.rescan_every, d.refresh_every, d.renew_before) == (2, 600, 21600, 21600)
    assert (d.max_uploads, d.max_generations, d.requests_per_minute) == (2, 8, 600)
    assert d.log_level == "info"
    (f,) = c.folders
    assert f.path == HOME / "Media/inbox"
    assert (f.recursive, f.polling, f.include, f.exclude) == (True, False, (), ())
    assert c.source == Path("/etc/mediasync/config.toml")


def test_default_prompts():
    (f,) = parse(MINIMAL).folders
    (img,) = f.prompts_for("image")
    (vid,) = f.prompts_for("video")
    (aud,) = f.prompts_for("audio")
    assert img.sidecar == vid.sidecar == ".caption.md"
    assert "one sentence" in img.prompt
    assert aud.sidecar == ".transcript.txt"
    assert aud.prompt == "Transcribe this audio. Use proper punctuation and paragraph breaks."
    assert img.model is None
    assert f.prompts_for("document") == ()
    assert len(f.prompts) == len(DEFAULT_PROMPTS)


def test_explicit_prompts_replace_defaults():
    c = parse(
        MINIMAL
        + """
[[folders.prompts]]
kinds = ["image", "video", "image"]
prompt = "Caption it."
sidecar = ".alt.txt"
model = "gemini-2.5-pro"
"""
    )
    (p,) = c.folders[0].prompts
    assert p == PromptConfig(("image", "video"), "Caption it.", ".alt.txt", "gemini-2.5-pro")
    assert c.folders[0].prompts_for("audio") == ()
    assert c.sidecar_suffixes() == frozenset({".alt.txt"})


def test_frozen():
    c = parse(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.api = None  # type: ignore[misc]
    assert isinstance(c.folders, tuple) and isinstance(c.folders[0].prompts, tuple)


def test_full_config_values():
    c = parse("""
[api]
base_url = "http://127.0.0.1:8080/"
api_version = "v1"
model = "gemini-2.5-pro"
key_file = "secrets/key"
timeout = 5

[daemon]
state_dir = "/var/lib/mediasync"
settle = "500ms"
rescan_every = "1h30m"
refresh_every = "1m"
renew_before = "2h"
max_uploads = 1
max_generations = 8
requests_per_minute = 15
log_level = "DEBUG"

[[folders]]
path = "photos"
recursive = false
polling = true
include = ["*.jpg", "**/keep/*"]
exclude = ["Private"]

[[folders]]
path = "/srv/audio"
""")
    assert c.api.base_url == "http://127.0.0.1:8080"
    assert c.api.api_version == "v1"
    assert c.api.key_file == Path("/etc/mediasync/secrets/key")
    assert c.api.timeout == 5
    assert c.daemon.state_dir == Path("/var/lib/mediasync")
    assert c.daemon.settle == 0.5 and c.daemon.rescan_every == 5400
    assert c.daemon.log_level == "debug"
    f0, f1 = c.folders
    assert f0.path == Path("/etc/mediasync/photos")
    assert (f0.recursive, f0.polling) == (False, True)
    assert f0.include == ("*.jpg", "**/keep/*") and f0.exclude == ("Private",)
    assert f1.path == Path("/srv/audio")


def test_relative_paths_normalised_without_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = parse_config(tomllib.loads('[[folders]]\npath = "a/../b"\n'), home=HOME)
    assert c.folders[0].path == tmp_path / "b"
    assert c.source is None


def test_folder_for_and_suffixes():
    c = parse("""
[[folders]]
path = "/m/photos"
[[folders]]
path = "/m/photos2"
[[folders.prompts]]
kinds = ["audio"]
prompt = "t"
sidecar = ".t.txt"
""")
    assert c.folder_for(Path("/m/photos/a/b.jpg")).path == Path("/m/photos")
    assert c.folder_for(Path("/m/photos2/x.mp3")).path == Path("/m/photos2")
    assert c.folder_for(Path("/m/photos")).path == Path("/m/photos")
    assert c.folder_for(Path("/m/photos/../photos2/x.mp3")).path == Path("/m/photos2")
    assert c.folder_for(Path("/m/other.jpg")) is None
    assert c.sidecar_suffixes() == frozenset({".caption.md", ".transcript.txt", ".t.txt"})


# --- errors: each names its key -----------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "folders: at least one [[folders]] table is required"),
        ("folders = []", "folders: at least one"),
        ('[folders]\npath = "/x"', "folders: must be an array of tables"),
        ("api = 3\n" + MINIMAL, "api: must be a table"),
        ('[api]\nmodel = ""\n' + MINIMAL, "api.model: must not be empty"),
        ("[api]\nmodel = 3\n" + MINIMAL, "api.model: must be a string, not an integer"),
        (
            '[api]\nbase_url = "ftp://x"\n' + MINIMAL,
            "api.base_url: 'ftp://x' is not an http(s) URL",
        ),
        ('[api]\nbase_url = "localhost:8080"\n' + MINIMAL, "api.base_url:"),
        ('[api]\napi_version = "v2"\n' + MINIMAL, "api.api_version: 'v2' is not one of v1beta, v1"),
        ('[api]\ntimeout = "0s"\n' + MINIMAL, "api.timeout: '0s' must be longer than zero"),
        ('[api]\ntimeout = "soon"\n' + MINIMAL, 'api.timeout: "soon" is not a duration'),
        (
            '[daemon]\nsettle = "2 secs"\n' + MINIMAL,
            'daemon.settle: "2 secs" is not a duration (use e.g. 500ms, 2s, 10m, 6h)',
        ),
        ("[daemon]\nrescan_every = 0\n" + MINIMAL, "daemon.rescan_every:"),
        ('[daemon]\nrefresh_every = "-1s"\n' + MINIMAL, "daemon.refresh_every:"),
        (
            '[daemon]\nrenew_before = "48h"\n' + MINIMAL,
            "daemon.renew_before: '48h' must be shorter than a file's lifetime (48h)",
        ),
        (
            "[daemon]\nmax_uploads = 0\n" + MINIMAL,
            "daemon.max_uploads: must be a positive integer, not 0",
        ),
        (
            "[daemon]\nmax_generations = -2\n" + MINIMAL,
            "daemon.max_generations: must be a positive",
        ),
        (
            "[daemon]\nrequests_per_minute = 1.5\n" + MINIMAL,
            "daemon.requests_per_minute: must be a positive integer, not a number",
        ),
        (
            "[daemon]\nmax_uploads = true\n" + MINIMAL,
            "daemon.max_uploads: must be a positive integer, not a boolean",
        ),
        (
            '[daemon]\nlog_level = "loud"\n' + MINIMAL,
            "daemon.log_level: 'loud' is not one of debug, info, warning, error, critical",
        ),
        ('[daemon]\nstate_dir = ""\n' + MINIMAL, "daemon.state_dir: must not be empty"),
        ("[[folders]]\nrecursive = true", "folders[0].path: missing"),
        ("[[folders]]\npath = 5", "folders[0].path: must be a string"),
        (
            '[[folders]]\npath = "/a"\nrecursive = "yes"',
            "folders[0].recursive: must be true or false",
        ),
        ('[[folders]]\npath = "/a"\npolling = 1', "folders[0].polling: must be true or false"),
        (
            '[[folders]]\npath = "/a"\ninclude = "*.jpg"',
            "folders[0].include: must be an array of strings",
        ),
        ('[[folders]]\npath = "/a"\nexclude = ["x", 3]', "folders[0].exclude[1]: must be a string"),
        ('[[folders]]\npath = "/a"\nprompts = []', "folders[0].prompts: is empty"),
        (
            '[[folders]]\npath = "/a"\n[folders.prompts]\nkinds=["image"]',
            "folders[0].prompts: must be an array of tables",
        ),
        (
            '[[folders]]\npath = "/a"\n[[folders]]\npath = "/a/"',
            "folders[1].path: '/a' repeats folders[0].path",
        ),
        (
            '[[folders]]\npath = "/a"\n[[folders]]\npath = "/a/b"',
            "folders[1].path: '/a/b' is inside folders[0].path '/a'; folders must not nest",
        ),
        (
            '[[folders]]\npath = "/a/b"\n[[folders]]\npath = "/a"',
            "folders[1].path: '/a' contains folders[0].path '/a/b'",
        ),
        (
            '[[folders]]\npath = "/a"\n[[folders]]\npath = "/b"\n[[folders]]\npath = "~/x"\n'
            '[[folders]]\npath = "/home/alice"',
            "folders[3].path: '/home/alice' contains folders[2].path",
        ),
    ],
)
def test_errors_name_their_key(text, expected):
    msg = err(text)
    assert msg.startswith("/etc/mediasync/config.toml: "), msg
    assert expected in msg, msg


def test_sibling_folders_with_common_prefix_are_fine():
    c = parse('[[folders]]\npath = "/a/b"\n[[folders]]\npath = "/a/bc"\n')
    assert len(c.folders) == 2


PROMPT = '[[folders]]\npath = "/a"\n[[folders.prompts]]\n'


@pytest.mark.parametrize(
    "body, expected",
    [
        ('prompt = "p"\nsidecar = ".c.md"', "folders[0].prompts[0].kinds: missing"),
        ('kinds = ["image"]\nsidecar = ".c.md"', "folders[0].prompts[0].prompt: missing"),
        ('kinds = ["image"]\nprompt = "p"', "folders[0].prompts[0].sidecar: missing"),
        (
            'kinds = "image"\nprompt = "p"\nsidecar = ".c"',
            "folders[0].prompts[0].kinds: must be an array",
        ),
        (
            'kinds = []\nprompt = "p"\nsidecar = ".c"',
            "folders[0].prompts[0].kinds: must name at least one of image, audio, video",
        ),
        (
            'kinds = ["picture"]\nprompt = "p"\nsidecar = ".c"',
            "folders[0].prompts[0].kinds: 'picture' is not one of image, audio, video",
        ),
        (
            'kinds = ["image"]\nprompt = "  "\nsidecar = ".c"',
            "folders[0].prompts[0].prompt: must not be empty",
        ),
        (
            'kinds = ["image"]\nprompt = "p"\nsidecar = "caption.md"',
            "folders[0].prompts[0].sidecar: 'caption.md' must start with '.'",
        ),
        (
            'kinds = ["image"]\nprompt = "p"\nsidecar = "."',
            "folders[0].prompts[0].sidecar: '.' must start",
        ),
        (
            'kinds = ["image"]\nprompt = "p"\nsidecar = ".a/b"',
            "folders[0].prompts[0].sidecar: '.a/b' must not contain '/'",
        ),
        (
            'kinds = ["image"]\nprompt = "p"\nsidecar = ".thumb.JPG"',
            "folders[0].prompts[0].sidecar: '.thumb.JPG' must not end with a media extension",
        ),
        (
            'kinds = ["image"]\nprompt = "p"\nsidecar = ".c"\nmodel = ""',
            "folders[0].prompts[0].model: must not be empty",
        ),
    ],
)
def test_prompt_errors(body, expected):
    msg = err(PROMPT + body)
    assert expected in msg, msg


def test_message_of_the_brief_exactly():
    with pytest.raises(ConfigError) as ei:
        parse_config(
            tomllib.loads(
                '[[folders]]\npath="/a"\n[[folders.prompts]]\nkinds=["image"]\nprompt="p"\nsidecar=".c"\n'
                '[[folders.prompts]]\nkinds=["picture"]\nprompt="p"\nsidecar=".d"\n'
            ),
            source=Path("config.toml"),
        )
    assert str(ei.value) == (
        "config.toml: folders[0].prompts[1].kinds: 'picture' is not one of image, audio, video"
    )
    assert ei.value.key == "folders[0].prompts[1].kinds"


def test_duplicate_sidecar_for_same_kind():
    msg = err(
        PROMPT + 'kinds=["image","audio"]\nprompt="a"\nsidecar=".x.md"\n'
        '[[folders.prompts]]\nkinds=["video"]\nprompt="b"\nsidecar=".x.md"\n'
        '[[folders.prompts]]\nkinds=["audio"]\nprompt="c"\nsidecar=".x.md"\n'
    )
    assert (
        "folders[0].prompts[2].sidecar: '.x.md' is already written for audio files "
        "by folders[0].prompts[0]"
    ) in msg


def test_same_sidecar_in_different_folders_is_fine():
    parse('[[folders]]\npath="/a"\n[[folders]]\npath="/b"\n')


@pytest.mark.parametrize(
    "text, key, suggestion",
    [
        ('[api]\nmodle = "x"\n' + MINIMAL, "api.modle", "did you mean 'model'?"),
        ('[daemon]\nsetle = "2s"\n' + MINIMAL, "daemon.setle", "did you mean 'settle'?"),
        (
            "[daemon]\nmax_upload = 3\n" + MINIMAL,
            "daemon.max_upload",
            "did you mean 'max_uploads'?",
        ),
        ('[[folder]]\npath = "/a"\n', "folder", "did you mean 'folders'?"),
        (
            '[[folders]]\npath = "/a"\nrecusive = true',
            "folders[0].recusive",
            "did you mean 'recursive'?",
        ),
        (
            '[[folders]]\npath = "/a"\nexcludes = []',
            "folders[0].excludes",
            "did you mean 'exclude'?",
        ),
        (
            '[[folders]]\npath = "/a"\nfollow_symlink = true',
            "folders[0].follow_symlink",
            "did you mean 'follow_symlinks'?",
        ),
        (
            PROMPT + 'kind=["image"]\nprompt="p"\nsidecar=".c"',
            "folders[0].prompts[0].kind",
            "did you mean 'kinds'?",
        ),
        ('[api]\napi_key = "x"\n' + MINIMAL, "api.api_key", "api.key_file"),
        ("[daemon]\nwhatever = 1\n" + MINIMAL, "daemon.whatever", ""),
    ],
)
def test_unknown_keys(text, key, suggestion):
    msg = err(text)
    assert f": {key}: unknown key" in msg, msg
    assert suggestion in msg


def test_api_key_in_config_is_not_echoed():
    msg = err(f'[api]\nkey = "{SECRET}"\n' + MINIMAL)
    assert SECRET not in msg


def test_no_source_means_no_prefix():
    with pytest.raises(ConfigError) as ei:
        parse_config({"folders": []})
    assert str(ei.value).startswith("folders: ")


# --- load_config ---------------------------------------------------------------


def test_load_config(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('[[folders]]\npath = "media"\n', encoding="utf-8")
    c = load_config(p)
    assert c.folders[0].path == tmp_path / "media"
    assert c.source == p


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(ei.value)
    assert "no such file" in str(ei.value)


def test_load_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('[[folders]]\npath = "/a"\nrecursive = tru\n', encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: TOML syntax error")
    assert "line 3" in msg
    assert "\n" not in msg


def test_load_not_utf8(tmp_path):
    p = tmp_path / "config.toml"
    p.write_bytes(b'[[folders]]\npath = "/\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)


def test_load_directory(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_validation_error_names_file(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('[[folders]]\npath = "/a"\npolling = "no"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(ei.value) == f"{p}: folders[0].polling: must be true or false, not a string"


def test_example_file_loads():
    c = load_config(REPO / "mediasync.example.toml")
    assert len(c.folders) == 2
    assert c.api.key_file is None
    assert c.folders[1].prompts[0].model == "gemini-3.8-flash"
    assert c.folders[1].prompts[0].knobs.service_tier == "flex"
    # the example documents the defaults: its [api] and [daemon] equal a bare config's
    bare = parse_config({"folders": [{"path": "/x"}]}, source=c.source)
    assert c.api == bare.api
    assert c.daemon == bare.daemon
    assert c.folders[0].prompts == bare.folders[0].prompts


def test_example_file_mentions_every_key():
    text = (REPO / "mediasync.example.toml").read_text(encoding="utf-8")
    for cls in (ApiConfig, FolderConfig, PromptConfig):
        for f in dataclasses.fields(cls):
            if f.name not in ("prompts", "knobs", "batch"):  # tables; the cost knobs' holder
                assert f"{f.name} =" in text, f.name
    assert "[[folders.prompts]]" in text and "[folders.batch]" in text and "[batch]" in text
    for f in dataclasses.fields(type(parse(MINIMAL).daemon)):
        assert f"{f.name} =" in text, f.name


# --- default_config_path ------------------------------------------------------------


def test_default_config_path():
    assert default_config_path({"MEDIASYNC_CONFIG": "/x/c.toml", "XDG_CONFIG_HOME": "/y"}) == Path(
        "/x/c.toml"
    )
    assert default_config_path({"XDG_CONFIG_HOME": "/y", "HOME": "/h"}) == Path(
        "/y/mediasync/config.toml"
    )
    assert default_config_path({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.config/mediasync/config.toml"
    )
    assert default_config_path({"HOME": "/h"}) == Path("/h/.config/mediasync/config.toml")
    assert default_config_path({"MEDIASYNC_CONFIG": "", "HOME": "/h"}) == Path(
        "/h/.config/mediasync/config.toml"
    )


# --- resolve_api_key ---------------------------------------------------------------


def api(key_file: Path | None = None) -> ApiConfig:
    return dataclasses.replace(parse(MINIMAL).api, key_file=key_file)


def test_key_file_first(tmp_path):
    kf = tmp_path / "key"
    kf.write_text(f"  {SECRET}\n\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "gemini-api-key").write_text("from-creds")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "o"}
    assert resolve_api_key(api(kf), env) == SECRET
    assert resolve_api_key(api(), env) == "from-creds"
    del env["CREDENTIALS_DIRECTORY"]
    assert resolve_api_key(api(), env) == "g"
    del env["GEMINI_API_KEY"]
    assert resolve_api_key(api(), env) == "o"
    assert resolve_api_key(api(), {"GEMINI_API_KEY": "  ", "GOOGLE_API_KEY": "o"}) == "o"


def test_find_api_key_says_where_in_the_same_order(tmp_path):
    kf = tmp_path / "key"
    kf.write_text(SECRET)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "gemini-api-key").write_text("from-creds")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "o"}
    assert find_api_key(api(kf), env) == (SECRET, f"api.key_file {kf}")
    assert find_api_key(api(), env) == ("from-creds", "$CREDENTIALS_DIRECTORY/gemini-api-key")
    env["CREDENTIALS_DIRECTORY"] = str(tmp_path / "empty")  # set, but no key file there
    assert find_api_key(api(), env) == ("g", "$GEMINI_API_KEY")
    assert find_api_key(api(), {**env, "GEMINI_API_KEY": " "}) == ("o", "$GOOGLE_API_KEY")


def test_credentials_dir_without_the_file_falls_through(tmp_path):
    assert (
        resolve_api_key(api(), {"CREDENTIALS_DIRECTORY": str(tmp_path), "GEMINI_API_KEY": "g"})
        == "g"
    )


def test_no_key_anywhere(tmp_path):
    with pytest.raises(ConfigError) as ei:
        resolve_api_key(api(), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    msg = str(ei.value)
    assert str(tmp_path / "gemini-api-key") in msg
    assert "$GEMINI_API_KEY" in msg and "$GOOGLE_API_KEY" in msg
    assert "\n" not in msg


def test_missing_key_file_is_an_error_not_a_fallback(tmp_path):
    kf = tmp_path / "missing"
    with pytest.raises(ConfigError) as ei:
        resolve_api_key(api(kf), {"GEMINI_API_KEY": SECRET})
    assert str(kf) in str(ei.value)
    assert SECRET not in str(ei.value)


def test_empty_key_file(tmp_path):
    kf = tmp_path / "key"
    kf.write_text(" \n")
    with pytest.raises(ConfigError, match="is empty") as ei:
        resolve_api_key(api(kf), {})
    assert str(kf) in str(ei.value)


def test_unreadable_key_file(tmp_path):
    kf = tmp_path / "keydir"
    kf.mkdir()  # reading a directory fails whatever our uid
    with pytest.raises(ConfigError, match="cannot read API key file") as ei:
        resolve_api_key(api(kf), {})
    assert str(kf) in str(ei.value)


def test_empty_credentials_file_names_it(tmp_path):
    (tmp_path / "gemini-api-key").write_text("")
    with pytest.raises(ConfigError) as ei:
        resolve_api_key(api(), {"CREDENTIALS_DIRECTORY": str(tmp_path), "GEMINI_API_KEY": "g"})
    assert str(tmp_path / "gemini-api-key") in str(ei.value)


@pytest.mark.parametrize("content", [f"{SECRET}\n{SECRET}", f"{SECRET} other", f"{SECRET}é"])
def test_malformed_key_never_echoed(tmp_path, content):
    kf = tmp_path / "key"
    kf.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        resolve_api_key(api(kf), {})
    assert SECRET not in str(ei.value) and SECRET not in repr(ei.value.args)
    assert str(kf) in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        resolve_api_key(api(), {"GEMINI_API_KEY": content})
    assert SECRET not in str(ei.value)
    assert "$GEMINI_API_KEY" in str(ei.value)


# --- render_init_config -------------------------------------------------------------


def test_render_init_round_trip(tmp_path):
    folders = [Path("/home/alice/Media/inbox"), Path('/mnt/nas/Fotos "Ärger" #1')]
    text = render_init_config(folders, state_dir=tmp_path / "state")
    c = parse_config(tomllib.loads(text), home=HOME)
    assert [f.path for f in c.folders] == folders
    assert c.daemon.state_dir == tmp_path / "state"
    default = parse_config({"folders": [{"path": "/x"}]}, home=HOME)
    assert c.api == default.api
    assert dataclasses.replace(c.daemon, state_dir=default.daemon.state_dir) == default.daemon
    assert c.folders[0].prompts == default.folders[0].prompts
    # A new daemon never runs up a bill its owner did not see: init writes a cap.
    assert c.limits.max_daily_cost == 2.0 and default.limits.max_daily_cost is None
    assert '# thinking = "off"' in text and '# media_resolution = "low"' in text
    assert f'model = "{c.api.model}"' in text and '# service_tier = "flex"' in text
    assert text.count("\n# ") > 5  # commented
    # and it loads from a file too
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    assert load_config(p).folders[1].path == folders[1]


def test_render_init_default_state_dir():
    c = parse_config(tomllib.loads(render_init_config([Path("/m")])), home=HOME)
    assert c.daemon.state_dir == HOME / ".local/state/mediasync"


def test_render_init_needs_a_folder():
    with pytest.raises(ValueError):
        render_init_config([])


def test_file_operations_pace_to_daemon_requests_per_minute_unless_pinned():
    assert parse("[daemon]\nrequests_per_minute = 42\n" + MINIMAL) \
        .limits.file_requests_per_minute == 42
    both = "[daemon]\nrequests_per_minute = 42\n[limits]\nfile_requests_per_minute = 7\n"
    assert parse(both + MINIMAL).limits.file_requests_per_minute == 7
    assert "daemon.requests_per_minute" in err("[daemon]\nrequests_per_minute = 0\n" + MINIMAL)


# -- the storage budget and upload proxies (issue 15) --------------------------------

FOLDER = '[[folders]]\npath = "/srv/photos"\n'


def test_storage_budget_is_a_share_of_the_store_or_a_size():
    assert parse(FOLDER).daemon.storage_budget.of(1000) == 900  # 90% by default
    assert parse('[daemon]\nstorage_budget = "100%"\n' + FOLDER).daemon.storage_budget.of(
        1000) == 1000
    budget = parse('[daemon]\nstorage_budget = "18GB"\n' + FOLDER).daemon.storage_budget
    assert budget.of(20 * 1024**3) == 18 * 10**9
    assert budget.of(10 * 10**9) == 10 * 10**9  # never more than the store as learned


@pytest.mark.parametrize("value, says", [
    ('"25GB"', "is more than the service's store holds (20 GiB per project)"),
    ('"21GiB"', "is more than the service's store holds"),
    ('"150%"', "at most 100%"),
    ('"0%"', "must be more than 0%"),
    ('"0MB"', "must be more than zero"),
    ('"lots"', "is not a size"),
    ("18", "needs a unit"),
])
def test_a_bad_storage_budget_is_a_one_line_error_naming_the_key(value, says):
    msg = err(f"[daemon]\nstorage_budget = {value}\n" + FOLDER)
    assert "daemon.storage_budget: " in msg and says in msg, msg


def test_keep_first_pinned_and_upload_take_their_values_and_name_the_key():
    cfg = parse('[daemon]\nkeep_first = "oldest"\n' + FOLDER + 'pinned = true\nupload = "proxy"\n')
    assert cfg.daemon.keep_first == "oldest"
    assert cfg.folders[0].pinned and cfg.folders[0].upload == "proxy"
    assert parse(FOLDER).folders[0].upload == "auto" and not parse(FOLDER).folders[0].pinned
    assert "daemon.keep_first: 'newst' is not one of newest, oldest, smallest; did you mean " \
           "'newest'?" in err('[daemon]\nkeep_first = "newst"\n' + FOLDER)
    assert "folders[0].upload: 'proxi' is not one of auto, original, proxy; did you mean " \
           "'proxy'?" in err(FOLDER + 'upload = "proxi"\n')
    assert "folders[0].pinned: must be true or false" in err(FOLDER + 'pinned = "yes"\n')
    assert "folders[0].prompts[0].upload: " in err(
        FOLDER + '[[folders.prompts]]\nkinds = ["video"]\nsidecar = ".x.md"\nprompt = "hi"\n'
        'upload = "orig"\n')


def test_follow_symlinks_is_a_folder_setting_off_by_default():
    c = parse('[[folders]]\npath="/a"\n[[folders]]\npath="/b"\nfollow_symlinks = true\n')
    assert [f.follow_symlinks for f in c.folders] == [False, True]
    assert "folders[0].follow_symlinks" in err('[[folders]]\npath="/a"\nfollow_symlinks = 1\n')
