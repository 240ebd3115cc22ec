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
* ``case_id`` — optional free text: the clinic's own identifier. It must be unique within the
  file; the store keeps it, so importing the same case again is recognised. On export it is
  the store's case id.

Cells are compared after stripping surrounding spaces; states are case-sensitive. Rows whose
cells are all empty (including blank lines) are skipped. **Identical rows are separate
cases**: two lifters who gave the same answers are two cases (a clinic export without
``case_id`` over a handful of questions has many).

Row numbers
-----------
Problems name rows **as a spreadsheet shows them: the header is row 1, the first data row is
row 2**; a quoted cell spanning several lines still counts as one row. Columns are named by
their header text (header problems also give the spreadsheet column letter).

Broken rows
-----------
:func:`check_cases_csv` reads a file into a :class:`CaseFile`: the valid rows' cases and every
broken row with its problems (row and column named). Problems with the file itself (not UTF-8,
unreadable quoting, a bad header) are raised at once as :class:`CaseImportError`: no row can be
trusted then. :func:`parse_cases_csv` is the strict form: every problem at once, and nothing
returned unless every row is valid; a caller may instead import a :class:`CaseFile`'s valid
rows when the user asks for it.

Safety
------
Uploads are size-limited *before* parsing (:data:`DEFAULT_MAX_BYTES`; at most that plus one
byte is ever read, from a file or an upload), decoded as UTF-8 text without control
characters, and given up at the first record past :data:`~calibration.limits.MAX_CASE_ROWS`
rows or :data:`~calibration.limits.MAX_CASE_COLUMNS` fields, before any parser allocates in
proportion to it; then parsed by pandas' C parser (files without quote characters) or the
standard ``csv`` module — no pickle, no evaluation. Every problem is counted; the first
:data:`~calibration.limits.CASE_PROBLEMS_KEPT` are kept (the message lists the first 20). The
SHA-256 of the bytes read is kept (:attr:`CaseFile.digest`) so that the store can recognise a
file imported before. On export,
free-text cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or
carriage return) are prefixed with ``'``; import removes that guard again, so export and
import round-trip.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from calibration.files import read_at_most
from calibration.limits import (
    CASE_PROBLEMS_KEPT,
    MAX_CASE_BYTES,
    MAX_CASE_COLUMNS,
    MAX_CASE_ROWS,
)
from calibration.store import Case, NewCase
from model.errors import CaseImportError, UsageError, cut, quote

__all__ = [
    "CASE_ID_COLUMN",
    "CAUSE_PREFIX",
    "DEFAULT_MAX_BYTES",
    "OUTCOME_COLUMN",
    "STORE_ID_PREFIX",
    "THERAPIST_COLUMN",
    "BrokenRow",
    "CaseFile",
    "CaseImportError",
    "allowed_columns",
    "cases_to_csv",
    "check_cases_csv",
    "parse_cases_csv",
    "read_case_file",
    "read_cases_csv",
    "store_id_of",
]

#: Prefix of adjudicated-cause columns: ``cause:stabilizer_overload``.
CAUSE_PREFIX = "cause:"
#: Column holding the follow-up outcome (state of the outcome node at the next session).
OUTCOME_COLUMN = "outcome"
#: Optional column naming the therapist who recorded the case.
THERAPIST_COLUMN = "therapist"
#: Optional column with a case identifier (unique within the file).
CASE_ID_COLUMN = "case_id"
#: How an export names a stored case that has no case_id of its own (``knowpain-17``): a
#: clinic's own ids (often plain numbers) are never mistaken for the store's.
STORE_ID_PREFIX = "knowpain-"
#: Largest accepted file, in bytes (see :mod:`calibration.limits`).
DEFAULT_MAX_BYTES = MAX_CASE_BYTES

_RESERVED = (OUTCOME_COLUMN, THERAPIST_COLUMN, CASE_ID_COLUMN)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


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


@dataclass(frozen=True)
class BrokenRow:
    """A row that cannot be imported, with every problem found in it."""

    row: int  # as a spreadsheet shows it: the header is row 1
    problems: tuple[str, ...]


@dataclass(frozen=True)
class _Column:
    """One column of the valid rows: ``codes`` index ``values`` (-1: empty cell)."""

    kind: str  # "evidence" | "cause" | "outcome" | "therapist" | "case_id"
    node: str
    codes: Any  # numpy int array, one per valid row
    values: tuple[str, ...]


@dataclass(frozen=True)
class CaseFile:
    """A checked cases file: the valid rows' cases, and every broken row.

    Case ``i`` came from spreadsheet row ``rows[i]``; ``n_rows`` counts the data rows that
    are not blank; ``digest`` is the SHA-256 of the file's bytes. The cases are kept by
    column and made into :class:`NewCase` objects only when asked for (:attr:`cases`,
    :meth:`case`); :meth:`store_rows` encodes them for the store directly, which keeps a
    200,000-row import fast.
    """

    rows: tuple[int, ...]
    broken: tuple[BrokenRow, ...]
    n_rows: int
    digest: str
    has_case_ids: bool
    columns: tuple[_Column, ...] = ()
    problem_total: int = 0  # every problem counted; ``broken`` keeps the first ones

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def problems(self) -> list[str]:
        """The problems kept (the first :data:`CASE_PROBLEMS_KEPT`), in file order."""
        return [p for b in self.broken for p in b.problems]

    @property
    def n_broken(self) -> int:
        """Broken rows: those listed in :attr:`broken` (all of them, with their problems
        kept up to the limit)."""
        return len(self.broken)

    def _column(self, kind: str) -> _Column | None:
        return next((c for c in self.columns if c.kind == kind), None)

    @cached_property
    def case_ids(self) -> tuple[str | None, ...]:
        """Each valid row's ``case_id`` (``None`` where the file gives none)."""
        col = self._column(CASE_ID_COLUMN)
        if col is None:
            return (None,) * len(self.rows)
        return tuple(col.values[k] if k >= 0 else None for k in col.codes.tolist())

    def case(self, i: int) -> NewCase:
        """The case of valid row ``i``."""
        def pick(kind: str) -> dict[str, str]:
            return {c.node: c.values[c.codes[i]] for c in self.columns
                    if c.kind == kind and c.codes[i] >= 0}

        def one(kind: str) -> str | None:
            col = self._column(kind)
            return col.values[col.codes[i]] if col is not None and col.codes[i] >= 0 else None

        return NewCase(pick("evidence"), pick("cause"), one("outcome"), one(THERAPIST_COLUMN),
                       one(CASE_ID_COLUMN))

    @cached_property
    def cases(self) -> tuple[NewCase, ...]:
        """Every valid row's case, in file order."""
        return tuple(self.case(i) for i in range(len(self.rows)))

    def _json(self, kind: str) -> list[str]:
        """Per valid row, the JSON object ``{node: state}`` of one kind of column, encoded
        once per distinct combination (identical to ``json.dumps(..., sort_keys=True,
        separators=(",", ":"))``, what the store writes for a case; node and state names
        need no escaping: the loader allows ``[a-z0-9_]`` only)."""
        import numpy as np

        cols = sorted((c for c in self.columns if c.kind == kind), key=lambda c: c.node)
        n = len(self.rows)
        if not cols or not n:
            return ["{}"] * n
        key = np.zeros(n, dtype=np.int64)
        for c in cols:
            key = key * (len(c.values) + 1) + (c.codes + 1)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        pieces = [[f'"{c.node}":"{v}"' for v in c.values] for c in cols]
        matrix = np.stack([c.codes[first] for c in cols], axis=1).tolist()
        texts = np.asarray(
            ["{" + ",".join([pieces[j][k] for j, k in enumerate(row) if k >= 0]) + "}"
             for row in matrix], dtype=object)
        return texts[inverse.ravel()].tolist()

    def store_rows(self, indices: Sequence[int] | None = None
                   ) -> list[tuple[str, str, str | None, str | None, str | None]]:
        """The valid rows (or those at ``indices``) as the store keeps them:
        ``(evidence JSON, adjudicated JSON, outcome, therapist, case_id)``."""
        evidence, adjudicated = self._json("evidence"), self._json("cause")
        outcome = self._texts("outcome")
        therapist = self._texts(THERAPIST_COLUMN)
        ids = list(self.case_ids)
        picked = range(len(self.rows)) if indices is None else indices
        return [(evidence[i], adjudicated[i], outcome[i], therapist[i], ids[i])
                for i in picked]

    def _texts(self, kind: str) -> list[str | None]:
        col = self._column(kind)
        if col is None:
            return [None] * len(self.rows)
        return [col.values[k] if k >= 0 else None for k in col.codes.tolist()]

    def require_valid(self) -> list[NewCase]:
        """The cases when every row is valid; otherwise :class:`CaseImportError`."""
        if self.broken:
            raise CaseImportError(self.problems, total=self.problem_total)
        return list(self.cases)


def read_case_file(
    path: str | os.PathLike[str],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    *,
    outcome_node: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CaseFile:
    """Read and check a cases CSV file (see :func:`check_cases_csv`); the size is checked
    before the file is read."""
    try:
        size = Path(path).stat().st_size if isinstance(path, (str, os.PathLike)) else 0
        if size > max_bytes:
            raise CaseImportError([_too_big(size, max_bytes)])
        # at most max_bytes + 1 bytes, whatever the size says (/dev/zero reports 0)
        data = read_at_most(path, max_bytes)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, for stat
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CaseImportError([f"cannot read {quote(str(path))}: {reason}"]) from None
    return check_cases_csv(data, variables, causes, outcome_node=outcome_node,
                           max_bytes=max_bytes)


def read_cases_csv(
    path: str | os.PathLike[str],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    *,
    outcome_node: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[NewCase]:
    """Read and validate a cases CSV file, all or nothing; see :func:`parse_cases_csv`."""
    return read_case_file(path, variables, causes, outcome_node=outcome_node,
                          max_bytes=max_bytes).require_valid()


def parse_cases_csv(
    data: bytes | bytearray | memoryview | str | IO[bytes] | IO[str],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    *,
    outcome_node: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[NewCase]:
    """Validate CSV content and return its cases, or raise :class:`CaseImportError` listing
    every problem at once (nothing is returned unless every row is valid).

    ``data`` is the file content (bytes or text) or an open file object (e.g. a Streamlit
    upload); at most ``max_bytes + 1`` bytes are read from it. Each case's ``therapist`` is the
    ``therapist`` cell, or ``None`` (meaning "the importer", see ``Store.add_cases``).
    """
    return check_cases_csv(data, variables, causes, outcome_node=outcome_node,
                           max_bytes=max_bytes).require_valid()


def check_cases_csv(
    data: bytes | bytearray | memoryview | str | IO[bytes] | IO[str],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    *,
    outcome_node: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CaseFile:
    """Check CSV content row by row: the valid rows' cases and every broken row.

    Problems with the file as a whole (size, encoding, quoting, header) raise
    :class:`CaseImportError` listing all of them.
    """
    _check_vocabulary(variables, causes, outcome_node)
    raw = _read_limited(data, max_bytes)
    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(raw, max_bytes)

    quoted = '"' in text
    if not quoted:
        _check_limits(text)  # before anything copies the text
    if not text.strip() or not text.replace(",", "").strip():
        raise CaseImportError(["the file is empty (expected a header row and one row per case)"])
    table = None if quoted else _fast_table(text)
    if table is None:  # odd structure: the csv module says exactly where
        records, structure_problem = _records(text)
        if structure_problem is not None:
            raise CaseImportError([structure_problem])
        if not records or all(not "".join(r).strip() for r in records):
            raise CaseImportError(
                ["the file is empty (expected a header row and one row per case)"])
        table = _slow_table(records)
    return _validate(table, variables, causes, outcome_node, digest)


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
        raw = data if isinstance(data, bytes) else bytes(data)
        size = len(raw)
    elif hasattr(data, "read"):
        chunk = data.read(max_bytes + 1)  # never more than the limit (plus one byte)
        raw = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
        size = None
    else:
        raise UsageError(f"cases data must be bytes, text or a file object, not "
                         f"{type(data).__name__}")
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
    if "\r" in text and "\n" not in text:  # old Mac line endings: one CR per row
        text = text.replace("\r", "\n")
    return text


def _check_limits(text: str) -> None:
    """Refuse a file without quote characters that is past the row or field limits, counted
    in place without splitting it, before any parser allocates in proportion to it. (A file
    with quotes is read by the csv module record by record, which stops at the limits.)"""
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if lines > MAX_CASE_ROWS + 1:  # the header plus MAX_CASE_ROWS rows
        raise CaseImportError([_too_many_rows()])
    start = 0
    for row in range(1, lines + 1):
        end = text.find("\n", start)
        stop = len(text) if end < 0 else end
        fields = text.count(",", start, stop) + 1
        if fields > MAX_CASE_COLUMNS:
            raise CaseImportError([_too_many_fields(row, fields)])
        start = stop + 1


def _too_many_rows() -> str:
    return (f"the file has more than {MAX_CASE_ROWS:,} rows, the limit for one import; split "
            "it into smaller files")


def _too_many_fields(row: int, fields: int) -> str:
    return (f"row {row}: {fields:,} fields; the limit is {MAX_CASE_COLUMNS:,} (is the "
            "delimiter a comma?)")


def _records(text: str) -> tuple[list[list[str]], str | None]:
    """Split into records (spreadsheet rows); a quoting error or a record past the row or
    field limits (:mod:`calibration.limits`) is returned as a problem, and reading stops
    there — a pathological file costs no more than the limits allow."""
    records: list[list[str]] = []
    reader = csv.reader(_lines(text), strict=True)
    try:
        for record in reader:
            if len(record) > MAX_CASE_COLUMNS:
                return records, _too_many_fields(len(records) + 1, len(record))
            if len(records) > MAX_CASE_ROWS:  # the header plus MAX_CASE_ROWS rows
                return records, _too_many_rows()
            records.append(record)
    except csv.Error as exc:
        row = len(records) + 1
        return records, (
            f"row {row}: malformed CSV ({exc}); check the quote characters in this row "
            f"(line {reader.line_num} of the file)"
        )
    return records, None


def _lines(text: str) -> Iterable[str]:
    """The text's lines with their endings, one slice at a time (``io.StringIO`` would hold a
    four-bytes-per-character copy of the whole file)."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        stop = size if end < 0 else end + 1
        yield text[start:stop]
        start = stop


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


def _header_kinds(
    header: list[str],
    unnamed_with_data: Sequence[int],
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    outcome_node: str | None,
) -> tuple[dict[int, tuple[str, str]], list[str]]:
    """What each column means — ``("evidence" | "cause" | "outcome", node)`` or
    ``("therapist" | "case_id", "")`` — and the header's problems."""
    problems: list[str] = []
    allowed = allowed_columns(variables, causes, outcome_node=outcome_node)
    kinds: dict[int, tuple[str, str]] = {}
    seen: dict[str, int] = {}
    for j, cell in enumerate(header):
        name = cell.strip()
        where = f"row 1, column {_column_letter(j)}"
        if not name:
            if j in unnamed_with_data:
                problems.append(f"{where}: the column has data but no name in the header")
            continue
        if name in seen:
            problems.append(
                f'{where}: column "{cut(name)}" appears more than once '
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
            hint = difflib.get_close_matches(name, allowed, n=1) if len(name) <= 100 else []
            suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
            problems.append(
                f'{where}: unknown column "{cut(name)}"{suggestion}; allowed columns: '
                + ", ".join(allowed)
            )
    if not any(kind in ("evidence", "cause", "outcome") for kind, _ in kinds.values()):
        problems.append(
            "row 1: no evidence, cause or outcome columns in the header; allowed columns: "
            + ", ".join(allowed)
        )
    return kinds, problems


@dataclass
class _Table:
    """Cells of a CSV by column: ``header`` and one object array per column over the data
    rows (``None``/NaN where a row has no such field), each row's field count, and whether
    the row was empty."""

    header: list[str]
    cells: list[Any]
    fields: Any  # int array: fields per data row
    numbers: Any  # int array: spreadsheet row number per data row


def _fast_table(text: str) -> _Table | None:
    """Read a file without quote characters with pandas' C parser (fields per row are then
    the commas per line plus one); ``None`` otherwise, or when it disagrees — the csv module
    reads those and names any malformed row."""
    import numpy as np
    import pandas as pd

    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        frame = pd.read_csv(io.StringIO(text), header=None, dtype=object, na_filter=False,
                            skip_blank_lines=False, engine="c", index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    if frame.empty or len(frame) != len(lines):
        return None
    header = [str(v) for v in frame.iloc[0].tolist()]
    if len(header) != lines[0].count(",") + 1:
        return None
    data = frame.iloc[1:]
    cells = [data[c].to_numpy(dtype=object) for c in frame.columns]
    fields = np.fromiter((line.count(",") + 1 if line else 0 for line in lines[1:]),
                         dtype=np.int64, count=len(lines) - 1)
    return _Table(header, cells, fields, np.arange(2, len(lines) + 1, dtype=np.int64))


def _slow_table(records: list[list[str]]) -> _Table:
    import numpy as np

    header = records[0]
    width = len(header)
    data = records[1:]
    fields = np.fromiter((len(r) for r in data), dtype=np.int64, count=len(data))
    padded = [r if len(r) == width else (r + [None] * width)[:width] for r in data]
    cells = [np.asarray(c, dtype=object) for c in zip(*padded, strict=True)] if padded \
        else [np.empty(0, dtype=object) for _ in range(width)]
    return _Table(header, cells, fields, np.arange(2, len(data) + 2, dtype=np.int64))


def _clean_column(col: Any) -> tuple[Any, list[str]]:
    """Codes into the column's stripped values (-1: empty or missing), and those values."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    stripped = [u.strip() if isinstance(u, str) else "" for u in uniques]
    values = sorted({v for v in stripped if v})
    position = {v: i for i, v in enumerate(values)}
    lookup = np.asarray([position.get(v, -1) for v in stripped] + [-1], dtype=np.int64)
    return lookup[codes], values


def _validate(
    table: _Table,
    variables: Mapping[str, Sequence[str]],
    causes: Sequence[str],
    outcome_node: str | None,
    digest: str,
) -> CaseFile:
    import numpy as np  # only here: reading cases is not on the query path

    header = [h.strip() for h in table.header]
    width = len(header)
    # any cell with text in a column beyond the header, or in an unnamed column
    cleaned = [_clean_column(c) for c in table.cells]
    filled_any = np.zeros(len(table.numbers), dtype=bool)
    for codes, _ in cleaned:
        filled_any |= codes >= 0
    unnamed_with_data = [j for j in range(width) if not header[j]
                         and (cleaned[j][0] >= 0).any()]
    kinds, header_problems = _header_kinds(header, unnamed_with_data, variables, causes,
                                           outcome_node)
    has_content_columns = any(k in ("evidence", "cause", "outcome") for k, _ in kinds.values())

    # ---- rows: blank ones are skipped, ragged ones are broken ----
    problems = _RowProblems(table.numbers)
    ragged = filled_any & (table.fields != width)
    problems.add(np.flatnonzero(ragged), lambda i: (
        f"row {table.numbers[i]}: malformed row: {int(table.fields[i])} fields, but the header "
        f"has {width} columns (check for a missing or unquoted comma)"))
    usable = filled_any & ~ragged
    n_rows = int(filled_any.sum())
    if n_rows == 0:
        raise CaseImportError([*header_problems, "the file has a header row but no cases"])

    numbers = table.numbers
    content = np.zeros(len(numbers), dtype=bool)
    columns: list[_Column] = []
    for j, (kind, node) in sorted(kinds.items()):
        codes, values = cleaned[j]
        if kind in ("evidence", "cause", "outcome"):
            states = list(variables[node])
            index = {v: states.index(v) for v in values if v in states}
            content |= codes >= 0
            bad_values = [k for k, v in enumerate(values) if v not in index]
            if bad_values:
                bad = usable & np.isin(codes, bad_values)
                problems.add(np.flatnonzero(bad), lambda i, j=j, values=values, states=states,
                             codes=codes: (
                    f'row {numbers[i]}, column "{cut(header[j])}": unknown state '
                    f'"{cut(values[codes[i]])}"; allowed: {", ".join(states)} (or leave the '
                    "cell empty if unknown)"))
            # codes into the node's states, so that values are the states themselves
            remap = np.asarray([index.get(v, -1) for v in values] + [-1], dtype=np.int64)
            columns.append(_Column(kind, node, remap[codes], tuple(states)))
        else:
            values = [_unguard(v) for v in values]
            columns.append(_Column(kind, node, codes, tuple(values)))
    if has_content_columns:
        problems.add(np.flatnonzero(usable & ~content), lambda i: (
            f"row {numbers[i]}: no evidence, adjudicated cause or outcome in this row"))
    id_col = next((c for c in columns if c.kind == CASE_ID_COLUMN), None)
    if id_col is not None:
        first_row_with_id: dict[int, int] = {}
        for i in np.flatnonzero(usable & (id_col.codes >= 0)):
            code = int(id_col.codes[i])
            if code in first_row_with_id:
                problems.add(np.array([i]), lambda i, code=code: (
                    f'row {numbers[i]}, column "{CASE_ID_COLUMN}": duplicate case_id '
                    f'"{cut(id_col.values[code])}" (first used in row {first_row_with_id[code]})'))
            else:
                first_row_with_id[code] = int(numbers[i])

    broken = problems.broken_rows()
    if header_problems:  # no row can be trusted: every problem at once, nothing imported
        kept = [*header_problems, *(p for b in broken for p in b.problems)]
        raise CaseImportError(kept[:CASE_PROBLEMS_KEPT],
                              total=len(header_problems) + problems.total)
    keep = usable & ~problems.broken
    kept = tuple(_Column(c.kind, c.node, c.codes[keep], c.values) for c in columns)
    return CaseFile(tuple(numbers[keep].tolist()), broken, n_rows, digest,
                    id_col is not None, kept, problems.total)


class _RowProblems:
    """Problems by row: every one counted and every broken row marked, but only the first
    :data:`CASE_PROBLEMS_KEPT` messages written (a message is made only when kept), so a
    file with a million bad cells costs counting, not a million strings."""

    def __init__(self, numbers: Any) -> None:
        import numpy as np

        self.numbers = numbers
        self.broken = np.zeros(len(numbers), dtype=bool)
        self.total = 0
        self.messages: dict[int, list[str]] = {}

    def add(self, indices: Any, message: Any) -> None:
        """Rows ``indices`` (positions among the data rows) each have one problem;
        ``message(i)`` writes it, called only for the ones kept."""
        room = CASE_PROBLEMS_KEPT - min(self.total, CASE_PROBLEMS_KEPT)
        self.broken[indices] = True
        self.total += len(indices)
        for i in indices[:room].tolist():
            self.messages.setdefault(int(self.numbers[i]), []).append(message(i))

    def broken_rows(self) -> tuple[BrokenRow, ...]:
        import numpy as np

        return tuple(BrokenRow(int(r), tuple(self.messages.get(int(r), ())))
                     for r in self.numbers[np.flatnonzero(self.broken)].tolist())


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


def _case_id_cell(case: Case | NewCase) -> str:
    """The file's own case_id when the case has one, else the store's id (prefixed)."""
    if isinstance(case, Case):
        return _guard(case.case_ref) if case.case_ref else f"{STORE_ID_PREFIX}{case.id}"
    return _guard(case.case_id) if case.case_id else ""


def store_id_of(case_id: str) -> int | None:
    """The store id an export wrote as ``case_id`` (``knowpain-17`` -> 17), else None."""
    digits = case_id.removeprefix(STORE_ID_PREFIX)
    if digits == case_id or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


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
    first seen. ``case_id`` is the case's own identifier from the file it was imported from,
    else the store's id as ``knowpain-<id>`` (stored :class:`Case`); ``outcome`` when an
    ``outcome_node`` is given or any case has an outcome; ``therapist`` when any case has one.
    Unknown values are empty cells.
    """
    cases = list(cases)
    nodes: dict[str, None] = dict.fromkeys(variables or ())
    cause_nodes: dict[str, None] = dict.fromkeys(causes or ())
    for case in cases:
        nodes.update(dict.fromkeys(case.evidence))
        cause_nodes.update(dict.fromkeys(case.adjudicated))
    with_ids = any(isinstance(c, Case) or c.case_id for c in cases)
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
            row.append(_case_id_cell(case))
        row += [case.evidence.get(n, "") for n in nodes]
        row += [case.adjudicated.get(c, "") for c in cause_nodes]
        if with_outcome:
            row.append(case.outcome or "")
        if with_therapist:
            row.append(_guard(case.therapist or ""))
        writer.writerow(row)
    return out.getvalue()
