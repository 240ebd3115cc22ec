"""The README's Python example runs as written, and its commands are the Makefile's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "README has no Python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "none"  # the example asks about a lifter with no warning sign
    assert "stabilizer_overload" in lines[1]
    assert lines[2].startswith("Keep your brace")  # the best fix for a beginner


def test_two_commands_come_first_and_exist():
    first = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    assert "make app" in first and "make test" in first
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^app:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
