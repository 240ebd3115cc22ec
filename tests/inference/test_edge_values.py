"""Edge values: probabilities at the floor, exact zeros and tiny soft likelihoods give the same
posteriors as pyAgrum, or a clear refusal — never a silent 0.5 or NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from peers import pyagrum_marginals, to_pyagrum

import model
from calibration.limits import PROBABILITY_FLOOR, SOFT_EVIDENCE_FLOOR
from calibration.loader import parse_calibration
from model.errors import CalibrationError, EvidenceError
from model.inference.evidence import is_unknown, normalise, soft_vector

RTOL = 1e-9


def chain(n: int, p_on: float, p_stay: float) -> str:
    """A chain n0 -> n1 -> ... of binary context nodes; 'yes' is rare (p_on) unless the
    parent is 'yes' (then p_stay)."""
    text = (f'[nodes.n0]\nstates = ["no", "yes"]\nrole = "context"\ncpt = "table"\n'
            f"table = [{1 - p_on!r}, {p_on!r}]\n")
    for i in range(1, n):
        text += (f'[nodes.n{i}]\nstates = ["no", "yes"]\nrole = "context"\n'
                 f'parents = ["n{i - 1}"]\ncpt = "table"\n[nodes.n{i}.table]\n'
                 f"no = [{1 - p_on!r}, {p_on!r}]\nyes = [{1 - p_stay!r}, {p_stay!r}]\n")
    return text


def compare(m: model.Model, hard=None, soft=None, evidence=None) -> None:
    """Every marginal, ours vs pyAgrum, to a relative tolerance (tiny values included)."""
    cal = m.calibration
    bn = to_pyagrum(cal.variables, {n: list(s.parents) for n, s in cal.nodes.items()},
                    cal.cpts())
    theirs = pyagrum_marginals(bn, hard, soft)
    ours = m.posterior(evidence if evidence is not None else hard)
    for node, dist in ours.items():
        got = np.array(list(dist.values()))
        assert np.all(np.isfinite(got)), node
        np.testing.assert_allclose(got, theirs[node], rtol=RTOL, atol=1e-300, err_msg=node)


@pytest.mark.parametrize(("n", "observed"), [
    (2, {"n1": "yes"}),
    (30, {"n29": "yes"}),
    (30, {f"n{i}": "yes" for i in range(0, 30, 3)}),
    (30, {"n0": "no", "n29": "yes"}),
])
def test_floor_probabilities_match_pyagrum(n, observed):
    m = model.Model(parse_calibration(chain(n, PROBABILITY_FLOOR, 0.5)))
    compare(m, observed)


def test_exact_zeros_match_pyagrum_and_impossible_evidence_is_refused():
    m = model.Model(parse_calibration(chain(5, 0.0, 0.5)))
    compare(m, {"n0": "no"})
    with pytest.raises(EvidenceError, match="impossible"):
        m.posterior({"n4": "yes"})  # 'yes' can never start: probability zero


def test_below_the_floor_is_a_refusal_not_a_silent_half():
    with pytest.raises(CalibrationError, match="below the floor"):
        parse_calibration(chain(5, 1e-320, 0.5))


@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e-200, 1e250])
def test_tiny_or_huge_soft_likelihoods_mean_their_ratios(default_model, scale):
    soft = {"pain_character": {"dull_diffuse": 1.0 * scale, "sharp_localised": 3.0 * scale}}
    m = default_model
    compare(m, soft={"pain_character": np.array([1.0, 3.0])}, evidence=soft)
    ours = m.posterior(soft)
    same = m.posterior({"pain_character": {"dull_diffuse": 1.0, "sharp_localised": 3.0}})
    for node, dist in same.items():
        assert ours[node] == pytest.approx(dist, rel=1e-12), node


@pytest.mark.parametrize(("weights", "needle"), [
    ({"no": 1e-320, "yes": 1e-321}, "too small to compute"),
    ({"no": 1.0, "yes": 1e-13}, "less than"),
    ({"no": 0.0, "yes": 0.0}, "all zero"),
    ({"no": float("nan"), "yes": 1.0}, "finite"),
    ({"no": float("inf"), "yes": 1.0}, "finite"),
    ({"no": -1.0, "yes": 1.0}, ">= 0"),
    ({"no": "lots", "yes": 1.0}, "numeric"),
    ({"no": True, "yes": 1.0}, "numeric"),
    ({"maybe": 1.0}, "unknown state"),
])
def test_bad_soft_evidence_is_refused_by_name(default_model, weights, needle):
    with pytest.raises(EvidenceError, match=needle) as info:
        default_model.posterior({"max_attempt": weights})
    assert "max_attempt" in str(info.value)


def test_soft_vector_is_scaled_to_a_largest_weight_of_one():
    vec = soft_vector("a", {"x": 2e-300, "y": 1e-300}, ["x", "y", "z"])
    assert vec.tolist() == [1.0, 0.5, 0.0]
    assert soft_vector("a", {"x": 1.0, "y": SOFT_EVIDENCE_FLOOR}, ["x", "y"])[1] > 0


@pytest.mark.parametrize("value", [None, "", "  ", float("nan"), np.float32("nan"),
                                   np.float64("nan"), pytest.param("pd.NA", id="pd.NA"),
                                   pytest.param("pd.NaT", id="pd.NaT")])
def test_every_kind_of_missing_means_unknown(default_model, value):
    import pandas as pd

    value = {"pd.NA": pd.NA, "pd.NaT": pd.NaT}.get(value, value) \
        if isinstance(value, str) else value
    assert is_unknown(value)
    hard, soft = normalise({"max_attempt": value}, default_model.variables)
    assert hard == {} and soft == {}
    assert default_model.posterior({"max_attempt": value}) == default_model.posterior({})


@pytest.mark.parametrize("value", [0, 1.5, math.inf, False, "no", np.int64(3)])
def test_values_that_are_not_missing(value):
    assert not is_unknown(value)
