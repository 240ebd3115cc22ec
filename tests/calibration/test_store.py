"""The versioned SQLite store: versions, active pointer, cases, audit, safety properties."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from calibration import store as store_module
from calibration.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    NewCase,
    NotFoundError,
    Store,
    StoreBusyError,
    StoreError,
    content_hash,
    default_store_path,
)

REPO = Path(__file__).resolve().parents[2]
SEED = '[network]\nname = "toy"\n\n[nodes.a]\nstates = ["no", "yes"]\ntable = [0.9, 0.1]\n'
OTHER = SEED.replace("0.9, 0.1", "0.8, 0.2")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "knowpain.sqlite"


@pytest.fixture
def store(path: Path):
    with Store(path, seed_toml=SEED) as s:
        yield s


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# ---- creating, seeding, default path ---------------------------------------------------------


def test_new_store_is_marked_seeded_and_in_wal_mode(store: Store, path: Path) -> None:
    assert path.exists()
    conn = raw(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()

    (v1,) = store.list_versions()
    assert (v1.id, v1.parent_id, v1.author, v1.toml_text) == (1, None, "knowpain", SEED)
    assert v1.content_hash == sha(SEED) == content_hash(SEED)
    assert store.active_version() == v1
    assert [(e.action, e.who) for e in store.audit_log()] == [("seed", "knowpain")]


def test_reopening_does_not_reseed(path: Path) -> None:
    Store(path, seed_toml=SEED).close()
    with Store(path, seed_toml=OTHER) as s:
        assert [v.toml_text for v in s.list_versions()] == [SEED]
        assert s.ensure_seeded(OTHER).toml_text == SEED
        assert len(s.audit_log()) == 1


def test_unseeded_store_has_no_active_version(path: Path) -> None:
    with Store(path) as s:
        assert s.active_version() is None
        assert s.list_versions() == []
        v1 = s.ensure_seeded(SEED, author="setup")
        assert s.active_version() == v1
        assert s.audit_log()[0].who == "setup"


def test_empty_existing_file_becomes_a_store(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with Store(path, seed_toml=SEED) as s:
        assert s.active_version() is not None


def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path / "kp"))
    assert default_store_path() == tmp_path / "kp" / "knowpain.sqlite"
    monkeypatch.delenv("KNOWPAIN_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    found = default_store_path()
    assert found.name == "knowpain.sqlite" and found.parent.name == "knowpain"
    if sys.platform.startswith("linux"):
        assert found == tmp_path / "xdg" / "knowpain" / "knowpain.sqlite"
        monkeypatch.delenv("XDG_DATA_HOME")
        assert default_store_path() == Path.home() / ".local/share/knowpain/knowpain.sqlite"


def test_store_uses_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path / "kp"))
    with Store(seed_toml=SEED) as s:
        assert s.path == tmp_path / "kp" / "knowpain.sqlite"
    assert (tmp_path / "kp" / "knowpain.sqlite").exists()


def test_closed_store_raises(path: Path) -> None:
    s = Store(path, seed_toml=SEED)
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.list_versions()


def test_folder_at_store_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder"):
        Store(tmp_path)


# ---- versions, activate, rollback, audit -----------------------------------------------------


def test_add_version_records_parent_hash_and_audit(store: Store) -> None:
    v2 = store.add_version(OTHER, author="dr_a", note="stiffer prior")
    assert (v2.id, v2.parent_id, v2.author, v2.note) == (2, 1, "dr_a", "stiffer prior")
    assert v2.content_hash == sha(OTHER)
    assert store.get_version(2) == v2
    assert store.active_version().id == 1  # adding does not activate

    v3 = store.add_version(SEED, author="dr_b", parent_id=1, activate=True)
    assert v3.parent_id == 1 and v3.content_hash == sha(SEED)  # duplicates allowed
    assert store.active_version() == v3
    assert [v.id for v in store.list_versions()] == [1, 2, 3]

    log = store.audit_log()
    assert [(e.action, e.who) for e in log] == [
        ("seed", "knowpain"), ("add_version", "dr_a"), ("add_version", "dr_b"),
        ("activate", "dr_b"),
    ]
    assert "version 2" in log[1].detail and "stiffer prior" in log[1].detail
    assert log[3].detail == "active version 1 -> 3"
    assert [e.at for e in log] == sorted(e.at for e in log)


def test_add_version_with_unknown_parent_writes_nothing(store: Store) -> None:
    with pytest.raises(NotFoundError, match="99"):
        store.add_version(OTHER, author="dr_a", parent_id=99)
    assert len(store.list_versions()) == 1
    assert len(store.audit_log()) == 1


@pytest.mark.parametrize("bad", [{"toml_text": ""}, {"author": " "}])
def test_add_version_rejects_empty_text_or_author(store: Store, bad: dict[str, str]) -> None:
    kwargs = {"toml_text": OTHER, "author": "dr_a", **bad}
    with pytest.raises(ValueError):
        store.add_version(**kwargs)
    assert len(store.list_versions()) == 1


def test_activate_and_rollback_are_pointer_moves(store: Store) -> None:
    v2 = store.add_version(OTHER, author="dr_a")
    v3 = store.add_version(SEED + "# 3\n", author="dr_a", parent_id=v2.id)
    before = store.list_versions()

    assert store.activate(v3.id, who="dr_b") == v3
    assert store.rollback(who="dr_c") == v2
    assert store.active_version() == v2
    assert store.rollback(who="dr_c").id == 1
    with pytest.raises(StoreError, match="no parent"):
        store.rollback(who="dr_c")
    assert store.active_version().id == 1
    assert store.list_versions() == before  # versions themselves never change

    moves = [(e.action, e.who, e.detail) for e in store.audit_log()
             if e.action in ("activate", "rollback")]
    assert moves == [
        ("activate", "dr_b", "active version 1 -> 3"),
        ("rollback", "dr_c", "active version 3 -> 2"),
        ("rollback", "dr_c", "active version 2 -> 1"),
    ]


def test_activate_unknown_version_changes_nothing(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.activate(42, who="dr_a")
    with pytest.raises(NotFoundError):
        store.get_version(42)
    assert store.active_version().id == 1
    assert len(store.audit_log()) == 1


def test_rollback_on_unseeded_store(path: Path) -> None:
    with Store(path) as s, pytest.raises(StoreError, match="no active version"):
        s.rollback(who="dr_a")


def test_versions_and_audit_are_immutable_in_sql(store: Store, path: Path) -> None:
    conn = raw(path)
    for sql in ("UPDATE calibration_versions SET note = 'x'", "DELETE FROM calibration_versions",
                "UPDATE audit_log SET who = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql)
    conn.close()
    assert store.list_versions()[0].toml_text == SEED


# ---- cases -----------------------------------------------------------------------------------


def test_cases_add_list_delete_with_audit(store: Store) -> None:
    ids = store.add_cases(
        [
            NewCase({"a": "yes", "b": "often"}, {"cause_x": "yes"}, "mild"),
            NewCase({"a": "no"}, therapist="dr_b"),
            NewCase({}, {"cause_x": "no"}, None),
        ],
        therapist="dr_a",
    )
    assert ids == [1, 2, 3]
    cases = store.list_cases()
    assert [(c.id, c.therapist) for c in cases] == [(1, "dr_a"), (2, "dr_b"), (3, "dr_a")]
    assert cases[0].evidence == {"a": "yes", "b": "often"}
    assert cases[0].adjudicated == {"cause_x": "yes"} and cases[0].outcome == "mild"
    assert cases[1].adjudicated == {} and cases[1].outcome is None
    assert store.get_case(2) == cases[1]

    store.delete_case(2, who="dr_c")
    assert [c.id for c in store.list_cases()] == [1, 3]
    with pytest.raises(NotFoundError):
        store.delete_case(2, who="dr_c")
    with pytest.raises(NotFoundError):
        store.get_case(2)

    log = store.audit_log()
    assert [(e.action, e.who) for e in log[1:]] == [("add_cases", "dr_a"),
                                                    ("delete_case", "dr_c")]
    assert "3 case(s)" in log[1].detail
    assert log[2].detail.startswith("case 2: ")
    assert json.loads(log[2].detail.removeprefix("case 2: "))["evidence"] == {"a": "no"}
    assert store.add_cases([], therapist="dr_a") == []
    assert store.add_cases([NewCase({"a": "no"})], therapist="dr_a") == [4]  # ids not reused


def test_add_cases_rejects_bad_input_before_writing(store: Store) -> None:
    with pytest.raises(TypeError):
        store.add_cases([NewCase({"a": "no"}), NewCase({"a": 1})], therapist="dr_a")  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        store.add_cases([{"a": "no"}], therapist="dr_a")  # type: ignore[list-item]
    assert store.list_cases() == []


def test_add_cases_is_all_or_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the case rows were inserted (here: writing the audit entry) rolls
    every one of them back."""

    def broken_audit(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "_audit", staticmethod(broken_audit))
    with pytest.raises(StoreError, match="disk I/O error"):
        store.add_cases([NewCase({"a": "no"})] * 5, therapist="dr_a")
    monkeypatch.undo()
    assert store.list_cases() == []
    assert [e.action for e in store.audit_log()] == ["seed"]
    assert store.add_cases([NewCase({"a": "no"})], therapist="dr_a") == [1]


# ---- busy, concurrency, crash ----------------------------------------------------------------


def test_locked_store_gives_busy_error_and_writes_nothing(store: Store, path: Path) -> None:
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with Store(path, timeout=0.2) as other:
            started = time.monotonic()
            with pytest.raises(StoreBusyError) as info:
                other.add_version(OTHER, author="dr_a")
            assert str(info.value) == "store is busy, try again"
            assert isinstance(info.value, StoreError)
            assert time.monotonic() - started >= 0.15  # it waited for the timeout
            with pytest.raises(StoreBusyError):
                other.add_cases([NewCase({"a": "no"})], therapist="dr_a")
            assert len(other.list_versions()) == 1  # readers are not blocked (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(store.list_versions()) == 1
    assert store.list_cases() == []
    assert len(store.audit_log()) == 1


WRITER = """
import json, os, sys, time
from calibration.store import Store, StoreBusyError
path, name, go, seed = sys.argv[1:5]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
ok, busy = [], 0
s = Store(path, seed_toml=seed, timeout=10)
for i in range(50):
    try:
        ok.append(s.add_version(f"writer = '{name}'\\nn = {i}\\n", author=name,
                                note=f"{name}-{i}").id)
    except StoreBusyError as exc:
        assert str(exc) == "store is busy, try again"
        busy += 1
s.close()
print(json.dumps({"ok": ok, "busy": busy}), flush=True)
"""


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    """Two processes create the same new store at the same moment and each add 50 versions.
    Every write either committed completely (with its audit entry) or raised the busy error;
    with a 10 s timeout none should need to."""
    path = tmp_path / "knowpain.sqlite"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(go), SEED],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=child_env(),
        )
        for name in ("w1", "w2")
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        results = {}
        for name, p in zip(("w1", "w2"), procs, strict=True):
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            results[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    with Store(path) as s:
        versions = s.list_versions()
        audit = s.audit_log()
    seeds = [v for v in versions if v.note == "shipped default"]
    assert len(seeds) == 1 and seeds[0].id == 1  # only one process seeded
    for name, res in results.items():
        assert len(res["ok"]) + res["busy"] == 50
        mine = [v for v in versions if v.author == name]
        assert [v.id for v in mine] == res["ok"]
        assert [v.note for v in mine] == [f"{name}-{i}" for i in range(len(mine))] or (
            res["busy"] > 0
        )
    for v in versions:
        assert v.content_hash == sha(v.toml_text)
    added = [e for e in audit if e.action == "add_version"]
    assert len(added) == len(versions) - 1  # every version has exactly its audit entry
    assert len({v.id for v in versions}) == len(versions)
    assert results["w1"]["busy"] == results["w2"]["busy"] == 0
    assert len(versions) == 101


CRASHER = """
import sys
from calibration.store import Store
s = Store(sys.argv[1], timeout=10)
filler = "# " + "x" * 60_000 + "\\n"
i = 0
while True:
    v = s.add_version(f"n = {i}\\n" + filler * 4, author="crasher", note=str(i))
    print(v.id, v.content_hash, flush=True)
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_save_leaves_store_readable(path: Path) -> None:
    Store(path, seed_toml=SEED).close()
    rng = random.Random(5)
    committed: dict[int, str] = {1: sha(SEED)}
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHER, str(path)],
            stdout=subprocess.PIPE, text=True, cwd=REPO, env=child_env(),
        )
        assert proc.stdout is not None
        try:
            for _ in range(5):
                line = proc.stdout.readline()
                assert line, "writer died before writing"
                vid, digest = line.split()
                committed[int(vid)] = digest
            time.sleep(rng.uniform(0, 0.02))  # land somewhere inside a later save
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            rest, _ = proc.communicate()
        for line in rest.splitlines():  # saves reported just before the kill
            vid, digest = line.split()
            committed[int(vid)] = digest
        assert proc.returncode == -signal.SIGKILL

        with Store(path) as s:  # reopening recovers from the WAL
            versions = {v.id: v for v in s.list_versions()}
            audit = s.audit_log()
        conn = raw(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        for vid, digest in committed.items():
            assert versions[vid].content_hash == digest
        for v in versions.values():
            assert v.content_hash == sha(v.toml_text)  # nothing half-written
        assert len([e for e in audit if e.action == "add_version"]) == len(versions) - 1
        assert sorted(versions) == list(range(1, len(versions) + 1))


# ---- foreign, corrupt and newer files --------------------------------------------------------


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE patients (name TEXT)")
    conn.execute("INSERT INTO patients VALUES ('precious data')")
    conn.commit()
    conn.close()


def _sqlite_with_our_tables_but_no_marker(path: Path) -> None:
    Store(path, seed_toml=SEED).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA application_id = 0")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.write_bytes(random.Random(1).randbytes(8192)), "not an SQLite database"),
        (lambda p: p.write_text("name,age\nann,31\n"), "not an SQLite database"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x01" * 20), "damaged"),
        (_foreign_sqlite, "does not belong to knowpain"),
        (_sqlite_with_our_tables_but_no_marker, "does not belong to knowpain"),
    ],
    ids=["random-bytes", "csv-text", "truncated-sqlite", "foreign-sqlite", "no-marker"],
)
def test_foreign_or_corrupt_file_is_refused_and_untouched(tmp_path: Path, make, why) -> None:
    path = tmp_path / "knowpain.sqlite"
    make(path)
    before = path.read_bytes()
    names_before = siblings(path)

    with pytest.raises(StoreError) as info:
        Store(path, seed_toml=SEED)
    message = str(info.value)
    assert str(path) in message and "left untouched" in message and why in message
    assert not isinstance(info.value, StoreBusyError)
    assert path.read_bytes() == before
    assert siblings(path) == names_before  # no -wal / -shm / -journal created


def test_corrupt_pages_in_our_store_give_store_error(path: Path) -> None:
    Store(path, seed_toml=SEED).close()
    data = bytearray(path.read_bytes())
    data[100:] = random.Random(2).randbytes(len(data) - 100)  # keep only the header
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as info, Store(path) as s:
        s.list_versions()
    assert str(path) in str(info.value) and "damaged" in str(info.value)


def test_store_from_newer_knowpain_is_refused_untouched(path: Path) -> None:
    Store(path, seed_toml=SEED).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer knowpain") as info:
        Store(path)
    assert "left untouched" in str(info.value)
    assert path.read_bytes() == before


# ---- migration -------------------------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE calibrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, parent_id INTEGER REFERENCES calibrations(id),
    author TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    toml_text TEXT NOT NULL);
CREATE TABLE active_calibration (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    version_id INTEGER NOT NULL REFERENCES calibrations(id));
CREATE TABLE cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT, evidence TEXT NOT NULL, outcome TEXT,
    therapist TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL, at TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
"""

T0 = "2024-01-02T03:04:05.000000+00:00"


def make_v1_store(path: Path, active: int = 2) -> None:
    """A store as the first release wrote it (schema 1), written independently of the code
    under test so that changing the migrations cannot silently change this fixture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.executescript(V1_SCHEMA)
    conn.executemany(
        "INSERT INTO calibrations (id, parent_id, author, note, created_at, toml_text) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(1, None, "knowpain", "shipped default", T0, SEED),
         (2, 1, "dr_a", "first edit", T0, OTHER)],
    )
    conn.execute("INSERT INTO active_calibration VALUES (1, ?)", (active,))
    conn.executemany(
        "INSERT INTO cases (evidence, outcome, therapist, created_at) VALUES (?, ?, ?, ?)",
        [('{"a": "yes"}', "mild", "dr_a", T0), ('{"a": "no"}', None, "dr_b", T0)],
    )
    conn.executemany(
        "INSERT INTO audit (who, at, action, detail) VALUES (?, ?, ?, ?)",
        [("knowpain", T0, "seed", "version 1"), ("dr_a", T0, "add_version", "version 2")],
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_v1_store_is_migrated(path: Path) -> None:
    make_v1_store(path)
    with Store(path, seed_toml="ignored = true\n") as s:
        versions = s.list_versions()
        assert [(v.id, v.parent_id, v.author, v.note) for v in versions] == [
            (1, None, "knowpain", "shipped default"), (2, 1, "dr_a", "first edit")]
        assert [v.content_hash for v in versions] == [sha(SEED), sha(OTHER)]
        assert s.active_version().id == 2
        cases = s.list_cases()
        assert [(c.evidence, c.adjudicated, c.outcome, c.therapist) for c in cases] == [
            ({"a": "yes"}, {}, "mild", "dr_a"), ({"a": "no"}, {}, None, "dr_b")]
        log = s.audit_log()
        assert [e.action for e in log] == ["seed", "add_version", "migrate"]
        assert "schema 1 -> 2" in log[-1].detail
        # the migrated store works like a new one
        v3 = s.add_version(SEED + "# 3\n", author="dr_c", activate=True)
        assert v3.id == 3 and v3.parent_id == 2
        assert s.rollback(who="dr_c").id == 2
        assert s.add_cases([NewCase({"a": "no"})], therapist="dr_c") == [3]
    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"calibrations", "active_calibration", "audit"}.isdisjoint(tables)
    conn.close()
    with Store(path) as s:  # opening again does not migrate again
        assert [e.action for e in s.audit_log()].count("migrate") == 1


def test_failed_migration_leaves_v1_store_as_it_was(path: Path) -> None:
    make_v1_store(path, active=7)  # a dangling active pointer: the migration must fail
    before = path.read_bytes()
    with pytest.raises(StoreError, match="left untouched"):
        Store(path)
    assert path.read_bytes() == before
    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM calibrations").fetchone()[0] == 2
    conn.close()


def test_migrations_list_matches_schema_version() -> None:
    assert len(store_module.MIGRATIONS) == SCHEMA_VERSION >= 2
