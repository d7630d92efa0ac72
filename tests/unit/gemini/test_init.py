"""mediasync.gemini lends its names on first use (PEP 562): the names it lists, the
names it can lend and the names type checkers see are one set."""

from __future__ import annotations

import ast
from pathlib import Path

import mediasync.gemini as gemini


def test_every_listed_name_is_lent_and_seen_by_type_checkers() -> None:
    tree = ast.parse(Path(gemini.__file__).read_text())
    checked = {alias.asname or alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.level == 1
               for alias in node.names}
    assert set(gemini.__all__) == checked
    for name in gemini.__all__:
        assert getattr(gemini, name) is not None
