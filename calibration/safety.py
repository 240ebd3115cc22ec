"""The red-flag screen may not be weakened by a recalibration.

Warning signs and rules are fixed rules, not numbers. A new calibration must keep every
warning sign of the one it replaces at the same or a stricter level, and every rule must
still fire — at the same or a stricter level — in every case where it fired before. A rule
may be rewritten or broadened (a rule that needs fewer conditions covers the old one); it
may not be dropped, narrowed or lowered.
"""

from __future__ import annotations

from calibration.schema import FLAG_LEVELS, Calibration, EvidenceRule, RedFlag

_RANK = {level: i for i, level in enumerate(FLAG_LEVELS)}


def _covers(new: EvidenceRule, old: EvidenceRule) -> bool:
    """True when ``new`` fires in every case where ``old`` fires."""
    if not set(new.flags) <= set(old.flags):
        return False
    return all(node in old.when and set(old.when[node]) <= set(states)
               for node, states in new.when.items())


def _still_fires(old: EvidenceRule, after: Calibration, flags: dict[str, RedFlag]) -> bool:
    rank = _RANK[old.level]
    if any(_covers(new, old) and _RANK[new.level] >= rank for new in after.evidence_rules):
        return True
    # a warning sign that now fires on its own at this level covers every rule that needs it
    return any(f in flags and _RANK[flags[f].level] >= rank for f in old.flags)


def weakened_screen(before: Calibration, after: Calibration) -> list[str]:
    """Every warning sign or rule of ``before`` that ``after`` drops, narrows or softens."""
    problems = []
    new_flags = {f.id: f for f in after.red_flags}
    for flag in before.red_flags:
        new = new_flags.get(flag.id)
        if new is None:
            problems.append(f"warning sign {flag.id!r} ({flag.level}) is missing")
        elif _RANK[new.level] < _RANK[flag.level]:
            problems.append(f"warning sign {flag.id!r} drops from {flag.level} to {new.level}")
    new_ids = {r.id for r in after.evidence_rules}
    for rule in before.evidence_rules:
        if _still_fires(rule, after, new_flags):
            continue
        if rule.id not in new_ids:
            problems.append(f"evidence rule {rule.id!r} ({rule.level}) is missing")
        else:
            problems.append(f"evidence rule {rule.id!r} changed: it would no longer fire "
                            f"at {rule.level} in every case it did (narrowed or lowered)")
    return problems
