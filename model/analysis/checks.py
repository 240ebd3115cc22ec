"""Behaviour checks: the orderings every calibration of a domain must keep, and the decision
checks: what the forecast and the fixes must do for given answers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.inference.batching import one_hot, stack_rows

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
    checks = net.calibration.checks
    rows, where = [], []
    for check in checks:
        for item in check.items:
            rows.append(
                {
                    n: one_hot(net.cards[n], net.variables[n].index(s))
                    for n, s in item.evidence.items()
                }
            )
            where.append(item.target)
    if not rows:
        return ()
    res = net.backend.query(stack_rows(rows, net.cards), raise_on_impossible=False)
    values = [
        float(res.marginals[n][i, net.variables[n].index(s)]) for i, (n, s) in enumerate(where)
    ]
    out, k = [], 0
    for check in checks:
        vals = tuple(values[k : k + len(check.items)])
        k += len(check.items)
        passed = all(a > b + check.margin for a, b in itertools.pairwise(vals))
        out.append(CheckResult(check.id, check.description, passed, vals))
    return tuple(out)

