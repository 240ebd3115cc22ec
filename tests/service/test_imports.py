"""Cases as they come, through the one service door: identical rows are separate cases, a file
or case_id imported before is recognised (from which import, when) instead of doubled, broken
rows are named and the valid ones imported only when asked — and 200,000 cases import in
well under ten seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from calibration.cases import cases_to_csv
from calibration.loader import load_calibration
from model.errors import AccessError, CaseImportError
from model.learning.sampling import sample_cases, with_missing
from model.service.clinic import Clinic, unlock
from model.service.settings import Settings

PASS = "pass"


@pytest.fixture
def clinic(tmp_path: Path):
    conf = Settings(store_path=tmp_path / "store.sqlite", passcode=PASS)
    with Clinic.open(conf, unlock(conf, PASS)) as c:
        yield c


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_identical_rows_without_case_id_are_separate_cases(clinic, tmp_path) -> None:
    text = ("training_age,low_back_soreness,cause:stabilizer_overload\n"
            + "novice,mild,no\n" * 1200 + "first_sessions,mild,yes\n" * 800)
    report = clinic.import_cases(write(tmp_path, "export.csv", text), "Dr A")
    assert len(report.ids) == 2000 and report.record is not None
    assert report.record.rows == 2000 and report.record.file_name == "export.csv"
    counts = clinic.case_counts()
    assert (counts.total, counts.adjudicated) == (2000, 2000)
    assert report.describe()[0] == (f"Imported 2,000 case(s) from export.csv (ids 1..2000) as "
                                    f"import {report.record.id}.")


def test_the_same_file_again_is_recognised_and_not_doubled(clinic, tmp_path) -> None:
    text = "training_age,low_back_soreness\n" + "novice,mild\n" * 30
    first = clinic.import_cases(write(tmp_path, "a.csv", text), "Dr A")
    again = clinic.import_cases(write(tmp_path, "a-copy.csv", text), "Dr B")
    assert again.ids == () and clinic.case_counts().total == 30
    (line,) = again.describe()
    assert line.startswith(f"a-copy.csv was imported before: import {first.record.id} (a.csv, ")
    assert "by Dr A), 30 case(s) stored from its 30 row(s)" in line and "not doubled" in line
    # once every case of that import is deleted, the file may come in again
    for case_id in first.ids:
        clinic.delete_case(case_id, "Dr A")
    assert len(clinic.import_cases(write(tmp_path, "a.csv", text), "Dr A").ids) == 30


def test_case_ids_already_stored_are_skipped_and_conflicts_are_broken(clinic, tmp_path):
    clinic.import_cases(write(tmp_path, "mon.csv",
                              "case_id,training_age\nk1,novice\nk2,trained\n"), "Dr A")
    changed = "case_id,training_age\nk1,novice\nk2,novice\nk3,trained\n"
    plan = clinic.plan_import(clinic.check_case_file(write(tmp_path, "tue.csv", changed)),
                              "tue.csv")
    assert [clinic_case.case_ref for _, clinic_case in plan.known] == ["k1"]
    (conflict,) = plan.conflicts
    assert conflict.row == 3 and conflict.problems[0].startswith(
        'row 3, column "case_id": case_id "k2" is already stored as case 2 (from import 1 '
        "(mon.csv, ")
    assert "with different answers; delete case 2 first to replace it" in conflict.problems[0]
    with pytest.raises(CaseImportError) as info:
        clinic.import_cases(write(tmp_path, "tue.csv", changed), "Dr A")
    assert "nothing was imported" in str(info.value)
    assert "1 row(s) are valid: to import them and skip the broken ones, use --skip-broken" \
        in str(info.value)
    report = clinic.import_cases(write(tmp_path, "tue.csv", changed), "Dr A",
                                 skip_broken=True)
    assert [clinic.case_page(1, i - 1)[0].case_ref for i in report.ids] == ["k3"]
    text = " ".join(report.describe())
    assert "Imported 1 case(s)" in text and "1 row(s) were already stored" in text
    assert "1 from import 1 (mon.csv" in text and "1 broken row(s) skipped as asked: rows 3" \
        in text
    assert report.record is not None and report.record.skipped_known == 1
    assert report.record.skipped_broken == 1


def test_an_export_coming_back_is_recognised_by_its_store_ids(clinic, tmp_path) -> None:
    clinic.import_cases(write(tmp_path, "a.csv", "training_age\nnovice\nnovice\ntrained\n"),
                        "Dr A")
    cal = clinic.calibration()
    exported = cases_to_csv(clinic.cases(), variables=cal.variables, causes=cal.causes,
                            outcome_node=cal.outcome)
    report = clinic.import_cases(write(tmp_path, "export.csv", exported), "Dr A")
    assert report.ids == () and len(report.plan.known) == 3
    assert clinic.case_counts().total == 3


def test_broken_rows_are_named_and_only_imported_on_request(clinic, tmp_path) -> None:
    text = ("training_age,low_back_soreness\n"
            "novice,mild\n"
            "veteran,mild\n"      # row 3
            "novice,sore\n"       # row 4
            "trained,none\n")
    path = write(tmp_path, "part.csv", text)
    with pytest.raises(CaseImportError) as info:
        clinic.import_cases(path, "Dr A")
    assert [p.split(":")[0] for p in info.value.problems] == [
        'row 3, column "training_age"', 'row 4, column "low_back_soreness"']
    assert clinic.case_counts().total == 0
    report = clinic.import_cases(path, "Dr A", skip_broken=True)
    assert len(report.ids) == 2 and [b.row for b in report.skipped_broken] == [3, 4]
    assert clinic.case_counts().total == 2
    # a header problem refuses the whole file even when asked to skip broken rows
    with pytest.raises(CaseImportError, match='unknown column "bogus"'):
        clinic.import_cases(write(tmp_path, "bad.csv", "training_age,bogus\nnovice,x\n"),
                            "Dr A", skip_broken=True)


def test_imports_need_the_passcode_and_a_name(tmp_path) -> None:
    conf = Settings(store_path=tmp_path / "s.sqlite", passcode=PASS)
    path = write(tmp_path, "a.csv", "training_age\nnovice\n")
    with Clinic.open(conf) as clinic, pytest.raises(AccessError):
        clinic.import_cases(path, "Dr A")
    with Clinic.open(conf, unlock(conf, PASS)) as clinic, pytest.raises(ValueError,
                                                                        match="say who"):
        clinic.import_cases(path, " ")


def test_the_encoded_rows_equal_the_case_objects(clinic, tmp_path) -> None:
    """The fast import path writes exactly what the object path would."""
    cal = load_calibration()
    frame = with_missing(sample_cases(cal, 300, seed=3), {"onset": 0.3, "glute_soreness": 0.5},
                         seed=4).drop(columns=["technique_breakdown"])
    frame = frame.rename(columns={c: f"cause:{c}" for c in cal.causes})
    frame.insert(0, "therapist", ["", "Dr B", "=cmd"] * 100)
    checked = clinic.check_case_file(frame.to_csv(index=False).encode())
    for case, row in zip(checked.cases, checked.store_rows(), strict=True):
        assert row[0] == json.dumps(case.evidence, sort_keys=True, separators=(",", ":"))
        assert row[1] == json.dumps(case.adjudicated, sort_keys=True, separators=(",", ":"))
        assert row[2:] == (case.outcome, case.therapist, case.case_id)


def test_200000_cases_import_in_under_ten_seconds(clinic, tmp_path) -> None:
    cal = load_calibration()
    frame = sample_cases(cal, 20_000, seed=1).drop(columns=["technique_breakdown"])
    frame = with_missing(frame, {n: 0.2 for n, s in cal.nodes.items() if s.role == "symptom"},
                         seed=2).rename(columns={c: f"cause:{c}" for c in cal.causes})
    header, body = frame.to_csv(index=False).split("\n", 1)
    path = tmp_path / "big.csv"  # 200,000 rows: every answer pattern ten times
    path.write_text(header + "\n" + body * 10, encoding="utf-8")
    start = time.perf_counter()
    report = clinic.import_cases(path, "Dr A")
    took = time.perf_counter() - start
    assert len(report.ids) == 200_000 and clinic.case_counts().total == 200_000
    assert took <= 10.0, f"importing 200,000 cases took {took:.1f} s"
    start = time.perf_counter()
    again = clinic.import_cases(path, "Dr A")  # recognised, not doubled
    assert again.ids == () and clinic.case_counts().total == 200_000
    assert time.perf_counter() - start <= 10.0
    print(f"\n200,000 cases imported in {took:.1f} s")


def test_a_clinics_own_numeric_ids_are_not_mistaken_for_store_ids(clinic, tmp_path) -> None:
    """Cases stored without a case_id get store ids 1, 2, 3; a clinic whose own case_ids are
    1, 2, 3 with the same answers brings three new cases, not "already stored" ones. An
    export names store ids knowpain-1 ..., and that export coming back is still recognised,
    with the import its cases came from."""
    clinic.import_cases(write(tmp_path, "same.csv", "training_age\nnovice\nnovice\nnovice\n"),
                        "Dr A")
    own = clinic.import_cases(
        write(tmp_path, "numbered.csv", "case_id,training_age\n1,novice\n2,novice\n3,novice\n"),
        "Dr B")
    assert len(own.ids) == 3 and own.plan.known == ()
    assert clinic.case_counts().total == 6
    cal = clinic.calibration()
    exported = cases_to_csv(clinic.cases(), variables=cal.variables, causes=cal.causes,
                            outcome_node=cal.outcome)
    assert exported.splitlines()[1].startswith("knowpain-1,")
    back = clinic.import_cases(write(tmp_path, "export.csv", exported), "Dr A")
    assert back.ids == () and len(back.plan.known) == 6
    summary = back.plan.known_summary()
    assert [line.split(",")[0] for line in summary] == [
        "3 from import 1 (same.csv", "3 from import 2 (numbered.csv"]
