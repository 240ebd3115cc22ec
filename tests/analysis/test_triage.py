"""Red flags first: fixed rules that no network evidence can average away."""

from __future__ import annotations

import pytest

import model

RED = [
    "bladder_bowel_change", "saddle_numbness", "new_sexual_dysfunction", "both_legs_symptoms",
    "progressive_leg_weakness", "major_trauma", "osteoporosis", "long_term_steroids",
    "fever_or_unwell", "immune_suppression", "injected_drugs",
    "recent_infection_or_spine_procedure", "sudden_severe_pain_faint", "history_of_cancer",
    "unexplained_weight_loss", "constant_night_pain", "not_improving_4_weeks",
]
AMBER = ["minor_fall", "radiating_leg_symptoms", "one_leg_weakness", "sudden_pop_or_sharp_pain",
         "pain_7_or_more", "inflammatory_pattern", "young_extension_pain", "cannot_walk_normally"]
CONTEXT = ["age_over_50"]
REASSURING = {
    "training_age": "first_sessions", "onset": "next_day", "pain_character": "dull_diffuse",
    "soreness_duration": "under_3_days", "trend_across_sessions": "easing",
    "low_back_soreness": "mild",
}


def test_flag_ids_match_the_contract(default_model):
    ids = {f.id: f.level for f in default_model.calibration.red_flags}
    assert ids == {**dict.fromkeys(RED, "red"), **dict.fromkeys(AMBER, "amber"),
                   **dict.fromkeys(CONTEXT, "context")}


@pytest.mark.parametrize("flag", RED)
def test_each_red_flag_gives_red_even_with_reassuring_evidence(default_model, flag):
    d = default_model.diagnose(REASSURING, flags={flag: True})
    assert d.triage.level == "red"
    assert d.triage.blocks_results
    assert flag in d.triage.fired and d.triage.message


@pytest.mark.parametrize("flag", AMBER)
def test_each_amber_flag_gives_amber(default_model, flag):
    d = default_model.diagnose(REASSURING, flags={flag: True})
    assert d.triage.level == "amber"


@pytest.mark.parametrize(
    "evidence",
    [
        {"onset": "during_lift", "pain_character": "sharp_localised"},
        {"soreness_duration": "over_7_days"},
        {"trend_across_sessions": "worsening"},
    ],
)
def test_amber_rules_from_network_evidence(default_model, evidence):
    d = default_model.diagnose({"low_back_soreness": "mild", **evidence})
    assert d.triage.level == "amber"


def test_during_lift_alone_is_not_amber(default_model):
    d = default_model.diagnose({"onset": "during_lift", "pain_character": "dull_diffuse"})
    assert d.triage.level == "none"


def test_red_beats_amber_and_flags_answered_no_do_nothing(default_model):
    d = default_model.diagnose(
        {"trend_across_sessions": "worsening"},
        flags={"pain_7_or_more": True, "saddle_numbness": True, "major_trauma": False},
    )
    assert d.triage.level == "red"
    none = default_model.diagnose(REASSURING, flags=dict.fromkeys(RED + AMBER, False))
    assert none.triage.level == "none" and not none.triage.reasons


def test_unknown_flag_lists_valid_ids(default_model):
    with pytest.raises(model.EvidenceError, match="saddle_numbness"):
        default_model.diagnose({}, flags={"back_on_fire": True})


def test_an_unanswered_screen_says_so_in_the_python_result(default_model):
    """Without answers to every warning sign the result itself says that estimates are
    withheld and how many signs are open; answered, the message is empty again."""
    d = default_model.diagnose(REASSURING)
    total = len(default_model.calibration.red_flags)
    assert d.triage.withhold_estimates and len(d.triage.unanswered) == total
    assert d.triage.message.startswith(default_model.calibration.messages.unanswered)
    assert f"({total} of {total} warning-sign questions have no answer.)" in d.triage.message
    part = default_model.diagnose(REASSURING, flags={"saddle_numbness": False})
    assert f"({total - 1} of {total} warning-sign" in part.triage.message
    done = default_model.diagnose(REASSURING, flags=dict.fromkeys(default_model.warning_signs,
                                                                  False))
    assert done.triage.message == "" and not done.triage.withhold_estimates
