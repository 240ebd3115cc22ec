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
* **who did it** — every write names the person acting (``who``), recorded in the audit log;
* **which base a refit starts from** — :meth:`Clinic.refit_base`: always an expert
  calibration (the active one, or the expert version the active refit was fitted from), with
  every stored case, so no case ever counts twice (:meth:`Clinic.refit`,
  :meth:`Clinic.save_refit`);
* **what an import adds** — :meth:`Clinic.plan_import` / :meth:`Clinic.import_cases`: a file
  imported before (same content hash) and cases whose ``case_id`` is already stored are
  recognised and not doubled; broken rows are named, and the valid rows of a partly broken
  file are imported only when asked (``skip_broken``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from calibration.cases import BrokenRow, CaseFile, check_cases_csv, read_case_file, store_id_of
from calibration.loader import load_calibration, parse_calibration
from calibration.schema import Calibration
from calibration.store import (
    AuditEntry,
    CalibrationVersion,
    Case,
    CaseCounts,
    ImportRecord,
    ImportSource,
    KnownCase,
    NewCase,
    Store,
    active_version_if_any,
)
from model.errors import AccessError, CaseImportError, NotFoundError, RefusedError, UsageError
from model.service.access import WINDOW, check_passcode, passcode_matches, require_no_backoff
from model.service.policy import Review, review, self_contained, shipped_default
from model.service.settings import Settings

if TYPE_CHECKING:
    from model.service.refit import Refit

__all__ = [
    "AuditEntry",
    "CalibrationVersion",
    "Case",
    "CaseCounts",
    "Clinic",
    "Grant",
    "ImportPlan",
    "ImportRecord",
    "ImportReport",
    "NewCase",
    "RefitBase",
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


# ---- imports and refit bases ------------------------------------------------------------------
def _same_case(case: NewCase, known: KnownCase) -> bool:
    return (case.evidence == known.evidence and case.adjudicated == known.adjudicated
            and case.outcome == known.outcome)


@dataclass(frozen=True)
class ImportPlan:
    """What importing a checked file would do (nothing is written).

    ``previous`` are earlier imports of exactly this file whose cases are still stored (then
    nothing is imported again); ``known`` the rows whose ``case_id`` is already stored with
    the same answers (skipped, with the import they came in with); ``conflicts`` rows whose
    ``case_id`` is stored with *different* answers (broken: the stored case must be deleted
    first); ``new`` the positions in ``file.cases`` that would be stored.
    """

    file: CaseFile
    file_name: str
    previous: tuple[ImportRecord, ...]
    known: tuple[tuple[int, KnownCase], ...]
    conflicts: tuple[BrokenRow, ...]
    new: tuple[int, ...]

    @property
    def broken(self) -> tuple[BrokenRow, ...]:
        """Every broken row: the file's, and case_id conflicts with the store."""
        return tuple(sorted((*self.file.broken, *self.conflicts), key=lambda b: b.row))

    @property
    def problems(self) -> list[str]:
        return [p for b in self.broken for p in b.problems]

    @property
    def problem_total(self) -> int:
        """Every problem counted (a file keeps only the first ones' messages)."""
        return (max(self.file.problem_total, len(self.file.problems))
                + sum(len(c.problems) for c in self.conflicts))

    def known_summary(self) -> list[str]:
        """Where the already-stored rows came from: one line per earlier import."""
        groups: dict[str, int] = {}
        for _, k in self.known:
            where = str(k.imported) if k.imported is not None else "entered in the app"
            groups[where] = groups.get(where, 0) + 1
        return [f"{n:,} from {where}" for where, n in groups.items()]

    def describe(self) -> list[str]:
        """What an import would do, line by line (for the app and the command line)."""
        name = self.file_name or "the file"
        if self.previous:
            last = self.previous[-1]
            return [f"{name} was imported before: {last}, {last.imported:,} case(s) stored "
                    f"from its {last.rows:,} row(s). Nothing new to import; its cases are "
                    "not doubled."]
        lines = [f"{name}: {self.file.n_rows:,} row(s); {len(self.new):,} new case(s)"]
        if self.known:
            lines.append(f"{len(self.known):,} row(s) already stored (same case_id): "
                         + "; ".join(self.known_summary()))
        if self.broken:
            lines.append(f"{len(self.broken):,} broken row(s), each named by row and column")
        if not self.file.has_case_ids:
            lines.append("no case_id column: identical rows are kept as separate cases")
        return lines


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    plan: ImportPlan
    ids: tuple[int, ...] = ()
    record: ImportRecord | None = None
    skipped_broken: tuple[BrokenRow, ...] = field(default_factory=tuple)

    def describe(self) -> list[str]:
        plan = self.plan
        if plan.previous:
            return plan.describe()
        name = plan.file_name or "the file"
        span = (f" (ids {self.ids[0]}..{self.ids[-1]})" if len(self.ids) > 1
                else f" (id {self.ids[0]})" if self.ids else "")
        lines = [f"Imported {len(self.ids):,} case(s) from {name}{span}"
                 + (f" as import {self.record.id}" if self.record else "") + "."]
        if plan.known:
            lines.append(f"{len(plan.known):,} row(s) were already stored and were not "
                         "imported again: " + "; ".join(plan.known_summary()) + ".")
        if self.skipped_broken:
            rows = ", ".join(str(b.row) for b in self.skipped_broken[:20])
            more = "…" if len(self.skipped_broken) > 20 else ""
            lines.append(f"{len(self.skipped_broken):,} broken row(s) skipped as asked: "
                         f"rows {rows}{more}.")
        return lines


@dataclass(frozen=True)
class RefitBase:
    """The calibration a refit starts from, the version it is, and why it was chosen."""

    calibration: Calibration
    version: CalibrationVersion | None  # None: a file outside the store
    why: str


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

    def case_counts(self) -> CaseCounts:
        """How many cases are stored (with a cause, with an outcome), counted in SQL."""
        return self._store.count_cases()

    def case_page(self, limit: int, offset: int = 0, *, newest_first: bool = False
                  ) -> list[Case]:
        """One page of cases, read without loading the others."""
        return self._store.page_cases(limit, offset, newest_first=newest_first)

    def cases_revision(self) -> str:
        """Changes whenever a case is added or deleted (a cache key)."""
        return self._store.cases_revision()

    def imports(self) -> list[ImportRecord]:
        """Every imported file, oldest first."""
        return self._store.imports()

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
        assert verdict.calibration is not None
        # a calibration carrying per-column confidences is what a refit writes: record it
        # as a refit, so that later refits start from its expert ancestor instead
        kind = ("refit" if any(n.column_confidence for n in verdict.calibration.nodes.values())
                else "expert")
        return self._store.add_version(verdict.text, author=name, note=note.strip(),
                                       parent_id=parent, activate=activate, kind=kind)

    # ---- refits ---------------------------------------------------------------------------
    def expert_of(self, version: CalibrationVersion) -> CalibrationVersion:
        """The expert version behind ``version``: itself when it is an expert calibration;
        for a refit the version it was fitted from, or else its nearest expert ancestor."""
        seen: set[int] = set()
        current = version
        while current.is_refit:
            seen.add(current.id)
            nxt = current.fitted_from if current.fitted_from is not None else current.parent_id
            if nxt is None or nxt in seen:
                break  # no expert ancestor: use the oldest version reached
            current = self._store.get_version(nxt)
        return current

    def refit_base(self, ref: str | int | None = None) -> RefitBase:
        """THE rule for where a refit starts: the expert calibration behind the active
        version (or behind version ``ref``). Refits always start from an expert
        calibration and use every case, so no case is counted twice."""
        start = self.active() if ref is None else self.version(ref)
        expert = self.expert_of(start)
        which = "the active version" if ref is None else "version"
        if expert.id == start.id:
            why = (f"{which} {start.id} (an expert calibration)" if start.kind == "expert"
                   else f"{which} {start.id} (a refit with no expert ancestor in the store)")
        else:
            why = (f"version {expert.id}, the expert calibration that {which} {start.id} "
                   "was refitted from (a refit starts from the experts' numbers, so no "
                   "case counts twice)")
        return RefitBase(calibration_of(expert), expert, why)

    def refit(self, method: str = "auto", *, folds: int = 5, seed: int = 0,
              max_iter: int = 100, base: RefitBase | None = None,
              cases: CaseFile | None = None, cases_name: str = "") -> Refit:
        """Refit the expert base (:meth:`refit_base`) from every stored case — or from the
        cases of one file when ``cases`` is given — and say what was used."""
        from model.service.refit import refit

        chosen = base or self.refit_base()
        if cases is None:
            stored = self.cases()
            labels = [f"case {c.id}" for c in stored]
            label = f"all {len(stored):,} stored case(s) in {self.path}"
            data: Sequence[Case] | Sequence[NewCase] = stored
        else:
            data = list(cases.cases)
            labels = [f"row {r}" for r in cases.rows]
            label = (f"{len(data):,} case(s) from {cases_name or 'the file'} (the store's "
                     "cases are not used)")
        return refit(chosen.calibration, data, method, folds=folds, seed=seed,
                     max_iter=max_iter, labels=labels, base_label=chosen.why,
                     base_version=chosen.version.id if chosen.version else None,
                     cases_label=label)

    def save_refit(self, result: Refit, who: str, note: str = "", *,
                   activate: bool = False) -> CalibrationVersion:
        """Store a refit as a new version (a child of the active one, recorded as a refit
        of its expert base) when the save policy allows it; a refusal names every failing
        check, by how much, how sure the cases make it, and the cases that pull it."""
        name = self._require(who)
        verdict = self.review(result.calibration, source="the refit")
        if not verdict.ok:
            reasons = verdict.reasons + result.failure_lines()
            raise RefusedError("the refit was not saved; nothing was stored", reasons)
        detail = json.dumps({
            "method": result.method, "cases": result.n_cases, "source": result.cases_label,
            "base": result.base_label, "cases_revision": self.cases_revision(),
            "held_back": str(result.held_back) if result.held_back else "",
        }, sort_keys=True)
        fitted_from = result.base_version
        if fitted_from is not None:
            try:
                self._store.get_version(fitted_from)
            except NotFoundError:
                fitted_from = None
        return self._store.add_version(
            verdict.text, author=name,
            note=(note.strip() or f"refit from {result.n_cases} cases ({result.method})"),
            activate=activate, kind="refit", fitted_from=fitted_from, fit_detail=detail)

    def activate(self, ref: str | int, who: str) -> CalibrationVersion:
        """Make a stored version the one lifters see (nothing is written, nor audited, when
        it already is)."""
        name = self._require(who)
        version = self.version(ref)
        if version.id == self.active().id:
            return version
        return self._store.activate(version.id, who=name)

    def rollback(self, who: str) -> CalibrationVersion:
        """Make the parent of the active version active again."""
        name = self._require(who)
        active = self.active()
        if active.parent_id is None:
            raise RefusedError(f"the active version {active.id} has no parent to roll back to")
        return self._store.rollback(who=name)

    # ---- cases ----------------------------------------------------------------------------
    def check_case_file(self, source: str | Path | bytes, max_bytes: int | None = None
                        ) -> CaseFile:
        """Check a cases CSV (a path, or the bytes of an upload) row by row against the
        active calibration's vocabulary; file-level problems raise CaseImportError."""
        cal = self.calibration()
        vocab = {"variables": cal.variables, "causes": cal.causes, "outcome_node": cal.outcome}
        limit = {} if max_bytes is None else {"max_bytes": max_bytes}
        if isinstance(source, bytes):
            return check_cases_csv(source, **vocab, **limit)
        return read_case_file(source, **vocab, **limit)

    def plan_import(self, checked: CaseFile, file_name: str = "") -> ImportPlan:
        """What importing ``checked`` would add, skip and refuse (nothing is written)."""
        previous = tuple(r for r in self._store.imports(checked.digest)
                         if self._store.cases_of_import(r.id) > 0)
        ids = checked.case_ids
        refs = [r for r in ids if r]
        known_by_ref = self._store.known_cases(refs) if refs else {}
        # an export writes a case's store id as its case_id when it has none of its own
        numbers = [n for r in refs if r not in known_by_ref
                   and (n := store_id_of(r)) is not None]
        exported = self._store.unreferenced_cases(numbers) if numbers else {}
        known: list[tuple[int, KnownCase]] = []
        conflicts: list[BrokenRow] = []
        new: list[int] = []
        if not refs:  # no case_id column (or none filled): every row is a new case
            return ImportPlan(checked, file_name, previous, (), (), tuple(range(len(checked))))
        for i, (ref, row) in enumerate(zip(ids, checked.rows, strict=True)):
            hit = known_by_ref.get(ref) if ref else None
            number = store_id_of(ref) if hit is None and ref else None
            if number is not None:
                own = exported.get(number)
                if own is not None and _same_case(checked.case(i), own):
                    known.append((i, own))
                    continue
            if hit is None:
                new.append(i)
                continue
            case = checked.case(i)
            if _same_case(case, hit):
                known.append((i, hit))
            else:
                where = str(hit.imported) if hit.imported else "the app"
                conflicts.append(BrokenRow(row, (
                    f'row {row}, column "case_id": case_id "{case.case_id}" is already '
                    f"stored as case {hit.case_id} (from {where}) with different answers; "
                    f"delete case {hit.case_id} first to replace it",)))
        return ImportPlan(checked, file_name, previous, tuple(known), tuple(conflicts),
                          tuple(new))

    def import_cases(self, source: str | Path | bytes, who: str, *, file_name: str = "",
                     skip_broken: bool = False, max_bytes: int | None = None
                     ) -> ImportReport:
        """Import a cases CSV: new cases are stored in one transaction with an import
        record; a file imported before and rows already stored (same ``case_id``) are
        recognised and not doubled. Broken rows refuse the whole file
        (:class:`~model.errors.CaseImportError`, every row and column named) unless
        ``skip_broken``, which stores the valid rows and names the broken ones."""
        name = self._require(who)
        if not file_name and not isinstance(source, bytes):
            file_name = Path(source).name
        plan = self.plan_import(self.check_case_file(source, max_bytes), file_name)
        if plan.previous:
            return ImportReport(plan)
        broken = plan.broken
        if broken and not skip_broken:
            valid = len(plan.new)
            hint = (f"{valid:,} row(s) are valid: to import them and skip the broken ones, "
                    "use --skip-broken (in the app: tick 'Import the valid rows')"
                    if valid else "")
            raise CaseImportError(plan.problems, hint=hint)
        source_record = ImportSource(plan.file.digest, file_name, plan.file.n_rows,
                                     skipped_broken=len(broken), skipped_known=len(plan.known))
        rows = plan.file.store_rows(None if len(plan.new) == len(plan.file) else plan.new)
        ids = self._store.add_case_rows(rows, therapist=name, source=source_record)
        records = self._store.imports(plan.file.digest)
        return ImportReport(plan, tuple(ids), records[-1] if records else None,
                            tuple(broken))

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
