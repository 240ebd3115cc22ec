"""The clinic's store behind one door: every save, case import, activation and roll back.

Both the app and the command line go through :class:`Clinic`; nothing else writes to the
store. The policy lives here, once:

* **who may write** — a :class:`Grant` from :func:`unlock` (the therapist passcode, with a
  back-off against guessing; wrong passcodes are in the audit log); reading needs none;
* **what may be saved** — :func:`model.service.policy.review` (valid, behaviour checks hold,
  red-flag screen not weakened); a refusal is a :class:`~model.errors.RefusedError` naming
  every reason;
* **which version is active** — the store's pointer, moved only by :meth:`Clinic.activate`
  and :meth:`Clinic.rollback`; lifters see it through :func:`lifter_calibration`;
* **who did it** — every write names the person acting (``who``), recorded in the audit log.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from calibration.cases import parse_cases_csv, read_cases_csv
from calibration.loader import load_calibration, parse_calibration
from calibration.schema import Calibration
from calibration.store import (
    AuditEntry,
    CalibrationVersion,
    Case,
    NewCase,
    Store,
    active_version_if_any,
)
from model.errors import AccessError, NotFoundError, RefusedError, UsageError
from model.service.access import WINDOW, check_passcode, passcode_matches, require_no_backoff
from model.service.policy import Review, review, self_contained, shipped_default
from model.service.settings import Settings

__all__ = [
    "AuditEntry",
    "CalibrationVersion",
    "Case",
    "Clinic",
    "Grant",
    "NewCase",
    "lifter_calibration",
    "lifter_version",
    "parse_version_ref",
    "unlock",
]

_VERSION_REF = re.compile(r"^[vV]?(\d{1,9})$")


# ---- access -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """Proof that the therapist passcode configured now was given (never the passcode)."""

    fingerprint: str


def _fingerprint(passcode: str) -> str:
    return hashlib.sha256(b"knowpain-therapist:" + passcode.encode("utf-8")).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def unlock(
    settings: Settings,
    given: str | None,
    *,
    source: str = "command line",
    session_failures: Sequence[datetime] = (),
    clock: Callable[[], datetime] = _utc_now,
) -> Grant:
    """A :class:`Grant` when ``given`` is the configured passcode; :class:`AccessError` if not.

    Guessing is slowed by a back-off (:func:`model.service.access.retry_after`) applied to
    this session's earlier wrong passcodes (``session_failures``: the app keeps them per
    browser session; the command line is one attempt per process) and to the store's: every
    wrong passcode is recorded in the store's audit log as ``who=source`` (never the passcode
    itself), and while the back-off says wait, :class:`~model.errors.BackOffError` is raised
    without checking the passcode at all. The check and the record are one store
    transaction, so parallel guesses are counted too. ``clock`` is injectable for tests.
    """
    expected = settings.passcode
    if expected is None or not expected.strip() or not given:
        check_passcode(given, expected)  # locked, or nothing given: not a guess
    assert expected is not None and given is not None
    now = clock()
    require_no_backoff(session_failures, now)

    def attempt(store_failures: list[datetime]) -> bool:
        require_no_backoff(store_failures, now)
        return passcode_matches(given, expected)

    with Store(settings.store_path) as store:
        ok = store.unlock_attempt(attempt, since=now - WINDOW, who=source, at=now)
    if not ok:
        raise AccessError("wrong passcode")
    return Grant(_fingerprint(expected))


def grant_is_valid(grant: Grant | None, settings: Settings) -> bool:
    """True while ``grant`` matches the passcode configured now (changing it locks all)."""
    return (grant is not None and settings.passcode is not None
            and grant.fingerprint == _fingerprint(settings.passcode))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _plain_text(value: str, what: str) -> None:
    """Refuse control characters (they would rewrite a terminal showing the audit log or the
    version list) in text recorded in the store."""
    found = _CONTROL.search(value or "")
    if found:
        raise UsageError(f"{what} contains a control character (U+{ord(found.group()):04X}); "
                         "use plain text")


# ---- what lifters see -------------------------------------------------------------------------
def lifter_version(settings: Settings) -> CalibrationVersion | None:
    """The store's active version, or ``None`` when there is no store yet (never creates one).

    Raises :class:`~model.errors.StoreError` when a file is there but is not a usable store.
    """
    return active_version_if_any(settings.store_path)


def calibration_of(version: CalibrationVersion) -> Calibration:
    """A stored version's calibration (raises CalibrationError if the text is not valid)."""
    return parse_calibration(version.toml_text, source=f"stored version {version.id}")


def lifter_calibration(settings: Settings, path: str | Path | None = None
                       ) -> tuple[Calibration, str]:
    """The calibration lifters see, and where it came from: ``path`` when given, else the
    store's active version when a store exists, else the shipped default."""
    if path is not None:
        return load_calibration(path), str(path)
    version = lifter_version(settings)
    if version is not None:
        return calibration_of(version), f"stored version {version.id}"
    return shipped_default(), "the shipped default"


def parse_version_ref(ref: str | int) -> int:
    """``3``, ``"3"`` or ``"v3"`` -> 3; anything else is a :class:`UsageError`."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    match = _VERSION_REF.match(str(ref).strip())
    if not match:
        raise UsageError(f"{str(ref)[:40]!r} is not a version id; use a number such as 3 or v3")
    return int(match.group(1))


# ---- the clinic -------------------------------------------------------------------------------
class Clinic:
    """The clinic's store with knowpain's policy; open with :meth:`open` (a context manager).

    Reading needs nothing; every write needs a :class:`Grant` (see :func:`unlock`) and the
    name of the person acting.
    """

    def __init__(self, settings: Settings, grant: Grant | None = None) -> None:
        self.settings = settings
        self._grant = grant
        self._store = Store(settings.store_path, seed_toml=self_contained(shipped_default()))

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, grant: Grant | None = None) -> Iterator[Clinic]:
        clinic = cls(settings, grant)
        try:
            yield clinic
        finally:
            clinic.close()

    def close(self) -> None:
        self._store.close()

    @property
    def path(self) -> Path:
        return self._store.path

    # ---- reading ------------------------------------------------------------------------
    def versions(self) -> list[CalibrationVersion]:
        """Every version, oldest first."""
        return self._store.list_versions()

    def active(self) -> CalibrationVersion:
        """The active version (a seeded store always has one)."""
        version = self._store.active_version()
        if version is None:  # pragma: no cover - the store is seeded on open
            raise NotFoundError(f"{self.path} has no active calibration version")
        return version

    def version(self, ref: str | int) -> CalibrationVersion:
        """The version named ``3``, ``"3"`` or ``"v3"``; NotFoundError lists the ids there are."""
        number = parse_version_ref(ref)
        try:
            return self._store.get_version(number)
        except NotFoundError:
            ids = ", ".join(str(v.id) for v in self.versions()) or "none"
            raise NotFoundError(
                f"no calibration version {number} in {self.path}; versions: {ids}"
            ) from None

    def calibration(self, ref: str | int | None = None) -> Calibration:
        """The calibration of a version (default: the active one)."""
        return calibration_of(self.active() if ref is None else self.version(ref))

    def cases(self) -> list[Case]:
        """Every stored case, oldest first."""
        return self._store.list_cases()

    def audit(self) -> list[AuditEntry]:
        return self._store.audit_log()

    # ---- the save policy ----------------------------------------------------------------
    def review(self, candidate: Calibration | str, source: str = "the calibration") -> Review:
        """What the save policy says about ``candidate`` (nothing is written)."""
        return review(candidate, protected=[self.calibration()], source=source)

    def _require(self, who: str) -> str:
        if not grant_is_valid(self._grant, self.settings):
            raise AccessError("this changes the clinic's store and needs the therapist "
                              "passcode")
        name = (who or "").strip()
        if not name:
            raise UsageError("say who is acting: a name is recorded with every change "
                             "(--who NAME, or 'Your name' in the app)")
        _plain_text(name, "the name of who is acting")
        return name

    def save(self, candidate: Calibration | str, who: str, note: str = "", *,
             activate: bool = False, parent: int | None = None,
             source: str = "the calibration") -> CalibrationVersion:
        """Store ``candidate`` as a new version when the save policy allows it.

        Raises :class:`~model.errors.RefusedError` (listing every reason) and stores nothing
        when the candidate is invalid, fails a behaviour check or weakens the red-flag screen.
        """
        name = self._require(who)
        _plain_text(note, "the note")
        verdict = self.review(candidate, source=source)
        if not verdict.ok:
            raise RefusedError(f"{source} was not saved; nothing was stored", verdict.reasons)
        return self._store.add_version(verdict.text, author=name, note=note.strip(),
                                       parent_id=parent, activate=activate)

    def activate(self, ref: str | int, who: str) -> CalibrationVersion:
        """Make a stored version the one lifters see."""
        name = self._require(who)
        return self._store.activate(self.version(ref).id, who=name)

    def rollback(self, who: str) -> CalibrationVersion:
        """Make the parent of the active version active again."""
        name = self._require(who)
        active = self.active()
        if active.parent_id is None:
            raise RefusedError(f"the active version {active.id} has no parent to roll back to")
        return self._store.rollback(who=name)

    # ---- cases ----------------------------------------------------------------------------
    def read_cases(self, source: str | Path | bytes, max_bytes: int | None = None
                   ) -> list[NewCase]:
        """Parse a cases CSV (a path, or the bytes of an upload) against the active
        calibration's vocabulary; :class:`~model.errors.CaseImportError` lists every problem."""
        cal = self.calibration()
        vocab = {"variables": cal.variables, "causes": cal.causes, "outcome_node": cal.outcome}
        limit = {} if max_bytes is None else {"max_bytes": max_bytes}
        if isinstance(source, bytes):
            return parse_cases_csv(source, **vocab, **limit)
        return read_cases_csv(source, **vocab, **limit)

    def import_cases(self, source: str | Path | bytes, who: str) -> list[int]:
        """Validate a cases CSV and store every case, or none; returns the new ids."""
        name = self._require(who)
        return self.record_cases(self.read_cases(source), name)

    def record_cases(self, cases: Sequence[NewCase], who: str) -> list[int]:
        """Store cases already checked against the vocabulary (e.g. one from the Assess page)."""
        name = self._require(who)
        cal = self.calibration()
        for i, case in enumerate(cases):
            for node, state in {**case.evidence, **case.adjudicated}.items():
                if node not in cal.nodes or state not in cal.nodes[node].states:
                    raise UsageError(f"case {i}: {node}={state} is not in the active "
                                     "calibration's vocabulary")
        return self._store.add_cases(list(cases), therapist=name)

    def delete_case(self, case_id: int, who: str) -> None:
        """Delete one case; the audit log keeps its content."""
        name = self._require(who)
        try:
            self._store.delete_case(case_id, who=name)
        except NotFoundError:
            raise NotFoundError(f"no case {case_id} in {self.path}; see the case list") \
                from None
