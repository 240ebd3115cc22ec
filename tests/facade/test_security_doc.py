"""SECURITY.md names the tests that cover each threat: every one of them exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "SECURITY.md").read_text(encoding="utf-8")


def test_every_test_the_threat_model_names_exists():
    refs = re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`", TEXT)
    assert len(refs) > 20
    last_file = None
    for path, name in refs:
        file = ROOT / path
        assert file.is_file(), path
        last_file = file
        if name:
            assert re.search(rf"def {name[2:]}\b", file.read_text(encoding="utf-8")), path + name
    # "`::name`" right after a file refers to that file
    for name in re.findall(r"`::(\w+)`", TEXT):
        assert any(re.search(rf"def {name}\b", (ROOT / p).read_text(encoding="utf-8"))
                   for p, _ in refs), name
    assert last_file is not None


def test_every_threat_row_names_a_test():
    rows = [line for line in TEXT.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 14
    for row in rows:
        assert "`tests/" in row, row[:60]
