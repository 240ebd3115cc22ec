"""The Assess page under AppTest: questions, results, triage, links and the report."""

from __future__ import annotations

import re

import pytest
from apptest_helpers import PERCENT, assert_ok, cause_percent, shown, start, texts

import model
from app_pages.common import UNKNOWN

M = model.load_model()
CAL = M.calibration
DETAILS = ("onset", "pain_character", "soreness_duration", "trend_across_sessions")


def widget(at, node):
    key = f"ans_{node}"
    found = [w for w in (*at.select_slider, *at.radio) if w.key == key]
    return found[0] if found else None


def answer(at, node, state):
    w = widget(at, node)
    assert w is not None, f"question {node} is not shown"
    w.set_value(state)
    return at.run()


def tick(at, flag_id, value=True):
    at.checkbox(key=f"flag_{flag_id}").set_value(value)
    return at.run()


# ---- renders ------------------------------------------------------------------------------------
def test_assess_renders_with_every_question_not_sure_and_the_disclaimer():
    at = start()
    assert_ok(at)
    asked = [n for n, s in CAL.nodes.items() if s.observable and n not in DETAILS]
    for node in asked:
        w = widget(at, node)
        assert w is not None, node
        assert w.value == UNKNOWN, node
        assert w.label, node
        ordinal = CAL.nodes[node].ordinal
        assert (w in at.select_slider) == ordinal, f"{node}: ordinal ↔ slider"
    assert any(CAL.messages.disclaimer in shown(i.value) for i in at.info)
    # one checkbox per warning sign plus "none of these apply", each with a label
    assert len(at.checkbox) == len(CAL.red_flags) + 1
    assert all(cb.label for cb in at.checkbox)
    assert all(cb.value is False for cb in at.checkbox if cb.key != "flag__none_apply")
    # starting estimates are the priors, each with its word and interval
    for cause in M.causes:
        assert cause_percent(at, cause) == round(M.prior_causes[cause] * 100)
        card = at.get_by_key(f"cause_{cause}")
        assert " — " in card.markdown[0].value  # the verbal anchor
        assert "90\xa0% interval" in card.caption[0].value
        assert "before your answers" in card.caption[0].value


def test_numbers_on_the_page_always_come_with_words():
    """Every probability the model produces is shown with a word from the verbal scale."""
    at = start({"training_age": "first_sessions", "low_back_soreness": "mild"})
    assert_ok(at)
    anchor = re.compile(r"\d+\s% — (\(almost\) certain|probable|expected|fifty-fifty|unlikely|"
                        r"improbable|\(almost\) impossible)")
    model_lines = [m.value for m in at.markdown
                   if m.value.startswith(("**Best guess:**", "Next session"))
                   or "likely answer" in m.value]
    for cause in M.causes:
        card = at.get_by_key(f"cause_{cause}")
        model_lines += [card.markdown[0].value, card.caption[0].value]
        model_lines += [m.value for m in card.markdown[2:]]  # the "why" lines
    for line in map(shown, model_lines):
        assert anchor.search(line), line
    what_ifs = [shown(m.value) for m in at.markdown if m.value.startswith("Fixing this:")]
    assert what_ifs
    for line in what_ifs:
        assert re.search(r"\d+\s% → \d+\s% chance of .* \([a-z() -]+ → [a-z() -]+; "
                         r"(-\d+ points?|under 1 point)", line), line


# ---- direction of the estimates -----------------------------------------------------------------
def test_first_sessions_raise_stabilizer_overload_and_trained_lowers_it():
    at = start()
    before = cause_percent(at, "stabilizer_overload")
    seen = []
    for state in ("first_sessions", "novice", "trained"):
        at = answer(at, "training_age", state)
        assert_ok(at)
        seen.append(cause_percent(at, "stabilizer_overload"))
    assert seen[0] > before > seen[2]
    assert seen == sorted(seen, reverse=True)
    # back to "not sure" restores the starting estimate
    at = answer(at, "training_age", UNKNOWN)
    assert cause_percent(at, "stabilizer_overload") == before


def test_bracing_lost_often_raises_back_as_prime_mover():
    at = start()
    before = cause_percent(at, "wrong_prime_mover")
    seen = []
    for state in ("no", "sometimes", "often"):
        at = answer(at, "bracing_loss", state)
        seen.append(cause_percent(at, "wrong_prime_mover"))
    assert seen[0] < before < seen[2]
    assert seen == sorted(seen)
    best = next(m.value for m in at.markdown if m.value.startswith("**Best guess:**"))
    assert CAL.nodes["wrong_prime_mover"].title.lower() in best


def test_max_attempt_raises_something_else_and_glute_soreness_lowers_prime_mover():
    at = start()
    other = cause_percent(at, "other_cause")
    at = answer(at, "max_attempt", "yes")
    assert cause_percent(at, "other_cause") > other
    wrong = cause_percent(at, "wrong_prime_mover")
    at = answer(at, "glute_soreness", "yes")
    assert cause_percent(at, "wrong_prime_mover") < wrong


def test_why_lists_the_answer_that_pushed_the_cause():
    at = start()
    at = answer(at, "training_age", "first_sessions")
    card = at.get_by_key("cause_stabilizer_overload")
    why = " ".join(shown(m.value) for m in card.markdown)
    assert "↑ Training age: First few sessions" in why
    assert "raises it" in why


def test_fixes_show_what_if_numbers_with_words_and_cues():
    at = start({"bracing_loss": "often", "low_back_soreness": "mild"})
    fix = at.get_by_key("fix_bracing_loss")
    head = fix.markdown[0].value
    assert head.startswith("**1. ")  # bracing is the most helpful fix here
    what_if = shown(fix.markdown[1].value)
    assert re.search(r"\d+\s% → \d+\s% chance of low-back soreness", what_if), what_if
    body = " ".join(shown(m.value) for m in fix.markdown)
    assert "Ribs down" in body
    assert "Drills" in body


def test_worth_asking_next_shows_gains_in_words():
    at = start()
    items = [shown(m.value) for m in at.markdown if "likely answer" in m.value]
    assert len(items) == 3
    assert "Low-back soreness" in items[0]
    assert not any("bits" in t for t in texts(at))  # plain words for lifters


# ---- symptom details ----------------------------------------------------------------------------
def test_symptom_details_only_when_the_back_is_sore():
    at = start()
    assert all(widget(at, n) is None for n in DETAILS)
    at = answer(at, "low_back_soreness", "none")
    assert all(widget(at, n) is None for n in DETAILS)
    at = answer(at, "low_back_soreness", "mild")
    assert all(widget(at, n) is not None for n in DETAILS)
    at = answer(at, "soreness_duration", "3_to_7_days")
    # hiding the details drops them from the evidence (and from the link) ...
    at = answer(at, "low_back_soreness", "none")
    assert "soreness_duration" not in at.query_params
    # ... and showing them again brings the earlier answer back
    at = answer(at, "low_back_soreness", "marked")
    assert widget(at, "soreness_duration").value == "3_to_7_days"
    assert at.query_params["soreness_duration"] == "3_to_7_days"


# ---- warning signs ------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["saddle_numbness", "history_of_cancer"])
def test_a_red_flag_removes_every_percentage(flag):
    at = start({"training_age": "first_sessions", "bracing_loss": "often",
                "low_back_soreness": "mild"})
    assert any(PERCENT.search(t) for t in texts(at))
    at = tick(at, flag)
    assert_ok(at)
    assert at.error, "the routing message is shown"
    assert "Stop and get checked" in at.error[0].value
    shown = texts(at, skip="questions")  # question captions list answers like "up to ~10 %"
    offending = [t for t in shown if PERCENT.search(t)]
    assert not offending, offending
    assert not [t for t in shown if "bits" in t or "chance of" in t]
    for cause in M.causes:
        with pytest.raises(KeyError):
            at.get_by_key(f"cause_{cause}")
    assert at.query_params["flags"] == flag
    # unticking brings the estimates back
    at = tick(at, flag, False)
    assert cause_percent(at, "stabilizer_overload") > 0


def test_amber_flag_shows_the_banner_above_results_marked_less_reliable():
    at = start({"training_age": "novice", "low_back_soreness": "mild"})
    at = tick(at, "pain_7_or_more")
    assert_ok(at)
    assert at.warning, "amber banner"
    assert "before your next heavy session" in at.warning[0].value
    assert any("Less reliable" in m.value for m in at.markdown)
    assert cause_percent(at, "stabilizer_overload") > 0  # results still shown
    results = at.get_by_key("results")
    assert results.warning[0].value == at.warning[0].value  # banner sits in the results
    # assessment advice instead of training fixes, and no "most likely: a training cause"
    assert at.get_by_key("advice_assess_first")
    assert not [m for m in at.markdown if m.value.startswith("Fixing this:")]
    best = next(m.value for m in at.markdown if m.value.startswith("**Best guess:**"))
    assert "Get assessed" in best and "most likely" not in best


def test_amber_also_fires_from_the_answers():
    at = start({"low_back_soreness": "mild"})
    assert not at.warning
    at = answer(at, "soreness_duration", "over_7_days")
    assert at.warning and "before your next heavy session" in at.warning[0].value
    assert any("more than a week" in m.value for m in at.markdown)


# ---- links --------------------------------------------------------------------------------------
def test_answers_live_in_the_link():
    at = start()
    at = answer(at, "training_age", "first_sessions")
    at = tick(at, "pain_7_or_more")
    assert at.query_params == {"training_age": "first_sessions", "flags": "pain_7_or_more",
                               "none_apply": "1"}
    shared = start(dict(at.query_params))
    assert widget(shared, "training_age").value == "first_sessions"
    assert shared.checkbox(key="flag_pain_7_or_more").value is True
    assert cause_percent(shared, "stabilizer_overload") == cause_percent(
        at, "stabilizer_overload")


def test_a_bad_link_shows_a_notice_and_ignores_only_the_bad_part():
    at = start({"training_age": "expert", "shoe_size": "44", "bracing_loss": "often",
                "flags": "alien_abduction", "stabilizer_overload": "yes"})
    assert_ok(at)
    notices = " ".join(shown(w.value) for w in at.warning)
    assert len(at.warning) == 1  # one bounded notice
    assert notices.startswith("4 parts of the link could not be used and were ignored")
    assert "an answer to Training age that is not a possible answer" in notices
    assert "1 question this app does not ask" in notices
    assert "1 warning sign this app does not know" in notices
    assert "which the model works out itself" in notices
    for echoed in ("expert", "shoe_size", "44", "alien_abduction"):
        assert echoed not in notices  # a link's content is counted, never repeated
    assert widget(at, "training_age").value == UNKNOWN
    assert widget(at, "bracing_loss").value == "often"
    assert at.query_params == {"bracing_loss": "often", "none_apply": "1"}  # cleaned up


def test_reset_sets_everything_back_to_not_sure():
    at = start({"training_age": "first_sessions", "flags": "pain_7_or_more"})
    at.button[0].click().run()
    assert widget(at, "training_age").value == UNKNOWN
    assert at.checkbox(key="flag_pain_7_or_more").value is False
    assert at.query_params == {}


# ---- report -------------------------------------------------------------------------------------
def test_report_download_contains_the_answers_and_disclaimer(downloads):
    at = start({"training_age": "first_sessions", "bracing_loss": "often",
                "low_back_soreness": "mild", "flags": "pain_7_or_more"})
    assert_ok(at)
    assert at.download_button[0].label.startswith("Download report")
    data, mime, name = downloads[-1]
    text = shown(data.decode())
    assert name == "knowpain-report.md" and mime.startswith("text/markdown")
    assert "- Training age: First few sessions" in text
    assert "- Brace lost: Often" in text
    assert "- Low-back soreness: Mild" in text
    assert "7 out of 10" in text  # the ticked warning sign
    assert "Get assessed" in text
    assert "Back muscles met a new load" in text and "90 % interval" in text
    assert "Keep your brace" not in text  # an amber sign holds the training fixes back
    assert "Get assessed before you change your training" in text
    assert CAL.messages.disclaimer in text


def test_report_after_a_red_flag_has_no_cause_percentages(downloads):
    at = start({"training_age": "first_sessions", "flags": "bladder_bowel_change"})
    text = shown(downloads[-1][0].decode())
    assert "- Training age: First few sessions" in text
    assert "Stop: see a clinician" in text
    for cause in M.causes:
        assert CAL.nodes[cause].title not in text
    assert "chance of" not in text
    assert at.error


# ---- quality ------------------------------------------------------------------------------------
def test_every_widget_has_a_label():
    at = start({"low_back_soreness": "mild"})
    widgets = [*at.checkbox, *at.radio, *at.select_slider, *at.button, *at.download_button]
    assert len(widgets) > 20
    for w in widgets:
        assert w.label.strip(), w


def test_model_is_loaded_once_for_many_sessions(monkeypatch):
    from app_pages import common

    calls = []
    real = model.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    common.load_model.clear()
    monkeypatch.setattr(model, "load_model", counting)
    first = start({"training_age": "novice"})
    second = start({"bracing_loss": "often"})
    answer(second, "training_age", "trained")
    second.switch_page("app_pages/how_it_works.py").run()
    assert_ok(first)
    assert_ok(second)
    assert len(calls) == 1


# ---- the warning-sign screen must be answered ---------------------------------------------------
def test_no_estimates_until_every_warning_sign_is_answered():
    """Unticked boxes are not a "no": the estimates wait for "none of these apply"."""
    at = start({"training_age": "first_sessions", "low_back_soreness": "mild"}, screened=False)
    assert_ok(at)
    assert any("Answer the warning signs first" in i.value for i in at.info)
    shown = texts(at, skip="questions")
    assert not [t for t in shown if PERCENT.search(t)], "no percentages before the screen"
    for cause in M.causes:
        with pytest.raises(KeyError):
            at.get_by_key(f"cause_{cause}")
    at.checkbox(key="flag__none_apply").check().run()
    assert cause_percent(at, "stabilizer_overload") > 50
    assert at.query_params["none_apply"] == "1"
    # an amber sign shows its routing, but estimates still wait for the rest to be answered
    fresh = start({"low_back_soreness": "mild"}, screened=False)
    fresh = tick(fresh, "pain_7_or_more")
    assert fresh.warning and any("Answer the warning signs" not in w.value for w in fresh.warning)
    assert fresh.checkbox(key="flag__none_apply").label == "**None of the other signs apply to me**"


def test_not_sore_gets_no_fixes_and_says_so():
    at = start({"training_age": "novice", "bracing_loss": "often", "low_back_soreness": "none"})
    assert_ok(at)
    assert at.get_by_key("advice_not_sore")
    assert not [m for m in at.markdown if m.value.startswith(("Fixing this:", "Next session"))]


def test_a_first_timer_hears_it_is_expected_and_will_ease():
    at = start({"training_age": "first_sessions", "low_back_soreness": "mild",
                "onset": "next_day", "bracing_loss": "no", "pulling_with_back": "no"})
    assert_ok(at)
    advice = at.get_by_key("advice_expected_soreness")
    assert "ease" in advice.markdown[0].value
    forecast = next(m.value for m in at.markdown if m.value.startswith("Next session"))
    assert "90\xa0% interval" in forecast
    # with a clean technique no change is worth 5 points: they are listed as minor
    assert any(e.label.startswith("Minor changes") for e in at.expander)
