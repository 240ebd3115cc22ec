"""Learning a calibration's numbers from recorded cases, starting from the experts' numbers.

Every column of every table is read as a Dirichlet prior: the expert distribution ``p`` with
confidence ``N`` (the node's equivalent sample size, :attr:`NodeSpec.confidence`) is
Dirichlet(N·p). After counts ``n`` in that column the numbers become

    (N·p + n) / (N + Σn)

which is the posterior mean of Dirichlet(N·p) and also the maximiser of
``Σ (n + N·p)·log θ``. With ``N`` small the data speak; with ``N`` large the experts do.
A column without any count keeps the expert's numbers.

Two estimators, scikit-learn style (settings in the constructor, ``fit(cases)`` returns the
estimator, results in attributes ending in ``_``):

* :class:`DirichletRefit` — counts from the rows where a node and all its parents are
  known; other rows are ignored for that node. Exact and instant for complete data.
* :class:`EMRefit` — uses every row, however incomplete: latent causes that are never
  observed and unanswered questions are filled in by their posterior under the current
  numbers (E-step, exact junction-tree inference, one batched query per iteration), then the
  update above is applied to the expected counts (M-step). This is MAP-EM: it climbs
  ``log P(cases | θ) + Σ N·p·log θ`` and never goes down. It assumes values are missing at
  random (whether a question was answered does not depend on the answer).

What the cases are
------------------
Cases are a :class:`pandas.DataFrame` with one column per node holding state names; ``""``,
whitespace, ``None`` and NaN mean unknown. A column ``cause:<node>`` (the CSV form of an
adjudicated cause) is evidence on ``<node>`` and wins over a plain ``<node>`` value in the
same row. Store records (:class:`calibration.store.Case` / ``NewCase``) go through
:func:`case_frame`: their evidence and their adjudicated causes become node columns — an
adjudicated cause is simply evidence that the cause node is in that state.

The follow-up outcome (column ``outcome``) is kept in the frame but never used for fitting:
it is the state of ``low_back_soreness`` at the *next* session, after the lifter has acted
on the advice, while the network's ``low_back_soreness`` is the soreness *now*. Counting it
as the current symptom would teach the symptom table how soreness looks after the fixes —
usually better — and bias every cause's posterior downwards. It remains available for
evaluating the advice. Columns ``case_id`` and ``therapist`` are ignored too; any other
column that is not a node is an error (it is usually a typo).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from calibration.cases import CASE_ID_COLUMN, CAUSE_PREFIX, OUTCOME_COLUMN, THERAPIST_COLUMN
from calibration.diff import diff_calibrations
from calibration.schema import Calibration
from model.evidence import EvidenceError, is_unknown
from model.inference.engine import CompiledNetwork, ImpossibleEvidenceError

__all__ = [
    "IGNORED_COLUMNS",
    "DirichletRefit",
    "EMRefit",
    "MovedParameter",
    "case_frame",
    "encode_cases",
    "likelihood_arrays",
    "moved_parameters",
]

#: Non-node columns that are carried along but never used for fitting.
IGNORED_COLUMNS = (OUTCOME_COLUMN, CASE_ID_COLUMN, THERAPIST_COLUMN)

Cases = pd.DataFrame | Iterable[Any]


# ---------------------------------------------------------------------------------------------
# cases -> codes
# ---------------------------------------------------------------------------------------------


def case_frame(cases: Cases, calibration: Calibration) -> pd.DataFrame:
    """The cases as a frame: one column per node (state name or NaN) plus ``outcome``.

    ``cases`` is a DataFrame (returned with ``cause:<node>`` columns merged into their
    nodes) or an iterable of store records with ``evidence``, ``adjudicated`` and
    ``outcome`` attributes. Adjudicated causes become evidence on the cause nodes; the
    outcome goes to the ``outcome`` column, which the estimators ignore (see the module
    docstring for why).
    """
    names = list(calibration.nodes)
    if isinstance(cases, pd.DataFrame):
        _check_columns(cases.columns, calibration)
        data: dict[str, pd.Series] = {}
        for name in names:
            col = cases[name] if name in cases.columns else pd.Series(np.nan, index=cases.index)
            col = col.astype(object)
            adjudicated = CAUSE_PREFIX + name
            if adjudicated in cases.columns:
                adj = cases[adjudicated].astype(object)
                col = adj.where(~adj.map(is_unknown), col)
            data[name] = col.where(~col.map(is_unknown), np.nan)
        if OUTCOME_COLUMN in cases.columns:
            data[OUTCOME_COLUMN] = cases[OUTCOME_COLUMN].astype(object)
        return pd.DataFrame(data, index=cases.index, columns=[*names, OUTCOME_COLUMN])
    rows = []
    for case in cases:
        row: dict[str, Any] = dict(case.evidence)
        row.update({k: v for k, v in case.adjudicated.items() if not is_unknown(v)})
        row[OUTCOME_COLUMN] = case.outcome
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*names, OUTCOME_COLUMN], dtype=object)
    unknown = sorted({k for r in rows for k in r} - {*names, OUTCOME_COLUMN})
    if unknown:
        raise EvidenceError(
            f"unknown node(s) in the cases: {', '.join(unknown)}; valid nodes are: "
            f"{', '.join(names)}"
        )
    return frame.map(lambda v: np.nan if is_unknown(v) else v)


def _check_columns(columns: Iterable[Any], calibration: Calibration) -> None:
    bad = []
    for col in columns:
        name = str(col)
        if name in calibration.nodes or name in IGNORED_COLUMNS:
            continue
        if name.startswith(CAUSE_PREFIX) and name[len(CAUSE_PREFIX) :] in calibration.nodes:
            continue
        bad.append(name)
    if bad:
        raise EvidenceError(
            f"unknown column(s) {', '.join(map(repr, bad))}; columns must be nodes "
            f"({', '.join(calibration.nodes)}), '{CAUSE_PREFIX}<node>' or one of "
            f"{', '.join(IGNORED_COLUMNS)}"
        )


def _encode_column(values: pd.Series, name: str, states: Sequence[str]) -> np.ndarray:
    """State indices of one column, -1 where unknown; bad states raise EvidenceError."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.full(len(uniques) + 1, -1, dtype=np.int16)  # the last slot serves code -1
    index = {s: i for i, s in enumerate(states)}
    for k, value in enumerate(uniques):
        if is_unknown(value):
            continue
        state = value.strip() if isinstance(value, str) else value
        if state not in index:
            row = values.index[int(np.flatnonzero(codes == k)[0])]
            raise EvidenceError(
                f"row {row!r}, column {name!r}: unknown state {value!r}; valid states are: "
                f"{', '.join(states)}"
            )
        lookup[k] = index[state]
    return lookup[codes]


def encode_cases(cases: Cases, calibration: Calibration) -> np.ndarray:
    """State indices of every case and node: int array ``(rows, nodes)``, -1 = unknown.

    Columns follow the calibration's node order. Accepts what :func:`case_frame` accepts.
    """
    names = list(calibration.nodes)
    if not isinstance(cases, pd.DataFrame):
        cases = case_frame(cases, calibration)
    _check_columns(cases.columns, calibration)
    out = np.full((len(cases), len(names)), -1, dtype=np.int16)
    for j, name in enumerate(names):
        states = calibration.nodes[name].states
        if name in cases.columns:
            out[:, j] = _encode_column(cases[name], name, states)
        adjudicated = CAUSE_PREFIX + name
        if adjudicated in cases.columns:
            adj = _encode_column(cases[adjudicated], adjudicated, states)
            out[:, j] = np.where(adj >= 0, adj, out[:, j])
    return out


def likelihood_arrays(codes: np.ndarray, calibration: Calibration) -> dict[str, np.ndarray]:
    """Engine evidence from :func:`encode_cases` codes: ``{node: (rows, card)}``.

    One-hot where a node is known, ones where it is not; nodes unknown in every row are
    left out.
    """
    out: dict[str, np.ndarray] = {}
    for j, (name, node) in enumerate(calibration.nodes.items()):
        known = codes[:, j] >= 0
        if known.any():
            arr = np.ones((codes.shape[0], node.card))
            arr[known] = np.eye(node.card)[codes[known, j]]
            out[name] = arr
    return out


def _weights(sample_weight: Any, rows: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(rows)
    w = np.asarray(sample_weight, dtype=float)
    if w.shape != (rows,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"sample_weight must hold {rows} finite non-negative numbers")
    return w


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------


def _family(calibration: Calibration, name: str) -> tuple[str, ...]:
    return (*calibration.nodes[name].parents, name)


def _family_counts(
    codes: np.ndarray,
    columns: Sequence[int],
    shape: tuple[int, ...],
    weights: np.ndarray,
) -> np.ndarray:
    """Weighted counts of the rows in which every column of the family is known."""
    sub = codes[:, columns]
    known = (sub >= 0).all(axis=1)
    if not known.any():
        return np.zeros(shape)
    flat = np.ravel_multi_index(tuple(sub[known].T.astype(np.intp)), shape)
    counts = np.bincount(flat, weights=weights[known], minlength=math.prod(shape))
    return counts.reshape(shape)


def _posterior_mean(prior: np.ndarray, confidence: float, counts: np.ndarray) -> np.ndarray:
    """(N·p + n) / (N + Σn) per column; a column with nothing at all keeps ``p``."""
    total = confidence + counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        post = (confidence * prior + counts) / total
    return np.where(total > 0, post, prior)


class _Refit:
    """Settings and helpers shared by the two estimators."""

    def __init__(
        self,
        base: Calibration,
        *,
        nodes: Sequence[str] | None = None,
        confidence: float | Mapping[str, float] | None = None,
    ) -> None:
        self.base = base
        self.nodes = nodes
        self.confidence = confidence

    def get_params(self) -> dict[str, Any]:
        """The constructor settings (a fresh ``type(est)(**est.get_params())`` is unfitted)."""
        return {"base": self.base, "nodes": self.nodes, "confidence": self.confidence}

    def _learned_nodes(self) -> list[str]:
        if self.nodes is None:
            return list(self.base.nodes)
        unknown = [n for n in self.nodes if n not in self.base.nodes]
        if unknown:
            raise ValueError(
                f"unknown node(s) to learn: {', '.join(unknown)}; valid nodes are: "
                f"{', '.join(self.base.nodes)}"
            )
        return [n for n in self.base.nodes if n in set(self.nodes)]

    def _confidence(self, name: str) -> float:
        """The equivalent sample size N of ``name``'s prior (node setting unless overridden)."""
        if self.confidence is None:
            value = self.base.nodes[name].confidence
        elif isinstance(self.confidence, Mapping):
            value = self.confidence.get(name, self.base.nodes[name].confidence)
        else:
            value = self.confidence
        value = float(value)
        if not value >= 0 or not math.isfinite(value):
            raise ValueError(f"confidence for {name!r} must be a finite number >= 0")
        return value

    def _result(self, tables: Mapping[str, np.ndarray]) -> Calibration:
        cal = self.base
        for name, table in tables.items():
            cal = cal.with_table(name, table)
        return cal


# ---------------------------------------------------------------------------------------------
# complete-data refit
# ---------------------------------------------------------------------------------------------


class DirichletRefit(_Refit):
    """Refit from cases by Dirichlet counting; rows missing a family member are skipped.

    Parameters
    ----------
    base:
        The calibration whose numbers are the prior (and whose structure is kept).
    nodes:
        Nodes to learn (default: all). Others keep their parameters and form.
    confidence:
        Override of the prior's equivalent sample size: one number for every node, or a
        mapping node -> N (nodes left out keep :attr:`NodeSpec.confidence`). ``0`` gives
        maximum likelihood for every column that has data.

    Attributes (after :meth:`fit`)
    ------------------------------
    calibration_ : Calibration
        ``base`` with every node that received counts written as a full ``table``; nodes
        without a single usable row keep their original form.
    counts_ : dict[str, ndarray]
        Counts per node in the columns layout ``(*parent_cards, card)``.
    column_confidence_ : dict[str, ndarray]
        ``N + Σn`` per column, shape ``parent_cards`` — the effective sample size behind
        each refitted column (the node's ``confidence`` itself is left unchanged).
    learned_ : tuple[str, ...]
        Nodes rewritten from data.
    n_cases_ : int
        Rows given to :meth:`fit`.
    """

    def fit(self, cases: Cases, sample_weight: Any = None) -> DirichletRefit:
        """Count, combine with the prior, and build :attr:`calibration_`."""
        codes = encode_cases(cases, self.base)
        weights = _weights(sample_weight, codes.shape[0])
        position = {n: j for j, n in enumerate(self.base.nodes)}
        counts: dict[str, np.ndarray] = {}
        tables: dict[str, np.ndarray] = {}
        column_confidence: dict[str, np.ndarray] = {}
        for name in self._learned_nodes():
            prior = self.base.cpt(name)
            fam = _family(self.base, name)
            n = _family_counts(codes, [position[v] for v in fam], prior.shape, weights)
            counts[name] = n
            conf = self._confidence(name)
            column_confidence[name] = conf + n.sum(axis=-1)
            if n.sum() > 0:
                tables[name] = _posterior_mean(prior, conf, n)
        self.counts_ = counts
        self.column_confidence_ = column_confidence
        self.learned_ = tuple(tables)
        self.n_cases_ = int(codes.shape[0])
        self.calibration_ = self._result(tables)
        return self


# ---------------------------------------------------------------------------------------------
# EM for incomplete data
# ---------------------------------------------------------------------------------------------


def _patterns(codes: np.ndarray, weights: np.ndarray, cards: Sequence[int]) -> tuple:
    """Distinct rows, their total weight, and one original row index per distinct row."""
    if codes.shape[0] == 0:
        return codes, weights, np.zeros(0, dtype=np.intp)
    radix = [c + 1 for c in cards]
    if math.prod(radix) < 2**62:
        mult = np.cumprod([1, *radix[:-1]], dtype=np.int64)
        keys = (codes.astype(np.int64) + 1) @ mult
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:  # pragma: no cover - networks far wider than knowpain's
        _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    total = np.bincount(inverse, weights=weights, minlength=first.size)
    return codes[first], total, first


@dataclass(frozen=True)
class _Iterate:
    """One EM iterate: its tables, log-likelihood, objective and expected counts."""

    tables: dict[str, np.ndarray]
    log_likelihood: float
    objective: float
    counts: dict[str, np.ndarray]


def _extrapolate(
    t0: Mapping[str, np.ndarray],
    t1: Mapping[str, np.ndarray],
    t2: dict[str, np.ndarray],
    nodes: Sequence[str],
) -> dict[str, np.ndarray]:
    """SQUAREM's jump ``t0 - 2αr + α²v`` over ``nodes``; ``t2`` itself when it cannot help.

    ``r = t1 - t0`` and ``v = t2 - 2·t1 + t0``; the step length ``α = -|r|/|v|`` is halved
    towards -1 (where the jump is ``t2``) until every column stays a distribution that is
    positive wherever ``t2`` is. Column sums are preserved by construction. Nodes outside
    ``nodes`` (families observed in every row) are taken from ``t2``.
    """
    r = {n: t1[n] - t0[n] for n in nodes}
    v = {n: t2[n] - 2.0 * t1[n] + t0[n] for n in nodes}
    r_norm = math.sqrt(sum(float((a * a).sum()) for a in r.values()))
    v_norm = math.sqrt(sum(float((a * a).sum()) for a in v.values()))
    if r_norm == 0.0 or v_norm == 0.0:
        return t2
    alpha = -r_norm / v_norm
    while alpha < -1.01:
        jump = {n: t0[n] - 2.0 * alpha * r[n] + alpha * alpha * v[n] for n in nodes}
        if all(np.all(np.where(t2[n] > 0, jump[n] > 0, jump[n] >= 0)) for n in nodes):
            out = dict(t2)
            for n in nodes:
                out[n] = jump[n] / jump[n].sum(axis=-1, keepdims=True)
            return out
        alpha = (alpha - 1.0) / 2.0
    return t2


class EMRefit(_Refit):
    """Refit from incomplete cases by MAP expectation–maximisation with the exact engine.

    Each iteration runs ONE batched junction-tree query over the distinct evidence patterns
    (identical rows are grouped and weighted), reads the posterior joint of every family
    that is not observed in every row, and sums the weighted joints into expected counts;
    the M-step is the Dirichlet posterior mean of :class:`DirichletRefit`. Families observed
    in every row are counted once. With complete data the result equals
    :class:`DirichletRefit` after one iteration.

    The prior also fixes the meaning of hidden states: EM on its own cannot tell "yes" from
    "no" for a cause that is never observed (label switching); the experts' numbers, through
    their confidence, say which is which. Start from a sensible calibration.

    Parameters
    ----------
    base, nodes, confidence:
        As for :class:`DirichletRefit`; ``base`` is also the starting point.
    max_iter:
        Largest number of M-steps (EM updates).
    tol:
        Converged when one plain EM step gains less than ``tol`` per case in the objective
        (log-likelihood plus log-prior, both summed over cases).
    accelerate:
        Use SQUAREM (Varadhan & Roland, Scand J Stat 2008): after each plain step, one more
        step and an extrapolation along the two, stabilised by a further EM step and kept
        only if it beats the plain step — so the objective still never decreases. Latent
        causes make plain EM crawl; this typically needs 3-5× fewer E-steps. ``False``
        gives textbook EM.

    Attributes (after :meth:`fit`)
    ------------------------------
    calibration_ : Calibration
        ``base`` with every learned node written as a full ``table``.
    counts_ : dict[str, ndarray]
        Expected counts per node (columns layout) under the returned parameters.
    column_confidence_ : dict[str, ndarray]
        ``N + Σ expected n`` per column.
    n_iter_ : int
        M-steps performed (an accelerated cycle performs up to three).
    converged_ : bool
        Whether the tolerance was met within ``max_iter``.
    history_ : tuple[float, ...]
        Log-likelihood ``Σ_rows w·log P(evidence)`` of each accepted iterate (one per plain
        step or accelerated cycle); the first entry is that of ``base``, the last that of
        :attr:`calibration_`.
    objective_history_ : tuple[float, ...]
        ``history_`` plus the log-prior ``Σ N·p·log θ``: the quantity EM never decreases.
    log_likelihood_ : float
        ``history_[-1]``.
    hidden_families_ : tuple[tuple[str, ...], ...]
        Families (parents..., node) filled in by inference because some row misses a member.
    learned_ : tuple[str, ...]
        Nodes rewritten.
    n_cases_, n_patterns_ : int
        Rows given and distinct evidence patterns queried.
    """

    def __init__(
        self,
        base: Calibration,
        max_iter: int = 100,
        tol: float = 1e-6,
        *,
        accelerate: bool = True,
        nodes: Sequence[str] | None = None,
        confidence: float | Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(base, nodes=nodes, confidence=confidence)
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate

    def get_params(self) -> dict[str, Any]:
        """The constructor settings."""
        return {
            **super().get_params(),
            "max_iter": self.max_iter,
            "tol": self.tol,
            "accelerate": self.accelerate,
        }

    def fit(self, cases: Cases, sample_weight: Any = None) -> EMRefit:
        """Run EM from ``base`` and build :attr:`calibration_`."""
        if self.max_iter < 0:
            raise ValueError("max_iter must be >= 0")
        base = self.base
        names = list(base.nodes)
        position = {n: j for j, n in enumerate(names)}
        cards = [base.nodes[n].card for n in names]
        codes = encode_cases(cases, base)
        weights = _weights(sample_weight, codes.shape[0])
        patterns, pweights, first = _patterns(codes, weights, cards)
        learned = self._learned_nodes()
        priors = {n: base.cpt(n) for n in learned}
        conf = {n: self._confidence(n) for n in learned}
        alpha = {n: conf[n] * priors[n] for n in learned}
        families = {n: _family(base, n) for n in learned}
        seen = patterns >= 0
        hidden = [n for n in learned if not seen[:, [position[v] for v in families[n]]].all()]
        fixed_counts = {
            n: _family_counts(
                patterns, [position[v] for v in families[n]], priors[n].shape, pweights
            )
            for n in learned
            if n not in hidden
        }
        net = CompiledNetwork(
            base.variables,
            {n: node.parents for n, node in base.nodes.items()},
            base.cpts(),
            joint_sets=[families[n] for n in hidden],
        )
        evidence = likelihood_arrays(patterns, base)
        total_weight = float(pweights.sum())

        def log_prior(tables: Mapping[str, np.ndarray]) -> float:
            out = 0.0
            for n in learned:
                a = alpha[n]
                mask = a > 0
                out += float((a[mask] * np.log(np.maximum(tables[n][mask], 1e-300))).sum())
            return out

        def e_step(tables: Mapping[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
            if patterns.shape[0] == 0:
                return 0.0, {n: np.zeros_like(priors[n]) for n in learned}
            res = net.query(evidence, overrides=tables, raise_on_impossible=False)
            p_e = res.evidence_probability
            bad = ~(p_e > 0) | ~np.isfinite(p_e)
            if bad.any():
                raise ImpossibleEvidenceError(
                    sorted(first[bad].tolist()),
                    "a table of the current calibration gives these cases probability zero; "
                    "EM cannot learn from them (remove them or raise the zeros)",
                )
            ll = float(pweights @ np.log(p_e))
            counts = dict(fixed_counts)
            for n in hidden:
                counts[n] = np.tensordot(pweights, res.joints[families[n]], axes=(0, 0))
            return ll, counts

        def m_step(counts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {n: _posterior_mean(priors[n], conf[n], counts[n]) for n in learned}

        def evaluate(tables: dict[str, np.ndarray]) -> _Iterate:
            ll, counts = e_step(tables)
            return _Iterate(tables, ll, ll + log_prior(tables), counts)

        scale = max(total_weight, 1.0)
        current = evaluate(dict(priors))
        history = [current]
        converged = False
        n_iter = 0
        while n_iter < self.max_iter:
            # one plain EM step: its gain is the convergence test, and its result the
            # fallback that keeps every accepted iterate at least as good as the last
            step = evaluate(m_step(current.counts))
            n_iter += 1
            if (step.objective - current.objective) / scale < self.tol:
                current = step
                converged = True
                history.append(current)
                break
            if not self.accelerate or n_iter + 2 > self.max_iter:
                current = step
                history.append(current)
                continue
            # SQUAREM (Varadhan & Roland 2008, scheme S3): extrapolate along the first and
            # second differences of two EM steps, then stabilise with one more EM step
            second = m_step(step.counts)
            n_iter += 1
            jump = _extrapolate(current.tables, step.tables, second, hidden)
            stabilised = evaluate(m_step(e_step(jump)[1]) if jump is not second else second)
            if jump is not second:
                n_iter += 1
            current = stabilised if stabilised.objective >= step.objective else step
            history.append(current)
        tables, counts = current.tables, current.counts
        self.counts_ = counts
        self.column_confidence_ = {n: conf[n] + counts[n].sum(axis=-1) for n in learned}
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.history_ = tuple(it.log_likelihood for it in history)
        self.objective_history_ = tuple(it.objective for it in history)
        self.log_likelihood_ = current.log_likelihood
        self.hidden_families_ = tuple(families[n] for n in hidden)
        # without a single case nothing was learned: hand back ``base`` in its own form
        self.learned_ = tuple(learned) if n_iter and total_weight > 0 else ()
        self.n_cases_ = int(codes.shape[0])
        self.n_patterns_ = int(patterns.shape[0])
        self.calibration_ = self._result(tables) if self.learned_ else base
        return self


# ---------------------------------------------------------------------------------------------
# what moved
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MovedParameter:
    """One probability before and after a refit: P(``node`` = ``state`` | ``column``)."""

    node: str
    column: str
    state: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        """``after - before``."""
        return self.after - self.before

    def __str__(self) -> str:
        where = f"[{self.column}]" if self.column else ""
        return (
            f"{self.node}{where} {self.state}: {self.before:.3f} -> {self.after:.3f} "
            f"({self.delta:+.3f})"
        )


def moved_parameters(
    before: Calibration, after: Calibration, top: int | None = 10
) -> list[MovedParameter]:
    """The ``top`` parameters that moved most from ``before`` to ``after``, largest first.

    ``column`` is the TOML column key (parents' states joined by commas, ``""`` for a root).
    Both calibrations must share nodes; see :func:`calibration.diff.diff_calibrations` for
    the full comparison, structural differences included.
    """
    return [
        MovedParameter(c.node, c.column, c.state, c.a, c.b)
        for c in diff_calibrations(before, after).largest(top)
    ]
