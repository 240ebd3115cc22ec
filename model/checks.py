"""Behaviour checks: the orderings every calibration of a domain must keep."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.batching import one_hot, stack_rows

if TYPE_CHECKING:
    from model.network_model import Model


@dataclass(frozen=True)
class CheckResult:
    id: str
    description: str
    passed: bool
    values: tuple[float, ...]

    def __str__(self) -> str:
        shown = " > ".join(f"{v:.3f}" for v in self.values)
        return f"{'PASS' if self.passed else 'FAIL'} {self.id}: {shown} — {self.description}"


def run_checks(model: Model) -> tuple[CheckResult, ...]:
    """Evaluate every behaviour check of the model's calibration in one batched query."""
    checks = model.calibration.checks
    rows, where = [], []
    for check in checks:
        for item in check.items:
            rows.append(
                {
                    n: one_hot(model.cards[n], model.variables[n].index(s))
                    for n, s in item.evidence.items()
                }
            )
            where.append(item.target)
    if not rows:
        return ()
    res = model.backend.query(stack_rows(rows, model.cards), raise_on_impossible=False)
    values = [
        float(res.marginals[n][i, model.variables[n].index(s)]) for i, (n, s) in enumerate(where)
    ]
    out, k = [], 0
    for check in checks:
        vals = tuple(values[k : k + len(check.items)])
        k += len(check.items)
        passed = all(a > b + check.margin for a, b in itertools.pairwise(vals))
        out.append(CheckResult(check.id, check.description, passed, vals))
    return tuple(out)


def failed_checks(model: Model) -> list[CheckResult]:
    return [r for r in run_checks(model) if not r.passed]
