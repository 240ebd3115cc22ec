"""The engine against pyAgrum on bnlearn networks, to 1e-9 (the fast part of the sweep;
``benchmarks/bench_networks.py`` runs every network)."""

from __future__ import annotations

import numpy as np
import pytest
from networks import (
    bnlearn_networks,
    likelihood_vectors,
    max_difference,
    sample_evidence,
)
from peers import pyagrum_marginals, to_pyagrum

from model.inference import CompiledNetwork, ImpossibleEvidenceError, load_network

TOL = 1e-9
FAST = ["asia", "sachs", "child", "insurance", "alarm", "water", "hailfinder", "win95pts"]


@pytest.fixture(scope="module", params=FAST)
def bnlearn(request):
    net = load_network(bnlearn_networks()[request.param])
    return request.param, net, to_pyagrum(net.variables, net.parents, net.cpts)


def test_random_evidence_matches_pyagrum(bnlearn):
    """A fifth of the nodes observed (sampled from the network), some of it soft."""
    name, net, bn = bnlearn
    rng = np.random.default_rng(sum(map(ord, name)))
    for trial in range(4):
        hard = sample_evidence(rng, net.variables, net.parents, net.cpts, share=0.2)
        soft = {}
        if trial % 2:  # turn a few findings into soft evidence
            for n in list(hard)[:3]:
                soft[n] = rng.uniform(0.05, 1.0, len(net.variables[n]))
                del hard[n]
        ours = net.engine.query(likelihood_vectors(net.variables, hard, soft)).marginals
        theirs = pyagrum_marginals(bn, hard, soft)
        assert max_difference({n: m[0] for n, m in ours.items()}, theirs) <= TOL, name


def test_sparse_tables_and_near_impossible_evidence(bnlearn):
    """Evidence on nodes whose tables are full of zeros (deterministic links), and soft
    evidence that rules states out: the zeros must propagate exactly, not as NaN."""
    _name, net, bn = bnlearn
    rng = np.random.default_rng(7)
    zeros = sorted(net.variables, key=lambda n: -float((net.cpts[n] == 0).mean()))
    hard = sample_evidence(rng, net.variables, net.parents, net.cpts, share=0.3)
    soft = {}
    for n in zeros[:3]:
        if n in hard:
            continue
        w = np.ones(len(net.variables[n]))
        w[rng.integers(len(w))] = 0.0  # one state ruled out
        soft[n] = w
    try:
        ours = net.engine.query(likelihood_vectors(net.variables, hard, soft)).marginals
    except ImpossibleEvidenceError:
        theirs = None
        with pytest.raises(Exception):  # noqa: B017 (pyAgrum's own error type)
            theirs = pyagrum_marginals(bn, hard, soft)
        return
    theirs = pyagrum_marginals(bn, hard, soft)
    assert max_difference({n: m[0] for n, m in ours.items()}, theirs) <= TOL


def test_batch_of_rows_equals_one_query_per_row(bnlearn):
    """Rows in one batch (different nodes observed per row) equal separate queries."""
    _name, net, _ = bnlearn
    rng = np.random.default_rng(11)
    rows = [sample_evidence(rng, net.variables, net.parents, net.cpts) for _ in range(5)]
    batch: dict[str, np.ndarray] = {}
    for n, states in net.variables.items():
        if any(n in r for r in rows):
            batch[n] = np.array([
                (np.array(states) == r[n]).astype(float) if n in r else np.ones(len(states))
                for r in rows
            ])
    res = net.engine.query(batch)
    for b, r in enumerate(rows):
        single = net.engine.query(likelihood_vectors(net.variables, r)).marginals
        for n in net.variables:
            np.testing.assert_allclose(res.marginals[n][b], single[n][0], atol=TOL, rtol=0)
        assert res.evidence_probability[b] == pytest.approx(
            net.probability_of_evidence(r), rel=1e-9
        )


def test_joint_sets_with_observed_members_match_pyagrum():
    net = load_network(bnlearn_networks()["asia"])
    bn = to_pyagrum(net.variables, net.parents, net.cpts)
    js = ("tub", "lung", "either")
    eng = CompiledNetwork(net.variables, net.parents, net.cpts, joint_sets=[js])
    import pyagrum as gum

    for ev in ({"xray": "yes"}, {"xray": "yes", "lung": "yes"}, {"dysp": "no", "smoke": "yes"}):
        ie = gum.LazyPropagation(bn)
        ie.addJointTarget(set(js))
        ie.setEvidence(ev)
        ie.makeInference()
        theirs = ie.jointPosterior(set(js))
        axes = list(reversed(theirs.names))
        theirs = np.transpose(theirs.toarray(), [axes.index(v) for v in js])
        ours = eng.query(likelihood_vectors(net.variables, ev)).joints[js][0]
        np.testing.assert_allclose(ours, theirs, atol=TOL, rtol=0)


def test_the_check_can_fail():
    """A wrong table is caught: the comparison is not vacuous."""
    net = load_network(bnlearn_networks()["asia"])
    bn = to_pyagrum(net.variables, net.parents, net.cpts)
    cpts = dict(net.cpts)
    cpts["lung"] = cpts["lung"][..., ::-1].copy()
    wrong = CompiledNetwork(net.variables, net.parents, cpts)
    ev = {"dysp": "yes"}
    ours = wrong.query(likelihood_vectors(net.variables, ev)).marginals
    assert max_difference({n: m[0] for n, m in ours.items()}, pyagrum_marginals(bn, ev)) > 1e-3


def test_coded_batches_equal_likelihood_batches(bnlearn, monkeypatch):
    """The integer-code fast path (blocks, padding, reused buffers, one normalisation per
    component; or row by row on wide networks) gives what the likelihood path gives."""
    import model.inference.engine as engine_module

    name, net, _ = bnlearn
    rng = np.random.default_rng(13)
    eng = net.engine
    rows = 1040  # more than one block, and a padded last block
    codes = {}
    for n in list(net.variables)[:: 3]:
        sample = [sample_evidence(rng, net.variables, net.parents, net.cpts, 1.0)[n]
                  for _ in range(4)]  # states the network can produce
        idx = np.array([net.variables[n].index(s) for s in sample])
        codes[n] = np.where(rng.random(rows) < 0.5, -1, idx[rng.integers(4, size=rows)])
    if name in ("water", "insurance"):  # the row-by-row path (forced on insurance), sampled
        codes = {n: c[:80] for n, c in codes.items()}
        monkeypatch.setattr(engine_module, "ROW_BY_ROW", 0)
    fast = eng.query_codes(codes, raise_on_impossible=False)
    size = len(next(iter(codes.values())))
    # an independent reference: single-row queries (evidence sliced out, no batch code)
    sample = range(0, size, max(1, size // 30))
    for r in sample:
        one = eng.query({n: np.eye(len(net.variables[n]))[c[r]] for n, c in codes.items()
                         if c[r] >= 0}, raise_on_impossible=False)
        got = np.concatenate([fast.marginals[n][r] for n in net.variables])
        want = np.concatenate([one.marginals[n][0] for n in net.variables])
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=f"row {r}")
        assert fast.evidence_probability[r] == pytest.approx(
            one.evidence_probability[0], rel=1e-9, abs=0
        )


@pytest.mark.parametrize("rule", ["fill", "weight", "weighted-fill", "weighted-fill-per-state"])
def test_every_triangulation_rule_gives_the_same_answers(rule, monkeypatch):
    """Each elimination rule alone (the engine keeps whichever tree is smallest)."""
    import model.inference.engine as engine_module

    monkeypatch.setattr(engine_module, "TRIANGULATIONS", (rule,))
    monkeypatch.setattr(engine_module, "WEIGHTED_FROM", float("inf"))
    net = load_network(bnlearn_networks()["water"])
    bn = to_pyagrum(net.variables, net.parents, net.cpts)
    rng = np.random.default_rng(5)
    for share in (0.0, 0.2):
        hard = sample_evidence(rng, net.variables, net.parents, net.cpts, share=share)
        ours = net.engine.query(likelihood_vectors(net.variables, hard)).marginals
        theirs = pyagrum_marginals(bn, hard)
        assert max_difference({n: m[0] for n, m in ours.items()}, theirs) <= TOL
