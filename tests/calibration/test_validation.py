"""Every kind of calibration error is reported, all at once, naming the node and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calibration.loader import DEFAULT_PATH, CalibrationError, load_calibration, parse_calibration
from calibration.writer import to_toml

GOOD = """
[nodes.a]
states = ["no", "yes"]
cpt = "table"
table = [0.7, 0.3]

[nodes.b]
states = ["low", "mid", "high"]
parents = ["a"]
cpt = "table"
[nodes.b.table]
"no" = [0.5, 0.3, 0.2]
"yes" = [0.2, 0.3, 0.5]

[nodes.c]
states = ["no", "yes"]
parents = ["a", "b"]
cpt = "noisy_or"
leak = 0.05
[nodes.c.noisy_or]
a = { yes = 0.6 }
b = { mid = 0.2, high = 0.4 }
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(CalibrationError) as info:
        parse_calibration(text)
    assert isinstance(info.value, ValueError)
    return info.value.problems


def test_good_file_loads():
    cal = parse_calibration(GOOD)
    assert list(cal.nodes) == ["a", "b", "c"]
    assert cal.cpt("c").shape == (2, 3, 2)


@pytest.mark.parametrize(
    ("old", "new", "node", "field"),
    [
        ('parents = ["a"]\ncpt', 'parents = ["zz"]\ncpt', "b", "parents"),  # unknown parent
        ('states = ["no", "yes"]\ncpt = "table"\ntable = [0.7, 0.3]',
         'states = ["no", "yes"]\nparents = ["c"]\ncpt = "table"\n[nodes.a.table]\n'
         '"no" = [0.7, 0.3]\n"yes" = [0.7, 0.3]', "a", "parents"),  # cycle a -> c -> a
        ('"no" = [0.5, 0.3, 0.2]', '"no" = [0.5, 0.3]', "b", "table"),  # states mismatch
        ('states = ["low", "mid", "high"]', 'states = ["low", "low", "high"]', "b", "states"),
        ('"yes" = [0.2, 0.3, 0.5]', '"yes" = [1.2, -0.2, 0.0]', "b", "table"),  # outside [0,1]
        ('"yes" = [0.2, 0.3, 0.5]', '"yes" = [0.2, 0.3, 0.4]', "b", "table"),  # not summing to 1
        ('"yes" = [0.2, 0.3, 0.5]\n', "", "b", "table"),  # wrong table shape: a column missing
        ('cpt = "noisy_or"\nleak = 0.05\n[nodes.c.noisy_or]\na = { yes = 0.6 }\n'
         'b = { mid = 0.2, high = 0.4 }', "", "c", "cpt"),  # missing parameters
        ('cpt = "noisy_or"', 'cpt = "noisy_and"', "c", "cpt"),  # unknown parameterisation
    ],
    ids=[
        "unknown-parent", "cycle", "states-mismatch", "duplicate-states", "out-of-range",
        "not-summing", "wrong-shape", "missing-parameters", "unknown-parameterisation",
    ],
)
def test_each_error_names_node_and_field(old, new, node, field):
    assert old in GOOD
    found = problems_of(GOOD.replace(old, new, 1))
    assert any(f"node {node!r}" in p and f"'{field}'" in p for p in found), found


def test_all_problems_reported_at_once():
    text = GOOD.replace('"yes" = [0.2, 0.3, 0.5]', '"yes" = [0.2, 0.3, 0.4]').replace(
        "leak = 0.05", "leak = 1.5"
    )
    found = problems_of(text)
    assert len(found) >= 2
    assert any("node 'b'" in p for p in found) and any("node 'c'" in p for p in found)


def test_noisy_parameter_below_leak_is_rejected():
    found = problems_of(GOOD.replace("a = { yes = 0.6 }", "a = { yes = 0.01 }"))
    assert any("noisy_or.a" in p and "leak" in p for p in found)


def test_exact_zero_is_a_warning_not_an_error():
    cal = parse_calibration(GOOD.replace("[0.7, 0.3]", "[1.0, 0.0]"))
    assert any("exact zero" in w and "node 'a'" in w for w in cal.warnings)


def test_not_toml_and_missing_file(tmp_path: Path):
    assert any("not valid TOML" in p for p in problems_of("[nodes.a\nstates = 1"))
    with pytest.raises(CalibrationError, match="file not found"):
        load_calibration(tmp_path / "missing.toml")


def test_default_round_trips_through_toml_writer():
    cal = load_calibration()
    again = parse_calibration(to_toml(cal), base_dir=DEFAULT_PATH.parent)
    for n in cal.nodes:
        assert (cal.cpt(n) == again.cpt(n)).all(), n
        assert again.nodes[n].rationale == cal.nodes[n].rationale


def test_noisy_or_expansion_matches_definition():
    cal = parse_calibration(GOOD)
    t = cal.cpt("c")  # (a, b, c)
    leak = 0.05
    c_a = 1 - (1 - 0.6) / (1 - leak)
    c_b = 1 - (1 - 0.4) / (1 - leak)
    # only a on: the observable parameter itself
    assert t[1, 0, 1] == pytest.approx(0.6)
    # both on: leaky noisy-OR combination
    assert t[1, 2, 0] == pytest.approx((1 - leak) * (1 - c_a) * (1 - c_b))
    assert t[0, 0, 1] == pytest.approx(leak)


def test_default_has_no_near_zero_leak_for_other_cause():
    cal = load_calibration()
    assert cal.nodes["other_cause"].leak >= 0.05
    rationale = cal.nodes["other_cause"].rationale.lower()
    assert "contested" in rationale or "weak" in rationale
    assert re.search(r"saraceni", cal.nodes["other_cause"].source, re.I)
