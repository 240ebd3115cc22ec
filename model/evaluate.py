"""Held-out evaluation: does a refit predict the therapists' adjudicated causes better?

:func:`cross_validate` splits the cases by row into ``n_splits`` seeded folds. For each fold
it refits on the other folds, then predicts every held-out case's adjudicated cause(s) from
that case's *other* evidence — all cause nodes are hidden, since nobody knows them when the
tool is used — once with the base calibration ("before") and once with the refit
("after"). The out-of-fold predictions of all folds are pooled and scored per cause, so
both calibrations are judged on exactly the same cases and folds.

Metrics per cause (binary: the cause's present state — ``yes``, or its last state — versus
the rest), following Van Calster et al., BMC Med 2019 (calibration first):

* ``log_loss`` — mean negative log-likelihood (natural log); the score to compare versions.
* ``brier`` — mean squared error of the probability; ``brier_prior`` the same for the base
  rate of the training folds; ``brier_skill = 1 - brier / brier_prior`` (> 0 beats the
  base rate).
* ``calibration_intercept`` — calibration-in-the-large: ``a`` in
  ``logit P(y) = a + logit(p)``; 0 is ideal, > 0 means the model predicts too low.
* ``calibration_slope`` — ``b`` in ``logit P(y) = a + b·logit(p)``; 1 is ideal, < 1 means
  predictions are too extreme, > 1 too timid.
* ``auc`` — discrimination, from the Mann–Whitney statistic (ties count one half).
* ``ece`` — expected calibration error over ``n_bins`` equal-width bins (few bins: clinic
  data sets are small), and ``reliability`` — the points of the reliability curve.

Undefined values (a cause never or always present, perfectly separated data) are NaN.
The follow-up outcome is not scored here: it is the soreness at the next session, after the
advice was followed, and predicting it needs the intervention model, not the posterior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from calibration.schema import Calibration
from model.inference.engine import CompiledNetwork
from model.learn import Cases, EMRefit, encode_cases, likelihood_arrays

__all__ = [
    "CauseMetrics",
    "Comparison",
    "Evaluation",
    "ReliabilityPoint",
    "auc",
    "binary_metrics",
    "calibration_intercept",
    "calibration_slope",
    "cross_validate",
    "evaluate_calibration",
    "expected_calibration_error",
    "fold_ids",
    "predict_causes",
    "reliability_curve",
]

_EPS = 1e-15


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityPoint:
    """One bin of a reliability curve: predictions in ``[lower, upper)`` (last bin closed)."""

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed: float


@dataclass(frozen=True)
class CauseMetrics:
    """Held-out scores of one cause's predicted probability (see the module docstring)."""

    cause: str
    state: str
    n: int
    n_positive: int
    prevalence: float
    log_loss: float
    brier: float
    brier_prior: float
    brier_skill: float
    calibration_intercept: float
    calibration_slope: float
    auc: float
    ece: float
    reliability: tuple[ReliabilityPoint, ...]


@dataclass(frozen=True)
class Evaluation:
    """The scores of one calibration per cause, and the predictions behind them.

    ``predictions`` has one row per (case, cause) scored: ``row`` (the case's index label),
    ``fold``, ``cause``, ``y`` (1 when the adjudicated state is the present one), ``p`` (the
    predicted probability) and ``prior`` (the base rate it is compared with).
    """

    label: str
    metrics: dict[str, CauseMetrics]
    predictions: pd.DataFrame = field(compare=False, repr=False)


# direction of "better" for each reported metric
_BETTER = {
    "log_loss": "lower",
    "brier": "lower",
    "brier_skill": "higher",
    "calibration_intercept": "closer to 0",
    "calibration_slope": "closer to 1",
    "auc": "higher",
    "ece": "lower",
}


def _improved(metric: str, before: float, after: float) -> str:
    if not (math.isfinite(before) and math.isfinite(after)) or before == after:
        return ""
    rule = _BETTER[metric]
    if rule == "lower":
        good = after < before
    elif rule == "higher":
        good = after > before
    elif rule == "closer to 0":
        good = abs(after) < abs(before)
    else:
        good = abs(after - 1) < abs(before - 1)
    return "after" if good else "before"


@dataclass(frozen=True)
class Comparison:
    """``before`` (the base calibration) against ``after`` (refit per fold), same folds."""

    before: Evaluation
    after: Evaluation
    n_splits: int
    seed: int
    n_cases: int

    def table(self) -> pd.DataFrame:
        """One row per cause and metric: before, after, change, and which one is better."""
        rows = []
        for cause, b in self.before.metrics.items():
            a = self.after.metrics[cause]
            for metric, rule in _BETTER.items():
                vb, va = getattr(b, metric), getattr(a, metric)
                rows.append(
                    {
                        "cause": cause,
                        "metric": metric,
                        "before": vb,
                        "after": va,
                        "change": va - vb,
                        "better_is": rule,
                        "better": _improved(metric, vb, va),
                    }
                )
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        head = (
            f"{self.n_splits}-fold cross-validation (seed {self.seed}) on {self.n_cases} cases"
        )
        body = self.table().to_string(index=False, float_format=lambda x: f"{x:.4f}")
        return f"{head}\n{body}"


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y and p differ in length ({y.size} vs {p.size})")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold only 0 and 1")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p must hold probabilities in [0, 1]")
    return y, p


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q) - np.log1p(-q)


def _logistic(
    y: np.ndarray, design: np.ndarray, offset: np.ndarray, max_iter: int = 100
) -> np.ndarray | None:
    """Maximum-likelihood logistic coefficients by damped Newton; None if it cannot fit."""
    beta = np.zeros(design.shape[1])

    def loglik(b: np.ndarray) -> float:
        eta = design @ b + offset
        return float((y * eta - np.logaddexp(0.0, eta)).sum())

    current = loglik(beta)
    for _ in range(max_iter):
        eta = design @ beta + offset
        mu = 0.5 * (1.0 + np.tanh(0.5 * eta))
        grad = design.T @ (y - mu)
        hess = (design * (mu * (1 - mu))[:, None]).T @ design
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(step)):
            return None
        t = 1.0
        while t > 1e-8:
            trial = loglik(beta + t * step)
            if trial >= current - 1e-12:
                break
            t /= 2
        beta = beta + t * step
        current = loglik(beta)
        if np.max(np.abs(t * step)) < 1e-10:
            return beta if np.all(np.abs(beta) < 1e6) else None
    return None  # no convergence: (quasi-)separation


def calibration_intercept(y: Any, p: Any) -> float:
    """Calibration-in-the-large: ``a`` in ``logit P(y=1) = a + logit(p)`` (ideal 0)."""
    y, p = _arrays(y, p)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    beta = _logistic(y, np.ones((y.size, 1)), _logit(p))
    return float("nan") if beta is None else float(beta[0])


def calibration_slope(y: Any, p: Any) -> float:
    """Calibration slope: ``b`` in ``logit P(y=1) = a + b·logit(p)`` (ideal 1)."""
    y, p = _arrays(y, p)
    x = _logit(p)
    if y.size < 3 or y.min() == y.max() or np.ptp(x) == 0:
        return float("nan")
    design = np.column_stack([np.ones(y.size), x])
    beta = _logistic(y, design, np.zeros(y.size))
    return float("nan") if beta is None else float(beta[1])


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve by Mann–Whitney: P(p_pos > p_neg) + ½·P(tie)."""
    y, p = _arrays(y, p)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each value
    ranks = mid_rank[inverse]
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def reliability_curve(y: Any, p: Any, n_bins: int = 5) -> tuple[ReliabilityPoint, ...]:
    """Mean predicted against observed frequency in ``n_bins`` equal-width bins (empty bins
    are left out)."""
    y, p = _arrays(y, p)
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.minimum((p * n_bins).astype(int), n_bins - 1)
    points = []
    for k in range(n_bins):
        inside = which == k
        count = int(inside.sum())
        if count:
            points.append(
                ReliabilityPoint(
                    lower=float(edges[k]),
                    upper=float(edges[k + 1]),
                    count=count,
                    mean_predicted=float(p[inside].mean()),
                    observed=float(y[inside].mean()),
                )
            )
    return tuple(points)


def expected_calibration_error(y: Any, p: Any, n_bins: int = 5) -> float:
    """Σ over bins of (share of cases) × |mean predicted − observed frequency|."""
    y, p = _arrays(y, p)
    if y.size == 0:
        return float("nan")
    return float(
        sum(pt.count / y.size * abs(pt.mean_predicted - pt.observed)
            for pt in reliability_curve(y, p, n_bins))
    )


def binary_metrics(
    y: Any,
    p: Any,
    prior: Any = None,
    *,
    cause: str = "",
    state: str = "",
    n_bins: int = 5,
) -> CauseMetrics:
    """Every score of predictions ``p`` for outcomes ``y`` (0/1).

    ``prior`` is the reference forecast for the Brier skill: one number or one per case
    (default: the prevalence of ``y`` itself, i.e. an in-sample base rate).
    """
    y, p = _arrays(y, p)
    n = y.size
    if n == 0:
        raise ValueError("no cases to score")
    ref = np.full(n, y.mean()) if prior is None else np.broadcast_to(
        np.asarray(prior, dtype=float), (n,)
    )
    q = np.clip(p, _EPS, 1 - _EPS)
    log_loss = float(-(y * np.log(q) + (1 - y) * np.log1p(-q)).mean())
    brier = float(((p - y) ** 2).mean())
    brier_prior = float(((ref - y) ** 2).mean())
    skill = 1.0 - brier / brier_prior if brier_prior > 0 else float("nan")
    return CauseMetrics(
        cause=cause,
        state=state,
        n=n,
        n_positive=int(y.sum()),
        prevalence=float(y.mean()),
        log_loss=log_loss,
        brier=brier,
        brier_prior=brier_prior,
        brier_skill=float(skill),
        calibration_intercept=calibration_intercept(y, p),
        calibration_slope=calibration_slope(y, p),
        auc=auc(y, p),
        ece=expected_calibration_error(y, p, n_bins),
        reliability=reliability_curve(y, p, n_bins),
    )


# ---------------------------------------------------------------------------------------------
# predictions
# ---------------------------------------------------------------------------------------------


def _present_index(calibration: Calibration, cause: str) -> int:
    states = calibration.nodes[cause].states
    return states.index("yes") if "yes" in states else len(states) - 1


def fold_ids(n: int, n_splits: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..n_splits-1) of each of ``n`` rows: a seeded shuffle, sizes within 1."""
    if n_splits < 2:
        raise ValueError("n_splits must be at least 2")
    if n < n_splits:
        raise ValueError(f"{n} case(s) cannot be split into {n_splits} folds")
    folds = np.empty(n, dtype=int)
    folds[np.random.default_rng(seed).permutation(n)] = np.arange(n) % n_splits
    return folds


def _predict(calibration: Calibration, codes: np.ndarray, causes: list[str]) -> np.ndarray:
    """P(present) of each cause for each row of ``codes`` (whose cause columns are hidden)."""
    if codes.shape[0] == 0:
        return np.zeros((0, len(causes)))
    net = CompiledNetwork(
        calibration.variables,
        {n: node.parents for n, node in calibration.nodes.items()},
        calibration.cpts(),
    )
    res = net.query(likelihood_arrays(codes, calibration))
    return np.column_stack(
        [res.marginals[c][:, _present_index(calibration, c)] for c in causes]
    )


def _hidden_codes(codes: np.ndarray, calibration: Calibration, hide: list[str]) -> np.ndarray:
    out = codes.copy()
    names = list(calibration.nodes)
    for node in hide:
        out[:, names.index(node)] = -1
    return out


def predict_causes(
    calibration: Calibration, cases: Cases, causes: list[str] | None = None
) -> pd.DataFrame:
    """P(present) of each cause for each case, from the case's evidence with every cause
    node hidden. One column per cause, indexed like ``cases``."""
    causes = list(calibration.causes if causes is None else causes)
    codes = encode_cases(cases, calibration)
    probs = _predict(calibration, _hidden_codes(codes, calibration, calibration.causes), causes)
    index = cases.index if isinstance(cases, pd.DataFrame) else pd.RangeIndex(len(codes))
    return pd.DataFrame(probs, index=index, columns=causes)


def _targets(calibration: Calibration, codes: np.ndarray, causes: list[str]) -> np.ndarray:
    """0/1 per row and cause where adjudicated, -1 where not."""
    names = list(calibration.nodes)
    out = np.full((codes.shape[0], len(causes)), -1, dtype=int)
    for k, c in enumerate(causes):
        col = codes[:, names.index(c)]
        known = col >= 0
        out[known, k] = (col[known] == _present_index(calibration, c)).astype(int)
    return out


def _prior_probabilities(calibration: Calibration, causes: list[str]) -> dict[str, float]:
    """P(present) of each cause with no evidence at all."""
    net = CompiledNetwork(
        calibration.variables,
        {n: node.parents for n, node in calibration.nodes.items()},
        calibration.cpts(),
    )
    marginals = net.query({}).marginals
    return {c: float(marginals[c][0, _present_index(calibration, c)]) for c in causes}


def _score(
    label: str,
    calibration: Calibration,
    records: pd.DataFrame,
    causes: list[str],
    n_bins: int,
) -> Evaluation:
    metrics = {}
    for cause in causes:
        part = records[records["cause"] == cause]
        if part.empty:
            continue
        metrics[cause] = binary_metrics(
            part["y"].to_numpy(),
            part["p"].to_numpy(),
            part["prior"].to_numpy(),
            cause=cause,
            state=calibration.nodes[cause].states[_present_index(calibration, cause)],
            n_bins=n_bins,
        )
    return Evaluation(label=label, metrics=metrics, predictions=records.reset_index(drop=True))


def _records(
    index: pd.Index,
    rows: np.ndarray,
    fold: np.ndarray,
    targets: np.ndarray,
    probs: np.ndarray,
    priors: np.ndarray,
    causes: list[str],
) -> pd.DataFrame:
    parts = []
    for k, cause in enumerate(causes):
        keep = targets[:, k] >= 0
        parts.append(
            pd.DataFrame(
                {
                    "row": index[rows[keep]],
                    "fold": fold[keep],
                    "cause": cause,
                    "y": targets[keep, k],
                    "p": probs[keep, k],
                    "prior": priors[keep, k],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def evaluate_calibration(
    calibration: Calibration,
    cases: Cases,
    causes: list[str] | None = None,
    *,
    prior: dict[str, float] | None = None,
    n_bins: int = 5,
    label: str = "",
) -> Evaluation:
    """Score a fixed calibration on cases it was not fitted to (no folds, no refit).

    ``prior`` gives the reference base rate per cause for the Brier skill; by default the
    calibration's own prior P(present), i.e. "does the evidence help at all".
    """
    causes = list(calibration.causes if causes is None else causes)
    frame = cases if isinstance(cases, pd.DataFrame) else None
    codes = encode_cases(cases, calibration)
    targets = _targets(calibration, codes, causes)
    probs = _predict(calibration, _hidden_codes(codes, calibration, calibration.causes), causes)
    own = _prior_probabilities(calibration, causes)
    ref = np.array([(prior or {}).get(c, own[c]) for c in causes])
    index = frame.index if frame is not None else pd.RangeIndex(codes.shape[0])
    rows = np.arange(codes.shape[0])
    records = _records(
        index, rows, np.zeros(codes.shape[0], dtype=int), targets, probs,
        np.broadcast_to(ref, targets.shape), causes,
    )
    return _score(label, calibration, records, causes, n_bins)


def cross_validate(
    cases: Cases,
    estimator: Any = None,
    *,
    base: Calibration | None = None,
    causes: list[str] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    n_bins: int = 5,
) -> Comparison:
    """k-fold held-out comparison of ``estimator.base`` ("before") and its refit ("after").

    ``estimator`` is an unfitted :class:`~model.learn.EMRefit` or
    :class:`~model.learn.DirichletRefit` (a fresh copy is fitted per fold); by default
    ``EMRefit(base)``. ``causes`` are the nodes to score (default: every cause node with at
    least one adjudicated case). The Brier-skill reference is the base rate of each fold's
    training cases (the base calibration's prior if the training folds hold no
    adjudication of that cause).
    """
    if estimator is None:
        if base is None:
            raise ValueError("give an estimator or a base calibration")
        estimator = EMRefit(base)
    base = estimator.base
    frame = cases if isinstance(cases, pd.DataFrame) else None
    codes = encode_cases(cases, base)
    n = codes.shape[0]
    names = list(base.nodes)
    all_causes = base.causes
    if causes is None:
        causes = [c for c in all_causes if (codes[:, names.index(c)] >= 0).any()]
    else:
        unknown = [c for c in causes if c not in base.nodes]
        if unknown:
            raise ValueError(f"unknown cause node(s): {', '.join(unknown)}")
        causes = list(causes)
    if not causes:
        raise ValueError("no case has an adjudicated cause: nothing to evaluate")
    folds = fold_ids(n, n_splits, seed)
    targets = _targets(base, codes, causes)
    hidden = _hidden_codes(codes, base, all_causes)
    index = frame.index if frame is not None else pd.RangeIndex(n)
    base_prior = _prior_probabilities(base, causes)
    before_p = _predict(base, hidden, causes)
    after_p = np.empty_like(before_p)
    priors = np.empty((n, len(causes)))
    for k in range(n_splits):
        test = folds == k
        train = ~test
        for j, c in enumerate(causes):
            t = targets[train, j]
            t = t[t >= 0]
            priors[test, j] = t.mean() if t.size else base_prior[c]
        fitted = type(estimator)(**estimator.get_params())
        train_cases = (
            frame.iloc[np.flatnonzero(train)]
            if frame is not None
            else _frame_from_codes(codes[train], base)
        )
        fitted.fit(train_cases)
        after_p[test] = _predict(fitted.calibration_, hidden[test], causes)
    rows = np.arange(n)
    before = _records(index, rows, folds, targets, before_p, priors, causes)
    after = _records(index, rows, folds, targets, after_p, priors, causes)
    return Comparison(
        before=_score("before", base, before, causes, n_bins),
        after=_score("after", base, after, causes, n_bins),
        n_splits=n_splits,
        seed=seed,
        n_cases=n,
    )


def _frame_from_codes(codes: np.ndarray, calibration: Calibration) -> pd.DataFrame:
    data = {}
    for j, (name, node) in enumerate(calibration.nodes.items()):
        states = np.asarray([*node.states, np.nan], dtype=object)
        data[name] = states[np.where(codes[:, j] >= 0, codes[:, j], len(node.states))]
    return pd.DataFrame(data)
