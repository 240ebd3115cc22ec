"""Refits from cases: which method, and what a refit would change — one rule for both doors.

``"auto"`` fits by EM when any value is missing (EM uses incomplete cases too) and by
Dirichlet counting when every value is known. :func:`refit` fits (noisy-OR / noisy-MAX nodes
in their own parameters), keeps the experts' behaviour-check orderings where the cases do not
credibly contradict them (:mod:`model.service.behaviour`), reports what moved, and compares
the result with its base on held-out folds when cases carry adjudicated causes. Nothing is
saved here: a refit becomes a version only through :meth:`Clinic.save_refit`, and which base
and which cases a refit uses is decided in one place, :meth:`Clinic.refit_base` /
:meth:`Clinic.refit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from calibration.schema import Calibration
from calibration.store import Case, NewCase
from model.errors import ImpossibleEvidenceError, RefusedError, UsageError
from model.learning.evaluate import Comparison, cross_validate
from model.learning.refit import (
    DirichletRefit,
    EMRefit,
    MovedParameter,
    case_frame,
    moved_parameters,
)
from model.service.behaviour import CheckFailure, HeldBack, Outcome, keep_orderings

__all__ = ["METHODS", "Refit", "choose_method", "make_estimator", "refit"]

#: The refit methods a user can ask for.
METHODS = ("auto", "em", "dirichlet")

Cases = Sequence[Case | NewCase] | pd.DataFrame


def choose_method(frame: pd.DataFrame, base: Calibration, method: str = "auto"
                  ) -> tuple[str, str]:
    """The method to use and why: ``("em" | "dirichlet", reason)``."""
    if method not in METHODS:
        raise UsageError(f"unknown refit method {str(method)[:40]!r}; allowed: "
                         f"{', '.join(METHODS)}")
    missing = bool(frame[list(base.nodes)].isna().to_numpy().any())
    if method == "auto":
        return ("em", "values are missing") if missing else ("dirichlet",
                                                             "every value is known")
    return method, f"asked for ({method})"


def make_estimator(base: Calibration, method: str, max_iter: int = 100
                   ) -> EMRefit | DirichletRefit:
    """An unfitted estimator for ``method`` (``"em"`` or ``"dirichlet"``)."""
    return EMRefit(base, max_iter=max_iter) if method == "em" else DirichletRefit(base)


@dataclass(frozen=True)
class Refit:
    """A refit and what it changes, before anything is saved.

    ``history`` is the log-likelihood of the cases after each EM step (Dirichlet counting:
    before and after); when nodes were held back, its last entry is that of the held-back
    result. ``comparison`` is the k-fold held-out comparison (each fold refitted by the
    estimator alone, without the hold-back), or ``None`` with the reason in ``cv_problem``.
    ``moved`` lists every table entry that moved, largest first (for two-state nodes only the
    second state: the first is its mirror image).
    ``held_back`` says which nodes kept part of the experts' numbers so that a behaviour
    check the cases do not credibly contradict still holds; ``failures`` are the checks the
    cases do contradict (the save policy refuses those); ``base_failures`` the checks the
    base itself fails. ``labels`` name the cases (``"case 17"``, ``"row 5"``) in
    explanations; ``base_label`` / ``base_version`` / ``cases_label`` say what was used.
    """

    method: str
    reason: str
    base: Calibration
    calibration: Calibration
    n_cases: int
    n_incomplete: int
    n_adjudicated: int
    iterations: int
    converged: bool
    history: tuple[float, ...]
    learned: tuple[str, ...]
    moved: tuple[MovedParameter, ...]
    comparison: Comparison | None
    cv_problem: str | None
    held_back: HeldBack | None = None
    failures: tuple[CheckFailure, ...] = ()
    base_failures: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    base_label: str = "the base calibration"
    base_version: int | None = None
    cases_label: str = ""

    def failure_lines(self) -> list[str]:
        """Every behaviour check the cases contradict: which, by how much, how sure, and
        the cases that pull it (named by ``labels``)."""
        names = dict(enumerate(self.labels)) if self.labels else None
        return [line for f in self.failures for line in f.lines(names)]


def _log_likelihood(cal: Calibration, frame: pd.DataFrame) -> float:
    """Σ log P(case evidence) under ``cal`` (EM's E-step, no update)."""
    return float(EMRefit(cal, max_iter=0).fit(frame).log_likelihood_)


def refit(base: Calibration, cases: Cases, method: str = "auto", *, folds: int = 5,
          seed: int = 0, max_iter: int = 100, labels: Sequence[str] = (),
          orderings: bool = True, base_label: str = "the base calibration",
          base_version: int | None = None, cases_label: str = "") -> Refit:
    """Refit ``base`` from ``cases``; ``folds=0`` skips the held-out comparison.

    ``orderings=False`` skips the behaviour-check hold-back (the plain posterior).
    ``labels`` (one per case) name cases in explanations of failing checks.
    """
    if folds != 0 and folds < 2:
        raise UsageError(f"folds {folds}: use 0 to skip the held-out comparison, or 2 or more")
    if max_iter < 1:
        raise UsageError(f"max_iter {max_iter}: must be at least 1")
    frame = case_frame(cases, base)
    if len(frame) == 0:
        raise RefusedError("there are no cases to refit from")
    nodes = list(base.nodes)
    chosen, reason = choose_method(frame, base, method)
    estimator = make_estimator(base, chosen, max_iter)
    try:
        fitted: Any = make_estimator(base, chosen, max_iter).fit(frame)
        outcome = (keep_orderings(fitted, frame, seed=seed) if orderings
                   else Outcome(fitted.calibration_, None, (), ()))
        result_cal = outcome.calibration
        if chosen == "em":
            history = tuple(fitted.history_)
            if outcome.held_back is not None:
                history = (*history, _log_likelihood(result_cal, frame))
        else:
            history = (_log_likelihood(base, frame), _log_likelihood(result_cal, frame))
    except ImpossibleEvidenceError as exc:
        raise RefusedError(f"the cases cannot be explained by the base calibration: {exc}") \
            from None
    adjudicated = frame[base.causes].notna().any(axis=1) if base.causes else None
    n_adjudicated = int(adjudicated.sum()) if adjudicated is not None else 0
    comparison: Comparison | None = None
    problem: str | None = None
    if folds == 0:
        problem = "skipped (0 folds asked for)"
    elif not n_adjudicated:
        problem = ("no case has an adjudicated cause (add columns such as "
                   f"cause:{base.causes[0] if base.causes else 'NODE'})")
    elif len(frame) < folds:
        problem = f"{len(frame)} case(s) cannot be split into {folds} folds"
    else:
        try:
            comparison = cross_validate(frame, estimator, n_splits=folds, seed=seed)
        except (ValueError, ImpossibleEvidenceError) as exc:
            problem = str(exc)
    moved = [m for m in moved_parameters(base, result_cal, top=None)
             if not (base.nodes[m.node].card == 2 and m.state == base.nodes[m.node].states[0])]
    return Refit(
        method=chosen,
        reason=reason,
        base=base,
        calibration=result_cal,
        n_cases=len(frame),
        n_incomplete=int(frame[nodes].isna().any(axis=1).sum()),
        n_adjudicated=n_adjudicated,
        iterations=int(getattr(fitted, "n_iter_", 1)),
        converged=bool(getattr(fitted, "converged_", True)),
        history=history,
        learned=tuple(fitted.learned_),
        moved=tuple(moved),
        comparison=comparison,
        cv_problem=problem,
        held_back=outcome.held_back,
        failures=outcome.failures,
        base_failures=outcome.base_failures,
        labels=tuple(labels),
        base_label=base_label,
        base_version=base_version,
        cases_label=cases_label,
    )
