"""Behaviour checks: the orderings every calibration of a domain must keep."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.inference.batching import one_hot, stack_rows

if TYPE_CHECKING:
    from model.analysis.network import CalibratedNetwork


@dataclass(frozen=True)
class CheckResult:
    id: str
    description: str
    passed: bool
    values: tuple[float, ...]

    def __str__(self) -> str:
        shown = " > ".join(f"{v:.3f}" for v in self.values)
        return f"{'PASS' if self.passed else 'FAIL'} {self.id}: {shown} — {self.description}"


def run_checks(net: CalibratedNetwork) -> tuple[CheckResult, ...]:
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

