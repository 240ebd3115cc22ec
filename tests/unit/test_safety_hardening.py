"""Hardening found in review: the red-flag screen, malformed companions, canonical models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import model
from calibration.loader import DEFAULT_PATH, CalibrationError, load_calibration, parse_calibration
from calibration.safety import weakened_screen
from calibration.writer import to_toml
from model.cli import main

DEFAULT_TEXT = DEFAULT_PATH.read_text(encoding="utf-8")


def test_json_behind_a_red_flag_has_no_cause_numbers(capsys):
    assert main(["diagnose", "training_age=first_sessions", "--flag", "saddle_numbness",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["triage"]["level"] == "red"
    for key in ("causes", "prior_causes", "cause_intervals", "posterior", "fixes",
                "best_guess", "explanation"):
        assert key not in data
    assert "%" not in json.dumps({k: v for k, v in data.items() if k != "triage"})
    assert "not a diagnosis" in data["disclaimer"]


def test_soft_evidence_all_on_one_state_is_a_finding_and_fires_amber(default_model):
    d = default_model.diagnose({"soreness_duration": {"over_7_days": 1.0}})
    assert d.triage.level == "amber"
    assert d.evidence == {"soreness_duration": "over_7_days"}


def test_evidence_of_the_wrong_type_is_an_evidence_error(default_model):
    with pytest.raises(model.EvidenceError, match="mapping"):
        default_model.posterior(["training_age"])  # type: ignore[arg-type]
    with pytest.raises(model.EvidenceError, match="numeric"):
        default_model.posterior({"bracing_loss": {"often": "lots"}})
    with pytest.raises(model.EvidenceError, match="flags must map"):
        default_model.diagnose({}, flags=["saddle_numbness"])  # type: ignore[arg-type]


def test_dropping_the_red_flags_is_a_weakened_screen():
    shipped = load_calibration()
    text = DEFAULT_TEXT.replace('"red_flags.toml", ', "")
    stripped = parse_calibration(text, base_dir=DEFAULT_PATH.parent)
    weakened = weakened_screen(shipped, stripped)
    assert any("saddle_numbness" in w for w in weakened)
    assert any("evidence rule" in w for w in weakened)
    assert weakened_screen(shipped, shipped) == []


def test_cli_save_refuses_a_version_without_red_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KNOWPAIN_THERAPIST_PASSCODE", "s3cret")
    monkeypatch.setenv("KNOWPAIN_PASSCODE", "s3cret")
    bad = tmp_path / "noflags.toml"
    bad.write_text(DEFAULT_TEXT.replace('"red_flags.toml", ', ""))
    for name in ("fixes.toml", "checks.toml"):
        (tmp_path / name).write_text((DEFAULT_PATH.parent / name).read_text())
    store = str(tmp_path / "store.sqlite")
    code = main(["calibration", "save", str(bad), "--author", "Dr A", "--note", "n",
                 "--store", store])
    assert code == 1
    assert "weaken the red-flag screen" in capsys.readouterr().err


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
