"""Schema 3 of the store: where each version comes from (expert or refit, of which expert
version), imports with their content hash, the file's own case ids, SQL counts and pages —
and old stores keep working, their versions byte for byte."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from calibration.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    ImportSource,
    NewCase,
    Store,
    StoreError,
)

SEED = '[network]\nname = "toy"\n\n[nodes.a]\nstates = ["no", "yes"]\ntable = [0.9, 0.1]\n'
# text a store written years ago may hold, odd bytes included: it must come back unchanged
OLD = ('# saved 2024 — «naïve» text, tabs\tand CRLF\r\n' + SEED.replace("0.9, 0.1", "0.7, 0.3")
       + "\n\n# trailing blank lines\n\n")
T0 = "2024-01-02T03:04:05.000000+00:00"
DIGEST = "ab" * 32


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "knowpain.sqlite"


def make_v2_store(path: Path) -> None:
    """A store as schema 2 wrote it, built with plain SQL (independent of the code under
    test): an expert version, an edit, and an old refit saved with knowpain's refit note."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.executescript("""
    CREATE TABLE calibration_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        parent_id INTEGER REFERENCES calibration_versions(id),
        author TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
        content_hash TEXT NOT NULL CHECK (length(content_hash) = 64), toml_text TEXT NOT NULL);
    CREATE TABLE active (singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        version_id INTEGER NOT NULL REFERENCES calibration_versions(id));
    CREATE TABLE cases (id INTEGER PRIMARY KEY AUTOINCREMENT, evidence TEXT NOT NULL,
        outcome TEXT, therapist TEXT NOT NULL, created_at TEXT NOT NULL,
        adjudicated TEXT NOT NULL DEFAULT '{}');
    CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL,
        at TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
    CREATE TRIGGER calibration_versions_no_update BEFORE UPDATE ON calibration_versions
        BEGIN SELECT RAISE(ABORT, 'calibration versions are immutable'); END;
    CREATE TRIGGER calibration_versions_no_delete BEFORE DELETE ON calibration_versions
        BEGIN SELECT RAISE(ABORT, 'calibration versions are immutable'); END;
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """)
    conn.executemany(
        "INSERT INTO calibration_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(1, None, "knowpain", "shipped default", T0, sha(SEED), SEED),
         (2, 1, "dr_a", "stiffer leak", T0, sha(OLD), OLD),
         (3, 2, "dr_a", "refit from 120 cases (em)", T0, sha(SEED + "#3\n"), SEED + "#3\n")])
    conn.execute("INSERT INTO active VALUES (1, 3)")
    conn.executemany(
        "INSERT INTO cases (evidence, outcome, therapist, created_at, adjudicated) "
        "VALUES (?, ?, ?, ?, ?)",
        [('{"a": "yes"}', None, "dr_a", T0, "{}"), ('{"a": "yes"}', "mild", "dr_b", T0,
                                                      '{"a": "no"}')])
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()


def test_v2_store_is_migrated_and_old_versions_read_back_byte_identical(path: Path) -> None:
    make_v2_store(path)
    with Store(path) as store:
        versions = store.list_versions()
        assert [v.toml_text for v in versions] == [SEED, OLD, SEED + "#3\n"]
        assert [v.toml_text.encode("utf-8") for v in versions][1] == OLD.encode("utf-8")
        assert all(v.content_hash == sha(v.toml_text) for v in versions)
        # the old refit is recognised by knowpain's own note; its expert base is unknown
        assert [(v.kind, v.fitted_from) for v in versions] == [
            ("expert", None), ("expert", None), ("refit", None)]
        assert store.active_version().id == 3
        cases = store.list_cases()
        assert [(c.import_id, c.case_ref) for c in cases] == [(None, None), (None, None)]
        assert store.count_cases().total == 2
        assert store.audit_log()[-1].detail == (
            "schema 2 -> 3: 1 version(s) recognised as refits by their note")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):  # the trigger is back
        conn.execute("UPDATE calibration_versions SET kind = 'expert' WHERE id = 3")
    conn.close()
    with Store(path) as store:  # opening again changes nothing
        assert [v.toml_text for v in store.list_versions()] == [SEED, OLD, SEED + "#3\n"]
        assert sum(e.action == "migrate" for e in store.audit_log()) == 1


def test_a_version_reads_back_byte_identical_whatever_happens_around_it(path: Path) -> None:
    with Store(path, seed_toml=SEED) as store:
        v = store.add_version(OLD, author="dr_a", note="odd bytes")
    for _ in range(3):  # reopened, with other versions and cases added meanwhile
        with Store(path) as store:
            store.add_version(SEED + "# more\n", author="dr_b")
            store.add_cases([NewCase({"a": "no"})], therapist="dr_b")
            again = store.get_version(v.id)
            assert again.toml_text.encode("utf-8") == OLD.encode("utf-8")
            assert again.content_hash == v.content_hash == sha(OLD)


def test_refit_provenance_is_recorded_and_checked(path: Path) -> None:
    with Store(path, seed_toml=SEED) as store:
        refit = store.add_version(SEED + "#r\n", author="dr_a", kind="refit", fitted_from=1,
                                  fit_detail=json.dumps({"cases": 3}))
        assert (refit.kind, refit.fitted_from, refit.is_refit) == ("refit", 1, True)
        assert store.get_version(refit.id).fit_detail == '{"cases": 3}'
        assert "refit of version 1" in store.audit_log()[-1].detail
        with pytest.raises(ValueError, match="only a refit"):
            store.add_version(SEED, author="dr_a", fitted_from=1)
        with pytest.raises(ValueError, match="kind must be"):
            store.add_version(SEED, author="dr_a", kind="guess")
        with pytest.raises(LookupError, match="no calibration version 9 to fit from"):
            store.add_version(SEED, author="dr_a", kind="refit", fitted_from=9)
        assert len(store.list_versions()) == 2


def test_imports_are_recorded_with_their_hash_and_case_ids_stay_unique(path: Path) -> None:
    with Store(path, seed_toml=SEED) as store:
        source = ImportSource(DIGEST, "week1.csv", rows=3, skipped_broken=1)
        ids = store.add_cases([NewCase({"a": "yes"}, case_id="x1"), NewCase({"a": "yes"}),
                               NewCase({"a": "yes"})], therapist="dr_a", source=source)
        assert ids == [1, 2, 3]  # identical answers: three cases
        (record,) = store.imports(DIGEST)
        assert (record.file_name, record.rows, record.imported, record.skipped_broken) == (
            "week1.csv", 3, 3, 1)
        assert store.cases_of_import(record.id) == 3
        assert [c.import_id for c in store.list_cases()] == [record.id] * 3
        known = store.known_cases(["x1", "x2"])
        assert list(known) == ["x1"] and known["x1"].imported == record
        assert known["x1"].case_id == 1
        assert "import 1 (week1.csv, " in str(record) and "by dr_a)" in str(record)
        # a case_id already stored is refused, and nothing of the batch is stored
        with pytest.raises(StoreError, match="case_id is already stored"):
            store.add_cases([NewCase({"a": "no"}), NewCase({"a": "no"}, case_id="x1")],
                            therapist="dr_a", source=ImportSource(DIGEST, "again.csv", 2))
        assert store.count_cases().total == 3 and len(store.imports()) == 1
        with pytest.raises(ValueError, match="given twice"):
            store.add_cases([NewCase({"a": "no"}, case_id="y"),
                             NewCase({"a": "no"}, case_id="y")], therapist="dr_a")
        # an export's store ids come back as case_ids: cases without a ref of their own
        assert set(store.unreferenced_cases([1, 2, 3])) == {2, 3}


def test_counts_pages_and_revision_come_from_sql(path: Path) -> None:
    with Store(path, seed_toml=SEED) as store:
        empty = store.cases_revision()
        store.add_cases([NewCase({"a": "yes"}, adjudicated={"a": "no"}, outcome="mild"),
                         *[NewCase({"a": "no"})] * 9], therapist="dr_a")
        counts = store.count_cases()
        assert (counts.total, counts.adjudicated, counts.with_outcome) == (10, 1, 1)
        assert [c.id for c in store.page_cases(3, 4)] == [5, 6, 7]
        assert [c.id for c in store.page_cases(3, 0, newest_first=True)] == [10, 9, 8]
        assert store.page_cases(5, 20) == []
        revision = store.cases_revision()
        assert revision != empty
        store.add_version(SEED + "#2\n", author="dr_a")  # not a case change
        assert store.cases_revision() == revision
        store.delete_case(10, who="dr_a")
        assert store.cases_revision() != revision
        store.add_cases([NewCase({"a": "no"})], therapist="dr_a")  # id 11, count back to 10
        assert store.count_cases().total == 10 and store.cases_revision() != revision


def test_encoded_rows_are_stored_like_cases(path: Path) -> None:
    with Store(path, seed_toml=SEED) as store:
        ids = store.add_case_rows(
            [('{"a": "yes"}', '{}', None, None, "r1"), ('{"a": "no"}', '{"a": "yes"}', "mild",
                                                       "dr_b", None)],
            therapist="dr_a", source=ImportSource(DIGEST, "f.csv", 2))
        one, two = (store.get_case(i) for i in ids)
        assert (one.evidence, one.therapist, one.case_ref) == ({"a": "yes"}, "dr_a", "r1")
        assert (two.adjudicated, two.outcome, two.therapist) == ({"a": "yes"}, "mild", "dr_b")
        with pytest.raises(TypeError, match="not an encoded case row"):
            store.add_case_rows([("not json", "{}", None, None, None)], therapist="dr_a")
