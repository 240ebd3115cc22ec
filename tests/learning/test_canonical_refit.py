"""Refits keep the model's shape: noisy-OR / noisy-MAX nodes are learned in their own
parameters (EM over the hidden per-parent activations), stay canonical in the saved TOML, and
every refitted column's confidence becomes the prior's plus the cases behind it.

Tolerances: a three-parent leaky noisy-OR, 20,000 complete cases, confidence 0 (maximum
likelihood): every link within 0.02 of the truth (measured ~0.005).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from calibration.canonical import noisy_max_table, noisy_or_table
from calibration.loader import load_calibration, parse_calibration
from calibration.schema import Calibration, NodeSpec
from calibration.writer import to_toml
from model.errors import CalibrationError, UsageError
from model.learning.base import clone
from model.learning.params import CanonicalParams, TableParams, canonical_table, node_params
from model.learning.refit import DirichletRefit, EMRefit, encode_cases
from model.learning.sampling import sample_cases, with_missing

YN = ("no", "yes")
LMH = ("lo", "mid", "hi")


@pytest.fixture(scope="module")
def shipped() -> Calibration:
    return load_calibration()


def noisy_network(links: dict[str, float], leak: float, confidence: float = 10.0,
                  root_p: float = 0.4) -> Calibration:
    """Roots a, b (two states) and c (three states, off = lo) -> y, a leaky noisy-OR."""
    nodes = {
        "a": NodeSpec("a", YN, (), role="context", params={"": [1 - root_p, root_p]},
                      confidence=confidence),
        "b": NodeSpec("b", YN, (), role="context", params={"": [0.5, 0.5]},
                      confidence=confidence),
        "c": NodeSpec("c", LMH, (), role="context", params={"": [0.4, 0.3, 0.3]},
                      confidence=confidence),
        "y": NodeSpec("y", YN, ("a", "b", "c"), role="symptom", cpt="noisy_or", leak=leak,
                      confidence=confidence,
                      params={"a": {"yes": links["a"]}, "b": {"yes": links["b"]},
                              "c": {"mid": links["c_mid"], "hi": links["c_hi"]}}),
    }
    return Calibration(nodes=nodes)


def diez_links(cal: Calibration, name: str = "y") -> dict[str, float]:
    node = cal.nodes[name]
    return {f"{p}={s}": float(v) for p, by in node.params.items() for s, v in by.items()}


# ---- the canonical parameterisation ------------------------------------------------------------
def test_hidden_parameters_expand_to_the_canonical_tables(shipped: Calibration) -> None:
    for name, node in shipped.nodes.items():
        model = node_params(shipped, name)
        np.testing.assert_allclose(model.table(model.initial()), shipped.cpt(name), atol=1e-12)
        if node.cpt == "table":
            assert isinstance(model, TableParams)
        else:
            assert isinstance(model, CanonicalParams) and model.kind == node.cpt
    # canonical_table against the loader's own expansion on made-up numbers
    leak = np.array([0.7, 0.2, 0.1])
    link = np.array([[1.0, 0.0, 0.0], [0.3, 0.5, 0.2]])  # off, on
    diez = np.diff(np.cumsum(leak) * np.cumsum(link[1]), prepend=0.0)
    np.testing.assert_allclose(
        canonical_table(leak, [link]),
        noisy_max_table([("off", "on")], 3, {0: {"on": diez}}, leak), atol=1e-12)
    np.testing.assert_allclose(
        canonical_table(np.array([0.9, 0.1]), [np.array([[1.0, 0.0], [0.6, 0.4]])]),
        noisy_or_table([("off", "on")], {0: {"on": 1 - 0.9 * 0.6}}, 0.1), atol=1e-12)


def test_noisy_or_links_are_recovered_from_complete_cases() -> None:
    truth = noisy_network({"a": 0.45, "b": 0.25, "c_mid": 0.20, "c_hi": 0.60}, leak=0.10)
    # far off, and one link at exactly the leak (c = 0): EM must still move it
    prior = noisy_network({"a": 0.25, "b": 0.50, "c_mid": 0.40, "c_hi": 0.30}, leak=0.25)
    cases = sample_cases(truth, 20_000, seed=5)
    fitted = DirichletRefit(prior, confidence=0.0).fit(cases).calibration_
    node = fitted.nodes["y"]
    assert node.cpt == "noisy_or"  # still a noisy-OR, in Díez parameters
    got, want = diez_links(fitted), diez_links(truth)
    assert max(abs(got[k] - want[k]) for k in want) < 0.02
    assert abs(float(node.leak) - 0.10) < 0.02


def test_the_activation_em_never_lowers_the_objective(shipped: Calibration) -> None:
    name = "stabilizer_overload"
    model = node_params(shipped, name)
    cases = sample_cases(shipped.with_table("training_age", [0.6, 0.3, 0.1]), 3_000, seed=1)
    codes = encode_cases(cases, shipped)
    family = [*shipped.nodes[name].parents, name]
    idx = [list(shipped.nodes).index(v) for v in family]
    counts = np.zeros(shipped.cpt(name).shape)
    np.add.at(counts, tuple(codes[:, idx].T), 1.0)

    def objective(params) -> float:
        return float((counts * np.log(model.table(params))).sum()) + model.log_prior(params)

    params = model.initial()
    values = [objective(params)]
    for _ in range(30):
        params = model.m_step(counts, params, max_iter=1)
        values.append(objective(params))
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values))
    assert values[-1] > values[0]


# ---- refits keep the form ----------------------------------------------------------------------
def test_refits_stay_noisy_or_and_noisy_max_in_the_saved_toml(shipped: Calibration) -> None:
    cases = with_missing(sample_cases(shipped, 500, seed=2),
                         {"technique_breakdown": 1.0, "onset": 0.3}, seed=3)
    for est in (DirichletRefit(shipped), EMRefit(shipped)):
        fitted = est.fit(cases).calibration_
        text = to_toml(fitted)
        again = parse_calibration(text)
        for name, node in shipped.nodes.items():
            assert again.nodes[name].cpt == node.cpt, name
            np.testing.assert_allclose(again.cpt(name), fitted.cpt(name), atol=1e-9)
        assert 'cpt = "noisy_max"' in text and 'cpt = "noisy_or"' in text
    # keep_form=False is the old behaviour: every learned node a full table (counting cannot
    # learn a family with technique_breakdown, never observed: those keep their form)
    flat = DirichletRefit(shipped, keep_form=False).fit(cases)
    assert set(flat.learned_) == set(shipped.nodes) - {"technique_breakdown",
                                                       "wrong_prime_mover", "lumbar_rounding"}
    assert {flat.calibration_.nodes[n].cpt for n in flat.learned_} == {"table"}


def test_em_learns_a_noisy_or_whose_parent_is_never_observed(shipped: Calibration) -> None:
    """technique_breakdown is latent: its noisy-OR and its children's links come from EM."""
    truth = shipped.with_table("grinding_reps", [0.3, 0.7])
    cases = with_missing(sample_cases(truth, 4_000, seed=4), {"technique_breakdown": 1.0},
                         seed=5)
    est = EMRefit(shipped).fit(cases)
    assert ("load_jump", "max_attempt", "grinding_reps", "technique_breakdown") \
        in est.hidden_families_
    assert est.calibration_.nodes["technique_breakdown"].cpt == "noisy_or"
    assert est.calibration_.nodes["wrong_prime_mover"].cpt == "noisy_or"
    objective = np.asarray(est.objective_history_)
    assert np.all(np.diff(objective) >= -1e-6 * abs(objective[0]))
    assert est.converged_


# ---- confidence after a refit ------------------------------------------------------------------
def test_each_refitted_column_is_worth_its_prior_plus_its_cases() -> None:
    cal = noisy_network({"a": 0.45, "b": 0.25, "c_mid": 0.20, "c_hi": 0.60}, leak=0.10,
                        confidence=8.0)
    cases = pd.DataFrame({"a": ["yes", "no", "no", "yes", "no"],
                          "b": ["no", "no", "yes", "no", "no"],
                          "c": ["lo", "hi", "lo", "mid", ""],  # the last row misses c
                          "y": ["yes", "no", "no", "yes", "yes"]})
    est = DirichletRefit(cal).fit(cases)
    # a root table: one column, prior 8 + 5 cases (every row knows a)
    assert est.column_confidence_["a"] == {"": 13.0}
    # the noisy-OR: the leak is informed by every complete row, a link by the rows where its
    # parent is in that state
    assert est.column_confidence_["y"] == {
        "leak": 12.0, "a=yes": 10.0, "b=yes": 9.0, "c=mid": 9.0, "c=hi": 9.0}
    node = est.calibration_.nodes["y"]
    assert dict(node.column_confidence) == est.column_confidence_["y"]
    assert node.confidence == 8.0  # the expert's setting is kept
    again = parse_calibration(to_toml(est.calibration_))
    assert dict(again.nodes["y"].column_confidence) == est.column_confidence_["y"]
    assert again.nodes["y"].confidence_of("a=yes") == 10.0
    assert again.nodes["y"].confidence_of("no-such-key") == 8.0


def test_per_column_confidence_is_the_prior_of_the_next_fit() -> None:
    """A column the file says is worth 1,000 cases hardly moves; its neighbour does."""
    cal = noisy_network({"a": 0.45, "b": 0.25, "c_mid": 0.20, "c_hi": 0.60}, leak=0.10)
    cal = cal.with_node(cal.nodes["a"].__class__(**{**vars(cal.nodes["a"]),
                                                     "column_confidence": {"": 1000.0}}))
    cases = pd.DataFrame({"a": ["yes"] * 50, "b": ["yes"] * 50})
    fitted = DirichletRefit(cal).fit(cases).calibration_
    assert abs(fitted.cpt("a")[1] - 0.4) < 0.05  # 1,000 prior cases against 50
    assert fitted.cpt("b")[1] > 0.9  # 10 prior cases against 50


def test_column_confidence_keys_are_checked_by_the_loader(shipped: Calibration) -> None:
    text = to_toml(shipped).replace(
        '[nodes.other_cause]\n', '[nodes.other_cause]\ncolumn_confidence = { "bogus=yes" = 3 }\n')
    with pytest.raises(CalibrationError, match=r"node 'other_cause' field 'column_confidence':"
                       r" unknown column 'bogus=yes'"):
        parse_calibration(text)
    bad = to_toml(shipped).replace(
        '[nodes.onset]\n', '[nodes.onset]\ncolumn_confidence = { "no,no,no" = -1 }\n')
    with pytest.raises(CalibrationError, match="must map columns to positive numbers"):
        parse_calibration(bad)
    # a file without per-column confidences loads as before
    assert all(not n.column_confidence for n in parse_calibration(to_toml(shipped))
               .nodes.values())


# ---- the estimator contract --------------------------------------------------------------------
def test_estimators_follow_the_contract(shipped: Calibration) -> None:
    est = EMRefit(shipped, max_iter=7, keep_form=False, inner_max_iter=3)
    params = est.get_params()
    assert params["keep_form"] is False and params["inner_max_iter"] == 3
    twin = clone(est)
    assert twin.get_params() == params and not hasattr(twin, "calibration_")
    with pytest.raises(UsageError, match="inner_max_iter"):
        EMRefit(shipped, inner_max_iter=0).fit(sample_cases(shipped, 10))
    with pytest.raises(UsageError, match="confidence for 'y'"):
        cal = noisy_network({"a": 0.4, "b": 0.3, "c_mid": 0.2, "c_hi": 0.5}, leak=0.1)
        DirichletRefit(cal, confidence={"y": -1}).fit(sample_cases(cal, 10))


def test_reweighted_moves_between_the_prior_and_the_fit(shipped: Calibration) -> None:
    cases = sample_cases(shipped.with_table("training_age", [0.7, 0.2, 0.1]), 2_000, seed=8)
    est = DirichletRefit(shipped).fit(cases)
    nodes = ["training_age", "stabilizer_overload"]
    none = est.reweighted(dict.fromkeys(nodes, 0.0))
    full = est.reweighted(dict.fromkeys(nodes, 1.0))
    for n in nodes:
        np.testing.assert_allclose(none.cpt(n), shipped.cpt(n), atol=1e-9)
        np.testing.assert_allclose(full.cpt(n), est.calibration_.cpt(n), atol=1e-6)
    half = est.reweighted({"training_age": 0.5})
    assert half.nodes["training_age"].column_confidence[""] == pytest.approx(15 + 1_000)
    draws = est.posterior_draws(50, seed=1, nodes=["training_age"])
    assert draws["training_age"].shape == (50, 3)
    np.testing.assert_allclose(draws["training_age"].mean(axis=0),
                               est.calibration_.cpt("training_age"), atol=0.01)
