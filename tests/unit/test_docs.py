"""Docs that cannot rot: every backticked reference to our code in README.md and
docs/*.md names something that exists, and the state tables in the docs are the ones
the code holds (docs/tables.py writes them).

What counts as a reference, in inline code spans (fenced blocks are commands):
- a path ending in ``.py`` or ``/``, or one with a ``/`` ending in ``.md``:
  ``gemini/client.py``, ``commands/``, ``docs/quotas.md``. It must exist under the
  repository, ``mediasync/`` or ``tests/`` (``wire/`` is tests/wire); a bare
  ``name.py`` anywhere in ``mediasync/`` or ``bench/``.
- a dotted name, a trailing call's arguments dropped: ``Mirror.ensure``,
  ``Engine.later(retry_at)``, ``steps.remote_step``, ``mediasync.media.probe``. It
  must resolve as one of:
  our code, read from the source (so instance attributes set in ``__init__`` count):
  ``mediasync.x.y``, a module by its last name (``steps``, ``sidecar``), or a class
  (``Store.mark_gone``), followed through annotated fields and base classes; a config
  key, as a field path of ``Config`` (``daemon.requests_per_minute``); the standard
  library or a dependency (``os.replace``); or a name of :data:`NOT_CODE`.
  File names (``photo.jpg.caption.md``, ``state.db``) are not code.
A name that resolves nowhere fails, which is how a renamed module (``plan.py``) or
method shows up after the code moved.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from mediasync.rules.states import COPY_STATES, OUTPUT_STATES, Copy, Output

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mediasync"

# Dotted names in the docs that are not our code: the File API's operations as the
# quota tables name them, the google-genai SDK's client as the benchmarks call it, and
# a kernel setting.
NOT_CODE = {
    "fs.inotify.max_user_watches": "sysctl",
    "files.get": "File API operation",
    "files.list": "File API operation",
    "upload.start": "File API operation",
    "client.files.get": "google-genai SDK",
    "client.files.upload": "google-genai SDK",
    "client.models.generate_content": "google-genai SDK",
    "models.get": "File API operation",
    "models.list": "File API operation",
    "thinkingConfig.thinkingBudget": "request field",
    "thinkingConfig.thinkingLevel": "request field",
    "generationConfig.mediaResolution": "request field",
    "part.mediaResolution.level": "request field",
    "usageMetadata.serviceTier": "answer field",
}
# The last part of a file name, not of a dotted code name.
FILE_SUFFIXES = {
    "db", "md", "txt", "json", "srt", "vtt", "xmp", "toml", "jpg", "jpeg", "png", "mp3",
    "mp4", "wav", "heic", "cr2", "service",
}

SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(r"[\w-]+(?:/[\w.-]+)*(?:\.py|/)|[\w-]+(?:/[\w.-]+)+\.md")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# -- an index of our code, from its source ----------------------------------------


@dataclass
class ClassInfo:
    name: str
    members: set[str] = field(default_factory=set)
    # member → class names in its annotation (followed for `api.key_file`)
    types: dict[str, set[str]] = field(default_factory=dict)
    bases: list[str] = field(default_factory=list)


@dataclass
class ModuleInfo:
    names: set[str] = field(default_factory=set)
    classes: dict[str, ClassInfo] = field(default_factory=dict)


@dataclass
class Index:
    modules: dict[str, ModuleInfo] = field(default_factory=dict)
    classes: dict[str, list[ClassInfo]] = field(default_factory=dict)


def _names_in(annotation: ast.expr | None) -> set[str]:
    if annotation is None:
        return set()
    return {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)} | {
        n.value.split(".")[-1]
        for n in ast.walk(annotation)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _targets(node: ast.stmt) -> list[tuple[str, ast.expr | None]]:
    if isinstance(node, ast.Assign):
        return [(t.id, None) for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [(node.target.id, node.annotation)]
    return []


def _class_info(node: ast.ClassDef, index: Index) -> ClassInfo:
    info = ClassInfo(node.name, bases=[ast.unparse(b).split(".")[-1] for b in node.bases])
    index.classes.setdefault(node.name, []).append(info)
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info.members.add(item.name)
            if any(ast.unparse(d) == "property" for d in item.decorator_list):
                info.types[item.name] = _names_in(item.returns)
            for sub in ast.walk(item):  # instance attributes: self.x = ... in any method
                targets = (
                    sub.targets if isinstance(sub, ast.Assign)
                    else [sub.target] if isinstance(sub, ast.AnnAssign) else []
                )
                for t in targets:
                    if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                            and t.value.id == "self"):
                        info.members.add(t.attr)
                        if isinstance(sub, ast.AnnAssign):
                            info.types.setdefault(t.attr, set()).update(
                                _names_in(sub.annotation))
        elif isinstance(item, ast.ClassDef):
            info.members.add(item.name)
            info.types[item.name] = {item.name}
            _class_info(item, index)
        for name, annotation in _targets(item):
            info.members.add(name)
            info.types.setdefault(name, set()).update(_names_in(annotation))
    return info


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements at module level, those under ``if``/``try`` included."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, (ast.If, ast.Try)):
            out += _top_level(node.body + node.orelse + getattr(node, "finalbody", []))
        else:
            out.append(node)
    return out


@cache
def code_index() -> Index:
    index = Index()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        info = ModuleInfo()
        index.modules[".".join(parts)] = info
        for node in _top_level(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info.names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                info.names.add(node.name)
                info.classes[node.name] = _class_info(node, index)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                info.names.update((a.asname or a.name).split(".")[0] for a in node.names)
            for name, _ in _targets(node):
                info.names.add(name)
    return index


# -- resolving a dotted name ---------------------------------------------------------


def _members(cls: ClassInfo, index: Index, seen: frozenset[str] = frozenset()) -> set[str]:
    out = set(cls.members)
    for base in cls.bases:
        for b in index.classes.get(base, []):
            if b.name not in seen:
                out |= _members(b, index, seen | {cls.name})
    return out


def _in_class(cls: ClassInfo, rest: list[str], index: Index) -> bool:
    if not rest:
        return True
    head = rest[0]
    if head not in _members(cls, index):
        return False
    if len(rest) == 1:
        return True
    followed = [cls, *(b for base in cls.bases for b in index.classes.get(base, []))]
    return any(
        _in_class(c, rest[1:], index)
        for owner in followed
        for t in owner.types.get(head, ())
        for c in index.classes.get(t, [])
    )


def _in_module(module: str, rest: list[str], index: Index) -> bool:
    if not rest:
        return True
    head, info = rest[0], index.modules[module]
    sub = f"{module}.{head}"
    if sub in index.modules and _in_module(sub, rest[1:], index):
        return True
    if head in info.classes:
        return _in_class(info.classes[head], rest[1:], index)
    if head in info.names:
        # A name imported into the module: a class of ours is followed, a function ends.
        return len(rest) == 1 or any(
            _in_class(c, rest[1:], index) for c in index.classes.get(head, [])
        )
    return False


def _library(parts: list[str]) -> bool:
    """The standard library's or a dependency's (never a module of this repository)."""
    try:
        obj: object = importlib.import_module(parts[0])
    except Exception:
        return False
    origin = getattr(obj, "__file__", None)
    if origin is not None and Path(origin).resolve().is_relative_to(ROOT):
        return False
    assert isinstance(obj, ModuleType)
    for part in parts[1:]:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def resolves(name: str) -> bool:
    parts = name.split(".")
    index = code_index()
    if parts[0] == "mediasync":
        return _in_module("mediasync", parts[1:], index)
    modules = [m for m in index.modules if m.rsplit(".", 1)[-1] == parts[0]]
    if any(_in_module(m, parts[1:], index) for m in modules):
        return True
    if any(_in_class(c, parts[1:], index) for c in index.classes.get(parts[0], [])):
        return True
    if any(_in_class(c, parts, index) for c in index.classes["Config"]):
        return True  # a config key: `api.key_file`, `daemon.rescan_every`
    return _library(parts) or name in NOT_CODE


def path_exists(span: str) -> bool:
    if "/" not in span.rstrip("/"):
        if span.endswith("/"):
            bases = [ROOT, PACKAGE, ROOT / "tests"]
            return any((b / span).is_dir() for b in bases)
        return any(
            p.name == span for d in (ROOT, PACKAGE, ROOT / "bench") for p in d.rglob(span)
        )
    return any((b / span).exists() for b in (ROOT, PACKAGE, ROOT / "tests"))


def broken_references(text: str) -> list[str]:
    """The backticked references in markdown ``text`` that name nothing that exists."""
    broken = []
    for span in SPAN.findall(FENCE.sub("", text)):
        span = span.strip()
        if PATH.fullmatch(span):
            if not path_exists(span):
                broken.append(span)
            continue
        head = re.sub(r"\(.*\)$", "", span)
        if not DOTTED.fullmatch(head) or head.rsplit(".", 1)[-1] in FILE_SUFFIXES:
            continue
        if not resolves(head):
            broken.append(span)
    return broken


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: p.name)
def test_every_code_reference_in_the_docs_exists(doc: Path) -> None:
    assert broken_references(doc.read_text(encoding="utf-8")) == []


def test_a_broken_reference_is_caught() -> None:
    good = (
        "`Mirror.ensure` `Engine.later(retry_at)` `Store.mark_gone` `steps.remote_step` "
        "`mediasync.media.probe` `mediasync.store.Meta.LEARNED_LIMITS` `rules/steps.py` "
        "`gemini/` `wire/` `docs/quotas.md` `sidecar.py` `api.key_file` "
        "`daemon.requests_per_minute` `os.replace` `photo.jpg.caption.md` `Folders.take_stat` "
        "`Emulator.clock` `files.list` `mediasync emulator --port 0`"
    )
    assert broken_references(good) == []
    bad = [
        "plan.remote_step",  # a module that was split up
        "Mirror.no_such_method",
        "mediasync.probe",  # moved into mediasync.media
        "mediasync/quota.py",
        "gemini/nothing.py",
        "lenient.py",
        "api.no_such_key",
        "Engine.mark_dirty.oops",
        "os.no_such_function",
    ]
    text = "```sh\n`not.checked`\n```\n" + " ".join(f"`{b}`" for b in bad)
    assert broken_references(text) == bad


def test_not_code_names_are_still_in_the_docs() -> None:
    """The list of exceptions shrinks with the docs, so it never hides a reference."""
    text = "".join(p.read_text(encoding="utf-8") for p in doc_files())
    assert [n for n in NOT_CODE if f"`{n}" not in text] == []


# -- the state tables ---------------------------------------------------------------


def _tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("doc_tables", ROOT / "docs" / "tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_state_has_a_row() -> None:
    assert list(COPY_STATES) == list(Copy)
    assert list(OUTPUT_STATES) == list(Output)
    for row in [*COPY_STATES.values(), *OUTPUT_STATES.values()]:
        assert all(cell.strip() for cell in row)


def test_the_docs_hold_the_generated_state_tables() -> None:
    tables = _tables()
    arch = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in ("COPY_STATES", "OUTPUT_STATES"):
        assert f"<!-- table: mediasync.rules.states.{name} " in arch
    stale = [
        str(p.relative_to(ROOT))
        for p in tables.docs(ROOT)
        if tables.refreshed(t := p.read_text(encoding="utf-8")) != t
    ]
    assert stale == [], "run .venv/bin/python docs/tables.py to write the tables again"


def test_a_table_edited_by_hand_is_caught() -> None:
    tables = _tables()
    arch = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    edited = arch.replace("| serving ", "| servin' ", 1)
    assert edited != arch
    assert tables.refreshed(edited) == tables.refreshed(arch) != edited
