"""The save policy: one rule behind every door that stores a calibration.

A calibration that weakens the red-flag screen is refused with the same message at each door:
the Calibrate editor and pool, the Cases refit, ``knowpain calibration save`` and
``knowpain calibration fit --save`` — and nothing is stored.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from calibration.store import NewCase, Store
from calibration.writer import to_toml
from model.cli import main
from model.errors import AccessError, RefusedError, UsageError
from model.learning.sampling import sample_cases
from model.service import refit as refit_module
from model.service.clinic import Clinic, unlock
from model.service.policy import review, self_contained, shipped_default
from model.service.settings import PASSCODE_ENV, load_settings
from model.text.safe import WORD_JOINER

_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """What a reader sees of text the app escaped (see tests/app/apptest_helpers.shown)."""
    return _ESCAPED.sub(r"\1", markdown).replace(WORD_JOINER, "")

ROOT = Path(__file__).resolve().parents[2]
PASSCODE = "door-test"
NAME = "Dr Door"
SHIPPED = shipped_default()
#: The line every door shows for a calibration without the saddle-numbness question.
REASON = "weakens the red-flag screen: warning sign 'saddle_numbness' (red) is missing"


def weakened(cal=SHIPPED):
    """A calibration whose screen lost a red flag (numbers otherwise unchanged), with every
    section inline (a file naming companion files would get the shipped ones back)."""
    return replace(cal, companions=(),
                   red_flags=tuple(f for f in cal.red_flags if f.id != "saddle_numbness"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path))
    monkeypatch.setenv(PASSCODE_ENV, PASSCODE)
    monkeypatch.setenv("KNOWPAIN_PASSCODE", PASSCODE)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    return tmp_path


def stored(home: Path) -> list[int]:
    with Store(home / "knowpain.sqlite") as store:
        return [v.id for v in store.list_versions()]


# ---- the rule itself ----------------------------------------------------------------------------
def test_the_shipped_default_may_be_saved() -> None:
    verdict = review(SHIPPED)
    assert verdict.ok and verdict.reasons == []
    assert len(verdict.checks) >= 12


def test_a_weakened_screen_fails_review_with_the_reason() -> None:
    verdict = review(weakened())
    assert not verdict.ok and REASON in verdict.reasons


def test_softening_red_to_amber_and_dropping_a_rule_are_weakening() -> None:
    softer = replace(SHIPPED, red_flags=tuple(
        replace(f, level="amber") if f.id == "history_of_cancer" else f
        for f in SHIPPED.red_flags))
    assert any("history_of_cancer" in r and "drops from red" in r
               for r in review(softer).reasons)
    fewer = replace(SHIPPED, evidence_rules=SHIPPED.evidence_rules[1:])
    gone = SHIPPED.evidence_rules[0].id
    assert any(gone in r and "missing" in r for r in review(fewer).reasons)


def test_invalid_text_is_refused_with_every_problem() -> None:
    verdict = review("[nodes.a]\nstates = ['x']\ncpt = 'table'\ntable = [1.0]\n")
    assert verdict.calibration is None
    assert any("node 'a' field 'states'" in r for r in verdict.reasons)


def test_a_stored_version_carries_its_companions_inline() -> None:
    text = review(SHIPPED).text
    assert "companions" not in text and "saddle_numbness" in text and "[fixes." in text


def test_clinic_save_refuses_and_stores_nothing(home: Path) -> None:
    conf = load_settings({})
    with Clinic.open(conf, unlock(conf, PASSCODE)) as clinic:
        with pytest.raises(RefusedError) as info:
            clinic.save(weakened(), NAME, "n")
        assert REASON in str(info.value) and "nothing was stored" in str(info.value)
        assert [v.id for v in clinic.versions()] == [1]
        with pytest.raises(UsageError, match="say who is acting"):
            clinic.save(SHIPPED, "  ", "n")
        assert clinic.save(SHIPPED, NAME, "copy").id == 2


def test_clinic_writes_need_the_passcode(home: Path) -> None:
    conf = load_settings({})
    with Clinic.open(conf) as clinic:
        for write in (lambda: clinic.save(SHIPPED, NAME),
                      lambda: clinic.activate(1, NAME),
                      lambda: clinic.rollback(NAME),
                      lambda: clinic.record_cases([NewCase({"max_attempt": "yes"})], NAME),
                      lambda: clinic.delete_case(1, NAME)):
            with pytest.raises(AccessError):
                write()
        assert [v.id for v in clinic.versions()] == [1] and clinic.cases() == []


# ---- the command line ---------------------------------------------------------------------
def test_cli_save_door(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = home / "weak.toml"
    bad.write_text(to_toml(weakened()), encoding="utf-8")
    assert main(["calibration", "save", str(bad), "--who", NAME, "--note", "n"]) == 3
    assert REASON in capsys.readouterr().err
    assert stored(home) == [1]


def test_cli_fit_save_door(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = home / "weak.toml"
    base.write_text(to_toml(weakened()), encoding="utf-8")
    cases = home / "cases.csv"
    frame = sample_cases(SHIPPED, 200, seed=1).drop(columns=SHIPPED.causes)
    frame.insert(0, "case_id", range(len(frame)))
    frame.to_csv(cases, index=False)
    assert main(["calibration", "fit", "--cases", str(cases), "--base", str(base), "--save",
                 "--who", NAME, "--folds", "0"]) == 3
    assert REASON in capsys.readouterr().err
    assert stored(home) == [1]


# ---- the app ------------------------------------------------------------------------------
def unlocked(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=30).run()
    at.text_input(key="kp_gate_passcode").input(PASSCODE)
    next(b for b in at.button if b.label == "Unlock").click().run()
    at.text_input(key="kp_therapist_name").input(NAME).run()
    assert not at.exception
    return at


def test_app_editor_door(home: Path) -> None:
    at = unlocked("calibrate")
    node = SHIPPED.nodes["stabilizer_overload"]
    draft = weakened().with_node(replace(node, rationale=node.rationale + " (edited)"))
    at.session_state["kp_cal_draft"] = {"base_id": 1, "calibration": draft}
    at.run()
    panel = " ".join(shown(e.value) for e in at.get_by_key("kp_cal_checks").error)
    assert REASON in panel
    save = at.button(key="kp_cal_save_button")
    assert save.disabled  # a browser cannot click it; the service refuses it anyway (above)
    assert stored(home) == [1]


def test_app_pool_door(home: Path) -> None:
    """A pool takes its screen from the first version chosen; a weakened one is refused."""
    with Store(home / "knowpain.sqlite", seed_toml=self_contained(SHIPPED)) as store:
        store.add_version(to_toml(weakened()), author="outside", note="weak")  # not via policy
    at = unlocked("calibrate")
    at.multiselect(key="kp_cal_pool").set_value([2, 1]).run()
    assert any(REASON in shown(e.value) for e in at.error), [e.value for e in at.error]
    save = at.button(key="kp_cal_pool_save")
    assert save.disabled
    assert stored(home) == [1, 2]


def test_app_cases_refit_door(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = sample_cases(SHIPPED, 120, seed=2)
    observable = [n for n, s in SHIPPED.nodes.items() if s.observable]
    with Store(home / "knowpain.sqlite", seed_toml=self_contained(SHIPPED)) as store:
        store.add_cases([NewCase({k: row[k] for k in observable})
                         for row in frame.to_dict("records")], therapist="seed")
    real = refit_module.refit

    def weakening_refit(*args, **kwargs):
        result = real(*args, **kwargs)
        return replace(result, calibration=weakened(result.calibration))

    monkeypatch.setattr(refit_module, "refit", weakening_refit)
    at = unlocked("cases")
    at.radio(key="kp_cases_method").set_value("dirichlet").run()
    at.button(key="kp_cases_refit_button").click().run()
    panel = " ".join(shown(e.value) for e in at.get_by_key("kp_cases_checks").error)
    assert REASON in panel
    save = at.button(key="kp_cases_save_button")
    assert save.disabled
    assert stored(home) == [1]
