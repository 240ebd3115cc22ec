"""Our engine against two independent implementations, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from peers import pyagrum_marginals, random_network, to_pyagrum

from model.errors import ImpossibleEvidenceError
from model.inference.backends import CompiledBackend
from model.inference.pgmpy_adapter import PgmpyBackend

TOL = 1e-9


def random_evidence(rng, variables, cpts, soft_share=0.3, max_nodes=6):
    """Evidence sampled from the network itself (so it is possible), some of it soft."""
    names = list(variables)
    k = int(rng.integers(0, min(max_nodes, len(names)) + 1))
    chosen = rng.choice(names, size=k, replace=False)
    hard, soft = {}, {}
    for n in chosen:
        if rng.random() < soft_share:
            soft[n] = rng.uniform(0.05, 1.0, size=len(variables[n]))
        else:
            hard[n] = variables[n][int(rng.integers(len(variables[n])))]
    return hard, soft


def likelihoods(variables, hard, soft):
    out = {n: np.asarray(v, dtype=float) for n, v in soft.items()}
    for n, s in hard.items():
        out[n] = (np.array(variables[n]) == s).astype(float)
    return out


def assert_close(ours, theirs, variables):
    for n in variables:
        np.testing.assert_allclose(ours[n], theirs[n], atol=TOL, rtol=0, err_msg=n)


def test_default_network_matches_pyagrum_on_500_evidence_sets(default_model):
    m = default_model
    bn = to_pyagrum(m.variables, m.parents, m.cpts)
    rng = np.random.default_rng(1)
    checked = 0
    while checked < 500:
        hard, soft = random_evidence(rng, m.variables, m.cpts)
        theirs = pyagrum_marginals(bn, hard, soft)
        ours = m.backend.query(likelihoods(m.variables, hard, soft))
        assert_close({n: v[0] for n, v in ours.marginals.items()}, theirs, m.variables)
        checked += 1


def test_default_network_matches_pgmpy_on_120_evidence_sets(default_model):
    # pgmpy takes ~60 ms an evidence set here; pyAgrum covers 500 above
    m = default_model
    ref = PgmpyBackend(m.variables, m.parents, m.cpts)
    rng = np.random.default_rng(2)
    rows = [random_evidence(rng, m.variables, m.cpts) for _ in range(120)]
    liks = [likelihoods(m.variables, h, s) for h, s in rows]
    from model.inference.batching import stack_rows

    ours = m.backend.query(stack_rows(liks, m.cards))  # all in one batch
    theirs = ref.query(stack_rows(liks, m.cards))
    for n in m.variables:
        np.testing.assert_allclose(ours.marginals[n], theirs.marginals[n], atol=TOL, rtol=0)


def test_fifty_random_networks_match_pyagrum_and_pgmpy():
    rng = np.random.default_rng(3)
    for _ in range(50):
        variables, parents, cpts = random_network(rng)
        ours = CompiledBackend(variables, parents, cpts)
        bn = to_pyagrum(variables, parents, cpts)
        for _ in range(4):
            hard, soft = random_evidence(rng, variables, cpts)
            try:
                res = ours.query(likelihoods(variables, hard, soft))
            except ImpossibleEvidenceError:
                continue
            assert_close({n: v[0] for n, v in res.marginals.items()},
                         pyagrum_marginals(bn, hard, soft), variables)
        # pgmpy is slow: one evidence set per network is enough to tie the three together
        if len(variables) <= 25:
            hard, soft = random_evidence(rng, variables, cpts, soft_share=0.0, max_nodes=3)
            lik = likelihoods(variables, hard, soft)
            try:
                res = ours.query(lik)
            except ImpossibleEvidenceError:
                continue
            ref = PgmpyBackend(variables, parents, cpts).query(lik)
            for n in variables:
                np.testing.assert_allclose(res.marginals[n], ref.marginals[n], atol=TOL, rtol=0)


def test_batched_parameter_overrides_equal_separate_networks(default_model):
    """A batch of parameter draws equals compiling each drawn network on its own."""
    m = default_model
    draws = {n: t[:5] for n, t in m.draws.items()}
    ev = likelihoods(m.variables, {"low_back_soreness": "mild", "bracing_loss": "often"}, {})
    batched = m.backend.query(ev, draws)
    for b in range(5):
        single = CompiledBackend(m.variables, m.parents, {n: t[b] for n, t in draws.items()})
        res = single.query(ev)
        for n in m.variables:
            np.testing.assert_allclose(batched.marginals[n][b], res.marginals[n][0], atol=TOL)


def test_joint_of_causes_matches_pyagrum(default_model):
    m = default_model
    bn = to_pyagrum(m.variables, m.parents, m.cpts)
    import pyagrum as gum

    ie = gum.LazyPropagation(bn)
    ie.addJointTarget(set(m.causes))
    ev = {"onset": "during_lift", "training_age": "trained"}
    ie.setEvidence(ev)
    ie.makeInference()
    theirs = ie.jointPosterior(set(m.causes))
    axes = list(reversed(theirs.names))
    theirs = np.transpose(theirs.toarray(), [axes.index(c) for c in m.causes])
    ours = m.backend.query(likelihoods(m.variables, ev, {})).joints[tuple(m.causes)][0]
    np.testing.assert_allclose(ours, theirs, atol=TOL)


def test_impossible_evidence_raises_not_nan():
    variables = {"a": ["x", "y"], "b": ["u", "v"]}
    parents = {"a": [], "b": ["a"]}
    cpts = {"a": np.array([1.0, 0.0]), "b": np.array([[1.0, 0.0], [0.5, 0.5]])}
    engine = CompiledBackend(variables, parents, cpts)
    with pytest.raises(ImpossibleEvidenceError, match="impossible"):
        engine.query({"b": np.array([0.0, 1.0])})
    res = engine.query({"b": np.array([[0.0, 1.0], [1.0, 0.0]])}, raise_on_impossible=False)
    assert np.isnan(res.marginals["a"][0]).all()
    np.testing.assert_allclose(res.marginals["a"][1], [1.0, 0.0])


def test_disconnected_network_is_fine():
    variables = {"a": ["x", "y"], "b": ["u", "v", "w"]}
    parents = {"a": [], "b": []}
    cpts = {"a": np.array([0.3, 0.7]), "b": np.array([0.2, 0.3, 0.5])}
    res = CompiledBackend(variables, parents, cpts).query({"a": np.array([1.0, 0.0])})
    np.testing.assert_allclose(res.marginals["b"][0], [0.2, 0.3, 0.5])
    np.testing.assert_allclose(res.evidence_probability, [0.3])
