"""Refits from cases: which method, and what a refit would change — one rule for both doors.

``"auto"`` fits by EM when any value is missing (EM uses incomplete cases too) and by
Dirichlet counting when every value is known. :func:`refit` fits, reports what moved, and
compares the result with its base on held-out folds when cases carry adjudicated causes.
Nothing is saved here: a refit becomes a version only through :meth:`Clinic.save`.
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
    before and after). ``comparison`` is the k-fold held-out comparison, or ``None`` with
    the reason in ``cv_problem``. ``moved`` lists every table entry that moved, largest
    first (for two-state nodes only the second state: the first is its mirror image).
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


def _log_likelihood(cal: Calibration, frame: pd.DataFrame) -> float:
    """Σ log P(case evidence) under ``cal`` (EM's E-step, no update)."""
    return float(EMRefit(cal, max_iter=0).fit(frame).log_likelihood_)


def refit(base: Calibration, cases: Cases, method: str = "auto", *, folds: int = 5,
          seed: int = 0, max_iter: int = 100) -> Refit:
    """Refit ``base`` from ``cases``; ``folds=0`` skips the held-out comparison."""
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
        if chosen == "em":
            history = tuple(fitted.history_)
        else:
            history = (_log_likelihood(base, frame), _log_likelihood(fitted.calibration_, frame))
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
    moved = [m for m in moved_parameters(base, fitted.calibration_, top=None)
             if not (base.nodes[m.node].card == 2 and m.state == base.nodes[m.node].states[0])]
    return Refit(
        method=chosen,
        reason=reason,
        base=base,
        calibration=fitted.calibration_,
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
    )
