"""The red-flag screen may not be weakened by a recalibration.

Red flags and evidence rules are fixed rules, not numbers: a new calibration version must
keep every rule of the version it replaces, at the same or a stricter level.
"""

from __future__ import annotations

from calibration.schema import Calibration

_RANK = {"amber": 1, "red": 2}


def weakened_screen(before: Calibration, after: Calibration) -> list[str]:
    """Every red flag or evidence rule of ``before`` that ``after`` drops or softens."""
    problems = []
    new_flags = {f.id: f for f in after.red_flags}
    for flag in before.red_flags:
        if flag.id not in new_flags:
            problems.append(f"warning sign {flag.id!r} ({flag.level}) is missing")
        elif _RANK[new_flags[flag.id].level] < _RANK[flag.level]:
            problems.append(f"warning sign {flag.id!r} drops from {flag.level} to amber")
    new_rules = {r.id: r for r in after.evidence_rules}
    for rule in before.evidence_rules:
        new = new_rules.get(rule.id)
        if new is None:
            problems.append(f"evidence rule {rule.id!r} ({rule.level}) is missing")
        elif _RANK.get(new.level, 0) < _RANK.get(rule.level, 0) or new.when != rule.when:
            problems.append(f"evidence rule {rule.id!r} changed (level or conditions)")
    return problems
