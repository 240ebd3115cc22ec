"""Tiny probabilities never come back as 0.5 or NaN: either the exact posterior (messages
and tables are rescaled, P(e) kept in log space) or ImpossibleEvidenceError (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from peers import pyagrum_marginals, to_pyagrum

from model.inference import CompiledNetwork, ImpossibleEvidenceError

TOL = 1e-9


def star(k: int, tiny: float, prior: tuple[float, float] = (0.5, 0.5)):
    """A hidden two-state node ``h`` with ``k`` observed children, each finding tiny."""
    variables = {"h": ["no", "yes"], **{f"c{i}": ["seen", "not"] for i in range(k)}}
    parents = {"h": [], **{f"c{i}": ["h"] for i in range(k)}}
    cpts = {"h": np.array(prior)}
    for i in range(k):
        cpts[f"c{i}"] = np.array([[tiny, 1 - tiny], [2 * tiny, 1 - 2 * tiny]])
    return variables, parents, cpts


def exact_star(k: int, prior=(0.5, 0.5)) -> np.ndarray:
    w = np.array([prior[0], prior[1] * 2.0**k])
    return w / w.sum()


def seen(k: int) -> dict[str, np.ndarray]:
    return {f"c{i}": np.array([1.0, 0.0]) for i in range(k)}


def test_tables_with_1e_300_entries_match_pyagrum():
    variables, parents, cpts = star(1, 1e-300)
    net = CompiledNetwork(variables, parents, cpts)
    res = net.query(seen(1))
    theirs = pyagrum_marginals(to_pyagrum(variables, parents, cpts), {"c0": "seen"})
    np.testing.assert_allclose(res.marginals["h"][0], theirs["h"], atol=TOL, rtol=0)
    np.testing.assert_allclose(res.marginals["h"][0], exact_star(1), atol=TOL)
    assert res.evidence_probability[0] == pytest.approx(1.5e-300, rel=1e-9)


def test_products_below_double_range_are_still_exact():
    """Five 1e-300 findings: P(e) ~ 1e-1500 is not a double, the posterior still is."""
    variables, parents, cpts = star(5, 1e-300)
    res = CompiledNetwork(variables, parents, cpts).query(seen(5))
    np.testing.assert_allclose(res.marginals["h"][0], exact_star(5), atol=TOL)
    assert np.isfinite(res.marginals["h"]).all()


def test_soft_evidence_with_tiny_likelihoods_matches_pyagrum():
    variables = {"a": ["x", "y"], "b": ["u", "v", "w"]}
    parents = {"a": [], "b": ["a"]}
    cpts = {"a": np.array([0.3, 0.7]), "b": np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])}
    net = CompiledNetwork(variables, parents, cpts)
    bn = to_pyagrum(variables, parents, cpts)
    for lik in ([1e-300, 2e-300], [1e-320, 1e-300], [1e-300, 0.0]):
        res = net.query({"a": np.array(lik)})
        theirs = pyagrum_marginals(bn, soft={"a": np.array(lik) / max(lik)})
        for n in variables:
            np.testing.assert_allclose(res.marginals[n][0], theirs[n], atol=TOL, rtol=0)
    res = net.query({"b": np.array([1e-300, 2e-300, 0.0])})
    theirs = pyagrum_marginals(bn, soft={"b": np.array([0.5, 1.0, 0.0])})
    np.testing.assert_allclose(res.marginals["a"][0], theirs["a"], atol=TOL, rtol=0)


def test_a_1e_320_probability_gives_the_right_certain_answer():
    """The denormal prior is the only way to explain the finding: posterior is certain."""
    variables = {"a": ["rare", "common"], "b": ["on", "off"]}
    parents = {"a": [], "b": ["a"]}
    cpts = {"a": np.array([1e-320, 1.0]), "b": np.array([[1.0, 0.0], [0.0, 1.0]])}
    res = CompiledNetwork(variables, parents, cpts).query({"b": np.array([1.0, 0.0])})
    np.testing.assert_allclose(res.marginals["a"][0], [1.0, 0.0], atol=TOL)
    assert res.evidence_probability[0] > 0


def test_probability_zero_raises_and_nan_only_when_asked():
    variables, parents, cpts = star(2, 0.0)
    net = CompiledNetwork(variables, parents, cpts)
    with pytest.raises(ImpossibleEvidenceError):
        net.query(seen(2))
    ev = {"c0": np.array([[1.0, 0.0], [0.0, 1.0]]), "c1": np.array([[1.0, 0.0], [0.0, 1.0]])}
    res = net.query(ev, raise_on_impossible=False)
    assert np.isnan(res.marginals["h"][0]).all()
    np.testing.assert_allclose(res.marginals["h"][1], [0.5, 0.5], atol=TOL)
    assert not np.isnan(res.marginals["h"][1]).any()


def test_never_a_silent_half():
    """Whatever the size of the numbers, the answer is exact or an error, never 0.5."""
    for tiny in (1e-100, 1e-200, 1e-300, 1e-310, 1e-320):
        for k in (1, 3, 8):
            variables, parents, cpts = star(k, tiny, prior=(0.9, 0.1))
            try:
                res = CompiledNetwork(variables, parents, cpts).query(seen(k))
            except ImpossibleEvidenceError:
                continue
            # with 2*tiny the ratio is 2 only while 2*tiny is exact (not for denormals)
            ratio = cpts["c0"][1, 0] / cpts["c0"][0, 0]
            w = np.array([0.9, 0.1 * ratio**k])
            np.testing.assert_allclose(res.marginals["h"][0], w / w.sum(), rtol=1e-9,
                                       err_msg=f"tiny={tiny}, k={k}")
