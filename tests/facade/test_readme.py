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
    assert lines[4].startswith("['This looks like expected soreness")


def test_any_network_example_runs_on_the_exported_network(tmp_path, monkeypatch, capsys):
    """The second Python block, on the BIF file `knowpain export` writes, agrees with Model."""
    import model
    from model.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path / "home"))
    assert main(["export", "--format", "bif", "--out", "knowpain.bif"]) == 0
    capsys.readouterr()
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2, "README has no any-network example"
    exec(compile(blocks[1], "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    m = model.load_model()
    expected = m.posterior({"max_attempt": "yes"})["stabilizer_overload"]["yes"]
    assert float(lines[0]) == round(expected, 3)
    assert lines[1] == f"(3, {sum(len(s) for s in m.variables.values())})"


def test_two_commands_come_first_and_exist():
    first = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    assert "make app" in first and "make test" in first
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^app:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_command_line_in_the_readme_runs_as_written(tmp_path):
    """The command-line and therapist blocks run in order in a fresh folder, each line
    exiting 0 (``knowpain app`` starts a server: the wheel check and e2e tests cover it)."""
    import os
    import subprocess
    import sys

    from calibration.loader import load_calibration
    from model.learning.sampling import sample_cases

    blocks = [re.search(rf"{heading}\n.*?```bash\n(.*?)```", README, re.S).group(1)
              for heading in ("## Command line", "## For therapists")]
    lines = [ln for b in blocks for ln in b.splitlines()
             if ln.strip() and not ln.startswith("knowpain app")]
    assert len(lines) >= 15
    cases = sample_cases(load_calibration(), 3000, seed=11)
    cases.insert(0, "case_id", range(len(cases)))
    cases.to_csv(tmp_path / "clinic.csv", index=False)
    env = {**os.environ, "HOME": str(tmp_path), "KNOWPAIN_HOME": str(tmp_path / "home"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "set -euo pipefail\n" + "\n".join(f"{ln} >/dev/null" for ln in lines)
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "pooled.toml").is_file() and (tmp_path / "all_cases.csv").is_file()


def test_the_clinical_review_counts_match_the_data():
    import model

    m = model.load_model()
    section = README.split("## Clinical review")[1].split("\n## ")[0]
    assert f"{len(m.warning_signs)} questions" in section
    assert f"{len(m.calibration.checks)} orderings" in section
    assert f"{len(m.calibration.decision_checks)} properties" in section
