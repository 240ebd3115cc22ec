"""Behaviour checks: the orderings every calibration of a domain must keep, and the decision
checks: what the forecast and the fixes must do for given answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from calibration.schema import Calibration
from model.inference.backends import Backend
from model.inference.batching import one_hot
from model.inference.engine import CompiledNetwork

if TYPE_CHECKING:
    from model.analysis.network import CalibratedNetwork


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``values`` are the posteriors that must fall (behaviour checks)
    and ``detail`` says what was found (decision checks)."""

    id: str
    description: str
    passed: bool
    values: tuple[float, ...]
    detail: str = ""

    def __str__(self) -> str:
        shown = self.detail or " > ".join(f"{v:.3f}" for v in self.values)
        return f"{'PASS' if self.passed else 'FAIL'} {self.id}: {shown} — {self.description}"


def run_checks(net: CalibratedNetwork) -> tuple[CheckResult, ...]:
    """Every behaviour check (one batched query), then every decision check."""
    return _behaviour_checks(net) + _decision_checks(net)


def _decision_checks(net: CalibratedNetwork) -> tuple[CheckResult, ...]:
    from model.analysis.decide import plan
    from model.inference.evidence import likelihoods

    out = []
    for check in net.calibration.decision_checks:
        hard = dict(check.evidence)
        steps = plan(net, likelihoods(hard, {}, net.variables), hard, "none", {},
                     intervals=False)
        found, ok = [], True
        fc, fixes = steps.forecast, steps.fixes
        top = fixes[0].target if fixes and not fixes[0].minor else None
        if check.no_fixes:
            ok &= not fixes
            found.append(f"{len(fixes)} fix(es)")
        if check.max_forecast is not None or check.below_now:
            if fc is None:
                ok = False
                found.append("no forecast")
            else:
                found.append(f"next session {fc.next:.3f}, this session {fc.now:.3f}")
                if check.max_forecast is not None:
                    ok &= fc.next < check.max_forecast
                if check.below_now:
                    ok &= fc.next < fc.now
        if check.top_fix is not None or check.not_top_fix is not None:
            found.append(f"top fix {top or 'none'}")
            if check.top_fix is not None:
                ok &= top == check.top_fix
            if check.not_top_fix is not None:
                ok &= top != check.not_top_fix
        out.append(CheckResult(check.id, check.description, bool(ok), (), "; ".join(found)))
    return tuple(out)


def _behaviour_checks(net: CalibratedNetwork) -> tuple[CheckResult, ...]:
    """Evaluate every behaviour check of the model's calibration in one batched query."""
    evaluator = CheckEvaluator(net.calibration, net.backend)
    values = evaluator.values()
    gaps = evaluator.gaps(values)[0]
    return tuple(
        CheckResult(check.id, check.description, bool(gaps[j] > 0),
                    tuple(float(v) for v in evaluator.item_values(values, j)[0]))
        for j, check in enumerate(evaluator.checks)
    )


class CheckEvaluator:
    """A calibration's behaviour checks, evaluated for many sets of tables in one pass.

    This is the one place that says whether a check holds (:meth:`gaps` > 0): the save
    policy (:func:`run_checks`) and the refit that keeps the orderings both use it.
    """

    def __init__(self, cal: Calibration, engine: Backend | CompiledNetwork | None = None
                 ) -> None:
        self.cal = cal
        self.checks = cal.checks
        self.net = engine if engine is not None else CompiledNetwork(
            cal.variables, {n: node.parents for n, node in cal.nodes.items()}, cal.cpts())
        groups: dict[tuple, int] = {}
        targets: list[tuple[int, str, int]] = []  # per item: (group, node, state index)
        for check in self.checks:
            for item in check.items:
                key = tuple(sorted(item.evidence.items()))
                group = groups.setdefault(key, len(groups))
                node, state = item.target
                targets.append((group, node, cal.nodes[node].states.index(state)))
        self.n_items = len(targets)
        self.n_groups = len(groups)
        # one evidence row per distinct evidence set (ones where a node is not observed)
        observed = sorted({n for key in groups for n, _ in key})
        self._evidence = {n: np.ones((self.n_groups, cal.nodes[n].card)) for n in observed}
        for key, g in groups.items():
            for n, s in key:
                self._evidence[n][g] = one_hot(cal.nodes[n].card, cal.nodes[n].states.index(s))
        self._targets = targets

    def values(self, overrides: Mapping[str, np.ndarray] | None = None,
               batch: int | None = None) -> np.ndarray:
        """Item values ``(batch, n_items)`` in one query; ``overrides`` are tables (with a
        leading batch axis when ``batch`` is given)."""
        rows = batch or 1
        groups = self.n_groups
        if not groups:
            return np.empty((rows, 0))
        tables = dict(overrides or {})
        if batch:
            # row m·G + g is draw m with evidence set g
            evidence = {n: np.tile(a, (batch, 1)) for n, a in self._evidence.items()}
            tables = {n: np.repeat(t, groups, axis=0) for n, t in tables.items()}
        else:
            evidence = self._evidence
        if not evidence:  # checks on no evidence at all: one unobserved row per group
            first = next(iter(self.cal.nodes))
            evidence = {first: np.ones((rows * groups, self.cal.nodes[first].card))}
        res = self.net.query(evidence, overrides=tables, raise_on_impossible=False)
        out = np.empty((rows, self.n_items))
        for k, (g, node, idx) in enumerate(self._targets):
            col = res.marginals[node][:, idx]
            out[:, k] = col.reshape(rows, groups)[:, g] if col.size > 1 else col[0]
        return out

    def gaps(self, values: np.ndarray) -> np.ndarray:
        """Per check, the smallest ``a - b - margin`` over its pairs: ``(batch, n_checks)``;
        a check holds where it is > 0 (NaN counts as failing)."""
        out = np.empty((values.shape[0], len(self.checks)))
        k = 0
        for j, check in enumerate(self.checks):
            v = values[:, k : k + len(check.items)]
            k += len(check.items)
            if v.shape[1] < 2:
                out[:, j] = np.inf
                continue
            diff = v[:, :-1] - v[:, 1:] - check.margin
            out[:, j] = np.nan_to_num(diff.min(axis=1), nan=-1.0)
        return out

    def pair_gap(self, values: np.ndarray, check_index: int, pair: int) -> np.ndarray:
        """``a - b - margin`` of one pair of one check, per row."""
        start = sum(len(c.items) for c in self.checks[:check_index])
        check = self.checks[check_index]
        return values[:, start + pair] - values[:, start + pair + 1] - check.margin

    def item_values(self, values: np.ndarray, check_index: int) -> np.ndarray:
        start = sum(len(c.items) for c in self.checks[:check_index])
        return values[:, start : start + len(self.checks[check_index].items)]


