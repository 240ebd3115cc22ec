"""Bad input to the Python API and what a red flag hides from the command line's JSON."""

from __future__ import annotations

import json

import pytest

import model
from model.cli import main


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
