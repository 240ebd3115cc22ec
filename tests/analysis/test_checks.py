"""The default calibration keeps every ordering; a calibration that breaks one is caught."""

from __future__ import annotations

from dataclasses import replace

import model
from model.analysis.checks import run_checks


def test_default_passes_every_check(default_model):
    results = run_checks(default_model)
    assert len(results) >= 12
    assert all(r.passed for r in results), [str(r) for r in results if not r.passed]


def test_check_values_match_direct_queries(default_model):
    m = default_model
    results = run_checks(m)[: len(m.calibration.checks)]  # the decision checks come after
    for check, result in zip(m.calibration.checks, results, strict=True):
        for item, value in zip(check.items, result.values, strict=True):
            node, state = item.target
            assert abs(m.probability(f"{node}={state}", dict(item.evidence)) - value) < 1e-12


def test_breaking_an_ordering_names_the_check(default_model):
    cal = default_model.calibration
    node = cal.nodes["wrong_prime_mover"]
    # make bracing irrelevant to the wrong prime mover: "often" no longer beats "sometimes"
    params = dict(node.params)
    params["bracing_loss"] = {"sometimes": 0.3, "often": 0.3}
    broken = replace(cal, nodes={**cal.nodes, "wrong_prime_mover": replace(node, params=params)})
    failed = {r.id for r in run_checks(model.Model(broken)) if not r.passed}
    assert "wrong_mover_by_bracing" in failed
    assert "wrong_mover_by_pulling" not in failed
