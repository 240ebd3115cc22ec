"""Behaviour checks and refits: how far a failing check falls short, how sure the cases make
us that it really fails, which cases pull it, and a refit that keeps the experts' orderings
where the cases are too few to overturn them.

The behaviour checks are part of what the experts know — qualitative orderings that hold
across experts even where their numbers differ (van der Gaag et al.) — so a refit treats them
as part of the prior. After the ordinary refit (the Dirichlet posterior of every column):

1. every check is evaluated; one that passes needs nothing;
2. for a check that fails, its **posterior probability of failing** is estimated from
   parameter draws of the refit's posterior (:meth:`EMRefit.posterior_draws`);
3. when that probability is below :data:`CREDIBLE` (95 %), the cases do not credibly
   contradict the ordering: the refit is **held back** — the nodes that drive the failure
   are refitted from their counts times the largest data weight ``t`` ∈ [0, 1] at which every
   check holds (``t = 0`` is the experts' numbers), found by bisection. The nodes, ``t`` and
   the check are reported;
4. when it is 95 % or more, the cases contradict the check: the refit is left as the cases
   say, the check fails, and the save policy refuses it, saying which check, by how much,
   how sure, and which cases pull it (their first-order influence: how much the check's
   margin would rise if the case were left out).

Everything is batched through the compiled engine: the draws, the node-by-node reverts and
the finite-difference gradients each take one query per check item.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from calibration.schema import BehaviourCheck, Calibration
from model.analysis.checks import CheckEvaluator
from model.inference.batching import one_hot
from model.inference.engine import CompiledNetwork
from model.learning.refit import Cases, DirichletRefit, EMRefit, encode_cases, likelihood_arrays

Fitted = DirichletRefit | EMRefit

__all__ = [
    "CREDIBLE",
    "CasePull",
    "CheckEvaluator",
    "CheckFailure",
    "HeldBack",
    "Shortfall",
    "keep_orderings",
    "shortfall",
]

#: Posterior probability of failing from which the cases are taken to contradict a check.
CREDIBLE = 0.95
#: Parameter draws used to estimate that probability.
DRAWS = 200
#: Margin a held-back refit keeps above a check's threshold (probability points / 100).
SAFETY = 1e-3
_EPS = 1e-4


# ---------------------------------------------------------------------------------------------
# what a failure is
# ---------------------------------------------------------------------------------------------


def _item_text(check: BehaviourCheck, i: int) -> str:
    item = check.items[i]
    node, state = item.target
    given = ", ".join(f"{k}={v}" for k, v in item.evidence.items()) or "nothing known"
    return f"P({node}={state} | {given})"


@dataclass(frozen=True)
class Shortfall:
    """The first pair of a check's items that is out of order, and by how much."""

    check: str
    description: str
    higher: str  # the item that should be higher, e.g. "P(other_cause=yes | ...)"
    lower: str
    a: float  # its value
    b: float  # the value it should exceed
    margin: float

    @property
    def amount(self) -> float:
        """How far ``a`` falls short of ``b + margin`` (probability, > 0 when failing)."""
        return self.b + self.margin - self.a

    def __str__(self) -> str:
        need = f" by at least {100 * self.margin:.1f} points" if self.margin else ""
        return (f"{self.check}: {self.higher} = {100 * self.a:.1f} % should be above "
                f"{self.lower} = {100 * self.b:.1f} %{need}; short by "
                f"{100 * self.amount:.1f} points ({self.description})")


def shortfall(check: BehaviourCheck, values: Sequence[float]) -> Shortfall | None:
    """The worst out-of-order pair of ``check`` given its item values, or ``None``."""
    worst: Shortfall | None = None
    for i, (a, b) in enumerate(itertools.pairwise(values)):
        if a > b + check.margin:
            continue
        s = Shortfall(check.id, check.description, _item_text(check, i),
                      _item_text(check, i + 1), float(a), float(b), check.margin)
        if worst is None or s.amount > worst.amount:
            worst = s
    return worst


@dataclass(frozen=True)
class CasePull:
    """Cases (identical answers) that pull a check towards failing: leaving one out would
    raise the check's margin by ``effect`` (first-order estimate)."""

    rows: tuple[int, ...]  # positions in the cases given to the refit
    effect: float
    answers: str  # the case's values on the nodes that matter, e.g. "trend=worsening, ..."


@dataclass(frozen=True)
class CheckFailure:
    """A behaviour check the cases contradict: how far, how sure, and which cases."""

    shortfall: Shortfall
    p_fail: float
    pulls: tuple[CasePull, ...] = ()

    def lines(self, label_rows: Mapping[int, str] | None = None) -> list[str]:
        """The explanation, one line each; ``label_rows`` names cases (e.g. store ids)."""
        out = [f"{self.shortfall}; the cases make a failure {100 * self.p_fail:.0f} % "
               "likely"]
        for pull in self.pulls:
            names = [label_rows.get(r, f"row {r}") if label_rows else f"case {r + 1}"
                     for r in pull.rows[:5]]
            more = f" and {len(pull.rows) - 5} more like it" if len(pull.rows) > 5 else ""
            same = f" ({len(pull.rows)} identical)" if len(pull.rows) > 1 else ""
            out.append(f"pulled by {', '.join(names)}{more}{same} [{pull.answers}]: leaving "
                       f"one out would raise the margin by {100 * pull.effect:.2f} points")
        return out


@dataclass(frozen=True)
class HeldBack:
    """Nodes whose data weight was lowered so that checks the cases do not credibly
    contradict still hold."""

    nodes: tuple[str, ...]
    weight: float
    checks: tuple[str, ...]
    p_fail: Mapping[str, float]

    def __str__(self) -> str:
        probs = ", ".join(f"{c} {100 * self.p_fail[c]:.0f} %" for c in self.checks)
        return (f"{', '.join(self.nodes)} refitted with {100 * self.weight:.0f} % of the "
                f"cases' weight, so that {', '.join(self.checks)} still hold(s): the cases "
                f"lean against them, but not beyond the {100 * CREDIBLE:.0f} % needed to "
                f"overturn an expert ordering (chance they really fail: {probs})")


# ---------------------------------------------------------------------------------------------
# the refit that keeps the orderings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What :func:`keep_orderings` did: the calibration to use, what it held back, and the
    checks the cases contradict (with their explanation)."""

    calibration: Calibration
    held_back: HeldBack | None
    failures: tuple[CheckFailure, ...]
    base_failures: tuple[str, ...]  # checks the base itself fails (not the cases' doing)


def _tables(cal: Calibration, nodes: Sequence[str]) -> dict[str, np.ndarray]:
    return {n: cal.cpt(n) for n in nodes}


def keep_orderings(fitted: Fitted, cases: Cases, *, credible: float = CREDIBLE, draws: int = DRAWS,
                   seed: int = 0, pulls: int = 5) -> Outcome:
    """Apply the module's rule to a fitted estimator (:class:`DirichletRefit` or
    :class:`EMRefit`, after ``fit(cases)``)."""
    base: Calibration = fitted.base
    fit_cal: Calibration = fitted.calibration_
    if not base.checks:
        return Outcome(fit_cal, None, (), ())
    learned = [n for n in base.nodes if n in fitted.params_]
    evaluator = CheckEvaluator(base)
    base_gaps = evaluator.gaps(evaluator.values())[0]
    fit_values = evaluator.values(_tables(fit_cal, learned))
    fit_gaps = evaluator.gaps(fit_values)[0]
    base_failures = tuple(c.id for c, g in zip(evaluator.checks, base_gaps, strict=True)
                          if not g > 0)
    failing = [j for j, g in enumerate(fit_gaps) if not g > 0 and base_gaps[j] > 0]
    if not failing or not learned:
        return Outcome(fit_cal, None, (), base_failures)

    sample = fitted.posterior_draws(draws, seed=seed, nodes=learned)
    draw_gaps = evaluator.gaps(evaluator.values(sample, batch=draws))
    p_fail = {j: float(np.mean(~(draw_gaps[:, j] > 0))) for j in failing}
    soft = [j for j in failing if p_fail[j] < credible]
    hard = [j for j in failing if p_fail[j] >= credible]

    cal = fit_cal
    held: HeldBack | None = None
    if soft:
        cal, held = _hold_back(fitted, evaluator, learned, soft, base_gaps, fit_gaps, p_fail)
    failures = []
    final_values = evaluator.values(_tables(cal, learned))[0]
    for j in hard:
        check = evaluator.checks[j]
        sf = shortfall(check, evaluator.item_values(final_values[None, :], j)[0])
        if sf is None:  # pragma: no cover - holding back other checks repaired this one
            continue
        found = _pulls(fitted, cal, evaluator, j, cases, learned, pulls)
        failures.append(CheckFailure(sf, p_fail[j], found))
    return Outcome(cal, held, tuple(failures), base_failures)


def _hold_back(fitted: Fitted, evaluator: CheckEvaluator, learned: list[str], soft: list[int],
               base_gaps: np.ndarray, fit_gaps: np.ndarray, p_fail: Mapping[int, float]
               ) -> tuple[Calibration, HeldBack]:
    base = fitted.base
    fit_cal = fitted.calibration_
    # which nodes drive the failures: revert one node at a time to the experts' numbers
    fit_t = _tables(fit_cal, learned)
    stacked = {n: np.repeat(fit_t[n][None], len(learned), axis=0) for n in learned}
    for m, n in enumerate(learned):
        stacked[n][m] = base.cpt(n)
    reverted = evaluator.gaps(evaluator.values(stacked, batch=len(learned)))
    gain = (reverted[:, soft] - fit_gaps[soft]).max(axis=1)
    culprits = [n for n, g in sorted(zip(learned, gain, strict=True), key=lambda x: -x[1])
                if g > 1e-9]
    must_hold = [j for j, g in enumerate(base_gaps) if g > 0]
    target = {j: min(SAFETY, base_gaps[j] / 2) for j in must_hold}

    def holds(nodes: Sequence[str], t: float) -> tuple[bool, Calibration]:
        cal = fitted.reweighted(dict.fromkeys(nodes, t))
        gaps = evaluator.gaps(evaluator.values(_tables(cal, learned)))[0]
        # the checks being repaired get a small safety margin; the others must still hold
        ok = all(gaps[j] >= target[j] for j in soft) and all(
            gaps[j] > 0 for j in must_hold if j not in soft and fit_gaps[j] > 0)
        return ok, cal

    # the fewest nodes, most influential first, whose experts' numbers restore the orderings
    nodes: list[str] = list(learned)
    cal = fitted.reweighted(dict.fromkeys(learned, 0.0))
    for k in range(1, len(culprits) + 1):
        ok, cal_k = holds(culprits[:k], 0.0)
        if ok:
            nodes, cal = culprits[:k], cal_k
            break
    lo, best = 0.0, cal
    hi = 1.0
    for _ in range(14):
        mid = (lo + hi) / 2
        ok_mid, cal_mid = holds(nodes, mid)
        if ok_mid:
            lo, best = mid, cal_mid
        else:
            hi = mid
    checks = tuple(evaluator.checks[j].id for j in soft)
    held = HeldBack(tuple(nodes), lo, checks,
                    {evaluator.checks[j].id: p_fail[j] for j in soft})
    return best, held


# ---------------------------------------------------------------------------------------------
# which cases pull a check
# ---------------------------------------------------------------------------------------------


def _pulls(fitted: Fitted, cal: Calibration, evaluator: CheckEvaluator, j: int, cases: Cases,
           learned: list[str], top: int) -> tuple[CasePull, ...]:
    """First-order influence of leaving one case out on the failing pair of check ``j``.

    The gradient of the pair's margin with respect to every table entry of every learned
    node comes from finite differences (one batched query per item); a case's effect on a
    column is that of removing its (expected) counts from a Dirichlet column whose weight is
    the column's confidence after the fit.
    """
    values = evaluator.item_values(evaluator.values(_tables(cal, learned)), j)[0]
    pair = int(np.argmin(values[:-1] - values[1:]))
    tables = _tables(cal, learned)
    # one perturbation per (node, column, state): move eps of the column towards that state
    rows: list[tuple[str, tuple[int, ...], int]] = []
    for n in learned:
        t = tables[n]
        for col in itertools.product(*(range(s) for s in t.shape[:-1])):
            for y in range(t.shape[-1]):
                rows.append((n, col, y))
    batch = len(rows)
    stacked = {n: np.repeat(tables[n][None], batch, axis=0) for n in learned}
    for r, (n, col, y) in enumerate(rows):
        column = stacked[n][(r, *col)]
        stacked[n][(r, *col)] = column + _EPS * (one_hot(column.size, y) - column)
    base_gap = evaluator.pair_gap(evaluator.values(tables), j, pair)[0]
    moved = evaluator.pair_gap(evaluator.values(stacked, batch=batch), j, pair)
    grad = {n: np.zeros(tables[n].shape) for n in learned}
    for r, (n, col, y) in enumerate(rows):
        grad[n][(*col, y)] = (moved[r] - base_gap) / _EPS
    active = [n for n in learned if np.abs(grad[n]).max() > 1e-9]
    if not active:
        return ()
    base = fitted.base
    codes = encode_cases(cases, base)
    if codes.shape[0] == 0:
        return ()
    keys, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    families = {n: (*base.nodes[n].parents, n) for n in active}
    net = CompiledNetwork(base.variables, {n: node.parents for n, node in base.nodes.items()},
                          cal.cpts(), joint_sets=list(families.values()))
    res = net.query(likelihood_arrays(keys, base), raise_on_impossible=False)
    contribution = np.zeros((keys.shape[0], len(active)))
    for a, n in enumerate(active):
        joint = np.nan_to_num(res.joints[families[n]])  # (P, *parent_cards, card)
        weight = _column_weight(fitted, n)  # (*parent_cards,)
        per_col = joint.sum(axis=-1)
        denom = np.maximum(weight[None] - per_col, 1e-9)
        # removing one case: Δθ_x = -Σ_y c_xy (e_y - θ_x) / (W_x - s_x), so the pair's
        # margin moves by -Σ_xy c_xy·grad_xy / (W_x - s_x)
        change = -(joint * grad[n][None]).sum(axis=-1) / denom
        contribution[:, a] = change.reshape(keys.shape[0], -1).sum(axis=1)
    effect = contribution.sum(axis=1)
    order = np.argsort(-effect)
    names = list(base.nodes)
    out = []
    for p in order[:top]:
        if not effect[p] > 1e-6:
            break
        rows_p = tuple(int(i) for i in np.flatnonzero(inverse == p))
        # the answers behind the families that make most of this case's pull
        main = [n for a, n in enumerate(active) if contribution[p, a] >= 0.25 * effect[p]]
        relevant = sorted({v for n in main for v in families[n]}, key=names.index)
        answers = ", ".join(f"{v}={base.nodes[v].states[keys[p, names.index(v)]]}"
                            for v in relevant if keys[p, names.index(v)] >= 0)
        out.append(CasePull(rows_p, float(effect[p]), answers or "no relevant answers"))
    return tuple(out)


def _column_weight(fitted: Fitted, name: str) -> np.ndarray:
    """Each column's confidence after the fit (prior + cases), as an array over columns."""
    counts = fitted.counts_[name]
    return fitted.base.column_confidences(name) + counts.sum(axis=-1)
