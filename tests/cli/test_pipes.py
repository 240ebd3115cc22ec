"""Pipes: a command that writes a file writes it whatever happens to its stdout — piped into
``head -1`` it still writes the file and exits 0 — and exits non-zero when it could not.

Real processes in a real shell pipeline (``bash -c 'knowpain ... | head -1'``), with the
status of ``knowpain`` itself taken from ``PIPESTATUS``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from calibration.loader import load_calibration, parse_calibration
from model.learning.sampling import sample_cases

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None or not shutil.which("head"),
                                reason="needs bash and head")


def knowpain_piped(args: list[str], tmp_path: Path) -> tuple[int, str, str]:
    """Run ``knowpain ARGS | head -1``; return knowpain's own exit status, what head
    printed, and knowpain's stderr."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["KNOWPAIN_HOME"] = str(tmp_path / "home")
    env.pop("KNOWPAIN_THERAPIST_PASSCODE", None)
    command = " ".join([f"'{sys.executable}'", "-m", "model.cli",
                        *(f"'{a}'" for a in args)])
    script = (f"{command} 2> '{tmp_path / 'stderr.txt'}' | head -1; "
              "echo \"status=${PIPESTATUS[0]}\"")
    proc = subprocess.run([BASH, "-c", script], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    lines = proc.stdout.splitlines()
    status = int(lines[-1].removeprefix("status="))
    return status, "\n".join(lines[:-1]), (tmp_path / "stderr.txt").read_text()


@pytest.fixture(scope="module")
def cases_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cal = load_calibration()
    frame = sample_cases(cal, 150, seed=4).drop(columns=["technique_breakdown"])
    frame = frame.rename(columns={c: f"cause:{c}" for c in cal.causes})
    path = tmp_path_factory.mktemp("cases") / "cases.csv"
    frame.to_csv(path, index=False)
    return path


def test_fit_piped_into_head_still_writes_its_file(tmp_path: Path, cases_csv: Path) -> None:
    out = tmp_path / "refit.toml"
    status, head, err = knowpain_piped(
        ["calibration", "fit", "--cases", str(cases_csv), "--out", str(out), "--folds", "0"],
        tmp_path)
    assert status == 0, err
    assert head.startswith("Base: ")  # head read one line and closed the pipe
    assert out.is_file() and parse_calibration(out.read_text(encoding="utf-8")).nodes
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_pool_piped_into_head_still_writes_its_file(tmp_path: Path) -> None:
    default = str(REPO / "calibration" / "data" / "default.toml")
    out = tmp_path / "pooled.toml"
    status, head, err = knowpain_piped(["calibration", "pool", default, default, "--out",
                                        str(out)], tmp_path)
    assert status == 0, err
    assert head.startswith("Pooling 2 calibrations")
    assert out.is_file() and parse_calibration(out.read_text(encoding="utf-8")).nodes
    assert "Traceback" not in err


@pytest.mark.parametrize("where", ["missing folder", "exists"])
def test_a_file_that_cannot_be_written_exits_non_zero_even_when_piped(
        tmp_path: Path, cases_csv: Path, where: str) -> None:
    out = tmp_path / "nope" / "refit.toml" if where == "missing folder" else \
        tmp_path / "taken.toml"
    if where == "exists":
        out.write_text("keep me", encoding="utf-8")
    status, _, err = knowpain_piped(
        ["calibration", "fit", "--cases", str(cases_csv), "--out", str(out), "--folds", "0"],
        tmp_path)
    assert status == 6, err  # ExitStatus.CANNOT_WRITE
    assert "knowpain: error:" in err
    if where == "exists":
        assert out.read_text(encoding="utf-8") == "keep me"
    status, _, err = knowpain_piped(["calibration", "pool", str(REPO / "calibration" / "data"
                                                                 / "default.toml"),
                                     str(REPO / "calibration" / "data" / "default.toml"),
                                     "--out", str(out)], tmp_path)
    assert status == 6, err


@pytest.mark.parametrize("stdout", ["> /dev/full", ">&-"])
def test_a_full_or_closed_stdout_still_writes_the_file(tmp_path: Path, stdout: str) -> None:
    """``> /dev/full`` (no space): the file is written and the lost report is an error
    (status 6); ``>&-`` (no stdout at all): nobody is reading, so the status is the work's."""
    if stdout == "> /dev/full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["KNOWPAIN_HOME"] = str(tmp_path / "home")
    out = tmp_path / "pooled.toml"
    default = REPO / "calibration" / "data" / "default.toml"
    script = (f"'{sys.executable}' -m model.cli calibration pool '{default}' '{default}' "
              f"--out '{out}' {stdout}; echo \"status=$?\" >&2")
    proc = subprocess.run([BASH, "-c", script], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert out.is_file() and parse_calibration(out.read_text(encoding="utf-8")).nodes
    assert "Traceback" not in proc.stderr
    if stdout == "> /dev/full":
        assert "status=6" in proc.stderr
        assert "could not write to standard output: No space left on device" in proc.stderr
    else:
        assert "status=0" in proc.stderr
