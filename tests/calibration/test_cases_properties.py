"""Property: any cases file gives a list of cases or a CaseImportError — never another
exception — within a time and memory bound (hypothesis, bounded examples)."""

from __future__ import annotations

import csv
import io

from bounds import UNTRUSTED, result_or_refusal
from hypothesis import given
from hypothesis import strategies as st

import model
from calibration.cases import allowed_columns, cases_to_csv, parse_cases_csv
from calibration.store import NewCase
from model.errors import CaseImportError

CAL = model.load_model().calibration
VOCAB = {"variables": CAL.variables, "causes": CAL.causes, "outcome_node": CAL.outcome}
COLUMNS = allowed_columns(**VOCAB)
STATES = sorted({s for states in CAL.variables.values() for s in states})
cells = st.one_of(st.sampled_from(["", " ", *STATES]), st.text(max_size=12),
                  st.sampled_from(['"', '""', ",", "\n", "\r\n", "=cmd()", "'=x", "\ufeff"]))
headers = st.lists(st.one_of(st.sampled_from(COLUMNS), st.text(max_size=10)), max_size=8)


def check(data: bytes | str) -> None:
    outcome = result_or_refusal(lambda: parse_cases_csv(data, **VOCAB), seconds=2.0)
    if isinstance(outcome, CaseImportError):
        assert outcome.problems and outcome.total >= len(outcome.problems)
        assert len(str(outcome)) < 20_000
    else:
        assert isinstance(outcome, list) and all(isinstance(c, NewCase) for c in outcome)
        for case in outcome:
            for node, state in {**case.evidence, **case.adjudicated}.items():
                assert state in CAL.variables[node]


@UNTRUSTED
@given(st.binary(max_size=600))
def test_any_bytes(data):
    check(data)


@UNTRUSTED
@given(headers, st.lists(st.lists(cells, max_size=9), max_size=12))
def test_any_table_of_cells(header, rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    check(out.getvalue())


@UNTRUSTED
@given(headers, st.lists(st.lists(cells, max_size=9), max_size=12))
def test_any_text_joined_by_commas(header, rows):
    text = ",".join(header) + "\n" + "\n".join(",".join(r) for r in rows)
    check(text)


@UNTRUSTED
@given(st.lists(st.fixed_dictionaries(
    {}, optional={n: st.sampled_from(CAL.variables[n]) for n in CAL.variables}), max_size=6),
    st.text(max_size=20))
def test_exported_cases_read_back(evidence_rows, therapist):
    cases = [NewCase(evidence=e, therapist=therapist or None) for e in evidence_rows]
    text = cases_to_csv(cases, **VOCAB)
    check(text)
