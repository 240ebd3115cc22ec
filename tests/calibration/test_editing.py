"""Editing numbers the way therapists set them (calibration.editing), and the save policy's
read-back of an edited calibration."""

from __future__ import annotations

import pytest

import model
from calibration import editing as ed
from model.service.policy import review

CAL = model.load_model().calibration


def test_edit_node_builds_a_new_calibration_and_the_first_state_takes_the_rest():
    groups = {g.group: g for g in ed.number_groups(CAL, "low_back_soreness")}
    assert set(groups) == {"leak", "stabilizer_overload=yes", "wrong_prime_mover=yes",
                           "other_cause=yes"}
    assert [s.state for s in groups["leak"].slots] == ["mild", "marked"]
    assert groups["leak"].rest == pytest.approx(0.88)
    edited = ed.edit_node(CAL, "low_back_soreness", {"stabilizer_overload=yes|mild": 0.5},
                          confidence=33, rationale="why")
    node = edited.nodes["low_back_soreness"]
    assert node.params["stabilizer_overload"]["yes"] == pytest.approx([0.3, 0.5, 0.2])
    assert (node.confidence, node.rationale, node.cpt) == (33.0, "why", "noisy_max")
    # nothing shared was changed
    assert CAL.nodes["low_back_soreness"].params["stabilizer_overload"]["yes"] == [0.15, 0.65,
                                                                                   0.20]
    assert ed.changed_nodes(CAL, edited) == ["low_back_soreness"]
    # values equal to the current numbers change nothing, so nothing reads as edited
    same = ed.edit_node(CAL, "low_back_soreness",
                        {s.key: s.value for g in groups.values() for s in g.slots})
    assert ed.changed_nodes(CAL, same) == []
    with pytest.raises(KeyError, match="no number"):
        ed.edit_node(CAL, "low_back_soreness", {"leak|none": 0.5})


def test_validate_reports_every_problem_without_raising():
    bad = ed.edit_node(CAL, "low_back_soreness", {"leak|mild": 0.7, "leak|marked": 0.5})
    checked = review(bad)
    assert not checked.ok and checked.calibration is None
    assert any("'low_back_soreness'" in p and "leak" in p for p in checked.problems)
    good = review(CAL)
    assert good.ok and good.problems == () and len(good.calibration.scenarios) == len(
        CAL.scenarios)
    assert "companions" not in good.text  # stored versions carry their sections inline


def test_number_changes_compare_the_numbers_as_set():
    edited = ed.edit_node(CAL, "stabilizer_overload", {"max_attempt=yes|yes": 0.5})
    changes, other = ed.number_changes(CAL, edited)
    assert other == []
    assert [(c.node, c.group, c.state) for c in changes] == [
        ("stabilizer_overload", "max_attempt=yes", "yes")]
    assert changes[0].change == pytest.approx(0.10)
    table = CAL.with_table("stabilizer_overload", CAL.cpt("stabilizer_overload"))
    assert ed.number_changes(CAL, table)[1] == ["stabilizer_overload"]
