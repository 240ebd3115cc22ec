"""The verbal–numerical scale: anchors, nearest word, descriptions, confidence levels."""

from __future__ import annotations

import dataclasses
import math

import pytest

from model.text.verbal import (
    ANCHORS,
    CONFIDENCE_LEVELS,
    Anchor,
    confidence_for,
    describe,
    number_for,
    word_for,
)

EXPECTED = {
    "(almost) certain": 1.00,
    "probable": 0.85,
    "expected": 0.75,
    "fifty-fifty": 0.50,
    "unlikely": 0.25,
    "improbable": 0.15,
    "(almost) impossible": 0.00,
}


def test_anchors_are_the_published_scale_in_order():
    """Renooij & Witteman's positions; the 25 % word reads 'unlikely' (module docstring)."""
    assert {a.word: a.probability for a in ANCHORS} == EXPECTED
    percents = [a.percent for a in ANCHORS]
    assert percents == sorted(percents, reverse=True)
    assert len({a.word for a in ANCHORS}) == len(ANCHORS)


def test_anchors_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ANCHORS[0].percent = 90  # type: ignore[misc]
    assert isinstance(ANCHORS, tuple)
    assert all(isinstance(a, Anchor) for a in ANCHORS)


@pytest.mark.parametrize("anchor", ANCHORS, ids=lambda a: a.word)
def test_round_trip_word_number_word(anchor):
    assert word_for(number_for(anchor.word)) == anchor.word
    assert number_for(word_for(anchor.probability)) == pytest.approx(anchor.probability)


@pytest.mark.parametrize(
    ("p", "word"),
    [
        (0.0, "(almost) impossible"),
        (0.004, "(almost) impossible"),
        (0.005, "improbable"),
        (0.05, "improbable"),  # the honest catch-all cause is never "impossible"
        (0.07, "improbable"),
        (0.19, "improbable"),
        (0.21, "unlikely"),
        (0.37, "unlikely"),
        (0.38, "fifty-fifty"),
        (0.62, "fifty-fifty"),
        (0.63, "expected"),
        (0.72, "expected"),
        (0.81, "probable"),
        (0.92, "probable"),
        (0.93, "probable"),
        (0.994, "probable"),
        (0.995, "(almost) certain"),
        (1.0, "(almost) certain"),
    ],
)
def test_word_for_picks_the_nearest_anchor(p, word):
    assert word_for(p) == word


@pytest.mark.parametrize(
    ("p", "word"),
    [(0.20, "unlikely"), (0.80, "expected"), (0.375, "fifty-fifty"), (0.625, "fifty-fifty")],
)
def test_exact_ties_go_to_the_less_extreme_word(p, word):
    assert word_for(p) == word


@pytest.mark.parametrize("bad", [-0.01, 1.01, 2, -1, math.nan, math.inf, -math.inf])
def test_word_for_rejects_values_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]") as info:
        word_for(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", ["0.5", None, True])
def test_word_for_rejects_non_numbers(bad):
    with pytest.raises(ValueError):
        word_for(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("word", "p"),
    [
        ("PROBABLE", 0.85),
        ("  Expected ", 0.75),
        ("Fifty-Fifty", 0.5),
        ("almost certain", 1.0),
        ("certain", 1.0),
        ("Impossible", 0.0),
        ("(ALMOST) IMPOSSIBLE", 0.0),
        ("uncertain", 0.25),  # the published word still snaps to its place
    ],
)
def test_number_for_ignores_case_and_accepts_end_word_spellings(word, p):
    assert number_for(word) == pytest.approx(p)


def test_number_for_unknown_word_lists_the_allowed_words():
    with pytest.raises(ValueError, match="likely") as info:
        number_for("likely")
    message = str(info.value)
    for anchor in ANCHORS:
        assert anchor.word in message


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.72, "72 % — expected"),
        (0.5, "50 % — fifty-fifty"),
        (0.855, "86 % — probable"),
        (0.15, "15 % — improbable"),
        (0.0, "<1 % — (almost) impossible"),
        (0.004, "<1 % — (almost) impossible"),
        (0.005, "1 % — improbable"),
        (0.994, "99 % — probable"),
        (0.996, ">99 % — (almost) certain"),
        (1.0, ">99 % — (almost) certain"),
    ],
)
def test_describe_shows_whole_percent_and_word(p, text):
    assert describe(p) == text


def test_describe_never_says_zero_or_hundred_percent():
    for i in range(1001):
        shown = describe(i / 1000).split(" — ")[0]
        assert shown not in ("0 %", "100 %")


@pytest.mark.parametrize("bad", [-0.5, 1.5, math.nan])
def test_describe_rejects_bad_probabilities(bad):
    with pytest.raises(ValueError):
        describe(bad)


def test_confidence_levels_map_to_sample_sizes():
    assert CONFIDENCE_LEVELS == {"low": 5, "medium": 20, "high": 50}
    assert confidence_for("low") == 5.0
    assert confidence_for("Medium") == 20.0
    assert confidence_for(" HIGH ") == 50.0
    assert isinstance(confidence_for("low"), float)


@pytest.mark.parametrize("n", [1, 7.5, 200])
def test_confidence_for_passes_positive_numbers_through(n):
    assert confidence_for(n) == pytest.approx(float(n))
    assert isinstance(confidence_for(n), float)


@pytest.mark.parametrize("bad", ["very high", "", 0, -3, math.nan, math.inf, None, True])
def test_confidence_for_rejects_unknown_levels_and_bad_numbers(bad):
    with pytest.raises(ValueError):
        confidence_for(bad)  # type: ignore[arg-type]


def test_confidence_for_unknown_level_lists_the_levels():
    with pytest.raises(ValueError, match="low, medium, high"):
        confidence_for("extreme")
