"""Cases as CSV: validated import (all or nothing) and export, generic over a vocabulary.

The vocabulary is ``variables: {node: [states...]}`` plus the list of cause nodes and,
optionally, the outcome node (the node whose state at the next session is the follow-up
outcome; for knowpain ``low_back_soreness``).

Columns (header row required; any order; every column optional)
-----------------------------------------------------------------
* ``<node>`` — evidence: a state of that node. An empty cell means "unknown / not asked".
* ``cause:<cause>`` — the therapist's adjudicated judgement for that cause node, one of its
  states (e.g. ``yes`` / ``no``); empty = not adjudicated. The ``cause:`` prefix keeps the
  judgement apart from evidence *about* the same node, so both can appear in one file.
* ``outcome`` — the state of the outcome node at the next session; empty = unknown. Only
  accepted when an ``outcome_node`` is given.
* ``therapist`` — who recorded the case; empty = the person importing the file.
* ``case_id`` — free text. On export it is the store's case id; on import it must be unique
  within the file and is otherwise not stored (the store assigns new ids).

Cells are compared after stripping surrounding spaces; states are case-sensitive. Rows whose
cells are all empty (including blank lines) are skipped.

Row numbers
-----------
Problems name rows **as a spreadsheet shows them: the header is row 1, the first data row is
row 2**; a quoted cell spanning several lines still counts as one row. Columns are named by
their header text (header problems also give the spreadsheet column letter).

Safety
------
Uploads are size-limited *before* parsing (:data:`DEFAULT_MAX_BYTES`; at most that plus one
byte is ever read, from a file or an upload), decoded as UTF-8 text without control
characters, and split into records by ``csv`` one record at a time, giving up at the first
record past :data:`~calibration.limits.MAX_CASE_ROWS` rows or
:data:`~calibration.limits.MAX_CASE_COLUMNS` fields; only then is it parsed by
``pandas.read_csv(dtype=str, keep_default_na=False)`` — no pickle, no evaluation. Every
problem in a file is counted in :class:`CaseImportError` (the first
:data:`~calibration.limits.CASE_PROBLEMS_KEPT` are kept, the message lists the first 20), and
nothing is returned (so nothing can be stored) unless the whole file is valid. On export,
free-text cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or
carriage return) are prefixed with ``'``; import removes that guard again, so export and
import round-trip.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from calibration.limits import (
    CASE_PROBLEMS_KEPT,
    MAX_CASE_BYTES,
    MAX_CASE_COLUMNS,
    MAX_CASE_ROWS,
)
from calibration.store import Case, NewCase
from model.errors import CaseImportError

__all__ = [
    "CASE_ID_COLUMN",
    "CAUSE_PREFIX",
    "DEFAULT_MAX_BYTES",
    "OUTCOME_COLUMN",
    "THERAPIST_COLUMN",
    "CaseImportError",
    "allowed_columns",
    "cases_to_csv",
    "parse_cases_csv",
    "read_cases_csv",
]

#: Prefix of adjudicated-cause columns: ``cause:stabilizer_overload``.
CAUSE_PREFIX = "cause:"
#: Column holding the follow-up outcome (state of the outcome node at the next session).
OUTCOME_COLUMN = "outcome"
#: Optional column naming the therapist who recorded the case.
THERAPIST_COLUMN = "therapist"
#: Optional column with a case identifier (unique within the file).
CASE_ID_COLUMN = "case_id"
#: Largest accepted upload, in bytes (5 MB; see :mod:`calibration.limits`).
DEFAULT_MAX_BYTES = MAX_CASE_BYTES

_RESERVED = (OUTCOME_COLUMN, THERAPIST_COLUMN, CASE_ID_COLUMN)
_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class _Problems(list):
    """A list of problems that keeps the first :data:`CASE_PROBLEMS_KEPT` and counts all."""

    total = 0

    def append(self, problem: str) -> None:
        self.total += 1
        if len(self) < CASE_PROBLEMS_KEPT:
            super().append(problem)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------


def _check_vocabulary(
    variables: Mapping[str, Sequence[str]], causes: Sequence[str], outcome_node: str | None
) -> None:
    """Programming errors in the vocabulary itself (not the file) raise ValueError."""
    for node in variables:
        if node in _RESERVED or node.startswith(CAUSE_PREFIX):
            raise ValueError(f"node name {node!r} clashes with a reserved CSV column")
    for cause in causes:
        if cause not in variables:
            raise ValueError(f"cause {cause!r} is not a node of the vocabulary")
    if outcome_node is not None and outcome_node not in variables:
        raise ValueError(f"outcome node {outcome_node!r} is not a node of the vocabulary")


def allowed_columns(
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    *,
    outcome_node: str | None = None,
) -> list[str]:
    """Every column a cases CSV may have, in the order :func:`cases_to_csv` writes them."""
    _check_vocabulary(variables, causes, outcome_node)
    columns = [CASE_ID_COLUMN, *variables, *(CAUSE_PREFIX + c for c in causes)]
    if outcome_node is not None:
        columns.append(OUTCOME_COLUMN)
    columns.append(THERAPIST_COLUMN)
    return columns


# --------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------


def read_cases_csv(
    path: str | os.PathLike[str],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    *,
    outcome_node: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[NewCase]:
    """Read and validate a cases CSV file; see :func:`parse_cases_csv`.

    The file size is checked before the file is read, and at most ``max_bytes + 1`` bytes
    are read whatever the size says (a device such as ``/dev/zero`` reports 0).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise CaseImportError([_too_big(size, max_bytes)])
        with path.open("rb") as fh:
            return parse_cases_csv(
                fh, variables, causes, outcome_node=outcome_node, max_bytes=max_bytes
            )
    except OSError as exc:
        raise CaseImportError([f"cannot read {path}: {exc.strerror or exc}"]) from exc


def parse_cases_csv(
    data: bytes | bytearray | memoryview | str | IO[bytes] | IO[str],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    *,
    outcome_node: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[NewCase]:
    """Validate CSV content and return its cases, or raise :class:`CaseImportError`.

    ``data`` is the file content (bytes or text) or an open file object (e.g. a Streamlit
    upload); at most ``max_bytes + 1`` bytes are read from it. Every problem is reported at
    once; nothing is returned unless the whole file is valid. Each case's ``therapist`` is the
    ``therapist`` cell, or ``None`` (meaning "the importer", see ``Store.add_cases``).
    """
    _check_vocabulary(variables, causes, outcome_node)
    text = _decode(_read_limited(data, max_bytes), max_bytes)

    records, structure_problem = _records(text)
    if structure_problem is not None:
        raise CaseImportError([structure_problem])
    if not records or all(not any(c.strip() for c in r) for r in records):
        raise CaseImportError(["the file is empty (expected a header row and one row per case)"])

    import pandas as pd  # only here: reading cases is not on the query path

    width = max(len(r) for r in records)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            header=None,
            names=list(range(width)),
            skip_blank_lines=False,
            index_col=False,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise CaseImportError([f"the file could not be parsed as CSV: {exc}"]) from exc
    if len(frame) != len(records):
        raise CaseImportError([
            f"the file could not be read consistently ({len(records)} rows by one CSV reader, "
            f"{len(frame)} by another); check for stray quote characters"
        ])
    cells = frame.to_numpy(dtype=object, na_value="").tolist()
    rows: list[list[str]] = [[v.strip() if isinstance(v, str) else "" for v in r] for r in cells]

    return _validate(rows, records, variables, causes, outcome_node)


def _too_big(size: int | None, max_bytes: int) -> str:
    what = f"is {size:,} bytes" if size is not None else "is larger than that"
    return (
        f"the file {what}; the limit is {max_bytes:,} bytes ({max_bytes / 1_048_576:.1f} MB)"
        " — split it into smaller files"
    )


def _read_limited(
    data: bytes | bytearray | memoryview | str | IO[bytes] | IO[str], max_bytes: int
) -> bytes:
    size: int | None
    if isinstance(data, str):
        raw = data.encode("utf-8")
        size = len(raw)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        size = len(raw)
    elif hasattr(data, "read"):
        chunk = data.read(max_bytes + 1)  # never more than the limit (plus one byte)
        raw = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
        size = None
    else:
        raise TypeError(f"expected bytes, str or a file object, not {type(data).__name__}")
    if len(raw) > max_bytes:
        raise CaseImportError([_too_big(size, max_bytes)])
    return raw


def _decode(raw: bytes, max_bytes: int) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaseImportError([
            f"the file is not UTF-8 text (undecodable byte at position {exc.start}); "
            "save it as 'CSV UTF-8'"
        ]) from exc
    if "\x00" in text:
        raise CaseImportError(["the file contains NUL bytes; it is not a CSV text file"])
    control = _CONTROL.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise CaseImportError([
            f"line {line}: the file contains a control character "
            f"(U+{ord(control.group()):04X}); it is not plain CSV text"
        ])
    return text


def _records(text: str) -> tuple[list[list[str]], str | None]:
    """Split into records (spreadsheet rows); a quoting error or a record past the row or
    field limits (:mod:`calibration.limits`) is returned as a problem, and reading stops
    there — a pathological file costs no more than the limits allow."""
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for record in reader:
            if len(record) > MAX_CASE_COLUMNS:
                return records, (
                    f"row {len(records) + 1}: {len(record):,} fields; the limit is "
                    f"{MAX_CASE_COLUMNS:,} (is the delimiter a comma?)"
                )
            if len(records) > MAX_CASE_ROWS:  # the header plus MAX_CASE_ROWS rows
                return records, (
                    f"the file has more than {MAX_CASE_ROWS:,} rows, the limit for one "
                    "import; split it into smaller files"
                )
            records.append(record)
    except csv.Error as exc:
        row = len(records) + 1
        return records, (
            f"row {row}: malformed CSV ({exc}); check the quote characters in this row "
            f"(line {reader.line_num} of the file)"
        )
    return records, None


def _column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA (as spreadsheets label columns)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def _unguard(value: str) -> str:
    """Undo the formula guard written by :func:`cases_to_csv`."""
    if value.startswith("'") and _needs_guard(value[1:]):
        return value[1:]
    return value


def _needs_guard(value: str) -> bool:
    return value.startswith(_FORMULA_START) or (
        value.startswith("'") and value[1:2] in (*_FORMULA_START, "'")
    )


def _guard(value: str) -> str:
    return "'" + value if _needs_guard(value) else value


def _validate(
    rows: list[list[str]],
    records: list[list[str]],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    outcome_node: str | None,
) -> list[NewCase]:
    problems: list[str] = _Problems()
    header = rows[0]
    width = len(records[0])
    data = list(enumerate(rows[1:], start=2))  # (spreadsheet row number, cells)
    allowed = allowed_columns(variables, causes, outcome_node=outcome_node)

    # ---- header: what each column means ----
    # kind per column index: ("evidence", node) | ("cause", node) | ("outcome", node) |
    # ("therapist", "") | ("case_id", "")
    kinds: dict[int, tuple[str, str]] = {}
    seen: dict[str, int] = {}
    for j, name in enumerate(header[:width]):
        where = f"row 1, column {_column_letter(j)}"
        if not name:
            if any(j < len(cells) and cells[j] for _, cells in data):
                problems.append(f"{where}: the column has data but no name in the header")
            continue
        if name in seen:
            problems.append(
                f'{where}: column "{name}" appears more than once '
                f"(also column {_column_letter(seen[name])})"
            )
            continue
        seen[name] = j
        if name in variables:
            kinds[j] = ("evidence", name)
        elif name.startswith(CAUSE_PREFIX) and name[len(CAUSE_PREFIX):] in causes:
            kinds[j] = ("cause", name[len(CAUSE_PREFIX):])
        elif name == OUTCOME_COLUMN and outcome_node is not None:
            kinds[j] = ("outcome", outcome_node)
        elif name in (THERAPIST_COLUMN, CASE_ID_COLUMN):
            kinds[j] = (name, "")
        else:
            hint = difflib.get_close_matches(name, allowed, n=1)
            suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
            problems.append(
                f'{where}: unknown column "{name}"{suggestion}; allowed columns: '
                + ", ".join(allowed)
            )
    has_content_columns = any(
        kind in ("evidence", "cause", "outcome") for kind, _ in kinds.values()
    )
    if not has_content_columns:
        problems.append(
            "row 1: no evidence, cause or outcome columns in the header; allowed columns: "
            + ", ".join(allowed)
        )

    # ---- rows ----
    checks = [
        (j, kind, node, frozenset(variables[node]) if node else frozenset(),
         ", ".join(variables[node]) if node else "")
        for j, (kind, node) in sorted(kinds.items())
    ]
    cases: list[NewCase] = []
    first_row_with: dict[tuple[str, ...], int] = {}
    first_row_with_id: dict[str, int] = {}
    n_rows = 0
    for row_number, cells in data:
        record = records[row_number - 1]
        if not any(c.strip() for c in record):
            continue  # blank line or a row of empty cells
        n_rows += 1
        if len(record) != width:
            problems.append(
                f"row {row_number}: malformed row: {len(record)} fields, but the header has "
                f"{width} columns (check for a missing or unquoted comma)"
            )
            continue
        cells = cells[:width]
        evidence: dict[str, str] = {}
        adjudicated: dict[str, str] = {}
        outcome: str | None = None
        therapist: str | None = None
        case_id = ""
        has_content = False
        for j, kind, node, states, allowed_text in checks:
            value = cells[j]
            if not value:
                continue
            if kind == "therapist":
                therapist = _unguard(value)
                continue
            if kind == "case_id":
                case_id = _unguard(value)
                continue
            has_content = True
            if value not in states:
                problems.append(
                    f'row {row_number}, column "{header[j]}": unknown state "{value}"; '
                    f"allowed: {allowed_text} (or leave the cell empty if unknown)"
                )
            elif kind == "evidence":
                evidence[node] = value
            elif kind == "cause":
                adjudicated[node] = value
            else:
                outcome = value
        if not has_content and has_content_columns:
            problems.append(
                f"row {row_number}: no evidence, adjudicated cause or outcome in this row"
            )
        if case_id:
            if case_id in first_row_with_id:
                problems.append(
                    f'row {row_number}, column "{CASE_ID_COLUMN}": duplicate case_id '
                    f'"{case_id}" (first used in row {first_row_with_id[case_id]})'
                )
            else:
                first_row_with_id[case_id] = row_number
        key = tuple(cells)
        if key in first_row_with and not case_id:  # same case_id: reported above
            problems.append(
                f"row {row_number}: duplicate row (identical to row {first_row_with[key]})"
            )
        first_row_with.setdefault(key, row_number)
        cases.append(NewCase(evidence, adjudicated, outcome, therapist))

    if n_rows == 0:
        problems.append("the file has a header row but no cases")
    if problems:
        raise CaseImportError(problems, total=getattr(problems, "total", None))
    return cases


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


def cases_to_csv(
    cases: Iterable[Case | NewCase],
    *,
    variables: Mapping[str, Sequence[str]] | None = None,
    causes: Sequence[str] | None = None,
    outcome_node: str | None = None,
) -> str:
    """Write cases as CSV text that :func:`parse_cases_csv` reads back.

    With a vocabulary, every node and cause gets a column (in vocabulary order) even if no
    case uses it; without one, columns are the nodes and causes the cases mention, in the order
    first seen. ``case_id`` is written for stored :class:`Case` objects; ``outcome`` when an
    ``outcome_node`` is given or any case has an outcome; ``therapist`` when any case has one.
    Unknown values are empty cells.
    """
    cases = list(cases)
    nodes: dict[str, None] = dict.fromkeys(variables or ())
    cause_nodes: dict[str, None] = dict.fromkeys(causes or ())
    for case in cases:
        nodes.update(dict.fromkeys(case.evidence))
        cause_nodes.update(dict.fromkeys(case.adjudicated))
    with_ids = any(isinstance(c, Case) for c in cases)
    with_outcome = outcome_node is not None or any(c.outcome is not None for c in cases)
    with_therapist = any(c.therapist is not None for c in cases)

    header = [CASE_ID_COLUMN] if with_ids else []
    header += list(nodes) + [CAUSE_PREFIX + c for c in cause_nodes]
    if with_outcome:
        header.append(OUTCOME_COLUMN)
    if with_therapist:
        header.append(THERAPIST_COLUMN)

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for case in cases:
        row: list[str] = []
        if with_ids:
            row.append(str(case.id) if isinstance(case, Case) else "")
        row += [case.evidence.get(n, "") for n in nodes]
        row += [case.adjudicated.get(c, "") for c in cause_nodes]
        if with_outcome:
            row.append(case.outcome or "")
        if with_therapist:
            row.append(_guard(case.therapist or ""))
        writer.writerow(row)
    return out.getvalue()
