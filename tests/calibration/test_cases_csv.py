"""Cases CSV import (validated, all or nothing) and export, on a small made-up vocabulary."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pandas as pd
import pytest

from calibration import cases as cases_module
from calibration.cases import (
    DEFAULT_MAX_BYTES,
    CaseImportError,
    allowed_columns,
    cases_to_csv,
    parse_cases_csv,
    read_cases_csv,
)
from calibration.store import NewCase, Store

VARS = {
    "load": ["within_plan", "moderate", "large"],
    "brace": ["no", "sometimes", "often"],
    "overload": ["no", "yes"],
    "wrong_mover": ["no", "yes"],
    "soreness": ["none", "mild", "marked"],
}
CAUSES = ["overload", "wrong_mover"]
OUTCOME = "soreness"


def parse(text: str | bytes, **kwargs) -> list[NewCase]:
    kwargs.setdefault("outcome_node", OUTCOME)
    return parse_cases_csv(text, VARS, CAUSES, **kwargs)


def problems(text: str | bytes, **kwargs) -> list[str]:
    with pytest.raises(CaseImportError) as info:
        parse(text, **kwargs)
    assert info.value.problems, "an import error must say what is wrong"
    return info.value.problems


def only(found: list[str], *fragments: str) -> str:
    """The single problem containing every fragment."""
    hits = [p for p in found if all(f in p for f in fragments)]
    assert len(hits) == 1, (fragments, found)
    return hits[0]


# ---- valid files -----------------------------------------------------------------------------


def test_valid_file_with_every_kind_of_column() -> None:
    text = (
        "case_id,load,brace,soreness,cause:overload,cause:wrong_mover,outcome,therapist\n"
        "c1,large,often,mild,yes,no,none,Ann\n"
        "c2,, sometimes ,,,yes,,\n"
        "c3,within_plan,,marked,,,marked,Bob\n"
    )
    assert parse(text) == [
        NewCase({"load": "large", "brace": "often", "soreness": "mild"},
                {"overload": "yes", "wrong_mover": "no"}, "none", "Ann", "c1"),
        NewCase({"brace": "sometimes"}, {"wrong_mover": "yes"}, None, None, "c2"),
        NewCase({"load": "within_plan", "soreness": "marked"}, {}, "marked", "Bob", "c3"),
    ]


def test_evidence_about_a_cause_node_is_kept_apart_from_its_adjudication() -> None:
    (case,) = parse("overload,cause:overload\nno,yes\n")
    assert case.evidence == {"overload": "no"} and case.adjudicated == {"overload": "yes"}


def test_bom_crlf_blank_lines_and_column_order() -> None:
    text = "\ufeffoutcome,load\r\n\r\nmild,large\r\n,,\r\n,moderate\r\n"
    assert parse(text.encode("utf-8")) == [
        NewCase({"load": "large"}, {}, "mild"),
        NewCase({"load": "moderate"}, {}, None),
    ]


def test_file_objects_are_accepted() -> None:
    assert parse_cases_csv(io.BytesIO(b"load\nlarge\n"), VARS, CAUSES) == [
        NewCase({"load": "large"})]
    assert parse_cases_csv(io.StringIO("load\nlarge\n"), VARS, CAUSES) == [
        NewCase({"load": "large"})]


def test_read_cases_csv_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text("load,cause:overload\nlarge,yes\n", encoding="utf-8")
    assert read_cases_csv(path, VARS, CAUSES) == [NewCase({"load": "large"}, {"overload": "yes"})]
    with pytest.raises(CaseImportError, match="cannot read"):
        read_cases_csv(tmp_path / "missing.csv", VARS, CAUSES)


def test_allowed_columns_order() -> None:
    assert allowed_columns(VARS, CAUSES, outcome_node=OUTCOME) == [
        "case_id", "load", "brace", "overload", "wrong_mover", "soreness",
        "cause:overload", "cause:wrong_mover", "outcome", "therapist"]
    assert "outcome" not in allowed_columns(VARS, CAUSES)


def test_vocabulary_mistakes_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="cause 'nope'"):
        parse_cases_csv("load\nlarge\n", VARS, ["nope"])
    with pytest.raises(ValueError, match="outcome node"):
        parse_cases_csv("load\nlarge\n", VARS, CAUSES, outcome_node="nope")
    with pytest.raises(ValueError, match="reserved"):
        parse_cases_csv("load\nlarge\n", {**VARS, "outcome": ["a"]}, CAUSES)


# ---- every kind of problem, by row and column ------------------------------------------------


def test_unknown_columns_are_named_with_the_allowed_ones() -> None:
    found = problems("load,bracing,notes\nlarge,no,hello\n")
    msg = only(found, '"bracing"')
    assert msg.startswith("row 1, column B: unknown column")
    assert 'did you mean "brace"' in msg
    assert "allowed columns: case_id, load, brace" in msg and "outcome, therapist" in msg
    assert only(found, '"notes"').startswith("row 1, column C")
    assert len(found) == 2


def test_outcome_column_needs_an_outcome_node() -> None:
    found = problems("load,outcome\nlarge,mild\n", outcome_node=None)
    assert only(found, '"outcome"').startswith("row 1, column B: unknown column")


def test_unknown_states_name_row_column_and_allowed_states() -> None:
    found = problems(
        "load,brace,cause:overload,outcome\n"
        "large,no,yes,none\n"
        "huge,no,yes,none\n"
        "large,Often,maybe,sore\n"
    )
    assert only(found, "row 3", '"load"') == (
        'row 3, column "load": unknown state "huge"; allowed: within_plan, moderate, large '
        "(or leave the cell empty if unknown)"
    )
    assert "allowed: no, sometimes, often" in only(found, "row 4", '"brace"', '"Often"')
    assert "allowed: no, yes" in only(found, "row 4", '"cause:overload"', '"maybe"')
    assert "allowed: none, mild, marked" in only(found, "row 4", '"outcome"', '"sore"')
    assert len(found) == 4


def test_duplicate_case_ids_are_broken_but_identical_rows_are_separate_cases() -> None:
    found = problems(
        "case_id,load,brace\n"
        "a,large,no\n"      # row 2
        "b,large,no\n"      # row 3: same answers, different case: fine
        "a,moderate,no\n"   # row 4: case_id reused
        ",large,often\n"    # row 5
        ",large,often\n"    # row 6: same answers again, no case_id: another lifter
    )
    assert only(found, "row 4") == (
        'row 4, column "case_id": duplicate case_id "a" (first used in row 2)')
    assert len(found) == 1


def test_identical_rows_without_case_id_are_kept() -> None:
    """A clinic export over a handful of questions repeats answers: every row is a case."""
    text = "load,brace\n" + "large,no\n" * 500 + "moderate,often\n" * 300
    cases = parse(text)
    assert len(cases) == 800
    assert sum(c.evidence == {"load": "large", "brace": "no"} for c in cases) == 500
    assert all(c.case_id is None for c in cases)


def test_check_cases_csv_separates_broken_rows_from_valid_ones() -> None:
    text = (
        "case_id,load,brace\n"
        "a,large,no\n"        # row 2
        "b,huge,no\n"         # row 3: unknown state
        "\n"                  # row 4: blank, skipped
        "c,large\n"           # row 5: too few fields
        "d,moderate,often\n"  # row 6
        "a,large,no\n"        # row 7: duplicate case_id
    )
    checked = cases_module.check_cases_csv(text, VARS, CAUSES)
    assert checked.rows == (2, 6)
    assert [c.case_id for c in checked.cases] == ["a", "d"]
    assert [b.row for b in checked.broken] == [3, 5, 7]
    assert checked.broken[0].problems == (
        'row 3, column "load": unknown state "huge"; allowed: within_plan, moderate, large '
        "(or leave the cell empty if unknown)",)
    assert checked.n_rows == 5 and checked.has_case_ids
    assert len(checked.digest) == 64
    with pytest.raises(CaseImportError) as info:
        checked.require_valid()
    assert len(info.value.problems) == 3
    # the digest is that of the bytes: the same content gives the same digest
    assert cases_module.check_cases_csv(text.encode(), VARS, CAUSES).digest == checked.digest


def test_malformed_rows_are_reported_by_row() -> None:
    found = problems(
        "load,brace,outcome\n"
        "large,no,mild\n"
        "large,no,mild,extra\n"   # row 3: too many fields
        "large,no\n"              # row 4: too few
        "moderate,sometimes,none\n"
    )
    assert only(found, "row 3").startswith("row 3: malformed row: 4 fields, but the header has 3")
    assert only(found, "row 4").startswith("row 4: malformed row: 2 fields")
    assert len(found) == 2


def test_unclosed_quote_is_reported_not_raised_raw() -> None:
    found = problems('load,therapist\nlarge,"Ann\nmoderate,Bob\n')
    assert len(found) == 1 and found[0].startswith("row 2: malformed CSV")


def test_header_problems() -> None:
    found = problems("load,brace,load,,\nlarge,no,moderate,x,\n")
    assert only(found, "appears more than once") == (
        'row 1, column C: column "load" appears more than once (also column A)')
    assert only(found, "no name") == (
        "row 1, column D: the column has data but no name in the header")
    assert len(found) == 2  # the empty, unnamed column E is ignored


def test_rows_without_any_content_and_files_without_content_columns() -> None:
    found = problems("load,therapist\nlarge,Ann\n,Bob\n")
    assert only(found, "row 3") == "row 3: no evidence, adjudicated cause or outcome in this row"
    found = problems("therapist,case_id\nAnn,1\n")
    assert only(found, "no evidence, cause or outcome columns").startswith("row 1:")
    assert len(found) == 1


@pytest.mark.parametrize("text", ["", "   \n\n", ",,\n,,\n"])
def test_empty_file(text: str) -> None:
    (msg,) = problems(text)
    assert "empty" in msg


def test_header_without_cases() -> None:
    (msg,) = problems("load,brace\n\n")
    assert msg == "the file has a header row but no cases"


def test_every_problem_is_reported_at_once_with_spreadsheet_row_numbers() -> None:
    text = (
        "load,brace,therapist,bogus\n"        # row 1
        'large,no,"Ann\nSmith",\n'            # row 2 (one row, two lines)
        "\n"                                  # row 3 (blank)
        "larg,no,,\n"                         # row 4
        "large,no,,,\n"                       # row 5
        "large,always,,\n"                    # row 6
    )
    found = problems(text)
    assert [p.split(":")[0].split(",")[0] for p in found] == [
        "row 1", "row 4", "row 5", "row 6"]
    assert str(len(found)) in str(CaseImportError(found))


def test_error_message_lists_problems_and_is_a_value_error() -> None:
    text = "load\n" + "".join(f"bad{i}\n" for i in range(30))
    with pytest.raises(ValueError) as info:
        parse(text)
    error = info.value
    assert isinstance(error, CaseImportError) and len(error.problems) == 30
    message = str(error)
    assert message.startswith("30 problem(s) in the cases file; nothing was imported:")
    assert "row 2," in message and "... and 10 more" in message


# ---- uploads: size limit, text only ----------------------------------------------------------


def test_size_limit_is_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed an oversized file")

    monkeypatch.setattr(pd, "read_csv", must_not_parse)
    monkeypatch.setattr(cases_module.csv, "reader", must_not_parse)
    text = "load\n" + "large\n" * 50
    (msg,) = problems(text, max_bytes=100)
    assert f"{len(text):,} bytes" in msg and "the limit is 100 bytes" in msg
    (msg,) = problems(text.encode(), max_bytes=100)
    assert "limit is 100 bytes" in msg

    class Upload(io.BytesIO):
        largest_read = 0

        def read(self, size: int | None = -1) -> bytes:
            Upload.largest_read = max(Upload.largest_read, size or 0)
            return super().read(size)

    with pytest.raises(CaseImportError, match="limit is 100 bytes"):
        parse_cases_csv(Upload(text.encode() * 1000), VARS, CAUSES, max_bytes=100)
    assert Upload.largest_read == 101  # never read more than the limit


def test_size_limit_on_a_path_uses_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("load\n" + "large\n" * 40, encoding="utf-8")
    with pytest.raises(CaseImportError, match="the limit is 64 bytes"):
        read_cases_csv(path, VARS, CAUSES, max_bytes=64)
    assert DEFAULT_MAX_BYTES == 32 * 1024 * 1024


def test_binary_uploads_are_rejected_as_text() -> None:
    (msg,) = problems(pickle.dumps({"load": "large"}))
    assert "not UTF-8" in msg
    (msg,) = problems(b"load\nlarge\x00\n")
    assert "NUL" in msg
    (msg,) = problems("load,therapist\nlarge,Jos\u00e9\n".encode("cp1252"))
    assert "not UTF-8" in msg


# ---- export and round trip -------------------------------------------------------------------

CASES = [
    NewCase({"load": "large", "brace": "often", "soreness": "mild"},
            {"overload": "yes", "wrong_mover": "no"}, "none", "Ann"),
    NewCase({"brace": "sometimes"}, {}, None, None),
    NewCase({}, {"wrong_mover": "yes"}, "marked", "=HYPERLINK(\"http://x\")"),
    NewCase({"overload": "no"}, {"overload": "yes"}, None, "O'Brien, Dr"),
]


def test_round_trip_with_vocabulary() -> None:
    text = cases_to_csv(CASES, variables=VARS, causes=CAUSES, outcome_node=OUTCOME)
    header = text.splitlines()[0].split(",")
    assert header == ["load", "brace", "overload", "wrong_mover", "soreness",
                      "cause:overload", "cause:wrong_mover", "outcome", "therapist"]
    assert parse(text) == CASES


def test_round_trip_without_vocabulary() -> None:
    text = cases_to_csv(CASES)
    assert parse(text) == CASES
    assert cases_to_csv([]) == "\r\n"


def test_export_guards_formula_cells() -> None:
    text = cases_to_csv(CASES, variables=VARS, causes=CAUSES, outcome_node=OUTCOME)
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert frame["therapist"].tolist() == ["Ann", "", "'=HYPERLINK(\"http://x\")", "O'Brien, Dr"]
    tricky = [NewCase({"load": "large"}, therapist=t) for t in ["'=x", "''", "'a", "-3", "@me"]]
    assert parse(cases_to_csv(tricky)) == tricky


def test_round_trip_through_the_store(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite", seed_toml="x = 1\n") as source:
        source.add_cases(CASES, therapist="importer")
        stored = source.list_cases()
    text = cases_to_csv(stored, variables=VARS, causes=CAUSES, outcome_node=OUTCOME)
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert frame["case_id"].tolist() == [f"knowpain-{c.id}" for c in stored]
    assert frame["therapist"].tolist()[1] == "importer"

    again = parse(text)
    assert [(c.evidence, c.adjudicated, c.outcome, c.therapist) for c in again] == [
        (c.evidence, c.adjudicated, c.outcome, c.therapist) for c in stored]
    with Store(tmp_path / "b.sqlite", seed_toml="x = 1\n") as target:
        target.add_cases(again, therapist="someone else")
        copied = target.list_cases()
    assert [(c.evidence, c.adjudicated, c.outcome, c.therapist) for c in copied] == [
        (c.evidence, c.adjudicated, c.outcome, c.therapist) for c in stored]


def test_invalid_import_stores_nothing(tmp_path: Path) -> None:
    """All or nothing: one bad row anywhere means no case reaches the store."""
    rows = [f"{i},large\n" for i in range(10)]
    good = "case_id,load\n" + "".join(rows)
    with Store(tmp_path / "s.sqlite", seed_toml="x = 1\n") as store:
        for text in (good + "99,larg\n", "case_id,load\n" + "".join(rows[:5]) + "98,huge\n"
                     + "".join(rows[5:])):
            with pytest.raises(CaseImportError):
                store.add_cases(parse(text), therapist="dr_a")
        assert store.list_cases() == []
        assert store.add_cases(parse(good), therapist="dr_a") == list(range(1, 11))
