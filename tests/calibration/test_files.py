"""Paths and names from outside: a named pipe, a path with a NUL, a path too long for the
system, a 5,000-digit number or a 100,000-character name give a clear KnowpainError quickly,
with the offending text cut short — never a hang, a traceback or a message of megabytes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import model
from calibration.cases import check_cases_csv, read_case_file
from calibration.files import read_at_most
from calibration.loader import DEFAULT_PATH, load_calibration, parse_calibration
from calibration.store import Store, active_version_if_any
from model.errors import CalibrationError, CaseImportError, StoreError, UsageError

CAL = model.load_model().calibration
VOCAB = {"variables": CAL.variables, "causes": CAL.causes, "outcome_node": CAL.outcome}
LONG = "z" * 100_000


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    yield path
    # should a reader be stuck on the pipe, a writer lets it go so the suite cannot hang
    def release() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    threading.Thread(target=release, daemon=True).start()


def within(seconds: float, call):
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it blocks."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    return outcome[0]


def test_a_named_pipe_is_refused_by_every_reader(fifo: Path, tmp_path: Path) -> None:
    for call, kind in (
        (lambda: load_calibration(fifo), CalibrationError),
        (lambda: read_case_file(fifo, **VOCAB), CaseImportError),
        (lambda: Store(fifo), StoreError),
        (lambda: active_version_if_any(fifo), StoreError),
    ):
        error = within(5, call)
        assert isinstance(error, kind), error
        assert "named pipe" in str(error)


@pytest.mark.parametrize("path", ["/tmp/a\x00b", "/tmp/" + "y" * 5000])
def test_paths_the_system_cannot_take_are_named_short(path: str) -> None:
    for call, kind in (
        (lambda: load_calibration(path), CalibrationError),
        (lambda: read_case_file(path, **VOCAB), CaseImportError),
        (lambda: active_version_if_any(path), StoreError),
    ):
        with pytest.raises(kind) as info:
            call()
        message = str(info.value)
        assert "y" * 200 not in message and "\x00" not in message, message[:300]


def test_read_at_most_refuses_folders_and_non_paths(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_at_most(tmp_path, 10)
    with pytest.raises(OSError, match="must be text"):
        read_at_most(None, 10)  # type: ignore[arg-type]
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert read_at_most(tmp_path / "f", 10) == b"x" * 11


def test_cases_data_of_the_wrong_type_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="bytes, text or a file object"):
        check_cases_csv(5, **VOCAB)  # type: ignore[arg-type]


def test_a_number_of_thousands_of_digits_is_a_calibration_error() -> None:
    with pytest.raises(CalibrationError, match="not valid TOML") as info:
        parse_calibration("x = " + "9" * 5000)
    assert "set_int_max_str_digits" not in str(info.value)


def test_long_names_and_cells_are_quoted_short() -> None:
    t0 = time.perf_counter()
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    with pytest.raises(CalibrationError) as info:
        parse_calibration(text.replace("[nodes.training_age]", f"[nodes.n{LONG}]", 1),
                          base_dir=DEFAULT_PATH.parent)
    assert len(str(info.value)) < 20_000
    for data in (f"training_age,{LONG}\nnovice,x\n",           # an unknown column
                 f"training_age\n{LONG}\n",                      # an unknown state
                 f"case_id,training_age\n{LONG},novice\n{LONG},novice\n"):  # a repeated id
        try:
            found = check_cases_csv(data.encode(), **VOCAB)
            message = " ".join(p for b in found.broken for p in b.problems)
        except CaseImportError as exc:
            message = str(exc)
        assert message and LONG[:200] not in message and len(message) < 5_000, data[:40]
        assert "(100,000 characters)" in message
    assert time.perf_counter() - t0 < 5


def test_old_mac_line_endings_read_as_rows() -> None:
    rows = ["training_age,low_back_soreness", *["novice,mild"] * 60]
    for text in ("\r".join(rows), '"training_age",low_back_soreness\r' + "\r".join(rows[1:])):
        found = check_cases_csv(text.encode(), **VOCAB)
        assert len(found.cases) == 60 and not found.broken


def test_a_byte_order_mark_is_read_and_a_misspelt_section_is_warned_about() -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    cal = parse_calibration("\ufeff" + text + "\n[nodse]\nx = 1\n", base_dir=DEFAULT_PATH.parent)
    assert any("'nodse'" in w and "ignored" in w for w in cal.warnings)


def test_next_session_numbers_keep_the_probability_floor() -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    tiny = text.replace("yes = [0.50, 0.50] }", "yes = [1e-320, 1.0] }", 1)
    assert tiny != text
    with pytest.raises(CalibrationError, match="at least 1e-12"):
        parse_calibration(tiny, base_dir=DEFAULT_PATH.parent)
