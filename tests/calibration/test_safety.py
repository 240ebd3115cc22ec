"""The red-flag screen may be rewritten or broadened by a recalibration, never weakened."""

from __future__ import annotations

from dataclasses import replace

from calibration.loader import load_calibration
from calibration.safety import weakened_screen

SHIPPED = load_calibration()


def rules(**changes):
    return tuple(replace(r, **changes.get(r.id, {})) if isinstance(changes.get(r.id), dict)
                 else r for r in SHIPPED.evidence_rules if changes.get(r.id) is not False)


def test_the_same_screen_is_not_weakened():
    assert weakened_screen(SHIPPED, SHIPPED) == []


def test_a_broader_rule_may_replace_a_narrower_one():
    """'sharp pain during the lift' is covered by 'sharp pain' on its own."""
    after = replace(SHIPPED, evidence_rules=rules(sharp_pain_during_lift=False))
    assert weakened_screen(SHIPPED, after) == []


def test_narrowing_lowering_or_dropping_a_rule_is_weakening():
    narrow = replace(SHIPPED, evidence_rules=rules(
        lasting_over_a_week={"when": {"soreness_duration": ("over_7_days",),
                                      "pain_character": ("sharp_localised",)}}))
    assert any("lasting_over_a_week" in w and "narrowed" in w
               for w in weakened_screen(SHIPPED, narrow))
    lower = replace(SHIPPED, evidence_rules=rules(older_after_a_fall={"level": "amber"}))
    assert any("older_after_a_fall" in w for w in weakened_screen(SHIPPED, lower))
    gone = replace(SHIPPED, evidence_rules=rules(worsening_across_sessions=False))
    assert any("worsening_across_sessions" in w and "missing" in w
               for w in weakened_screen(SHIPPED, gone))


def test_a_sign_may_not_drop_a_level_but_a_rule_needing_it_is_covered_if_it_rises():
    softer = replace(SHIPPED, red_flags=tuple(
        replace(f, level="context") if f.id == "minor_fall" else f for f in SHIPPED.red_flags))
    assert any("minor_fall" in w and "drops from amber to context" in w
               for w in weakened_screen(SHIPPED, softer))
    stricter = replace(SHIPPED, red_flags=tuple(
        replace(f, level="red") if f.id == "minor_fall" else f for f in SHIPPED.red_flags),
        evidence_rules=rules(older_after_a_fall=False))
    assert weakened_screen(SHIPPED, stricter) == []  # the sign alone now fires red
