"""Write the tables the code holds into the docs, so they are generated, not copied.

A table in a markdown file sits between two markers naming its source, a mapping from
an enum to a NamedTuple (``mediasync.rules.states.COPY_STATES``, say):

    <!-- table: mediasync.rules.states.COPY_STATES (docs/tables.py writes it) -->
    | state | recorded as | way out |
    ...
    <!-- end of table -->

Run from the repository root:

    .venv/bin/python docs/tables.py            # rewrite the tables in README.md and docs/*.md
    .venv/bin/python docs/tables.py --check    # only list the files whose tables differ (exit 1)

tests/unit/test_docs.py fails while a doc holds a table other than the generated one.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(?P<open><!-- table: (?P<source>[\w.]+)[^\n]*-->\n)(?P<body>.*?)"
    r"(?P<close><!-- end of table -->)",
    re.S,
)


def docs(root: Path = ROOT) -> list[Path]:
    """The markdown files that may hold generated tables."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def source(dotted: str) -> Mapping[Enum, Any]:
    """The mapping a marker names: a module's attribute."""
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def render(table: Mapping[Enum, Any]) -> str:
    """A markdown table: one row per enum member (its value first), one column per
    field of the NamedTuple rows, padded so the source reads as a table too."""
    fields = next(iter(table.values()))._fields
    header = ["state", *(f.replace("_", " ") for f in fields)]
    rows = [[str(key.value), *row] for key, row in table.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"


def refreshed(text: str) -> str:
    """``text`` with every marked table generated again from its source."""
    return BLOCK.sub(lambda m: m["open"] + render(source(m["source"])) + m["close"], text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for path in docs():
        text = path.read_text(encoding="utf-8")
        new = refreshed(text)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "differ" if args.check else "rewritten"
    for path in stale:
        print(f"{path}: tables {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # run as a script: import the worktree's mediasync
    sys.exit(main())
