"""The versioned calibration store: one SQLite database file (stdlib ``sqlite3`` only).

What lives in the store
-----------------------
* **Calibration versions** — immutable rows (id, parent id, author, note, created_at, SHA-256
  content hash, the TOML text). The TOML text is opaque here; only its hash is computed.
* **The active pointer** — exactly one active version. Activating and rolling back only move
  this pointer; versions are never edited or deleted (SQL triggers refuse it).
* **Provenance** — each version is an ``expert`` calibration or a ``refit``; a refit names the
  expert version it was fitted from (``fitted_from``) and how (``fit_detail``, JSON).
* **Cases** — evidence ``{node: state}``, adjudicated causes ``{cause: state}`` (may be empty),
  the follow-up outcome (may be ``None``), therapist and timestamp; the import they came in
  with and the file's own ``case_id`` (unique in the store when given). Identical answers are
  separate cases.
* **Imports** — one row per imported file: its SHA-256 content hash, file name, who, when,
  and how many rows it had, stored and skipped — so a file imported twice is recognised.
* **The audit log** — who did what and when, written in the same transaction as the change it
  records, and append-only.

Safety properties
-----------------
* WAL journal, ``busy_timeout``, ``synchronous=FULL``; every write is one ``BEGIN IMMEDIATE``
  transaction, so a crash mid-save leaves the previous versions intact and the file readable,
  and two writers either both succeed or one gets :class:`StoreBusyError`
  ("store is busy, try again") with nothing half-written.
* Our files carry ``PRAGMA application_id`` = :data:`APPLICATION_ID`. Before any SQLite
  connection is opened, the file header is read with plain file I/O; a file that is not SQLite,
  or SQLite without our application id, is refused with a :class:`StoreError` and is left
  byte-for-byte untouched (no ``-wal``/``-shm`` files are created next to it either).
* The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` are applied in order, each
  in the same transaction as the version bump. A file from a newer knowpain is refused.

Example::

    store = Store(path, seed_toml=default_text)      # version 1 = the shipped default
    v = store.add_version(new_text, author="dr_a", note="stiffer leak")
    store.activate(v.id, who="dr_a")
    store.rollback(who="dr_a")                         # back to the parent (version 1)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calibration.files import read_at_most
from model.errors import NotFoundError, StoreBusyError, StoreError, named

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AuditEntry",
    "CalibrationVersion",
    "Case",
    "CaseCounts",
    "ImportRecord",
    "ImportSource",
    "KnownCase",
    "NewCase",
    "NotFoundError",
    "Store",
    "StoreBusyError",
    "StoreError",
    "content_hash",
    "default_store_path",
]

#: ``PRAGMA application_id`` of every knowpain store: the ASCII bytes "KnPn".
APPLICATION_ID = int.from_bytes(b"KnPn", "big")
#: Environment variable naming the folder that holds ``knowpain.sqlite``.
HOME_ENV = "KNOWPAIN_HOME"
#: File name of the store inside ``$KNOWPAIN_HOME`` or the per-user data folder.
STORE_FILENAME = "knowpain.sqlite"
#: Default seconds to wait for another writer before raising :class:`StoreBusyError`.
DEFAULT_TIMEOUT = 5.0

_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (primary result codes)


# --------------------------------------------------------------------------------------------
# errors and records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationVersion:
    """One immutable calibration version."""

    id: int
    parent_id: int | None
    author: str
    note: str
    created_at: datetime
    content_hash: str  # hex SHA-256 of the UTF-8 TOML text
    toml_text: str
    kind: str = "expert"  # "expert" | "refit"
    fitted_from: int | None = None  # a refit's expert base version
    fit_detail: str = ""  # a refit's method and cases, JSON

    @property
    def is_refit(self) -> bool:
        return self.kind == "refit"


@dataclass(frozen=True)
class NewCase:
    """A case to be added (see :meth:`Store.add_cases`).

    ``therapist`` overrides the therapist given to :meth:`Store.add_cases` for this case
    (e.g. a ``therapist`` column in an imported CSV); ``None`` means "the importer".
    """

    evidence: dict[str, str]
    adjudicated: dict[str, str] = field(default_factory=dict)
    outcome: str | None = None
    therapist: str | None = None
    case_id: str | None = None  # the file's own identifier, if it has one


@dataclass(frozen=True)
class Case:
    """A stored case: evidence, adjudicated causes (may be empty) and follow-up outcome."""

    id: int
    evidence: dict[str, str]
    adjudicated: dict[str, str]
    outcome: str | None
    therapist: str
    created_at: datetime
    import_id: int | None = None
    case_ref: str | None = None  # the ``case_id`` of the file it was imported from


@dataclass(frozen=True)
class ImportRecord:
    """One imported file: what it held and what was stored from it."""

    id: int
    content_hash: str
    file_name: str
    who: str
    at: datetime
    rows: int  # data rows in the file
    imported: int  # cases stored from it
    skipped_broken: int
    skipped_known: int

    def __str__(self) -> str:
        name = f"{self.file_name}, " if self.file_name else ""
        return f"import {self.id} ({name}{self.at:%Y-%m-%d %H:%M} UTC, by {self.who})"


@dataclass(frozen=True)
class KnownCase:
    """A stored case found by its ``case_id``, with the import it came in with."""

    case_id: int
    case_ref: str
    evidence: dict[str, str]
    adjudicated: dict[str, str]
    outcome: str | None
    imported: ImportRecord | None


@dataclass(frozen=True)
class CaseCounts:
    """How many cases there are, counted in SQL."""

    total: int
    adjudicated: int
    with_outcome: int


@dataclass(frozen=True)
class AuditEntry:
    """One line of the append-only audit log."""

    id: int
    who: str
    at: datetime
    action: str
    detail: str


@dataclass(frozen=True)
class ImportSource:
    """The file a batch of cases is imported from (see :meth:`Store.add_cases`)."""

    content_hash: str  # hex SHA-256 of the file's bytes
    file_name: str
    rows: int  # data rows in the file
    skipped_broken: int = 0
    skipped_known: int = 0


def content_hash(toml_text: str) -> str:
    """Hex SHA-256 of ``toml_text`` encoded as UTF-8 (the hash stored with each version)."""
    return hashlib.sha256(toml_text.encode("utf-8")).hexdigest()


def default_store_path() -> Path:
    """Where the store lives unless ``--store PATH`` says otherwise.

    ``$KNOWPAIN_HOME/knowpain.sqlite`` if ``KNOWPAIN_HOME`` is set; otherwise a per-user data
    folder: ``%LOCALAPPDATA%\\knowpain`` on Windows, ``~/Library/Application Support/knowpain``
    on macOS, ``$XDG_DATA_HOME/knowpain`` (default ``~/.local/share/knowpain``) elsewhere.
    The folder is not created here; :class:`Store` creates it on first use.
    """
    home = os.environ.get(HOME_ENV, "").strip()
    if home:
        return Path(home).expanduser() / STORE_FILENAME
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "knowpain" / STORE_FILENAME


def active_version_if_any(path: str | os.PathLike[str] | None = None) -> CalibrationVersion | None:
    """The active version of an existing store, or ``None`` when there is no store yet.

    For readers (the lifter pages, ``knowpain diagnose``): a missing store is not created.
    Raises :class:`StoreError` when a file is there but is not a usable store.
    """
    target = Path(path) if path is not None else default_store_path()
    try:
        if "\x00" in str(target):
            raise ValueError("the path contains a NUL character")
        if not target.exists():
            return None
    except (OSError, ValueError) as exc:  # a path the system cannot take
        raise StoreError(f"cannot use {named(str(target), 200)} as the store: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    with Store(target) as store:
        return store.active_version()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _iso(moment: datetime) -> str:
    """A time as the audit log stores it (UTC, microseconds), so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _chmod(path: Path, mode: int, *, only_if_open: bool = False) -> None:
    """Set ``path``'s permission bits; with ``only_if_open``, only when group or others have
    any (never widen). Missing files and files owned by someone else are left alone."""
    try:
        current = path.stat().st_mode & 0o777
        if only_if_open and not current & 0o077:
            return
        if current != mode:
            os.chmod(path, mode)
    except OSError:
        pass


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------------------------
# schema and migrations
# --------------------------------------------------------------------------------------------

# Schema v1 (the first released layout): no content hash, no adjudicated causes, no triggers.
_SCHEMA_V1: tuple[str, ...] = (
    """CREATE TABLE calibrations (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        parent_id  INTEGER REFERENCES calibrations(id),
        author     TEXT NOT NULL,
        note       TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        toml_text  TEXT NOT NULL)""",
    """CREATE TABLE active_calibration (
        singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
        version_id INTEGER NOT NULL REFERENCES calibrations(id))""",
    """CREATE TABLE cases (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        evidence   TEXT NOT NULL,
        outcome    TEXT,
        therapist  TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        who    TEXT NOT NULL,
        at     TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '')""",
)

# Schema v2 (current): versions get a NOT NULL content hash (back-filled from the text), cases
# get adjudicated causes, two tables are renamed, versions and the audit log become
# append-only (triggers).
_SCHEMA_V1_TO_V2: tuple[str, ...] = (
    """CREATE TABLE calibration_versions (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        parent_id    INTEGER REFERENCES calibration_versions(id),
        author       TEXT NOT NULL,
        note         TEXT NOT NULL DEFAULT '',
        created_at   TEXT NOT NULL,
        content_hash TEXT NOT NULL CHECK (length(content_hash) = 64),
        toml_text    TEXT NOT NULL)""",
    """INSERT INTO calibration_versions
        (id, parent_id, author, note, created_at, content_hash, toml_text)
        SELECT id, parent_id, author, note, created_at, knowpain_sha256(toml_text), toml_text
        FROM calibrations ORDER BY id""",
    """CREATE TABLE active (
        singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
        version_id INTEGER NOT NULL REFERENCES calibration_versions(id))""",
    "INSERT INTO active (singleton, version_id) SELECT singleton, version_id "
    "FROM active_calibration",
    "DROP TABLE active_calibration",
    "DROP TABLE calibrations",
    "ALTER TABLE cases ADD COLUMN adjudicated TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE audit RENAME TO audit_log",
    """CREATE TRIGGER calibration_versions_no_update BEFORE UPDATE ON calibration_versions
        BEGIN SELECT RAISE(ABORT, 'calibration versions are immutable'); END""",
    """CREATE TRIGGER calibration_versions_no_delete BEFORE DELETE ON calibration_versions
        BEGIN SELECT RAISE(ABORT, 'calibration versions are immutable'); END""",
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
)


# Schema v3: versions record whether they are an expert calibration or a refit (and of which
# expert version); cases remember their import and their file's case_id; imports are kept.
_SCHEMA_V2_TO_V3: tuple[str, ...] = (
    """CREATE TABLE imports (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        content_hash   TEXT NOT NULL CHECK (length(content_hash) = 64),
        file_name      TEXT NOT NULL DEFAULT '',
        who            TEXT NOT NULL,
        at             TEXT NOT NULL,
        rows           INTEGER NOT NULL,
        imported       INTEGER NOT NULL,
        skipped_broken INTEGER NOT NULL DEFAULT 0,
        skipped_known  INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX imports_by_hash ON imports(content_hash)",
    "ALTER TABLE cases ADD COLUMN import_id INTEGER REFERENCES imports(id)",
    "ALTER TABLE cases ADD COLUMN case_ref TEXT",
    "CREATE UNIQUE INDEX cases_by_ref ON cases(case_ref) WHERE case_ref IS NOT NULL",
    "ALTER TABLE calibration_versions ADD COLUMN kind TEXT NOT NULL DEFAULT 'expert' "
    "CHECK (kind IN ('expert', 'refit'))",
    "ALTER TABLE calibration_versions ADD COLUMN fitted_from INTEGER "
    "REFERENCES calibration_versions(id)",
    "ALTER TABLE calibration_versions ADD COLUMN fit_detail TEXT NOT NULL DEFAULT ''",
)

#: Notes that knowpain itself gave refits before schema 3 (``refit from 120 cases (em)``).
_OLD_REFIT_NOTE = r"^refit from [0-9]+ cases"


def _run_script(conn: sqlite3.Connection, statements: Sequence[str]) -> None:
    # executescript() would COMMIT the open transaction; run statement by statement instead.
    for statement in statements:
        conn.execute(statement)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    _run_script(conn, _SCHEMA_V1)


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    conn.create_function("knowpain_sha256", 1, content_hash, deterministic=True)
    _run_script(conn, _SCHEMA_V1_TO_V2)
    count = conn.execute("SELECT count(*) FROM calibration_versions").fetchone()[0]
    if count:
        conn.execute(
            "INSERT INTO audit_log (who, at, action, detail) VALUES (?, ?, ?, ?)",
            ("knowpain", _now(), "migrate",
             f"schema 1 -> 2: content hashes computed for {count} version(s)"),
        )


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    _run_script(conn, _SCHEMA_V2_TO_V3)
    # versions saved by an older knowpain with its own refit note are refits whose expert
    # base is unknown (the refit base then walks up their parents); the immutability
    # trigger is lifted for this one update and restored in the same transaction
    conn.create_function("knowpain_regexp", 2,
                         lambda pattern, text: re.match(pattern, text or "") is not None,
                         deterministic=True)
    conn.execute("DROP TRIGGER calibration_versions_no_update")
    found = conn.execute(
        "UPDATE calibration_versions SET kind = 'refit' WHERE knowpain_regexp(?, note)",
        (_OLD_REFIT_NOTE,),
    ).rowcount
    conn.execute("""CREATE TRIGGER calibration_versions_no_update BEFORE UPDATE ON
        calibration_versions
        BEGIN SELECT RAISE(ABORT, 'calibration versions are immutable'); END""")
    if found:
        conn.execute(
            "INSERT INTO audit_log (who, at, action, detail) VALUES (?, ?, ?, ?)",
            ("knowpain", _now(), "migrate",
             f"schema 2 -> 3: {found} version(s) recognised as refits by their note"),
        )


#: ``MIGRATIONS[i]`` takes a database from schema ``i`` to ``i + 1``, inside one transaction.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_0_to_1, _migrate_1_to_2, _migrate_2_to_3)
#: The schema version this module reads and writes.
SCHEMA_VERSION = len(MIGRATIONS)


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


class Store:
    """A versioned calibration and case store in one SQLite file.

    ``Store(path)`` opens the file, creating it (and its folder) if missing and migrating an
    older schema. ``path=None`` uses :func:`default_store_path`. If ``seed_toml`` is given and
    the store has no versions yet, it becomes version 1 and is activated (see
    :meth:`ensure_seeded`). ``timeout`` is how many seconds a write waits for another writer
    before :class:`StoreBusyError` is raised.

    A ``Store`` holds one connection and may be shared between threads; use it as a context
    manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        seed_toml: str | None = None,
        seed_author: str = "knowpain",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._path = Path(path) if path is not None else default_store_path()
        self._timeout = float(timeout)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open()
        if seed_toml is not None:
            self.ensure_seeded(seed_toml, author=seed_author)

    # ---- opening ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _refuse(self, why: str) -> StoreError:
        return StoreError(
            f"{named(str(self._path), 200)} {why}; it was left untouched. "
            "Point knowpain at another file (--store PATH or KNOWPAIN_HOME)."
        )

    def _check_header(self) -> None:
        """Refuse foreign or corrupt files using plain file I/O, before SQLite touches them."""
        shown = named(str(self._path), 200)
        try:
            header = read_at_most(self._path, _HEADER_SIZE - 1)
        except FileNotFoundError:
            return  # a new store
        except IsADirectoryError:
            raise StoreError(f"{shown} is a folder, not a store file") from None
        except OSError as exc:  # a named pipe, a path the system cannot take, no permission
            raise StoreError(f"cannot use {shown} as the store: {exc.strerror or exc}") \
                from None
        if not header:
            return  # an empty file is an empty SQLite database: initialise it
        if not header.startswith(_SQLITE_MAGIC):
            raise self._refuse("is not a knowpain store (it is not an SQLite database)")
        if len(header) < _HEADER_SIZE:
            raise self._refuse("is damaged (truncated SQLite header)")
        app_id = int.from_bytes(header[68:72], "big", signed=True)
        if app_id != APPLICATION_ID:
            raise self._refuse(
                "is an SQLite database that does not belong to knowpain "
                f"(application_id {app_id}, expected {APPLICATION_ID})"
            )

    def _open(self) -> sqlite3.Connection:
        self._check_header()
        self._private_files()
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=self._timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self._path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._initialise(conn)
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except StoreError:
            conn.close()
            raise
        except sqlite3.OperationalError as exc:
            conn.close()
            if _is_busy(exc):
                raise StoreBusyError() from exc
            raise self._refuse(f"could not be opened as a knowpain store ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._refuse(f"is damaged or not a knowpain store ({exc})") from exc
        return conn

    def _private_files(self) -> None:
        """Create the store's folder (0700) and file (0600) whatever the umask, and tighten an
        existing store file (and its ``-wal``/``-shm``) that others could read.

        SQLite gives the ``-wal`` and ``-shm`` files it creates the mode of the database file,
        so they are private too. Folders that already existed are left as they are (they
        may be shared on purpose); so are files owned by someone else. No-op on Windows.
        """
        folder = self._path.parent
        missing = []
        probe = folder
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the store {self._path}: {exc}") from exc
        if sys.platform == "win32":
            return
        for created in missing:
            _chmod(created, 0o700)
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot create the store {self._path}: {exc}") from exc
        else:
            os.close(fd)
            _chmod(self._path, 0o600)  # exactly, whatever the umask took away
        for path in (self._path, Path(f"{self._path}-wal"), Path(f"{self._path}-shm")):
            _chmod(path, 0o600, only_if_open=True)

    def _read_marks(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """(application_id, user_version, number of schema objects), from one snapshot.

        Outside a transaction the three reads are wrapped in a read transaction, so another
        process initialising the same new file cannot commit between them.
        """
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            if own:
                conn.execute("COMMIT")
        return int(app_id), int(version), int(tables)

    def _check_marks(self, app_id: int, version: int, tables: int) -> bool:
        """Validate the schema markers; True if initialisation or migration is needed."""
        if app_id == 0 and version == 0 and tables == 0:
            return True  # brand-new, empty database
        if app_id != APPLICATION_ID:
            raise self._refuse("is an SQLite database that does not belong to knowpain")
        if version > SCHEMA_VERSION:
            raise self._refuse(
                f"was written by a newer knowpain (schema {version}; this one understands "
                f"up to {SCHEMA_VERSION}). Upgrade knowpain to use it"
            )
        return version < SCHEMA_VERSION

    def _initialise(self, conn: sqlite3.Connection) -> None:
        # Read-only look first: a current store is never written to on open.
        if not self._check_marks(*self._read_marks(conn)):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id, version, tables = self._read_marks(conn)  # another process may have won
            if self._check_marks(app_id, version, tables):
                if app_id == 0:
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for step in range(version, SCHEMA_VERSION):
                    MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                fk_problems = conn.execute("PRAGMA foreign_key_check").fetchall()
                if fk_problems:
                    raise self._refuse(f"has broken references ({fk_problems[:3]})")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ---- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self._path)!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self._path} is closed")
        return self._conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise StoreBusyError() from exc
                raise StoreError(f"reading the store {self._path} failed: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"reading the store {self._path} failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: everything inside commits or nothing does."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise StoreBusyError() from exc
                raise StoreError(f"writing to the store {self._path} failed: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                    raise StoreBusyError() from exc
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"writing to the store {self._path} failed: {exc}") from exc
                raise

    @staticmethod
    def _audit(conn: sqlite3.Connection, who: str, action: str, detail: str) -> None:
        conn.execute(
            "INSERT INTO audit_log (who, at, action, detail) VALUES (?, ?, ?, ?)",
            (who, _now(), action, detail),
        )

    # ---- calibration versions ---------------------------------------------------------------

    _VERSION_COLUMNS = (
        "v.id, v.parent_id, v.author, v.note, v.created_at, v.content_hash, v.toml_text, "
        "v.kind, v.fitted_from, v.fit_detail"
    )

    @staticmethod
    def _version(row: tuple[Any, ...]) -> CalibrationVersion:
        vid, parent, author, note, created, digest, text, kind, fitted_from, detail = row
        return CalibrationVersion(
            id=int(vid),
            parent_id=None if parent is None else int(parent),
            author=str(author),
            note=str(note),
            created_at=_parse_time(str(created)),
            content_hash=str(digest),
            toml_text=str(text),
            kind=str(kind),
            fitted_from=None if fitted_from is None else int(fitted_from),
            fit_detail=str(detail),
        )

    def _insert_version(
        self,
        conn: sqlite3.Connection,
        toml_text: str,
        author: str,
        note: str,
        parent_id: int | None,
        kind: str = "expert",
        fitted_from: int | None = None,
        fit_detail: str = "",
    ) -> CalibrationVersion:
        created = _now()
        digest = content_hash(toml_text)
        cur = conn.execute(
            "INSERT INTO calibration_versions (parent_id, author, note, created_at, "
            "content_hash, toml_text, kind, fitted_from, fit_detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (parent_id, author, note, created, digest, toml_text, kind, fitted_from,
             fit_detail),
        )
        vid = int(cur.lastrowid or 0)
        return CalibrationVersion(vid, parent_id, author, note, _parse_time(created), digest,
                                  toml_text, kind, fitted_from, fit_detail)

    def ensure_seeded(self, toml_text: str, author: str = "knowpain") -> CalibrationVersion:
        """Make ``toml_text`` version 1 (and active) if the store has no versions yet.

        Returns version 1 — the existing one if the store was already seeded (its text is not
        compared with ``toml_text``).
        """
        _require_text(toml_text, "toml_text")
        _require_name(author, "author")
        first = f"SELECT {self._VERSION_COLUMNS} FROM calibration_versions v ORDER BY v.id LIMIT 1"
        with self._read() as conn:  # the common case takes no write lock
            row = conn.execute(first).fetchone()
        if row is not None:
            return self._version(row)
        with self._write() as conn:
            row = conn.execute(first).fetchone()  # another process may have seeded meanwhile
            if row is not None:
                return self._version(row)
            version = self._insert_version(conn, toml_text, author, "shipped default", None)
            conn.execute(
                "INSERT OR REPLACE INTO active (singleton, version_id) VALUES (1, ?)",
                (version.id,),
            )
            self._audit(conn, author, "seed",
                        f"version {version.id} (sha256 {version.content_hash[:12]}) "
                        "seeded and activated")
            return version

    def add_version(
        self,
        toml_text: str,
        author: str,
        note: str = "",
        parent_id: int | None = None,
        *,
        activate: bool = False,
        kind: str = "expert",
        fitted_from: int | None = None,
        fit_detail: str = "",
    ) -> CalibrationVersion:
        """Store a new immutable version and return it.

        ``parent_id=None`` means "derived from the currently active version" (no parent if the
        store has none). With ``activate=True`` the new version also becomes active, in the
        same transaction. Identical texts are stored again (their hashes will be equal).
        ``kind`` is ``"expert"`` or ``"refit"``; a refit names the expert version it was
        fitted from (``fitted_from``) and how (``fit_detail``).
        """
        _require_text(toml_text, "toml_text")
        _require_name(author, "author")
        if not isinstance(note, str):
            raise TypeError("note must be a string")
        if kind not in ("expert", "refit"):
            raise ValueError(f"kind must be 'expert' or 'refit', not {kind!r}")
        if fitted_from is not None and kind != "refit":
            raise ValueError("only a refit is fitted from another version")
        with self._write() as conn:
            if parent_id is None:
                row = conn.execute("SELECT version_id FROM active WHERE singleton = 1").fetchone()
                parent_id = None if row is None else int(row[0])
            elif not _version_exists(conn, parent_id):
                raise NotFoundError(f"no calibration version {parent_id} to use as parent")
            if fitted_from is not None and not _version_exists(conn, fitted_from):
                raise NotFoundError(f"no calibration version {fitted_from} to fit from")
            version = self._insert_version(conn, toml_text, author, note, parent_id, kind,
                                           fitted_from, fit_detail)
            detail = (f"version {version.id} (parent {parent_id}, "
                      f"sha256 {version.content_hash[:12]})")
            if kind == "refit":
                detail += f", refit of version {fitted_from}"
            if note:
                detail += f": {note}"
            self._audit(conn, author, "add_version", detail)
            if activate:
                self._move_pointer(conn, version.id, author, "activate")
            return version

    def get_version(self, version_id: int) -> CalibrationVersion:
        """The version with this id; :class:`NotFoundError` if there is none."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {self._VERSION_COLUMNS} FROM calibration_versions v WHERE v.id = ?",
                (int(version_id),),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no calibration version {version_id}")
        return self._version(row)

    def list_versions(self) -> list[CalibrationVersion]:
        """Every version, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {self._VERSION_COLUMNS} FROM calibration_versions v ORDER BY v.id"
            ).fetchall()
        return [self._version(r) for r in rows]

    def active_version(self) -> CalibrationVersion | None:
        """The active version, or ``None`` for a store that was never seeded."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {self._VERSION_COLUMNS} FROM active a "
                "JOIN calibration_versions v ON v.id = a.version_id WHERE a.singleton = 1"
            ).fetchone()
        return None if row is None else self._version(row)

    def _move_pointer(self, conn: sqlite3.Connection, version_id: int, who: str,
                      action: str) -> int | None:
        row = conn.execute("SELECT version_id FROM active WHERE singleton = 1").fetchone()
        previous = None if row is None else int(row[0])
        conn.execute(
            "INSERT OR REPLACE INTO active (singleton, version_id) VALUES (1, ?)", (version_id,)
        )
        self._audit(conn, who, action, f"active version {previous} -> {version_id}")
        return previous

    def activate(self, version_id: int, who: str) -> CalibrationVersion:
        """Make ``version_id`` the active version (a pointer move, audited)."""
        _require_name(who, "who")
        with self._write() as conn:
            if not _version_exists(conn, version_id):
                raise NotFoundError(f"no calibration version {version_id} to activate")
            self._move_pointer(conn, int(version_id), who, "activate")
        return self.get_version(version_id)

    def rollback(self, who: str) -> CalibrationVersion:
        """Activate the parent of the active version and return it.

        Raises :class:`StoreError` if there is no active version or it has no parent.
        """
        _require_name(who, "who")
        with self._write() as conn:
            row = conn.execute(
                "SELECT v.id, v.parent_id FROM active a "
                "JOIN calibration_versions v ON v.id = a.version_id WHERE a.singleton = 1"
            ).fetchone()
            if row is None:
                raise StoreError("there is no active version to roll back")
            if row[1] is None:
                raise StoreError(f"the active version {row[0]} has no parent to roll back to")
            parent = int(row[1])
            self._move_pointer(conn, parent, who, "rollback")
        return self.get_version(parent)

    # ---- cases ------------------------------------------------------------------------------

    @staticmethod
    def _case(row: tuple[Any, ...]) -> Case:
        cid, evidence, adjudicated, outcome, therapist, created, import_id, ref = row
        return Case(
            id=int(cid),
            evidence=json.loads(str(evidence)),
            adjudicated=json.loads(str(adjudicated)),
            outcome=None if outcome is None else str(outcome),
            therapist=str(therapist),
            created_at=_parse_time(str(created)),
            import_id=None if import_id is None else int(import_id),
            case_ref=None if ref is None else str(ref),
        )

    _CASE_COLUMNS = ("id, evidence, adjudicated, outcome, therapist, created_at, import_id, "
                     "case_ref")
    _IMPORT_COLUMNS = ("id, content_hash, file_name, who, at, rows, imported, skipped_broken, "
                       "skipped_known")

    @staticmethod
    def _import(row: tuple[Any, ...]) -> ImportRecord:
        iid, digest, name, who, at, rows, imported, broken, known = row
        return ImportRecord(int(iid), str(digest), str(name), str(who), _parse_time(str(at)),
                            int(rows), int(imported), int(broken), int(known))

    def add_cases(
        self,
        cases: Sequence[NewCase],
        therapist: str,
        *,
        source: ImportSource | None = None,
    ) -> list[int]:
        """Store ``cases`` in one transaction (all or nothing) and return their new ids.

        ``therapist`` is who records them (the audit ``who``) and the therapist of every case
        whose own ``therapist`` is ``None``. The store does not know the vocabulary; validate
        states before calling (e.g. with :mod:`calibration.cases`). With ``source`` (a
        file being imported) an :class:`ImportRecord` is written in the same transaction and
        every case points to it. A ``case_id`` already in the store is refused
        (:class:`StoreError`, nothing stored).
        """
        _require_name(therapist, "therapist")
        rows = []
        refs: set[str] = set()
        for i, case in enumerate(cases):
            if not isinstance(case, NewCase):
                raise TypeError(f"case {i} is a {type(case).__name__}, expected NewCase")
            _require_states(case.evidence, f"case {i} evidence")
            _require_states(case.adjudicated, f"case {i} adjudicated")
            if case.outcome is not None and not isinstance(case.outcome, str):
                raise TypeError(f"case {i} outcome must be a string or None")
            owner = therapist if case.therapist is None else case.therapist
            _require_name(owner, f"case {i} therapist")
            ref = case.case_id
            if ref is not None:
                if not isinstance(ref, str) or not ref:
                    raise TypeError(f"case {i} case_id must be a non-empty string or None")
                if ref in refs:
                    raise ValueError(f"case {i}: case_id {ref!r} is given twice")
                refs.add(ref)
            rows.append((
                _compact(case.evidence),
                _compact(case.adjudicated),
                case.outcome,
                owner,
                ref,
            ))
        return self._insert_cases(rows, therapist, source)

    def add_case_rows(
        self,
        rows: Sequence[tuple[str, str, str | None, str | None, str | None]],
        therapist: str,
        *,
        source: ImportSource | None = None,
    ) -> list[int]:
        """Like :meth:`add_cases` for cases already encoded by :mod:`calibration.cases`
        (``CaseFile.store_rows``): ``(evidence JSON, adjudicated JSON, outcome, therapist or
        None, case_id or None)`` — the fast path of a large import."""
        _require_name(therapist, "therapist")
        for i, row in enumerate(rows[:1]):  # the encoder's shape; its content is trusted
            if len(row) != 5 or not (isinstance(row[0], str) and row[0].startswith("{")):
                raise TypeError(f"row {i} is not an encoded case row")
        encoded = [(ev, adj, outcome, owner if owner is not None else therapist, ref)
                   for ev, adj, outcome, owner, ref in rows]
        return self._insert_cases(encoded, therapist, source)

    def _insert_cases(self, rows: Sequence[tuple[Any, ...]], therapist: str,
                      source: ImportSource | None) -> list[int]:
        if not rows and source is None:
            return []
        with self._write() as conn:
            created = _now()
            import_id = None
            if source is not None:
                cur = conn.execute(
                    "INSERT INTO imports (content_hash, file_name, who, at, rows, imported, "
                    "skipped_broken, skipped_known) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (source.content_hash, source.file_name, therapist, created, source.rows,
                     len(rows), source.skipped_broken, source.skipped_known),
                )
                import_id = int(cur.lastrowid or 0)
            before = self._last_case_id(conn)
            try:
                conn.executemany(
                    "INSERT INTO cases (evidence, adjudicated, outcome, therapist, created_at, "
                    "import_id, case_ref) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(ev, adj, outcome, owner, created, import_id, ref)
                     for ev, adj, outcome, owner, ref in rows],
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"{self._path}: a case_id is already stored ({exc}); "
                                 "nothing was stored") from exc
            after = self._last_case_id(conn)
            ids = list(range(before + 1, after + 1))
            if len(ids) != len(rows):  # pragma: no cover - ids come from one locked insert
                raise StoreError("case ids were not assigned in one block; nothing was stored")
            span = (f"{ids[0]}" if len(ids) == 1 else f"{ids[0]}..{ids[-1]}") if ids else "-"
            detail = f"{len(ids)} case(s), ids {span}"
            if source is not None:
                detail += (f"; import {import_id} of {source.file_name or 'an upload'} "
                           f"(sha256 {source.content_hash[:12]}, {source.rows} row(s), "
                           f"{source.skipped_known} already stored, {source.skipped_broken} "
                           "broken skipped)")
            self._audit(conn, therapist, "add_cases", detail)
        return ids

    @staticmethod
    def _last_case_id(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'cases'").fetchone()
        return 0 if row is None else int(row[0])

    def get_case(self, case_id: int) -> Case:
        """The case with this id; :class:`NotFoundError` if there is none."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {self._CASE_COLUMNS} FROM cases WHERE id = ?", (int(case_id),)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no case {case_id}")
        return self._case(row)

    def list_cases(self) -> list[Case]:
        """Every case, oldest first."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {self._CASE_COLUMNS} FROM cases ORDER BY id").fetchall()
        return [self._case(r) for r in rows]

    def page_cases(self, limit: int, offset: int = 0, *, newest_first: bool = False
                   ) -> list[Case]:
        """``limit`` cases from ``offset`` on (by id), without reading the others."""
        order = "DESC" if newest_first else "ASC"
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {self._CASE_COLUMNS} FROM cases ORDER BY id {order} LIMIT ? OFFSET ?",
                (max(0, int(limit)), max(0, int(offset))),
            ).fetchall()
        return [self._case(r) for r in rows]

    def count_cases(self) -> CaseCounts:
        """How many cases, with an adjudicated cause, with an outcome (one SQL query)."""
        with self._read() as conn:
            total, judged, followed = conn.execute(
                "SELECT count(*), coalesce(sum(adjudicated != '{}'), 0), "
                "coalesce(sum(outcome IS NOT NULL), 0) FROM cases"
            ).fetchone()
        return CaseCounts(int(total), int(judged), int(followed))

    def cases_revision(self) -> str:
        """A short text that changes whenever a case is added or deleted (for caches)."""
        with self._read() as conn:
            count, last = conn.execute("SELECT count(*), max(id) FROM cases").fetchone()
            audit, at = conn.execute(
                "SELECT id, at FROM audit_log WHERE action IN ('add_cases', 'delete_case') "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone() or (None, None)
        # the time of the last change makes it unique across stores, not only within one
        return f"{count}:{last}:{audit}:{at}"

    def known_cases(self, refs: Sequence[str]) -> dict[str, KnownCase]:
        """The stored cases whose ``case_id`` is in ``refs``, by that id."""
        found = self._known_cases("case_ref", sorted({r for r in refs if r}))
        return {k.case_ref: k for k in found}

    def unreferenced_cases(self, ids: Sequence[int]) -> dict[int, KnownCase]:
        """Stored cases with these ids that have no ``case_id`` of their own (an export
        writes their store id as ``case_id``: this recognises the export coming back)."""
        found = self._known_cases("id", sorted({int(i) for i in ids}), unreferenced=True)
        return {k.case_id: k for k in found}

    def _known_cases(self, column: str, wanted: Sequence[object], unreferenced: bool = False
                     ) -> list[KnownCase]:
        """Stored cases whose ``column`` (``case_ref`` or ``id``) is in ``wanted``, each with
        the import it came from (None: entered in the app)."""
        out: list[KnownCase] = []
        imports: dict[int, ImportRecord] = {}
        extra = " AND case_ref IS NULL" if unreferenced else ""
        with self._read() as conn:
            for start in range(0, len(wanted), 500):
                chunk = list(wanted[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for cid, ref, ev, adj, outcome, import_id in conn.execute(
                    "SELECT id, case_ref, evidence, adjudicated, outcome, import_id FROM cases "
                    f"WHERE {column} IN ({marks}){extra}", chunk,
                ):
                    record = None
                    if import_id is not None:
                        if import_id not in imports:
                            row = conn.execute(
                                f"SELECT {self._IMPORT_COLUMNS} FROM imports WHERE id = ?",
                                (import_id,),
                            ).fetchone()
                            imports[import_id] = self._import(row)
                        record = imports[import_id]
                    out.append(KnownCase(int(cid), str(cid if ref is None else ref),
                                         json.loads(ev), json.loads(adj),
                                         None if outcome is None else str(outcome), record))
        return out

    def imports(self, content_hash: str | None = None) -> list[ImportRecord]:
        """Every import, oldest first (only those of one file content when given)."""
        sql = f"SELECT {self._IMPORT_COLUMNS} FROM imports"
        args: tuple[Any, ...] = ()
        if content_hash is not None:
            sql += " WHERE content_hash = ?"
            args = (content_hash,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [self._import(r) for r in rows]

    def cases_of_import(self, import_id: int) -> int:
        """How many cases of an import are still stored."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM cases WHERE import_id = ?",
                                    (int(import_id),)).fetchone()[0])

    def delete_case(self, case_id: int, who: str) -> None:
        """Delete one case; the audit entry keeps its full content."""
        _require_name(who, "who")
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {self._CASE_COLUMNS} FROM cases WHERE id = ?", (int(case_id),)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no case {case_id} to delete")
            case = self._case(row)
            conn.execute("DELETE FROM cases WHERE id = ?", (case.id,))
            content = json.dumps(
                {"evidence": case.evidence, "adjudicated": case.adjudicated,
                 "outcome": case.outcome, "therapist": case.therapist,
                 "created_at": case.created_at.isoformat(), "import_id": case.import_id,
                 "case_id": case.case_ref},
                sort_keys=True,
            )
            self._audit(conn, who, "delete_case", f"case {case.id}: {content}")

    # ---- audit ------------------------------------------------------------------------------

    #: Audit action of a wrong therapist passcode (the passcode itself is never recorded).
    FAILED_UNLOCK = "unlock_failed"

    def unlock_attempt(
        self,
        attempt: Callable[[list[datetime]], bool],
        *,
        since: datetime,
        who: str,
        at: datetime,
    ) -> bool:
        """One passcode attempt, serialised with every other writer (``BEGIN IMMEDIATE``).

        ``attempt`` gets the times of the failed unlocks recorded since ``since`` and says
        whether the passcode was right; a wrong one is recorded in the audit log (``who``,
        ``at``, action :attr:`FAILED_UNLOCK`) in the same transaction, so parallel guesses
        cannot all see an empty record. If ``attempt`` raises (e.g. a back-off refusal),
        nothing is recorded.
        """
        _require_name(who, "who")
        with self._write() as conn:
            rows = conn.execute(
                "SELECT at FROM audit_log WHERE action = ? AND at >= ? ORDER BY id",
                (self.FAILED_UNLOCK, _iso(since)),
            ).fetchall()
            ok = attempt([_parse_time(str(r[0])) for r in rows])
            if not ok:
                conn.execute(
                    "INSERT INTO audit_log (who, at, action, detail) VALUES (?, ?, ?, ?)",
                    (who, _iso(at), self.FAILED_UNLOCK,
                     "wrong therapist passcode (the attempt itself is not recorded)"),
                )
        return ok


    def audit_log(self) -> list[AuditEntry]:
        """Every audit entry, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, who, at, action, detail FROM audit_log ORDER BY id"
            ).fetchall()
        return [AuditEntry(int(i), str(w), _parse_time(str(t)), str(a), str(d))
                for i, w, t, a, d in rows]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _version_exists(conn: sqlite3.Connection, version_id: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM calibration_versions WHERE id = ?", (int(version_id),)
    ).fetchone() is not None


def _compact(mapping: Mapping[str, str]) -> str:
    """The JSON a case's answers are stored as: keys sorted, no spaces (the encoder of
    :meth:`calibration.cases.CaseFile.store_rows` writes the same)."""
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"))


def _require_text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")


def _require_name(value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string naming a person")


def _require_states(mapping: Mapping[str, str], what: str) -> None:
    if not isinstance(mapping, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise TypeError(f"{what} must map node names (str) to state names (str)")
