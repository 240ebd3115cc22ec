"""Recovery you can see: from a known network — the shipped default with perturbed numbers
that still passes every behaviour check — sample cases and refit the *default* from them, as
a clinic would (the service's refit: canonical forms kept, orderings kept where the cases are
thin).

Targets of issue 11 and what five seeds gave here (seed 0 is asserted):
* weighted mean absolute error of the tables (:func:`weighted_mae`) at 2,000 complete cases
  ≤ 0.02 — measured 0.012-0.016;
* the same with 20 % of the symptom answers blank (EM) ≤ 0.03 — measured 0.011-0.014;
* noisy-OR link probabilities at 3,000 complete cases: mean absolute error ≤ 0.03 — measured
  0.013-0.025. The largest single link error is 0.05-0.11: a link whose parent state only
  ~450 of the 3,000 lifters have is not pinned down to 0.03 by any estimator (the maximum
  likelihood fit lands as far), so "every link within 0.03" is NOT met and is not asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from calibration.loader import load_calibration
from calibration.schema import Calibration
from model.learning.recovery import column_weights, link_errors, perturbed, weighted_mae
from model.learning.sampling import sample_cases, with_missing
from model.service.behaviour import CheckEvaluator
from model.service.refit import refit


@pytest.fixture(scope="module")
def base() -> Calibration:
    return load_calibration()


@pytest.fixture(scope="module")
def truth(base: Calibration) -> Calibration:
    evaluator = CheckEvaluator(base)

    def plausible(cal: Calibration) -> bool:
        tables = {n: cal.cpt(n) for n in cal.nodes}
        return bool((evaluator.gaps(evaluator.values(tables))[0] > 0).all())

    return perturbed(base, 0, accept=plausible)


def symptoms(cal: Calibration) -> list[str]:
    return [n for n, node in cal.nodes.items() if node.role == "symptom"]


def test_the_truth_is_far_from_the_default_and_keeps_its_forms(base, truth) -> None:
    assert weighted_mae(base, truth) > 0.05
    assert {n: node.cpt for n, node in truth.nodes.items()} == {
        n: node.cpt for n, node in base.nodes.items()}
    assert np.mean(list(link_errors(base, truth).values())) > 0.05


def test_2000_complete_cases_recover_the_tables(base, truth) -> None:
    result = refit(base, sample_cases(truth, 2_000, seed=0), folds=0)
    assert result.method == "dirichlet"
    error = weighted_mae(result.calibration, truth, column_weights(truth))
    assert error <= 0.02, error
    assert error < 0.3 * weighted_mae(base, truth)


def test_2000_cases_with_a_fifth_of_the_symptoms_blank(base, truth) -> None:
    cases = with_missing(sample_cases(truth, 2_000, seed=0),
                         dict.fromkeys(symptoms(base), 0.2), seed=100)
    result = refit(base, cases, folds=0)
    assert result.method == "em" and result.converged
    error = weighted_mae(result.calibration, truth)
    assert error <= 0.03, error


def test_noisy_or_links_at_3000_cases(base, truth) -> None:
    result = refit(base, sample_cases(truth, 3_000, seed=0), folds=0)
    errors = link_errors(result.calibration, truth)  # refused if a node lost its form
    assert len(errors) == 21  # 4 noisy-OR nodes: 17 links and 4 leaks
    assert np.mean(list(errors.values())) <= 0.03, errors
    assert max(errors.values()) < 0.1


def test_more_cases_recover_better(base, truth) -> None:
    small = weighted_mae(refit(base, sample_cases(truth, 100, seed=1), folds=0).calibration,
                         truth)
    large = weighted_mae(refit(base, sample_cases(truth, 3_000, seed=1), folds=0).calibration,
                         truth)
    assert large < 0.5 * small
