"""Red-flag screening: fixed rules that run before the network and are never averaged away."""

from __future__ import annotations

from collections.abc import Mapping

from calibration.schema import Calibration
from model.errors import EvidenceError, quote
from model.inference.evidence import is_unknown
from model.results import Triage

_RANK = {"none": 0, "amber": 1, "red": 2}


def check_flags(flags: Mapping[str, object] | None, calibration: Calibration) -> dict[str, bool]:
    """Validate flag answers; unknown ids raise :class:`EvidenceError` listing valid ids."""
    known = {f.id for f in calibration.red_flags}
    out: dict[str, bool] = {}
    if flags is not None and not isinstance(flags, Mapping):
        raise EvidenceError(f"flags must map warning-sign ids to True/False, not "
                            f"{type(flags).__name__}")
    for fid, value in (flags or {}).items():
        if fid not in known:
            raise EvidenceError(
                f"unknown warning-sign id {quote(fid)}; valid ids are: {', '.join(sorted(known))}"
            )
        if is_unknown(value):  # None / NaN / pd.NA: not answered, like an unticked box
            continue
        if not isinstance(value, bool):
            raise EvidenceError(f"warning sign {fid!r} must be answered True or False (or None "
                                f"for not answered), not {quote(value, 40)}")
        out[fid] = value
    return out


def screen(
    evidence: Mapping[str, str], flags: Mapping[str, bool], calibration: Calibration
) -> Triage:
    """Apply the warning-sign answers and the rules; the highest level wins.

    A sign answered yes fires at its level (a ``context`` sign never fires alone); a rule
    fires when all its signs are answered yes and all its ``when`` answers hold. Signs with no
    answer are listed in ``unanswered``: a missing answer is never taken for a "no".
    """
    level = "none"
    reasons: list[str] = []
    fired: list[str] = []
    for flag in calibration.red_flags:
        if flags.get(flag.id) and flag.level in _RANK:
            fired.append(flag.id)
            reasons.append(flag.message or flag.question)
            level = max(level, flag.level, key=_RANK.__getitem__)
    for rule in calibration.evidence_rules:
        if all(flags.get(f) for f in rule.flags) and all(
                evidence.get(node) in states for node, states in rule.when.items()):
            fired.append(rule.id)
            reasons.append(rule.reason)
            level = max(level, rule.level, key=_RANK.__getitem__)
    message = {"red": calibration.messages.red, "amber": calibration.messages.amber}.get(level, "")
    unanswered = tuple(f.id for f in calibration.red_flags if f.id not in flags)
    if not message and unanswered:
        message = (f"{calibration.messages.unanswered} ({len(unanswered)} of "
                   f"{len(calibration.red_flags)} warning-sign questions have no answer.)")
    return Triage(level=level, reasons=tuple(reasons), fired=tuple(fired), message=message,
                  unanswered=unanswered)
