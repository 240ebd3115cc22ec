"""model.text.report: link parsing round trips and the words around the numbers."""

from __future__ import annotations

import pytest

import model
from model.results import Interval
from model.text import report
from model.text.safe import plain

M = model.load_model()
CAL = M.calibration


def test_link_round_trip():
    evidence = {"bracing_loss": "often", "training_age": "novice"}
    params = report.link_params(evidence, {"pain_7_or_more", "saddle_numbness"}, CAL)
    assert list(params) == ["training_age", "bracing_loss", "flags"]  # calibration order
    assert params["flags"] == "saddle_numbness,pain_7_or_more"  # screen order
    back = report.parse_link(params, CAL)
    assert back.evidence == evidence
    assert back.flags == {"pain_7_or_more", "saddle_numbness"}
    assert back.notices == ()


def test_bad_link_parts_are_counted_never_repeated():
    parsed = report.parse_link(
        {"training_age": "expert", "nope": "1", "onset": ["same_day", "during_lift"],
         "flags": ["fever_or_unwell,,bogus"], "max_attempt": "not_sure"},
        CAL,
    )
    assert parsed.evidence == {"onset": "during_lift"}  # last value of a repeated key wins
    assert parsed.flags == {"fever_or_unwell"}
    assert len(parsed.notices) == 1  # one bounded notice: three parts counted
    assert parsed.notices[0].startswith("3 parts of the link could not be used")
    text = " ".join(parsed.notices)
    assert "Training age" in text  # the calibration's own title names the question
    for echoed in ("expert", "nope", "bogus"):
        assert echoed not in text


def test_percent_and_interval_words():
    assert report.percent(0.001) == "<1 %"
    assert report.percent(0.9999) == ">99 %"
    assert report.percent(0.725) == "73 %"
    assert report.interval_text(Interval(0.12, 0.345)) == "90 % interval: 12–35 %"
    assert report.interval_text(Interval(float("nan"), 0.3)) == ""


@pytest.mark.parametrize(
    ("log_odds", "word"),
    [(0.1, "slightly raises"), (-0.3, "somewhat lowers"), (0.7, "clearly raises"),
     (-2.0, "strongly lowers")],
)
def test_push_words(log_odds, word):
    assert report.push_word(log_odds) == word


def test_report_is_plain_markdown_with_every_section():
    d = M.diagnose({"training_age": "first_sessions", "low_back_soreness": "mild"},
                   dict.fromkeys(M.warning_signs, False))
    text = report.build_report(CAL, d, link="http://x/?training_age=first_sessions")
    for heading in ("# knowpain summary", "## Warning signs", "## Your answers",
                    "## Likely explanations", "### Why", "## Worth asking next",
                    "## What to do", "### What to change, most helpful first"):
        assert heading in text
    assert plain(d.best_guess) in text and "Next session, if nothing changes" in text
    assert "None of the warning signs apply" in text
    assert "bits" not in text  # plain words for lifters
    assert text.rstrip().endswith(plain(CAL.messages.disclaimer).rstrip())


def test_report_without_answered_warning_signs_has_no_estimates():
    d = M.diagnose({"training_age": "first_sessions", "low_back_soreness": "mild"})
    text = report.build_report(CAL, d)
    assert "## Warning signs not answered" in text and "## Likely explanations" not in text
    assert f"{len(CAL.red_flags)} of {len(CAL.red_flags)} warning-sign questions" in text
    assert "%" not in text.split("## Your answers")[1].split("---")[0]
