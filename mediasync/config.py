"""The configuration file: TOML → frozen dataclasses, validated.

Pure except :func:`load_config` (reads the file) and :func:`resolve_api_key`
(reads the key file). Every error is a :class:`ConfigError` whose text is one
line naming the key path (``folders[0].prompts[1].kinds``) and what is wrong,
because the daemon prints it and exits and the user must find the line.
Folders are not checked for existence here: that is a run-time fact.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from .media import FILE_TTL_SECONDS, KINDS, media_type

API_VERSIONS = ("v1beta", "v1")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
KEY_FILE_NAME = "gemini-api-key"  # systemd LoadCredential= name
KEY_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

DEFAULT_API = {
    "base_url": "https://generativelanguage.googleapis.com",
    "api_version": "v1beta",
    "model": "gemini-2.5-flash",
    "timeout": "60s",
}
DEFAULT_DAEMON = {
    "state_dir": "~/.local/state/mediasync",
    "settle": "2s",
    "rescan_every": "10m",
    "refresh_every": "6h",
    "renew_before": "6h",
    "max_uploads": 2,
    "max_generations": 8,
    "requests_per_minute": 600,
    "log_level": "info",
}
DEFAULT_FOLDER = {"recursive": True, "polling": False, "include": [], "exclude": []}
# Used for a folder that names no prompts.
DEFAULT_PROMPTS: tuple[dict[str, Any], ...] = (
    {
        "kinds": ["image"],
        "prompt": "Caption this image in one sentence.",
        "sidecar": ".caption.md",
    },
    {
        "kinds": ["video"],
        "prompt": "Describe this video in a few sentences.",
        "sidecar": ".caption.md",
    },
    {
        "kinds": ["audio"],
        "prompt": "Transcribe this audio. Use proper punctuation and paragraph breaks.",
        "sidecar": ".transcript.txt",
    },
)

_API_KEYS = ("base_url", "api_version", "model", "key_file", "timeout")
_DAEMON_KEYS = tuple(DEFAULT_DAEMON)
_FOLDER_KEYS = ("path", "recursive", "polling", "include", "exclude", "prompts")
_PROMPT_KEYS = (
    "kinds", "prompt", "sidecar", "model", "format", "schema", "language",
    "subtitles", "naming", "max_cue", "alt_text",
)
FORMATS = ("text", "json", "xmp", "subtitles")
SUBTITLE_FORMATS = ("srt", "vtt")
NAMINGS = ("append", "stem")
# A language tag as players read it from a file name (en, pt-BR, zh-Hant).
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TOP_KEYS = ("api", "daemon", "folders")
# Cost knobs (folder and prompt tables), limits and prices: see the block "costs and limits".
_COST_KEYS = ("thinking_budget", "media_resolution", "max_output_tokens", "temperature",
              "system_instruction")
_FOLDER_KEYS += _COST_KEYS
_PROMPT_KEYS += _COST_KEYS
_TOP_KEYS += ("limits", "prices")


class ConfigError(Exception):
    """A configuration fault; ``str()`` is the one-line message for the user."""

    def __init__(self, message: str, *, key: str = "", source: Path | str | None = None):
        self.message = message
        self.key = key
        self.source = source
        prefix = "".join(f"{p}: " for p in (source, key) if p)
        super().__init__(prefix + message)


@dataclass(frozen=True)
class ApiConfig:
    base_url: str
    api_version: str
    model: str
    key_file: Path | None
    timeout: float


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path
    settle: float
    rescan_every: float
    refresh_every: float
    renew_before: float
    max_uploads: int
    max_generations: int
    requests_per_minute: int
    log_level: str


@dataclass(frozen=True)
class PromptConfig:
    kinds: tuple[str, ...]
    prompt: str
    sidecar: str
    model: str | None = None
    format: str = "text"  # text, json, xmp or subtitles
    schema: str | None = None  # JSON Schema as canonical JSON text (format "json")
    system_instruction: str | None = None  # None: the built-in one, if any
    language: tuple[str, ...] = ()  # one output per language (translation)
    subtitles: tuple[str, ...] = ()  # srt and/or vtt (format "subtitles")
    naming: str = "append"  # photo.jpg + suffix, or (stem) photo + suffix
    max_cue: float = 7.0  # seconds a subtitle cue may last at most
    alt_text: bool = False  # xmp: also write Iptc4xmpCore:AltTextAccessibility
    knobs: Knobs | None = None  # cost knobs of this prompt (over its folder's)

    def effective_model(self, default_model: str) -> str:
        return self.model or default_model

    def outputs(self) -> tuple[tuple[str, str | None, str | None], ...]:
        """(suffix, language, subtitle format) of each file this prompt writes."""
        langs: tuple[str | None, ...] = self.language or (None,)
        if self.format == "subtitles":
            return tuple(
                (f"{self.sidecar}.{lang}.{fmt}" if lang else f"{self.sidecar}.{fmt}", lang, fmt)
                for lang in langs for fmt in self.subtitles
            )
        return tuple((language_suffix(self.sidecar, lang), lang, None) for lang in langs)

    def identity(self) -> str:
        """What besides the prompt text decides the answer; "" for a plain text prompt,
        so configs from before these keys existed keep their outputs."""
        extra: dict[str, Any] = {}
        if self.format != "text":
            extra["format"] = self.format
        if self.schema:
            extra["schema"] = self.schema
        if self.system_instruction:
            extra["system"] = self.system_instruction
        if self.format == "subtitles":
            extra["max_cue"] = self.max_cue
        if self.alt_text:
            extra["alt_text"] = True
        return json.dumps(extra, sort_keys=True) if extra else ""

    def prompt_hash(self, default_model: str) -> str:
        """Identity of what this prompt asks: an output is stale when it changes.

        Only the text and the model: moving a prompt or renaming its sidecar
        must not cost a regeneration.
        """
        blob = json.dumps(
            {"prompt": self.prompt, "model": self.effective_model(default_model)},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class FolderConfig:
    path: Path
    recursive: bool = True
    polling: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    prompts: tuple[PromptConfig, ...] = field(default_factory=tuple)
    knobs: Knobs | None = None  # cost knobs for every prompt of the folder

    def prompts_for(self, kind: str) -> tuple[PromptConfig, ...]:
        return tuple(p for p in self.prompts if kind in p.kinds)


@dataclass(frozen=True)
class Config:
    api: ApiConfig
    daemon: DaemonConfig
    folders: tuple[FolderConfig, ...]
    source: Path | None = None
    limits: LimitsConfig = field(default_factory=lambda: LimitsConfig())
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def folder_for(self, path: Path) -> FolderConfig | None:
        """The configured folder containing ``path`` (folders never nest)."""
        p = PurePath(os.path.normpath(path))
        for folder in self.folders:
            if p.is_relative_to(folder.path):
                return folder
        return None

    def sidecar_suffixes(self) -> frozenset[str]:
        return frozenset(
            suffix for f in self.folders for p in f.prompts for suffix, _, _ in p.outputs()
        )

    def knobs_for(self, path: Path, prompt: PromptConfig | None) -> Knobs:
        """The cost knobs of ``prompt`` for ``path`` (the prompt's over its folder's)."""
        folder = self.folder_for(path)
        base = (folder.knobs if folder else None) or Knobs()
        return base.over(prompt.knobs if prompt else None)


def language_suffix(suffix: str, language: str | None) -> str:
    """.transcript.txt + de → .transcript.de.txt (the language before the extension)."""
    if not language:
        return suffix
    stem, dot, ext = suffix.rpartition(".")
    return f"{stem}.{language}.{ext}" if stem else f"{suffix}.{language}"


# --- durations -------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)")
_DURATION_HINT = "(use e.g. 500ms, 2s, 10m, 6h)"


def parse_duration(text: str | int | float, key: str = "") -> float:
    """Seconds from "500ms", "2s", "10m", "6h", "1h30m", or a plain number of seconds."""
    # bool is an int subclass; `settle = true` is a mistake, not one second.
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    elif isinstance(text, str):
        s = text.strip()
        try:
            seconds = float(s)
        except ValueError:
            seconds = _parse_units(s)
            if seconds is None:
                raise ConfigError(f"{json.dumps(text)} is not a duration {_DURATION_HINT}",
                                  key=key) from None
    else:
        raise ConfigError(f"{text!r} is not a duration {_DURATION_HINT}", key=key)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{text!r} is not a duration {_DURATION_HINT}", key=key)
    return seconds


def _parse_units(s: str) -> float | None:
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if s else None


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration`, to the millisecond: 5400 → "1h30m"."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    out = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


# --- parsing ---------------------------------------------------------------


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for k in table:
        if k in allowed:
            continue
        key = f"{where}.{k}" if where else k
        hint = ""
        close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        elif where == "api" and "key" in k.lower():
            # The key itself never goes in the config file.
            hint = "; put the API key in a file and name it with api.key_file"
        raise ConfigError(f"unknown key{hint}", key=key)


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table ([{key}]), not {_tname(value)}", key=key)
    return value


def _tname(value: Any) -> str:
    return {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string",
        list: "an array", dict: "a table",
    }.get(type(value), type(value).__name__)


def _str(value: Any, key: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be a string, not {_tname(value)}", key=key)
    if not empty and not value.strip():
        raise ConfigError("must not be empty", key=key)
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, not {_tname(value)}", key=key)
    return value


def _pos_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"must be a positive integer, not {_tname(value)}", key=key)
    if value < 1:
        raise ConfigError(f"must be a positive integer, not {value}", key=key)
    return value


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"must be an array of strings, not {_tname(value)}", key=key)
    return tuple(_str(v, f"{key}[{i}]") for i, v in enumerate(value))


def _duration(value: Any, key: str, *, positive: bool = False) -> float:
    seconds = parse_duration(value, key)
    if positive and seconds <= 0:
        raise ConfigError(f"{value!r} must be longer than zero", key=key)
    return seconds


def _path(value: Any, key: str, base: Path | None, home: Path | None) -> Path:
    text = _str(value, key)
    if "\0" in text:
        raise ConfigError("must not contain a NUL character", key=key)
    if text == "~" or text.startswith("~/"):
        h = home if home is not None else Path.home()
        p = h / text[2:] if len(text) > 1 else h
    else:
        p = Path(os.path.expanduser(text))
    if not p.is_absolute():
        # Relative to the config file, so the file means the same from any cwd.
        p = (base if base is not None else Path.cwd()) / p
    # normpath, not resolve(): no filesystem access, and symlinked mounts keep
    # the name the user wrote.
    return Path(os.path.normpath(p))


def parse_config(data: Mapping[str, Any], *, source: Path | None = None,
                 home: Path | None = None) -> Config:
    """Validate a parsed TOML document. Raises ConfigError naming the key and the file."""
    try:
        return _parse(data, source, home)
    except ConfigError as e:
        if source is not None and e.source is None:
            raise ConfigError(e.message, key=e.key, source=source) from None
        raise


def _parse(data: Mapping[str, Any], source: Path | None, home: Path | None) -> Config:
    _check_keys(data, _TOP_KEYS, "")
    base = source.parent if source is not None else None

    api_in = {**DEFAULT_API, **_table(data.get("api", {}), "api")}
    _check_keys(api_in, _API_KEYS, "api")
    base_url = _str(api_in["base_url"], "api.base_url").rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{base_url!r} is not an http(s) URL", key="api.base_url")
    version = _str(api_in["api_version"], "api.api_version")
    if version not in API_VERSIONS:
        raise ConfigError(f"{version!r} is not one of {', '.join(API_VERSIONS)}",
                          key="api.api_version")
    key_file = None
    if "key_file" in api_in:
        key_file = _path(api_in["key_file"], "api.key_file", base, home)
    api = ApiConfig(
        base_url=base_url,
        api_version=version,
        model=_str(api_in["model"], "api.model").strip(),
        key_file=key_file,
        timeout=_duration(api_in["timeout"], "api.timeout", positive=True),
    )

    d_in = {**DEFAULT_DAEMON, **_table(data.get("daemon", {}), "daemon")}
    _check_keys(d_in, _DAEMON_KEYS, "daemon")
    level = _str(d_in["log_level"], "daemon.log_level").strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{d_in['log_level']!r} is not one of {', '.join(LOG_LEVELS)}",
                          key="daemon.log_level")
    renew_before = _duration(d_in["renew_before"], "daemon.renew_before")
    if renew_before >= FILE_TTL_SECONDS:
        # Every fresh copy would already be due for renewal: an upload loop.
        raise ConfigError(
            f"{d_in['renew_before']!r} must be shorter than a file's lifetime "
            f"({format_duration(FILE_TTL_SECONDS)})", key="daemon.renew_before")
    daemon = DaemonConfig(
        state_dir=_path(d_in["state_dir"], "daemon.state_dir", base, home),
        settle=_duration(d_in["settle"], "daemon.settle"),
        rescan_every=_duration(d_in["rescan_every"], "daemon.rescan_every", positive=True),
        refresh_every=_duration(d_in["refresh_every"], "daemon.refresh_every", positive=True),
        renew_before=renew_before,
        max_uploads=_pos_int(d_in["max_uploads"], "daemon.max_uploads"),
        max_generations=_pos_int(d_in["max_generations"], "daemon.max_generations"),
        requests_per_minute=_pos_int(d_in["requests_per_minute"], "daemon.requests_per_minute"),
        log_level=level,
    )

    raw_folders = data.get("folders")
    if raw_folders is None:
        raise ConfigError("at least one [[folders]] table is required", key="folders")
    if not isinstance(raw_folders, list):
        raise ConfigError("must be an array of tables: write [[folders]], not [folders]",
                          key="folders")
    if not raw_folders:
        raise ConfigError("at least one [[folders]] table is required", key="folders")
    folders = tuple(
        _folder(f, f"folders[{i}]", base, home) for i, f in enumerate(raw_folders)
    )
    for i, a in enumerate(folders):
        for j, b in enumerate(folders[:i]):
            if a.path == b.path:
                raise ConfigError(f"{str(a.path)!r} repeats folders[{j}].path",
                                  key=f"folders[{i}].path")
            # A nested folder would be watched twice and its files claimed twice.
            if a.path.is_relative_to(b.path):
                raise ConfigError(f"{str(a.path)!r} is inside folders[{j}].path "
                                  f"{str(b.path)!r}; folders must not nest",
                                  key=f"folders[{i}].path")
            if b.path.is_relative_to(a.path):
                raise ConfigError(f"{str(a.path)!r} contains folders[{j}].path "
                                  f"{str(b.path)!r}; folders must not nest",
                                  key=f"folders[{i}].path")
    return Config(api=api, daemon=daemon, folders=folders, source=source,
                  limits=parse_limits(data.get("limits", {}), d_in),
                  prices=parse_prices(data.get("prices", {})))


def _folder(raw: Any, where: str, base: Path | None, home: Path | None) -> FolderConfig:
    t = _table(raw, where)
    _check_keys(t, _FOLDER_KEYS, where)
    if "path" not in t:
        raise ConfigError("missing (the folder to watch)", key=f"{where}.path")
    t = {**DEFAULT_FOLDER, **t}
    if "prompts" in t:
        raw_prompts = t["prompts"]
        if not isinstance(raw_prompts, list):
            raise ConfigError("must be an array of tables: write [[folders.prompts]]",
                              key=f"{where}.prompts")
        if not raw_prompts:
            # An empty list is ambiguous (no prompts? defaults?): refuse it.
            raise ConfigError("is empty; leave it out to use the default prompts",
                              key=f"{where}.prompts")
        prompts = tuple(
            _prompt(p, f"{where}.prompts[{i}]", base, home) for i, p in enumerate(raw_prompts)
        )
    else:
        prompts = tuple(_prompt(p, f"{where}.prompts[{i}]") for i, p in enumerate(DEFAULT_PROMPTS))
    seen: dict[tuple[str, str, str], int] = {}
    for i, p in enumerate(prompts):
        for kind in p.kinds:
            for suffix, _, _ in p.outputs():
                if (kind, p.naming, suffix) in seen:
                    raise ConfigError(
                        f"{suffix!r} is already written for {kind} files by "
                        f"{where}.prompts[{seen[kind, p.naming, suffix]}]",
                        key=f"{where}.prompts[{i}].sidecar")
                seen[kind, p.naming, suffix] = i
    return FolderConfig(
        path=_path(t["path"], f"{where}.path", base, home),
        recursive=_bool(t["recursive"], f"{where}.recursive"),
        polling=_bool(t["polling"], f"{where}.polling"),
        include=_str_list(t["include"], f"{where}.include"),
        exclude=_str_list(t["exclude"], f"{where}.exclude"),
        prompts=prompts,
        knobs=parse_knobs(t, where),
    )


def _prompt(raw: Any, where: str, base: Path | None = None,
            home: Path | None = None) -> PromptConfig:
    t = _table(raw, where)
    _check_keys(t, _PROMPT_KEYS, where)
    fmt = _choice(t.get("format", "text"), FORMATS, f"{where}.format")
    if "sidecar" not in t and fmt in ("xmp", "subtitles"):
        t = {**t, "sidecar": _DEFAULT_SIDECAR[fmt]}
    for k in ("kinds", "prompt", "sidecar"):
        if k not in t:
            raise ConfigError("missing", key=f"{where}.{k}")
    kinds_raw = t["kinds"]
    if not isinstance(kinds_raw, list):
        raise ConfigError(f"must be an array like [\"image\"], not {_tname(kinds_raw)}",
                          key=f"{where}.kinds")
    if not kinds_raw:
        raise ConfigError(f"must name at least one of {', '.join(KINDS)}",
                          key=f"{where}.kinds")
    kinds: list[str] = []
    for v in kinds_raw:
        if v not in KINDS:
            raise ConfigError(f"{v!r} is not one of {', '.join(KINDS)}", key=f"{where}.kinds")
        if v not in kinds:
            kinds.append(v)
    sidecar = _str(t["sidecar"], f"{where}.sidecar", empty=fmt == "subtitles")
    if fmt == "subtitles" and sidecar == "":
        pass  # clip + .en.srt: the name players look for
    elif not sidecar.startswith(".") or len(sidecar) < 2:
        raise ConfigError(f"{sidecar!r} must start with '.' (e.g. '.caption.md')",
                          key=f"{where}.sidecar")
    if any(c in sidecar for c in "/\\\0\n\r"):
        raise ConfigError(f"{sidecar!r} must not contain '/', '\\' or control characters",
                          key=f"{where}.sidecar")
    if media_type("x" + sidecar) is not None:
        # The sidecar would look like media: mediasync would caption its own captions,
        # and ignoring the suffix would ignore real media too.
        raise ConfigError(f"{sidecar!r} must not end with a media extension",
                          key=f"{where}.sidecar")
    model = None
    if "model" in t:
        model = _str(t["model"], f"{where}.model").strip()
    for k, only in (("schema", "json"), ("subtitles", "subtitles"), ("max_cue", "subtitles"),
                    ("alt_text", "xmp")):
        if k in t and fmt != only:
            raise ConfigError(f"only applies to format = \"{only}\"", key=f"{where}.{k}")
    schema = None
    if fmt == "json":
        if "schema" not in t:
            raise ConfigError("missing: format = \"json\" needs a JSON Schema (a table, or "
                              "the path of a .json file)", key=f"{where}.schema")
        schema = _schema(t["schema"], f"{where}.schema", base, home)
    languages: tuple[str, ...] = ()
    if "language" in t:
        raw_lang = t["language"]
        langs = _str_list(raw_lang, f"{where}.language") if isinstance(raw_lang, list) else (
            _str(raw_lang, f"{where}.language"),)
        for v in langs:
            if not _LANG.match(v):
                raise ConfigError(f"{v!r} is not a language code like \"en\" or \"pt-BR\"",
                                  key=f"{where}.language")
        languages = tuple(dict.fromkeys(langs))
    elif fmt == "subtitles":
        languages = ("en",)
    subtitles: tuple[str, ...] = ()
    if fmt == "subtitles":
        subs = _str_list(t.get("subtitles", ["srt"]), f"{where}.subtitles")
        if not subs:
            raise ConfigError(f"must name at least one of {', '.join(SUBTITLE_FORMATS)}",
                              key=f"{where}.subtitles")
        for v in subs:
            _choice(v, SUBTITLE_FORMATS, f"{where}.subtitles")
        subtitles = tuple(dict.fromkeys(subs))
        if "image" in kinds:
            raise ConfigError("subtitles need audio or video; remove \"image\"",
                              key=f"{where}.kinds")
    naming = _choice(t.get("naming", "stem" if fmt == "subtitles" else "append"), NAMINGS,
                     f"{where}.naming")
    # The prompt's system_instruction (a cost knob too) replaces the built-in one.
    system = (_str(t["system_instruction"], f"{where}.system_instruction")
              if "system_instruction" in t else None)
    return PromptConfig(
        kinds=tuple(kinds),
        prompt=_str(t["prompt"], f"{where}.prompt"),
        sidecar=sidecar,
        model=model,
        format=fmt,
        schema=schema,
        system_instruction=system,
        language=languages,
        subtitles=subtitles,
        naming=naming,
        max_cue=_duration(t.get("max_cue", 7.0), f"{where}.max_cue", positive=True),
        alt_text=_bool(t.get("alt_text", False), f"{where}.alt_text"),
        knobs=parse_knobs(t, where),
    )


_DEFAULT_SIDECAR = {"xmp": ".xmp", "subtitles": ""}


def _choice(value: Any, allowed: Sequence[str], key: str) -> str:
    text = _str(value, key)
    if text not in allowed:
        close = difflib.get_close_matches(text, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{text!r} is not one of {', '.join(allowed)}{hint}", key=key)
    return text


def _schema(value: Any, key: str, base: Path | None, home: Path | None) -> str:
    """A JSON Schema from an inline table or a .json file, checked, as canonical JSON."""
    if isinstance(value, Mapping):
        schema: Any = dict(value)
    elif isinstance(value, str):
        path = _path(value, key, base, home)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no such file {str(path)!r}", key=key) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read {str(path)!r}: {getattr(e, 'strerror', None) or e}",
                              key=key) from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{str(path)!r} is not JSON: {e}", key=key) from None
    else:
        raise ConfigError(f"must be a table or a file path, not {_tname(value)}", key=key)
    if not isinstance(schema, dict):
        raise ConfigError("must be a JSON Schema object", key=key)
    from jsonschema import SchemaError, validators  # only configs that ask for JSON pay for it

    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as e:
        where = "/".join(str(p) for p in e.path)
        raise ConfigError(f"not a valid JSON Schema: {e.message}"
                          + (f" (at {where})" if where else ""), key=key) from None
    return json.dumps(schema, sort_keys=True, ensure_ascii=False)


# --- costs and limits ---------------------------------------------------------
# Kept apart from the rest of the parser: [limits], [prices] and the cost knobs
# of folders and prompts (issue 9).

MEDIA_RESOLUTIONS = {"low": "MEDIA_RESOLUTION_LOW", "medium": "MEDIA_RESOLUTION_MEDIUM",
                     "high": "MEDIA_RESOLUTION_HIGH"}
# Per model, generation: requests a minute, input tokens a minute, requests a day.
# Published for gemini-2.5-flash: free tier 10 / 250,000 / 250 (lower since);
# Tier 1 1,000 / 1,000,000 / 10,000 (ai.google.dev/gemini-api/docs/rate-limits).
TIERS = {"free": (10, 250_000, 250), "paid": (1_000, 1_000_000, 10_000)}
_LIMIT_KEYS = ("tier", "requests_per_minute", "input_tokens_per_minute", "requests_per_day",
               "file_requests_per_minute", "max_daily_tokens", "max_daily_cost", "models")
_MODEL_LIMIT_KEYS = ("requests_per_minute", "input_tokens_per_minute", "requests_per_day")


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens (thought tokens are billed as output)."""

    input: float
    output: float


# Standard (not batch) paid-tier prices per 1M tokens for text/image/video input,
# from ai.google.dev/gemini-api/docs/pricing as read in 2025 (prompts ≤ 200k tokens;
# 2.5 Flash audio input costs more, $1.00). Override with [prices."model"].
DEFAULT_PRICES: dict[str, Price] = {
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
}


@dataclass(frozen=True)
class Knobs:
    """Cost knobs passed through generationConfig (None: the service's default)."""

    thinking_budget: int | None = None
    media_resolution: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    system_instruction: str | None = None

    def over(self, other: Knobs | None) -> Knobs:
        """These knobs with ``other``'s set ones on top."""
        if other is None:
            return self
        return Knobs(**{k: v if v is not None else getattr(self, k)
                        for k, v in other.__dict__.items()})

    def generation_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.thinking_budget is not None:
            out["thinkingConfig"] = {"thinkingBudget": self.thinking_budget}
        if self.media_resolution is not None:
            out["mediaResolution"] = MEDIA_RESOLUTIONS[self.media_resolution]
        if self.max_output_tokens is not None:
            out["maxOutputTokens"] = self.max_output_tokens
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return out


@dataclass(frozen=True)
class ModelLimits:
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    requests_per_day: int | None = None


@dataclass(frozen=True)
class LimitsConfig:
    """Pinned limits; anything unset is learned from the service's 429s."""

    generate: ModelLimits = ModelLimits()
    models: Mapping[str, ModelLimits] = field(default_factory=dict)
    file_requests_per_minute: int = 600
    max_daily_tokens: int | None = None
    max_daily_cost: float | None = None


def parse_knobs(t: Mapping[str, Any], where: str) -> Knobs | None:
    if not any(k in t for k in _COST_KEYS):
        return None
    tb = t.get("thinking_budget")
    if tb is not None and (isinstance(tb, bool) or not isinstance(tb, int) or tb < -1):
        raise ConfigError(f"must be an integer ≥ 0 (0 turns thinking off; -1: the model "
                          f"decides), not {tb!r}", key=f"{where}.thinking_budget")
    mr = t.get("media_resolution")
    if mr is not None and mr not in MEDIA_RESOLUTIONS:
        raise ConfigError(f"{mr!r} is not one of {', '.join(MEDIA_RESOLUTIONS)}",
                          key=f"{where}.media_resolution")
    mo = t.get("max_output_tokens")
    if mo is not None:
        mo = _pos_int(mo, f"{where}.max_output_tokens")
    temp = t.get("temperature")
    if temp is not None and (isinstance(temp, bool) or not isinstance(temp, int | float)
                             or not 0 <= temp <= 2):
        raise ConfigError(f"must be a number from 0 to 2, not {temp!r}",
                          key=f"{where}.temperature")
    si = t.get("system_instruction")
    if si is not None:
        si = _str(si, f"{where}.system_instruction")
    return Knobs(tb, mr, mo, float(temp) if temp is not None else None, si)


def _opt_pos_int(t: Mapping[str, Any], k: str, where: str) -> int | None:
    return _pos_int(t[k], f"{where}.{k}") if k in t else None


def _model_limits(t: Mapping[str, Any], where: str, base: ModelLimits) -> ModelLimits:
    return ModelLimits(
        _opt_pos_int(t, "requests_per_minute", where) or base.requests_per_minute,
        _opt_pos_int(t, "input_tokens_per_minute", where) or base.input_tokens_per_minute,
        _opt_pos_int(t, "requests_per_day", where) or base.requests_per_day,
    )


def parse_limits(raw: Any, daemon: Mapping[str, Any]) -> LimitsConfig:
    t = _table(raw, "limits")
    _check_keys(t, _LIMIT_KEYS, "limits")
    base = ModelLimits()
    if "tier" in t:
        tier = t["tier"]
        if tier not in TIERS:
            raise ConfigError(f"{tier!r} is not one of {', '.join(TIERS)}", key="limits.tier")
        base = ModelLimits(*TIERS[tier])
    generate = _model_limits(t, "limits", base)
    models = {}
    for name, mt in _table(t.get("models", {}), "limits.models").items():
        where = f"limits.models.{json.dumps(name)}"
        mt = _table(mt, where)
        _check_keys(mt, _MODEL_LIMIT_KEYS, where)
        models[name] = _model_limits(mt, where, ModelLimits())
    # daemon.requests_per_minute is kept: it now paces file operations only.
    files = _opt_pos_int(t, "file_requests_per_minute", "limits") or _pos_int(
        daemon["requests_per_minute"], "daemon.requests_per_minute")
    cost = t.get("max_daily_cost")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)
                             or cost <= 0):
        raise ConfigError(f"must be a positive number of US dollars, not {cost!r}",
                          key="limits.max_daily_cost")
    return LimitsConfig(generate, models, files, _opt_pos_int(t, "max_daily_tokens", "limits"),
                        float(cost) if cost is not None else None)


def parse_prices(raw: Any) -> dict[str, Price]:
    prices = dict(DEFAULT_PRICES)
    for name, pt in _table(raw, "prices").items():
        where = f"prices.{json.dumps(name)}"
        pt = _table(pt, where)
        _check_keys(pt, ("input", "output"), where)
        vals = []
        for k in ("input", "output"):
            v = pt.get(k)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ConfigError(f"must be US dollars per million tokens, not {v!r}",
                                  key=f"{where}.{k}")
            vals.append(float(v))
        prices[name] = Price(*vals)
    return prices


def load_config(path: Path) -> Config:
    """Read and validate a config file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no such file; create one with `mediasync init` "
            "(see mediasync.example.toml)", source=path) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", source=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start})", source=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib's message already says "(at line N, column M)".
        raise ConfigError(f"TOML syntax error: {e}", source=path) from None
    return parse_config(data, source=path)


def load_config_or_default(path: Path | None, env: Mapping[str, str]) -> tuple[Path, Config]:
    """The config named on the command line, else the default location; and its path."""
    path = path or default_config_path(env)
    return path, load_config(path)


def default_config_path(env: Mapping[str, str]) -> Path:
    """$MEDIASYNC_CONFIG, else $XDG_CONFIG_HOME/mediasync/config.toml, else ~/.config/…."""
    explicit = env.get("MEDIASYNC_CONFIG")
    if explicit:
        return Path(os.path.expanduser(explicit))
    xdg = env.get("XDG_CONFIG_HOME")
    # The XDG spec says to ignore a relative value.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mediasync" / "config.toml"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".config" / "mediasync" / "config.toml"


def resolve_api_key(api: ApiConfig, env: Mapping[str, str]) -> str:
    """The API key: api.key_file, $CREDENTIALS_DIRECTORY/gemini-api-key, GEMINI_API_KEY,
    GOOGLE_API_KEY. Errors name where it looked, never the key."""
    if api.key_file is not None:
        # Named explicitly: a fault here is an error, not a reason to fall back.
        return _read_key_file(api.key_file, "api.key_file")
    looked = []
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        p = Path(creds) / KEY_FILE_NAME
        if os.path.lexists(p):
            return _read_key_file(p, "$CREDENTIALS_DIRECTORY")
        looked.append(str(p))
    else:
        looked.append(f"$CREDENTIALS_DIRECTORY/{KEY_FILE_NAME} (not set)")
    for var in KEY_ENV_VARS:
        value = env.get(var, "").strip()
        if value:
            _check_key(value, f"${var}")
            return value
        looked.append(f"${var}")
    raise ConfigError("no Gemini API key found; looked in " + ", ".join(looked)
                      + "; set api.key_file or one of those", key="api.key_file")


def _read_key_file(path: Path, origin: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise ConfigError(f"cannot read API key file {str(path)!r}: {reason}",
                          key=origin) from None
    if not value:
        raise ConfigError(f"API key file {str(path)!r} is empty", key=origin)
    _check_key(value, f"API key file {str(path)!r}")
    return value


def _check_key(value: str, where: str) -> None:
    # A key with spaces or several lines would fail later as a confusing HTTP
    # header error; say so here, without echoing it.
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value) or not value.isascii():
        raise ConfigError(f"{where} holds more than a single key (whitespace or "
                          "non-ASCII characters inside)")


# --- init ------------------------------------------------------------------


def _kv(key: str, value: Any) -> str:
    # tomli-w does the quoting/escaping (unicode paths, quotes in prompts);
    # short string arrays stay on one line, where tomli-w would spread them.
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = ", ".join(tomli_w.dumps({"v": v})[4:-1] for v in value)
        return f"{key} = [{items}]\n"
    return tomli_w.dumps({key: value})


# `mediasync init --preset`: prompts for photo libraries and for players.
PRESETS = ("default", "photos", "video")
_PRESET_PROMPTS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "photos": (
        ("Caption and keywords in photo.jpg.xmp, where digiKam, darktable and Immich look "
         "(naming = \"stem\" writes photo.xmp, Lightroom-style). An existing sidecar keeps "
         "everything else; a caption you edit there is kept.",
         {"kinds": ["image"], "format": "xmp",
          "prompt": "Caption this photo in one or two sentences and give a few keywords.",
          "alt_text": False}),
        ("Transcripts of audio as before.", dict(DEFAULT_PROMPTS[2])),
    ),
    "video": (
        ("Subtitles players find by name: clip.en.srt and clip.en.vtt. One file per "
         "language; another language is a translation.",
         {"kinds": ["video", "audio"], "format": "subtitles",
          "prompt": "Transcribe the speech in this file.", "subtitles": ["srt", "vtt"],
          "language": ["en"], "max_cue": "7s"}),
        ("A short description of each video, as before.", dict(DEFAULT_PROMPTS[1])),
    ),
}


def render_init_config(folders: Sequence[Path], *, state_dir: Path | None = None,
                       preset: str = "default") -> str:
    """A commented starting config for `mediasync init`; parses back with parse_config."""
    if not folders:
        raise ValueError("render_init_config needs at least one folder")
    out: list[str] = [
        "# mediasync configuration, written by `mediasync init`.\n",
        "# Durations: 500ms, 2s, 10m, 6h, 1h30m. Check it with `mediasync check`.\n",
        "# The API key does not belong here: set api.key_file, or GEMINI_API_KEY,\n",
        "# or a systemd credential named gemini-api-key.\n",
        "\n[api]\n",
        "# Model used by prompts that do not name their own.\n",
        _kv("model", DEFAULT_API["model"]),
        "# v1beta or v1.\n",
        _kv("api_version", DEFAULT_API["api_version"]),
        "# key_file = \"/run/credentials/mediasync.service/gemini-api-key\"\n",
        "\n[daemon]\n",
        "# Database and logs.\n",
        _kv("state_dir", str(state_dir) if state_dir is not None else DEFAULT_DAEMON["state_dir"]),
        "# A file must stop changing for this long before it is uploaded.\n",
        _kv("settle", DEFAULT_DAEMON["settle"]),
        "# Parallel uploads and generations; requests per minute to the API.\n",
        _kv("max_uploads", DEFAULT_DAEMON["max_uploads"]),
        _kv("max_generations", DEFAULT_DAEMON["max_generations"]),
        _kv("requests_per_minute", DEFAULT_DAEMON["requests_per_minute"]),
    ]
    for folder in folders:
        out += [
            "\n# A folder to mirror. Sidecars are written next to each file:\n",
            "# photo.jpg -> photo.jpg.caption.md, memo.mp3 -> memo.mp3.transcript.txt\n",
            "[[folders]]\n",
            _kv("path", str(folder)),
            _kv("recursive", True),
            "# Set polling = true for network shares (NFS, SMB), where inotify sees nothing.\n",
            _kv("polling", False),
            "# Globs on the path relative to the folder or on the file name.\n",
            _kv("include", []),
            _kv("exclude", []),
        ]
        if preset in _PRESET_PROMPTS:
            for note, p in _PRESET_PROMPTS[preset]:
                out += [
                    "\n", *(f"  # {line}\n" for line in textwrap.wrap(note, 86)),
                    "  [[folders.prompts]]\n",
                    *("  " + _kv(k, v) for k, v in p.items()),
                ]
            continue
        for p in DEFAULT_PROMPTS:
            out += [
                f"\n  # Ask this about each {' and '.join(p['kinds'])} file;"
                f" the answer goes to <file>{p['sidecar']}.\n",
                "  [[folders.prompts]]\n",
                *("  " + _kv(k, v) for k, v in p.items()),
            ]
    return "".join(out)
