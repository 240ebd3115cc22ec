"""Calibration files that are malformed in the ways a review found: companion sections,
noisy-MAX parameters that break column sums, the red-flag screen's weakening check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calibration.loader import DEFAULT_PATH, CalibrationError, load_calibration, parse_calibration
from calibration.safety import weakened_screen
from calibration.writer import to_toml

DEFAULT_TEXT = DEFAULT_PATH.read_text(encoding="utf-8")


def test_dropping_the_red_flags_is_a_weakened_screen():
    shipped = load_calibration()
    text = DEFAULT_TEXT.replace('"red_flags.toml", ', "")
    stripped = parse_calibration(text, base_dir=DEFAULT_PATH.parent)
    weakened = weakened_screen(shipped, stripped)
    assert any("saddle_numbness" in w for w in weakened)
    assert any("evidence rule" in w for w in weakened)
    assert weakened_screen(shipped, shipped) == []


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ('flags = "x"', "[flags]"),
        ('flags = ["x"]', "[flags]"),
        ('fixes = { a = "yes" }', "[fixes]"),
        ('scenarios = ["x"]', "[scenarios]"),
        ('checks = ["x"]', "[checks]"),
        ('messages = "x"', "[messages]"),
        ('[[evidence_rules]]\nid = "r"\nlevel = "purple"\nwhen = { a = "yes" }', "purple"),
        ('[[flags]]\nid = "f"\nlevel = "red"\nquestion = "q"\n[[flags]]\nid = "f"\n'
         'level = "red"\nquestion = "q"', "unique"),
    ],
)
def test_malformed_companion_sections_are_reported_not_crashed(section, needle):
    text = '[nodes.a]\nstates = ["no", "yes"]\ncpt = "table"\ntable = [0.5, 0.5]\n'
    doc = (section + "\n" + text) if not section.startswith("[") else (text + section + "\n")
    with pytest.raises(CalibrationError) as info:
        parse_calibration(doc)
    assert any(needle in p for p in info.value.problems), info.value.problems


def test_companions_must_be_a_list():
    text = DEFAULT_TEXT.replace(
        'companions = ["red_flags.toml", "fixes.toml", "checks.toml"]',
        'companions = "red_flags.toml"',
    )
    with pytest.raises(CalibrationError) as info:
        parse_calibration(text, base_dir=DEFAULT_PATH.parent)
    assert info.value.problems == ["[network] field 'companions': must be a list of file names"]


NOISY_MAX = """
[nodes.a]
states = ["no", "yes"]
cpt = "table"
table = [0.5, 0.5]
[nodes.b]
states = ["no", "yes"]
cpt = "table"
table = [0.5, 0.5]
[nodes.y]
states = ["none", "mild", "marked"]
parents = ["a", "b"]
cpt = "noisy_max"
leak = LEAK
[nodes.y.noisy_max]
a = { yes = PA }
b = { yes = PB }
"""


def test_noisy_max_that_would_break_column_sums_is_rejected():
    text = (NOISY_MAX.replace("LEAK", "[0.1, 0.8, 0.1]")
            .replace("PA", "[0.1, 0.1, 0.8]").replace("PB", "[0.1, 0.1, 0.8]"))
    with pytest.raises(CalibrationError, match=re.escape("noisy_max.a.yes")):
        parse_calibration(text)


def test_noisy_max_leak_without_absent_weight_is_rejected():
    text = (NOISY_MAX.replace("LEAK", "[0.0, 0.8, 0.2]")
            .replace("PA", "[0.0, 0.5, 0.5]").replace("PB", "[0.0, 0.5, 0.5]"))
    with pytest.raises(CalibrationError, match=r"first \(absent\) state"):
        parse_calibration(text)


def test_valid_noisy_max_columns_sum_to_one():
    text = (NOISY_MAX.replace("LEAK", "[0.8, 0.15, 0.05]")
            .replace("PA", "[0.3, 0.5, 0.2]").replace("PB", "[0.4, 0.3, 0.3]"))
    table = parse_calibration(text).cpt("y")
    assert abs(table.sum(axis=-1) - 1).max() < 1e-12
    assert (table >= 0).all()


def test_inline_sections_survive_a_round_trip(tmp_path: Path):
    inline = (
        '[nodes.a]\nstates = ["no", "yes"]\ncpt = "table"\ntable = [0.5, 0.5]\n'
        '[[flags]]\nid = "f"\nlevel = "red"\nquestion = "q?"\nmessage = "go"\n'
        '[[evidence_rules]]\nid = "r"\nlevel = "amber"\nreason = "because"\n'
        'when = { a = "yes" }\n'
        '[messages]\ndisclaimer = "not a diagnosis"\n'
    )
    cal = parse_calibration(inline)
    again = parse_calibration(to_toml(cal))
    assert again.red_flags == cal.red_flags
    assert again.evidence_rules == cal.evidence_rules
    assert again.messages.disclaimer == "not a diagnosis"
