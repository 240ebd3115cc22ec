"""Held-out evaluation: the metrics against scikit-learn and by hand, and k-fold comparison."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from calibration.schema import Calibration, NodeSpec
from model.learning.evaluate import (
    CauseMetrics,
    auc,
    binary_metrics,
    calibration_intercept,
    calibration_slope,
    cross_validate,
    evaluate_calibration,
    expected_calibration_error,
    fold_ids,
    reliability_curve,
)
from model.learning.refit import DirichletRefit, EMRefit
from model.learning.sampling import sample_cases, with_missing
from model.network_model import Model

YN = ("no", "yes")
LMH = ("lo", "mid", "hi")


def make_calibration(spec: dict, confidence: float = 10.0, roles: dict | None = None):
    roles = roles or {}
    nodes = {
        n: NodeSpec(name=n, states=tuple(s), parents=tuple(p),
                    role=roles.get(n, "symptom"), confidence=confidence)
        for n, (s, p, _) in spec.items()
    }
    cal = Calibration(nodes=nodes)
    for n, (_, _, table) in spec.items():
        cal = cal.with_table(n, np.asarray(table, dtype=float))
    return cal


SPEC = {
    "a": (YN, (), [0.6, 0.4]),
    "h": (YN, ("a",), [[0.8, 0.2], [0.35, 0.65]]),
    "g": (YN, (), [0.7, 0.3]),
    "x1": (LMH, ("h",), [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]),
    "x2": (YN, ("h", "g"), [[[0.85, 0.15], [0.5, 0.5]], [[0.25, 0.75], [0.1, 0.9]]]),
    "x3": (LMH, ("g",), [[0.5, 0.4, 0.1], [0.15, 0.35, 0.5]]),
}
ROLES = {"a": "context", "h": "cause", "g": "cause"}


@pytest.fixture(scope="module")
def truth() -> Calibration:
    return make_calibration(SPEC, roles=ROLES)


@pytest.fixture(scope="module")
def wrong(truth) -> Calibration:
    """Same structure, misleading numbers: h's children barely informative, g's prior off."""
    return (
        truth.with_table("x1", np.array([[0.4, 0.35, 0.25], [0.3, 0.35, 0.35]]))
        .with_table("h", np.array([[0.5, 0.5], [0.45, 0.55]]))
        .with_table("g", np.array([0.4, 0.6]))
    )


# ---- metrics ------------------------------------------------------------------------------


def test_scores_match_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    rng = np.random.default_rng(0)
    p = np.round(rng.uniform(0.02, 0.98, 800), 2)  # rounding makes ties for the AUC
    y = (rng.random(800) < p).astype(int)
    m = binary_metrics(y, p)
    assert m.log_loss == pytest.approx(log_loss(y, p), rel=1e-12)
    assert m.brier == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert m.auc == auc(y, p) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    x = np.log(p / (1 - p)).reshape(-1, 1)
    fit = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x, y)
    assert calibration_slope(y, p) == pytest.approx(fit.coef_[0, 0], abs=1e-5)
    assert m.calibration_slope == calibration_slope(y, p)


def test_calibration_intercept_and_slope_read_miscalibration():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 40_000)
    logit = np.log(p / (1 - p))
    honest = (rng.random(p.size) < p).astype(int)
    assert calibration_intercept(honest, p) == pytest.approx(0.0, abs=0.05)
    assert calibration_slope(honest, p) == pytest.approx(1.0, abs=0.05)
    # truth is half as extreme as the predictions: slope 0.5
    timid = (rng.random(p.size) < 1 / (1 + np.exp(-0.5 * logit))).astype(int)
    assert calibration_slope(timid, p) == pytest.approx(0.5, abs=0.05)
    # the predictions are too low on the log-odds scale by 1: intercept +1
    low = (rng.random(p.size) < 1 / (1 + np.exp(-(logit + 1)))).astype(int)
    assert calibration_intercept(low, p) == pytest.approx(1.0, abs=0.05)


def test_ece_and_reliability_by_hand():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.3, 0.35, 0.7, 0.9, 0.95])
    curve = reliability_curve(y, p, n_bins=2)
    assert [(pt.lower, pt.upper, pt.count) for pt in curve] == [(0.0, 0.5, 3), (0.5, 1.0, 3)]
    assert curve[0].mean_predicted == pytest.approx(0.25) and curve[0].observed == pytest.approx(
        1 / 3
    )
    assert curve[1].mean_predicted == pytest.approx(0.85) and curve[1].observed == pytest.approx(
        2 / 3
    )
    expected = 0.5 * abs(0.25 - 1 / 3) + 0.5 * abs(0.85 - 2 / 3)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(expected)
    assert reliability_curve([1], [1.0], n_bins=5)[0].upper == 1.0  # p = 1 lands in the last bin


def test_brier_skill_against_the_prior():
    y = np.array([1, 0, 0, 0])
    m = binary_metrics(y, [0.25] * 4, prior=0.25)
    assert m.brier_skill == pytest.approx(0.0)
    perfect = binary_metrics(y, [1.0, 0.0, 0.0, 0.0], prior=0.25)
    assert perfect.brier == 0.0 and perfect.brier_skill == 1.0 and perfect.auc == 1.0
    assert perfect.log_loss < 1e-12


def test_undefined_scores_are_nan():
    m = binary_metrics([0, 0, 0], [0.1, 0.2, 0.3], prior=0.0)
    assert math.isnan(m.auc) and math.isnan(m.calibration_slope)
    assert math.isnan(m.calibration_intercept) and math.isnan(m.brier_skill)
    separated = [0, 0, 1, 1]
    assert math.isnan(calibration_slope(separated, [0.1, 0.2, 0.8, 0.9]))
    assert math.isnan(calibration_slope([0, 1, 1], [0.3, 0.3, 0.3]))  # constant predictions
    with pytest.raises(ValueError):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        binary_metrics([0, 1], [0.1, 1.2])


def test_results_are_frozen():
    m = binary_metrics([0, 1, 1], [0.2, 0.6, 0.9])
    assert isinstance(m, CauseMetrics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.brier = 0.0  # type: ignore[misc]


def test_folds_are_seeded_and_balanced():
    f = fold_ids(103, 5, seed=3)
    assert sorted(np.bincount(f).tolist()) == [20, 20, 21, 21, 21]
    np.testing.assert_array_equal(f, fold_ids(103, 5, seed=3))
    assert not np.array_equal(f, fold_ids(103, 5, seed=4))
    with pytest.raises(ValueError):
        fold_ids(3, 5)


# ---- predictions and cross-validation ---------------------------------------------------------


def test_predictions_hide_every_cause(truth):
    """A case's adjudicated causes are what is predicted, never evidence for it: the
    prediction equals the model's posterior given the other findings only."""
    cases = pd.DataFrame({"a": ["yes"], "h": ["yes"], "g": ["no"], "x1": ["hi"]})
    scored = evaluate_calibration(truth, cases).predictions.set_index("cause")["p"]
    m = Model(truth)
    blind = m.posterior({"a": "yes", "x1": "hi"})
    assert scored["h"] == pytest.approx(blind["h"]["yes"], abs=1e-12)
    assert scored["g"] == pytest.approx(blind["g"]["yes"], abs=1e-12)
    assert 0 < scored["h"] < 1


def test_refit_beats_a_wrong_calibration_on_held_out_cases(truth, wrong):
    cases = sample_cases(truth, 3_000, seed=1)
    cases = with_missing(cases, {"h": 0.5, "g": 0.6, "x3": 0.2}, seed=2)
    cmp = cross_validate(cases, EMRefit(wrong, tol=1e-5), n_splits=3, seed=7)
    assert cmp.n_cases == 3_000 and set(cmp.after.metrics) == {"h", "g"}
    for cause in ("h", "g"):
        before, after = cmp.before.metrics[cause], cmp.after.metrics[cause]
        assert after.n == before.n == int(cases[cause].notna().sum())
        assert after.log_loss < before.log_loss
        assert after.brier < before.brier
        assert after.brier_skill > 0
        assert abs(after.calibration_intercept) < 0.3
        assert after.ece < before.ece
    # the same cases and folds behind both
    cols = ["row", "fold", "cause", "y", "prior"]
    pd.testing.assert_frame_equal(cmp.before.predictions[cols], cmp.after.predictions[cols])
    # the Brier-skill prior is the base rate of the training folds
    preds = cmp.after.predictions
    one = preds[(preds["fold"] == 0) & (preds["cause"] == "h")]
    train = preds[(preds["fold"] != 0) & (preds["cause"] == "h")]
    assert one["prior"].unique().tolist() == pytest.approx([train["y"].mean()])
    table = cmp.table()
    assert len(table) == 2 * 7
    assert set(table.loc[table["metric"] == "log_loss", "better"]) == {"after"}
    assert "3-fold" in str(cmp)


def test_cross_validation_accepts_the_dirichlet_estimator(truth, wrong):
    cases = sample_cases(truth, 1_000, seed=5)
    cmp = cross_validate(cases, DirichletRefit(wrong), n_splits=4, seed=0, causes=["h"])
    assert set(cmp.after.metrics) == {"h"}
    assert cmp.after.metrics["h"].log_loss < cmp.before.metrics["h"].log_loss
    with pytest.raises(ValueError, match="adjudicated"):
        cross_validate(cases.drop(columns=["h", "g"]), base=truth)


def test_the_true_calibration_scores_best_on_fresh_cases(truth, wrong):
    cases = sample_cases(truth, 2_000, seed=9)
    good = evaluate_calibration(truth, cases)
    bad = evaluate_calibration(wrong, cases)
    for cause in ("h", "g"):
        assert good.metrics[cause].log_loss < bad.metrics[cause].log_loss
        assert good.metrics[cause].calibration_slope == pytest.approx(1.0, abs=0.2)
