"""Cases CSV from other machines: size, rows, fields and problems are bounded; a pathological
file at the size limit fails fast with a clear CaseImportError instead of minutes and
gigabytes."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from bounds import bounded_block

import model
from calibration import limits
from calibration.cases import allowed_columns, parse_cases_csv, read_cases_csv
from model.errors import CaseImportError

CAL = model.load_model().calibration
VOCAB = {"variables": CAL.variables, "causes": CAL.causes, "outcome_node": CAL.outcome}
AT_LIMIT = limits.MAX_CASE_BYTES - 64


def parse(data, **kwargs) -> CaseImportError:
    with pytest.raises(CaseImportError) as info:
        parse_cases_csv(data, **VOCAB, **kwargs)
    return info.value


@pytest.fixture
def bounded():
    """Fail if the block took more than 3 s or more than 160 MB of Python heap at its peak
    (the input is at the size limit; before the limits the worst of these took 69-115 s and
    2.9-3.1 GB)."""
    with bounded_block(3.0, 160):
        yield


@pytest.mark.parametrize(("data", "needle"), [
    (b"max_attempt" + b",max_attempt" * (AT_LIMIT // 12), "fields; the limit is 1,000"),
    (b"," * AT_LIMIT, "fields; the limit is 1,000"),
    (b"\n" * AT_LIMIT, f"more than {limits.MAX_CASE_ROWS:,} rows"),
    (b"max_attempt\n" + b"x\n" * (AT_LIMIT // 2 - 8),
     f"more than {limits.MAX_CASE_ROWS:,} rows"),
    (b"max_attempt\n" + b"no\n" * (AT_LIMIT // 3 - 8),
     f"more than {limits.MAX_CASE_ROWS:,} rows"),
    (b'"' + b"a" * AT_LIMIT, "malformed CSV"),
])
def test_pathological_files_at_the_size_limit_fail_fast(data, needle, bounded):
    error = parse(data)
    assert any(needle in p for p in error.problems), error.problems


def test_many_problems_are_counted_and_the_first_are_kept():
    columns = allowed_columns(**VOCAB)
    rows = ",".join("x" for _ in columns)
    data = (",".join(columns) + "\n" + (rows + "\n") * 5_000).encode()
    error = parse(data)
    assert len(error.problems) == limits.CASE_PROBLEMS_KEPT
    assert error.total > 100_000
    message = str(error)
    assert message.startswith(f"{error.total} problem(s)")
    assert f"... and {error.total - limits.CASE_PROBLEMS_SHOWN} more" in message
    assert message.count("\n  - ") == limits.CASE_PROBLEMS_SHOWN


def test_the_worst_file_within_the_limits_is_still_quick():
    """Every cell of the largest file a problem: millions counted, 200 kept."""
    columns = allowed_columns(**VOCAB)
    rows = ",".join("x" for _ in columns)
    data = (",".join(columns) + "\n" + (rows + "\n") * limits.MAX_CASE_ROWS).encode()
    start = time.perf_counter()
    error = parse(data)
    assert time.perf_counter() - start < 10  # about 2 s here
    assert error.total > 1_000_000 and len(error.problems) == limits.CASE_PROBLEMS_KEPT


def test_exactly_the_row_limit_is_accepted():
    data = "max_attempt,case_id\n" + "".join(f"no,{i}\n" for i in range(limits.MAX_CASE_ROWS))
    cases = parse_cases_csv(data, **VOCAB)
    assert len(cases) == limits.MAX_CASE_ROWS


def test_an_upload_is_read_at_most_one_byte_past_the_limit():
    asked: list[int] = []

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            asked.append(size)
            return b"a" * (size if size >= 0 else 10**9)

    error = parse(Endless(), max_bytes=1000)
    assert "the limit is 1,000 bytes" in str(error)
    assert asked == [1001]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_dev_zero_as_a_cases_file_is_refused_fast(bounded):
    with pytest.raises(CaseImportError, match="limit"):
        read_cases_csv("/dev/zero", **VOCAB)


@pytest.mark.parametrize("char", ["\x1b", "\x07", "\u202e", "\x85"])
def test_control_characters_are_refused_with_their_line(char):
    error = parse(f"max_attempt,therapist\nno,Dr{char}X\n")
    assert error.problems == [
        f"line 2: the file contains a control character (U+{ord(char):04X}); it is not "
        "plain CSV text"]
