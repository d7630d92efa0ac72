"""The configuration file: TOML → frozen dataclasses, validated.

Pure except :func:`load_config` (reads the file) and :func:`resolve_api_key`
(reads the key file). Every error is a :class:`ConfigError` whose text is one
line naming the key path (``folders[0].prompts[1].kinds``) and what is wrong,
because the daemon prints it and exits and the user must find the line.
Folders are not checked for existence here: that is a run-time fact.

The checks of single values, the defaults, the costs-and-limits tables and the
`mediasync init` template live in :mod:`mediasync.config.values`,
:mod:`mediasync.config.defaults`, :mod:`mediasync.config.limits` and
:mod:`mediasync.config.template`; the names other modules import from here are
re-exported, so ``mediasync.config`` stays the one place to import the config from.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mediasync.media.formats import FILE_TTL_SECONDS, KINDS, MAX_PROJECT_BYTES, media_type
from mediasync.media.sizes import human_bytes, parse_size

from .batch import BatchConfig, parse_batch
from .defaults import DEFAULT_API, DEFAULT_DAEMON, DEFAULT_FOLDER, DEFAULT_PROMPTS
from .limits import (
    COST_KEYS,
    DEFAULT_PRICES,
    SERVICE_TIERS,
    Knobs,
    LimitsConfig,
    Price,
    parse_knobs,
    parse_limits,
    parse_prices,
)
from .observe import Listen, NotifyConfig, parse_listen, parse_notify
from .values import (
    ConfigError,
    as_bool,
    as_choice,
    as_duration,
    as_path,
    as_pos_int,
    as_str,
    as_str_list,
    as_table,
    check_keys,
    format_duration,
    type_name,
)

API_VERSIONS = ("v1beta", "v1")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
KEY_FILE_NAME = "gemini-api-key"  # systemd LoadCredential= name
KEY_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

_API_KEYS = ("base_url", "api_version", "model", "key_file", "timeout", "service_tier",
             "flex_fallback", "flex_fallback_after", "flex_timeout")
_DAEMON_KEYS = tuple(DEFAULT_DAEMON)
_FOLDER_KEYS = ("path", "recursive", "polling", "include", "exclude", "prompts", "keep_alive",
                "pinned", "upload",
                "follow_symlinks")
# What is uploaded of a file: its bytes, a proxy of what the model needs (media/proxy.py),
# or "auto": the original except video over 2 GB and video or audio over a size.
UPLOADS = ("auto", "original", "proxy")
# Which copies the storage budget keeps alive first (after files with outputs to
# make, and pinned folders): by file modification time, or the smallest first.
KEEP_FIRST = ("newest", "oldest", "smallest")
# "always": every copy is renewed before its 48 h expiry (the remote mirror stays
# alive). "on_use": a copy lapses once its outputs are written and is uploaded again
# when a prompt (or `ask`) needs it: no renewal traffic for an idle library.
KEEP_ALIVE = ("always", "on_use")
_PROMPT_KEYS = (
    "kinds", "prompt", "sidecar", "model", "format", "schema", "language",
    "subtitles", "naming", "max_cue", "alt_text", "upload", "ranges",
)
FORMATS = ("text", "json", "xmp", "subtitles")
SUBTITLE_FORMATS = ("srt", "vtt")
NAMINGS = ("append", "stem")
# A language tag as players read it from a file name (en, pt-BR, zh-Hant).
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TOP_KEYS = ("api", "daemon", "folders")
# Cost knobs (folder and prompt tables), limits and prices: see limits.py.
_FOLDER_KEYS += COST_KEYS
_PROMPT_KEYS += COST_KEYS
_TOP_KEYS += ("limits", "prices", "notify", "batch")
_FOLDER_KEYS += ("batch",)


@dataclass(frozen=True)
class ApiConfig:
    base_url: str
    api_version: str
    model: str
    key_file: Path | None
    timeout: float
    service_tier: str | None = None  # None: the service's default (standard)
    # Flex refused this many times in a row: standard for a while, if allowed.
    flex_fallback: bool = False
    flex_fallback_after: int = 3
    flex_timeout: float = 1200.0  # Flex answers in 1–15 minutes


@dataclass(frozen=True)
class StorageBudget:
    """``[daemon] storage_budget``: a share of the project's store, or a size in bytes."""

    share: float | None = 0.9
    size: int | None = None

    def of(self, store_bytes: int) -> int:
        """Bytes this instance may hold in a store of ``store_bytes``."""
        if self.size is not None:
            return min(self.size, store_bytes)
        return int((self.share if self.share is not None else 0.9) * store_bytes)

    def describe(self) -> str:
        if self.size is not None:
            return human_bytes(self.size)
        return f"{(self.share or 0) * 100:g}% of the store"


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path
    settle: float
    rescan_every: float
    refresh_every: float
    renew_before: float
    keep_alive: str
    storage_budget: StorageBudget
    keep_first: str
    max_uploads: int
    max_generations: int
    requests_per_minute: int
    log_level: str
    http: Listen | None = None  # the status endpoint (config/observe.py); None: off
    http_token: str | None = field(default=None, repr=False)  # a secret: never shown


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
    upload: str | None = None  # "original", "proxy", "auto"; None: the folder's
    # Long audio and video asked for in time ranges, the answers joined (transcripts,
    # subtitles): None never; RANGES_AUTO once a whole answer is cut at the output
    # limit; a number of seconds: parts that long from the start.
    ranges: float | str | None = None

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


@dataclass(frozen=True)
class FolderConfig:
    path: Path
    recursive: bool = True
    polling: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    prompts: tuple[PromptConfig, ...] = field(default_factory=tuple)
    knobs: Knobs | None = None  # cost knobs for every prompt of the folder
    keep_alive: str | None = None  # None: [daemon] keep_alive
    pinned: bool = False  # the storage budget keeps this folder's copies first
    upload: str = "auto"  # what is uploaded of a file: "original", "proxy" or "auto"
    follow_symlinks: bool = False  # mirror links to files inside the folder (local/scan.py)
    batch: BatchConfig | None = None  # None: the top-level [batch]

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
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)

    def batch_for(self, path: Path) -> BatchConfig:
        """The batch settings of ``path``'s folder (its [folders.batch] over [batch])."""
        folder = self.folder_for(path)
        return (folder.batch if folder else None) or self.batch

    def folder_for(self, path: Path | str) -> FolderConfig | None:
        """The configured folder containing ``path`` (folders never nest)."""
        # PurePath.is_relative_to on the normalised path, as a string prefix ending at a
        # separator: asked several times per file, pathlib's parsing cost more than the rest.
        p = os.path.normpath(path)
        for folder in self.folders:
            root = str(folder.path)
            if p == root or p.startswith(root if root.endswith("/") else root + "/"):
                return folder
        return None

    def sidecar_suffixes(self) -> frozenset[str]:
        return frozenset(
            suffix for f in self.folders for p in f.prompts for suffix, _, _ in p.outputs()
        )

    def knobs_for(self, path: Path, prompt: PromptConfig | None) -> Knobs:
        """The cost knobs of ``prompt`` for ``path`` (the prompt's over its folder's)."""
        folder = self.folder_for(path)
        base = Knobs(service_tier=self.api.service_tier).over(folder.knobs if folder else None)
        return base.over(prompt.knobs if prompt else None)

    def models(self) -> dict[str, str]:
        """Every model the config names → the first key naming it (``api.model``,
        ``folders[0].prompts[1].model``), for `check` and the start-up look."""
        out = {self.api.model: "api.model"}
        for i, f in enumerate(self.folders):
            for j, p in enumerate(f.prompts):
                if p.model:
                    out.setdefault(p.model, f"folders[{i}].prompts[{j}].model")
        return out

    def keeps_alive(self, path: Path | str) -> bool:
        """Whether the remote copy of ``path`` is renewed before it expires."""
        return self.keeps_alive_in(self.folder_for(path))

    def keeps_alive_in(self, folder: FolderConfig | None) -> bool:
        """``keeps_alive`` of a file in ``folder`` (None: in no configured folder)."""
        mode = (folder.keep_alive if folder else None) or self.daemon.keep_alive
        return mode == "always"

    def upload_mode(self, path: Path, kind: str) -> str:
        """"original", "proxy" or "auto" for a file: one remote copy serves all its
        prompts, so when they disagree the original wins, then a proxy."""
        folder = self.folder_for(path)
        if folder is None:
            return "auto"
        modes = {p.upload or folder.upload for p in folder.prompts_for(kind)} or {folder.upload}
        return next(m for m in ("original", "proxy", "auto") if m in modes)

    def all_kept_alive(self) -> bool:
        modes = {self.daemon.keep_alive, *(f.keep_alive for f in self.folders)} - {None}
        return modes == {"always"}


def language_suffix(suffix: str, language: str | None) -> str:
    """.transcript.txt + de → .transcript.de.txt (the language before the extension)."""
    if not language:
        return suffix
    stem, dot, ext = suffix.rpartition(".")
    return f"{stem}.{language}.{ext}" if stem else f"{suffix}.{language}"


# --- parsing ---------------------------------------------------------------



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
    check_keys(data, _TOP_KEYS, "")
    base = source.parent if source is not None else None
    api = _api(data.get("api", {}), base, home)
    d_in = {**DEFAULT_DAEMON, **as_table(data.get("daemon", {}), "daemon")}
    daemon = _daemon(d_in, base, home)
    batch = parse_batch(data.get("batch", {}), "batch")
    folders = _folders(data.get("folders"), base, home, batch)
    return Config(api=api, daemon=daemon, folders=folders, source=source, batch=batch,
                  limits=parse_limits(data.get("limits", {}), daemon.requests_per_minute),
                  prices=parse_prices(data.get("prices", {})),
                  notify=parse_notify(data.get("notify", {})))


def _api(raw: Any, base: Path | None, home: Path | None) -> ApiConfig:
    """The [api] table over its defaults."""
    api_in = {**DEFAULT_API, **as_table(raw, "api")}
    check_keys(api_in, _API_KEYS, "api")
    base_url = as_str(api_in["base_url"], "api.base_url").rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{base_url!r} is not an http(s) URL", key="api.base_url")
    version = as_str(api_in["api_version"], "api.api_version")
    if version not in API_VERSIONS:
        raise ConfigError(f"{version!r} is not one of {', '.join(API_VERSIONS)}",
                          key="api.api_version")
    key_file = None
    if "key_file" in api_in:
        key_file = as_path(api_in["key_file"], "api.key_file", base, home)
    return ApiConfig(
        base_url=base_url,
        api_version=version,
        model=as_str(api_in["model"], "api.model").strip(),
        key_file=key_file,
        timeout=as_duration(api_in["timeout"], "api.timeout", positive=True),
        service_tier=(as_choice(api_in["service_tier"], SERVICE_TIERS, "api.service_tier")
                      if "service_tier" in api_in else None),
        flex_fallback=as_bool(api_in["flex_fallback"], "api.flex_fallback"),
        flex_fallback_after=as_pos_int(api_in["flex_fallback_after"],
                                       "api.flex_fallback_after"),
        flex_timeout=as_duration(api_in["flex_timeout"], "api.flex_timeout", positive=True),
    )


def _daemon(d_in: Mapping[str, Any], base: Path | None, home: Path | None) -> DaemonConfig:
    """The [daemon] table, already laid over its defaults."""
    check_keys(d_in, _DAEMON_KEYS, "daemon")
    level = as_str(d_in["log_level"], "daemon.log_level").strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{d_in['log_level']!r} is not one of {', '.join(LOG_LEVELS)}",
                          key="daemon.log_level")
    renew_before = as_duration(d_in["renew_before"], "daemon.renew_before")
    if renew_before >= FILE_TTL_SECONDS:
        # Every fresh copy would already be due for renewal: an upload loop.
        raise ConfigError(
            f"{d_in['renew_before']!r} must be shorter than a file's lifetime "
            f"({format_duration(FILE_TTL_SECONDS)})", key="daemon.renew_before")
    return DaemonConfig(
        state_dir=as_path(d_in["state_dir"], "daemon.state_dir", base, home),
        settle=as_duration(d_in["settle"], "daemon.settle"),
        rescan_every=as_duration(d_in["rescan_every"], "daemon.rescan_every", positive=True),
        refresh_every=as_duration(d_in["refresh_every"], "daemon.refresh_every", positive=True),
        renew_before=renew_before,
        keep_alive=as_choice(d_in["keep_alive"], KEEP_ALIVE, "daemon.keep_alive"),
        storage_budget=_storage_budget(d_in["storage_budget"], "daemon.storage_budget"),
        keep_first=as_choice(d_in["keep_first"], KEEP_FIRST, "daemon.keep_first"),
        max_uploads=as_pos_int(d_in["max_uploads"], "daemon.max_uploads"),
        max_generations=as_pos_int(d_in["max_generations"], "daemon.max_generations"),
        requests_per_minute=as_pos_int(d_in["requests_per_minute"],
                                       "daemon.requests_per_minute"),
        log_level=level,
        http=(parse_listen(d_in["http"], "daemon.http", base, home)
              if d_in["http"] is not None else None),
        http_token=(as_str(d_in["http_token"], "daemon.http_token").strip()
                    if d_in["http_token"] is not None else None),
    )


def _storage_budget(value: Any, key: str) -> StorageBudget:
    """"90%" (of the project's store) or a size ("18GB"); never more than the store."""
    store = f"{MAX_PROJECT_BYTES / 1024**3:g} GiB"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100
        except ValueError:
            raise ConfigError(f"{value!r} is not a share like \"90%\"", key=key) from None
        if not 0 < share <= 1:
            raise ConfigError(f"{value!r} must be more than 0% and at most 100% of the "
                              f"project's store ({store})", key=key)
        return StorageBudget(share=share)
    if not isinstance(value, str):  # a bare 18 is more likely 18 GB than 18 bytes
        raise ConfigError(f"{value!r} needs a unit (e.g. \"18GB\") or a share like \"90%\"",
                          key=key)
    try:
        size = parse_size(value)
    except ValueError as e:
        raise ConfigError(f"{e}, or a share of the store like \"90%\"", key=key) from None
    if size <= 0:
        raise ConfigError(f"{value!r} must be more than zero", key=key)
    if size > MAX_PROJECT_BYTES:
        raise ConfigError(f"{value!r} is more than the service's store holds ({store} per "
                          "project); write at most that, or a share like \"90%\"", key=key)
    return StorageBudget(share=None, size=size)


def _folders(raw: Any, base: Path | None, home: Path | None,
             batch: BatchConfig) -> tuple[FolderConfig, ...]:
    """The [[folders]] array: at least one table, no folder inside another."""
    if raw is None:
        raise ConfigError("at least one [[folders]] table is required", key="folders")
    if not isinstance(raw, list):
        raise ConfigError("must be an array of tables: write [[folders]], not [folders]",
                          key="folders")
    if not raw:
        raise ConfigError("at least one [[folders]] table is required", key="folders")
    folders = tuple(_folder(f, f"folders[{i}]", base, home, batch) for i, f in enumerate(raw))
    for i, a in enumerate(folders):
        for j, b in enumerate(folders[:i]):
            _check_apart(a.path, b.path, i, j)
    return folders


def _check_apart(a: Path, b: Path, i: int, j: int) -> None:
    """folders[i].path against an earlier folders[j].path."""
    if a == b:
        raise ConfigError(f"{str(a)!r} repeats folders[{j}].path", key=f"folders[{i}].path")
    # A nested folder would be watched twice and its files claimed twice.
    if a.is_relative_to(b):
        raise ConfigError(f"{str(a)!r} is inside folders[{j}].path "
                          f"{str(b)!r}; folders must not nest", key=f"folders[{i}].path")
    if b.is_relative_to(a):
        raise ConfigError(f"{str(a)!r} contains folders[{j}].path "
                          f"{str(b)!r}; folders must not nest", key=f"folders[{i}].path")


def _folder(raw: Any, where: str, base: Path | None, home: Path | None,
            batch: BatchConfig | None = None) -> FolderConfig:
    t = as_table(raw, where)
    check_keys(t, _FOLDER_KEYS, where)
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
        path=as_path(t["path"], f"{where}.path", base, home),
        recursive=as_bool(t["recursive"], f"{where}.recursive"),
        polling=as_bool(t["polling"], f"{where}.polling"),
        include=as_str_list(t["include"], f"{where}.include"),
        exclude=as_str_list(t["exclude"], f"{where}.exclude"),
        prompts=prompts,
        knobs=parse_knobs(t, where),
        keep_alive=(as_choice(t["keep_alive"], KEEP_ALIVE, f"{where}.keep_alive")
                    if "keep_alive" in t else None),
        pinned=as_bool(t.get("pinned", False), f"{where}.pinned"),
        upload=as_choice(t.get("upload", "auto"), UPLOADS, f"{where}.upload"),
        follow_symlinks=as_bool(t["follow_symlinks"], f"{where}.follow_symlinks"),
        batch=parse_batch(t["batch"], f"{where}.batch", batch) if "batch" in t else None,
    )


def _prompt(raw: Any, where: str, base: Path | None = None,
            home: Path | None = None) -> PromptConfig:
    t = as_table(raw, where)
    check_keys(t, _PROMPT_KEYS, where)
    fmt = as_choice(t.get("format", "text"), FORMATS, f"{where}.format")
    if "sidecar" not in t and fmt in ("xmp", "subtitles"):
        t = {**t, "sidecar": _DEFAULT_SIDECAR[fmt]}
    for k in ("kinds", "prompt", "sidecar"):
        if k not in t:
            raise ConfigError("missing", key=f"{where}.{k}")
    kinds = _kinds(t["kinds"], f"{where}.kinds")
    sidecar = _sidecar(t["sidecar"], fmt, f"{where}.sidecar")
    model = None
    if "model" in t:
        model = as_str(t["model"], f"{where}.model").strip()
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
    languages = _languages(t, fmt, where)
    subtitles = _subtitles(t, kinds, where) if fmt == "subtitles" else ()
    naming = as_choice(t.get("naming", "stem" if fmt == "subtitles" else "append"), NAMINGS,
                       f"{where}.naming")
    # The prompt's system_instruction (a cost knob too) replaces the built-in one.
    system = (as_str(t["system_instruction"], f"{where}.system_instruction")
              if "system_instruction" in t else None)
    return PromptConfig(
        kinds=kinds,
        prompt=as_str(t["prompt"], f"{where}.prompt"),
        sidecar=sidecar,
        model=model,
        format=fmt,
        schema=schema,
        system_instruction=system,
        language=languages,
        subtitles=subtitles,
        naming=naming,
        max_cue=as_duration(t.get("max_cue", 7.0), f"{where}.max_cue", positive=True),
        alt_text=as_bool(t.get("alt_text", False), f"{where}.alt_text"),
        knobs=parse_knobs(t, where),
        upload=as_choice(t["upload"], UPLOADS, f"{where}.upload") if "upload" in t else None,
        ranges=_ranges(t, fmt, f"{where}.ranges"),
    )


RANGES_AUTO = "auto"


def _ranges(t: Mapping[str, Any], fmt: str, key: str) -> float | str | None:
    """``ranges``: "auto", "off" (or false), or a duration. Only answers that can be
    joined in order take it (text and subtitles); subtitles default to "auto"."""
    if "ranges" not in t:
        return RANGES_AUTO if fmt == "subtitles" else None
    if fmt not in ("text", "subtitles"):
        raise ConfigError("only applies to format = \"text\" or \"subtitles\" (answers "
                          "joined in order)", key=key)
    value = t["ranges"]
    if value is False or value == "off":
        return None
    if value == RANGES_AUTO:
        return RANGES_AUTO
    if value is True:
        raise ConfigError('must be "auto", "off" or a duration such as "20m"', key=key)
    seconds = as_duration(value, key, positive=True)
    if seconds < 60:
        raise ConfigError(f"{value!r} is too short: a part is at least a minute", key=key)
    return seconds


_DEFAULT_SIDECAR = {"xmp": ".xmp", "subtitles": ""}


def _kinds(raw: Any, key: str) -> tuple[str, ...]:
    """A prompt's kinds: a non-empty array of known kinds, repeats dropped, order kept."""
    if not isinstance(raw, list):
        raise ConfigError(f"must be an array like [\"image\"], not {type_name(raw)}", key=key)
    if not raw:
        raise ConfigError(f"must name at least one of {', '.join(KINDS)}", key=key)
    kinds: list[str] = []
    for v in raw:
        if v not in KINDS:
            raise ConfigError(f"{v!r} is not one of {', '.join(KINDS)}", key=key)
        if v not in kinds:
            kinds.append(v)
    return tuple(kinds)


def _sidecar(raw: Any, fmt: str, key: str) -> str:
    """A sidecar suffix: '.something', never a path, never a media extension."""
    sidecar = as_str(raw, key, empty=fmt == "subtitles")
    if fmt == "subtitles" and sidecar == "":
        pass  # clip + .en.srt: the name players look for
    elif not sidecar.startswith(".") or len(sidecar) < 2:
        raise ConfigError(f"{sidecar!r} must start with '.' (e.g. '.caption.md')", key=key)
    if any(c in sidecar for c in "/\\\0\n\r"):
        raise ConfigError(f"{sidecar!r} must not contain '/', '\\' or control characters",
                          key=key)
    if media_type("x" + sidecar) is not None:
        # The sidecar would look like media: mediasync would caption its own captions,
        # and ignoring the suffix would ignore real media too.
        raise ConfigError(f"{sidecar!r} must not end with a media extension", key=key)
    return sidecar


def _languages(t: Mapping[str, Any], fmt: str, where: str) -> tuple[str, ...]:
    """The prompt's language tags (one output each); subtitles default to English."""
    if "language" not in t:
        return ("en",) if fmt == "subtitles" else ()
    raw_lang = t["language"]
    langs = as_str_list(raw_lang, f"{where}.language") if isinstance(raw_lang, list) else (
        as_str(raw_lang, f"{where}.language"),)
    for v in langs:
        if not _LANG.match(v):
            raise ConfigError(f"{v!r} is not a language code like \"en\" or \"pt-BR\"",
                              key=f"{where}.language")
    return tuple(dict.fromkeys(langs))


def _subtitles(t: Mapping[str, Any], kinds: tuple[str, ...], where: str) -> tuple[str, ...]:
    """The subtitle formats of a format = "subtitles" prompt (srt by default)."""
    subs = as_str_list(t.get("subtitles", ["srt"]), f"{where}.subtitles")
    if not subs:
        raise ConfigError(f"must name at least one of {', '.join(SUBTITLE_FORMATS)}",
                          key=f"{where}.subtitles")
    for v in subs:
        as_choice(v, SUBTITLE_FORMATS, f"{where}.subtitles")
    if "image" in kinds:
        raise ConfigError("subtitles need audio or video; remove \"image\"",
                          key=f"{where}.kinds")
    return tuple(dict.fromkeys(subs))


def _schema(value: Any, key: str, base: Path | None, home: Path | None) -> str:
    """A JSON Schema from an inline table or a .json file, checked, as canonical JSON."""
    if isinstance(value, Mapping):
        schema: Any = dict(value)
    elif isinstance(value, str):
        path = as_path(value, key, base, home)
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
        raise ConfigError(f"must be a table or a file path, not {type_name(value)}", key=key)
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
    """The API key (see :func:`find_api_key`)."""
    return find_api_key(api, env)[0]


def find_api_key(api: ApiConfig, env: Mapping[str, str]) -> tuple[str, str]:
    """(the API key, where it was found) from api.key_file,
    $CREDENTIALS_DIRECTORY/gemini-api-key, GEMINI_API_KEY, GOOGLE_API_KEY, in that
    order. Errors name where it looked, never the key."""
    if api.key_file is not None:
        # Named explicitly: a fault here is an error, not a reason to fall back.
        return _read_key_file(api.key_file, "api.key_file"), f"api.key_file {api.key_file}"
    looked = []
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        p = Path(creds) / KEY_FILE_NAME
        if os.path.lexists(p):
            origin = f"$CREDENTIALS_DIRECTORY/{KEY_FILE_NAME}"
            return _read_key_file(p, "$CREDENTIALS_DIRECTORY"), origin
        looked.append(str(p))
    else:
        looked.append(f"$CREDENTIALS_DIRECTORY/{KEY_FILE_NAME} (not set)")
    for var in KEY_ENV_VARS:
        value = env.get(var, "").strip()
        if value:
            _check_key(value, f"${var}")
            return value, f"${var}"
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
