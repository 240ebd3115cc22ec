"""Learning numbers from cases: counting, Dirichlet refit, EM with hidden causes, sampling.

Recovery tolerances (mean / largest absolute error over every parameter of every table):
* Dirichlet refit of the shipped network (18 nodes, 222 parameters), base = truth mixed 50/50
  with random columns, confidence 1: error at 20 000 cases < 0.02 and under half the error
  at 1 000 cases (measured: ~0.05 -> ~0.014; rare parent configurations dominate).
* EM with the cause hidden in every one of 20 000 cases (small network, four observed
  children): mean error < 0.015, largest < 0.06 (measured: ~0.006 / ~0.03).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from calibration.loader import load_calibration, parse_calibration
from calibration.schema import Calibration, NodeSpec
from calibration.store import NewCase
from calibration.writer import to_toml
from model.evidence import EvidenceError
from model.inference.engine import ImpossibleEvidenceError
from model.learn import (
    DirichletRefit,
    EMRefit,
    case_frame,
    encode_cases,
    moved_parameters,
)
from model.pgmpy_adapter import cpd_table
from model.sampling import sample_cases, with_missing

YN = ("no", "yes")
LMH = ("lo", "mid", "hi")


def make_calibration(spec: dict, confidence: float = 10.0, roles: dict | None = None):
    """A calibration from ``{node: (states, parents, table)}`` (tables in columns layout)."""
    roles = roles or {}
    nodes = {
        n: NodeSpec(
            name=n,
            states=tuple(s),
            parents=tuple(p),
            role=roles.get(n, "symptom"),
            confidence=confidence,
        )
        for n, (s, p, _) in spec.items()
    }
    cal = Calibration(nodes=nodes)
    for n, (_, _, table) in spec.items():
        cal = cal.with_table(n, np.asarray(table, dtype=float))
    return cal


def perturbed(truth: Calibration, mix: float, seed: int, confidence: float | None = None):
    """Every column mixed with a random distribution: ``(1 - mix)·truth + mix·random``."""
    rng = np.random.default_rng(seed)
    out = truth
    for n, node in truth.nodes.items():
        t = truth.cpt(n)
        u = rng.dirichlet(np.ones(node.card), size=t.shape[:-1])
        changes = {} if confidence is None else {"confidence": confidence}
        out = out.with_table(n, (1 - mix) * t + mix * u, **changes)
    return out


def errors(a: Calibration, b: Calibration) -> tuple[float, float]:
    diffs = np.concatenate([np.abs(a.cpt(n) - b.cpt(n)).ravel() for n in a.nodes])
    return float(diffs.mean()), float(diffs.max())


# a small network with one cause and four observed children, so the cause is identifiable
HIDDEN_SPEC = {
    "a": (YN, (), [0.6, 0.4]),
    "h": (YN, ("a",), [[0.8, 0.2], [0.35, 0.65]]),
    "x1": (LMH, ("h",), [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]),
    "x2": (YN, ("h",), [[0.85, 0.15], [0.25, 0.75]]),
    "x3": (LMH, ("h",), [[0.5, 0.4, 0.1], [0.15, 0.35, 0.5]]),
    "x4": (YN, ("h", "a"), [[[0.9, 0.1], [0.7, 0.3]], [[0.4, 0.6], [0.2, 0.8]]]),
}
ROLES = {"a": "context", "h": "cause"}


@pytest.fixture(scope="module")
def hidden_truth() -> Calibration:
    return make_calibration(HIDDEN_SPEC, roles=ROLES)


@pytest.fixture(scope="module")
def shipped() -> Calibration:
    return load_calibration()


# ---- sampling -------------------------------------------------------------------------------


def test_sampler_reproduces_the_joint_of_a_family(hidden_truth):
    cases = sample_cases(hidden_truth, 60_000, seed=3)
    assert list(cases.columns) == list(hidden_truth.nodes)
    assert sample_cases(hidden_truth, 500, seed=4).equals(sample_cases(hidden_truth, 500, seed=4))
    assert not sample_cases(hidden_truth, 500, seed=4).equals(sample_cases(hidden_truth, 500, 5))
    # exact P(a, h, x4) from the tables against the sampled frequencies
    pa = np.asarray(HIDDEN_SPEC["a"][2])
    ph = np.asarray(HIDDEN_SPEC["h"][2])  # (a, h)
    px4 = np.asarray(HIDDEN_SPEC["x4"][2])  # (h, a, x4)
    exact = np.einsum("a,ah,hax->ahx", pa, ph, px4)
    freq = np.zeros_like(exact)
    codes = encode_cases(cases, hidden_truth)
    np.add.at(freq, (codes[:, 0], codes[:, 1], codes[:, 5]), 1.0)
    freq /= len(cases)
    assert np.abs(freq - exact).max() < 0.01


# ---- encoding cases --------------------------------------------------------------------------


def test_unknown_cells_and_bad_states(hidden_truth):
    frame = pd.DataFrame({"a": ["yes", "", None, " no "], "x1": ["lo", np.nan, "hi", "mid"]})
    codes = encode_cases(frame, hidden_truth)
    assert codes[:, 0].tolist() == [1, -1, -1, 0]
    assert codes[:, 2].tolist() == [0, -1, 2, 1]
    assert (codes[:, [1, 3, 4, 5]] == -1).all()
    with pytest.raises(EvidenceError, match=r"column 'x1'.*'maybe'.*lo, mid, hi"):
        encode_cases(pd.DataFrame({"x1": ["lo", "maybe"]}), hidden_truth)
    with pytest.raises(EvidenceError, match="unknown column"):
        encode_cases(pd.DataFrame({"x9": ["lo"]}), hidden_truth)


def test_store_records_map_adjudicated_causes_and_keep_the_outcome_aside(hidden_truth):
    records = [
        NewCase(evidence={"a": "yes", "x1": "hi"}, adjudicated={"h": "yes"}, outcome="no"),
        NewCase(evidence={"x2": "no"}, adjudicated={}, outcome=None),
        NewCase(evidence={"h": "no"}, adjudicated={"h": "yes"}),
    ]
    frame = case_frame(records, hidden_truth)
    assert list(frame.columns) == [*hidden_truth.nodes, "outcome"]
    assert frame.loc[0, "h"] == "yes" and frame.loc[0, "outcome"] == "no"
    assert frame.loc[2, "h"] == "yes"  # the adjudication wins over evidence on the node
    assert pd.isna(frame.loc[1, "h"]) and pd.isna(frame.loc[0, "x4"])
    # the outcome never reaches any table: fitting with or without it is identical
    with_outcome = DirichletRefit(hidden_truth).fit(frame).calibration_
    without = DirichletRefit(hidden_truth).fit(frame.drop(columns="outcome")).calibration_
    for n in hidden_truth.nodes:
        np.testing.assert_array_equal(with_outcome.cpt(n), without.cpt(n))
    # the CSV form `cause:<node>` is evidence on the node and wins over a plain value
    csv_like = pd.DataFrame({"h": ["no", "no"], "cause:h": ["yes", ""]})
    assert encode_cases(csv_like, hidden_truth)[:, 1].tolist() == [1, 0]


# ---- Dirichlet refit --------------------------------------------------------------------------


def test_dirichlet_counts_and_posterior_mean_by_hand():
    cal = make_calibration(
        {"a": (YN, (), [0.5, 0.5]), "b": (LMH, ("a",), [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])},
        confidence=4.0,
    )
    cases = pd.DataFrame(
        {
            "a": ["no", "no", "no", "yes", "", "yes"],
            "b": ["lo", "lo", "hi", "mid", "lo", None],
        }
    )
    est = DirichletRefit(cal).fit(cases)
    np.testing.assert_array_equal(est.counts_["a"], [3, 2])
    # row 4 misses the parent and row 5 the node: neither counts for b's family
    np.testing.assert_array_equal(est.counts_["b"], [[2, 0, 1], [0, 1, 0]])
    b = est.calibration_.cpt("b")
    np.testing.assert_allclose(b[0], (4 * np.array([0.2, 0.3, 0.5]) + [2, 0, 1]) / 7)
    np.testing.assert_allclose(b[1], (4 * np.array([0.6, 0.3, 0.1]) + [0, 1, 0]) / 5)
    np.testing.assert_allclose(est.calibration_.cpt("a"), (2 + np.array([3, 2])) / 9)
    np.testing.assert_allclose(est.column_confidence_["b"], [7, 5])
    assert est.calibration_.nodes["b"].cpt == "table"
    assert est.calibration_.nodes["b"].confidence == 4.0  # the node setting is kept
    # per-node override of the equivalent sample size, and weights as replicated rows
    est2 = DirichletRefit(cal, confidence={"b": 0.0}).fit(cases, sample_weight=[2] * 6)
    np.testing.assert_allclose(est2.calibration_.cpt("b")[0], [4 / 6, 0, 2 / 6])


def test_nodes_without_data_keep_their_form(shipped):
    cases = pd.DataFrame({"training_age": ["novice", "trained"]})
    est = DirichletRefit(shipped).fit(cases)
    assert est.learned_ == ("training_age",)
    assert est.calibration_.nodes["stabilizer_overload"].cpt == "noisy_or"
    assert est.calibration_.nodes["training_age"].cpt == "table"
    with pytest.raises(ValueError, match="unknown node"):
        DirichletRefit(shipped, nodes=["nope"]).fit(cases)


def test_dirichlet_recovery_improves_with_more_cases(shipped):
    base = perturbed(shipped, mix=0.5, seed=0, confidence=1.0)
    start = errors(base, shipped)[0]
    small = errors(DirichletRefit(base).fit(sample_cases(shipped, 1_000, seed=11)).calibration_,
                   shipped)[0]
    large = errors(DirichletRefit(base).fit(sample_cases(shipped, 20_000, seed=12)).calibration_,
                   shipped)[0]
    assert start > 0.1
    assert large < 0.5 * small
    assert large < 0.02


def test_refit_is_a_valid_calibration_file(shipped):
    est = DirichletRefit(shipped).fit(sample_cases(shipped, 2_000, seed=1))
    again = parse_calibration(to_toml(est.calibration_))
    for n in shipped.nodes:
        np.testing.assert_allclose(again.cpt(n), est.calibration_.cpt(n), atol=1e-12)




def test_matches_pgmpy_mle_and_dirichlet_estimators(shipped):
    from pgmpy.models import DiscreteBayesianNetwork
    from pgmpy.parameter_estimator import DiscreteBayesianEstimator, DiscreteMLE

    data = sample_cases(shipped, 5_000, seed=7)
    state_names = {n: list(node.states) for n, node in shipped.nodes.items()}

    def skeleton() -> DiscreteBayesianNetwork:
        net = DiscreteBayesianNetwork()
        net.add_nodes_from(shipped.nodes)
        net.add_edges_from((p, n) for n, node in shipped.nodes.items() for p in node.parents)
        return net

    mle = skeleton().fit(data, estimator=DiscreteMLE(state_names=state_names))
    ours = DirichletRefit(shipped, confidence=0.0).fit(data)
    pseudo = {}
    for n, node in shipped.nodes.items():
        alpha = node.confidence * shipped.cpt(n)
        parents = list(node.parents)
        order = [parents.index(p) for p in sorted(parents)] + [len(parents)]
        pseudo[n] = np.transpose(alpha, order).reshape(-1, node.card).T
    bayes = skeleton().fit(
        data,
        estimator=DiscreteBayesianEstimator(
            state_names=state_names, prior_type="dirichlet", pseudo_counts=pseudo
        ),
    )
    ours_bayes = DirichletRefit(shipped).fit(data)
    for n in shipped.nodes:
        parents = shipped.nodes[n].parents
        seen = ours.counts_[n].sum(axis=-1) > 0  # pgmpy has no prior to fall back on
        theirs_mle = cpd_table(mle.get_cpds(n), parents, shipped.variables)
        theirs_bayes = cpd_table(bayes.get_cpds(n), parents, shipped.variables)
        np.testing.assert_allclose(ours.calibration_.cpt(n)[seen], theirs_mle[seen], atol=1e-12)
        np.testing.assert_allclose(ours_bayes.calibration_.cpt(n), theirs_bayes, atol=1e-12)


# ---- EM -------------------------------------------------------------------------------------


def test_em_e_step_matches_brute_force_enumeration():
    spec = {
        "a": (YN, (), [0.7, 0.3]),
        "h": (YN, ("a",), [[0.9, 0.1], [0.4, 0.6]]),
        "x": (LMH, ("h",), [[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]]),
    }
    cal = make_calibration(spec, confidence=3.0)
    cases = pd.DataFrame(
        {"a": ["no", "yes", "", "yes", "no"], "h": ["", "", "", "yes", ""],
         "x": ["hi", "lo", "mid", "", ""]}
    )
    pa, ph, px = (np.asarray(spec[k][2]) for k in ("a", "h", "x"))
    joint = np.einsum("a,ah,hx->ahx", pa, ph, px)
    counts = {"a": np.zeros(2), "h": np.zeros((2, 2)), "x": np.zeros((2, 3))}
    states = {"a": YN, "h": YN, "x": LMH}
    for _, row in cases.iterrows():
        mask = np.ones_like(joint)
        for axis, v in enumerate("ahx"):
            if row[v]:
                keep = np.zeros(joint.shape[axis])
                keep[states[v].index(row[v])] = 1
                mask = mask * keep.reshape([-1 if i == axis else 1 for i in range(3)])
        post = joint * mask / (joint * mask).sum()
        counts["a"] += post.sum(axis=(1, 2))
        counts["h"] += post.sum(axis=2)
        counts["x"] += post.sum(axis=0)
    em = EMRefit(cal, max_iter=1, accelerate=False).fit(cases)
    assert em.n_iter_ == 1
    for n, prior in (("a", pa), ("h", ph), ("x", px)):
        expected = (3.0 * prior + counts[n]) / (3.0 + counts[n].sum(axis=-1, keepdims=True))
        np.testing.assert_allclose(em.calibration_.cpt(n), expected, atol=1e-12)
    # history_[0] is the log-likelihood of the base calibration
    loglik = 0.0
    for _, row in cases.iterrows():
        mask = np.ones_like(joint)
        for axis, v in enumerate("ahx"):
            if row[v]:
                keep = np.zeros(joint.shape[axis])
                keep[states[v].index(row[v])] = 1
                mask = mask * keep.reshape([-1 if i == axis else 1 for i in range(3)])
        loglik += math.log((joint * mask).sum())
    assert em.history_[0] == pytest.approx(loglik, abs=1e-9)


def test_em_on_complete_data_equals_dirichlet(hidden_truth):
    cases = sample_cases(hidden_truth, 3_000, seed=2)
    base = perturbed(hidden_truth, 0.3, seed=1)
    em = EMRefit(base).fit(cases)
    direct = DirichletRefit(base).fit(cases)
    assert em.converged_ and em.hidden_families_ == ()
    for n in hidden_truth.nodes:
        np.testing.assert_allclose(em.calibration_.cpt(n), direct.calibration_.cpt(n),
                                   atol=1e-12)


def test_em_recovers_a_cause_hidden_in_every_case(hidden_truth):
    cases = with_missing(sample_cases(hidden_truth, 20_000, seed=0), {"h": 1.0}, seed=1)
    # start from a perturbed calibration: its numbers (confidence 10, tiny next to 20 000
    # cases) still say which state of h is "yes", which settles label switching
    base = perturbed(hidden_truth, 0.4, seed=5)
    assert errors(base, hidden_truth)[0] > 0.1
    em = EMRefit(base).fit(cases)
    assert em.converged_
    assert ("a", "h") in em.hidden_families_
    mean_err, max_err = errors(em.calibration_, hidden_truth)
    assert mean_err < 0.015
    assert max_err < 0.06
    # EM never lowers its objective, and the last history entry is the returned numbers'
    assert np.all(np.diff(em.objective_history_) > -1e-7)
    assert em.log_likelihood_ == em.history_[-1]
    assert em.n_patterns_ <= 2 * 3 * 2 * 3 * 2


def test_accelerated_and_plain_em_reach_the_same_optimum(hidden_truth):
    cases = with_missing(
        sample_cases(hidden_truth, 5_000, seed=3), {"h": 1.0, "x2": 0.3, "a": 0.2}, seed=4
    )
    base = perturbed(hidden_truth, 0.4, seed=6)
    fast = EMRefit(base, max_iter=1000, tol=1e-10).fit(cases)
    slow = EMRefit(base, max_iter=1000, tol=1e-10, accelerate=False).fit(cases)
    assert fast.converged_ and slow.converged_
    assert fast.n_iter_ < slow.n_iter_
    assert np.all(np.diff(slow.objective_history_) > -1e-7)
    assert fast.objective_history_[-1] == pytest.approx(slow.objective_history_[-1], abs=1e-3)
    assert errors(fast.calibration_, slow.calibration_)[1] < 2e-3


def test_em_reports_impossible_cases():
    cal = make_calibration(
        {"a": (YN, (), [1.0, 0.0]), "b": (YN, ("a",), [[0.5, 0.5], [0.5, 0.5]])}
    )
    cases = pd.DataFrame({"a": ["no", "yes", "no"], "b": ["no", "", "yes"]})
    with pytest.raises(ImpossibleEvidenceError) as info:
        EMRefit(cal).fit(cases)
    assert info.value.rows == [1]


def test_em_uses_rows_that_dirichlet_must_skip(hidden_truth):
    # the cause is adjudicated in 30 % of cases: Dirichlet learns h's children from those
    # alone, EM from every case, and gets closer to the truth
    cases = with_missing(sample_cases(hidden_truth, 4_000, seed=8), {"h": 0.7}, seed=9)
    base = perturbed(hidden_truth, 0.4, seed=10)
    em = EMRefit(base).fit(cases)
    direct = DirichletRefit(base).fit(cases)
    assert errors(em.calibration_, hidden_truth)[0] < errors(direct.calibration_, hidden_truth)[0]


def test_get_params_rebuilds_an_unfitted_twin(hidden_truth):
    est = EMRefit(hidden_truth, max_iter=7, tol=1e-3, accelerate=False, confidence=2.0)
    twin = type(est)(**est.get_params())
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "calibration_")


# ---- what moved -----------------------------------------------------------------------------


def test_moved_parameters_lists_the_largest_changes_first(hidden_truth):
    after = hidden_truth.with_table("x2", np.array([[0.85, 0.15], [0.55, 0.45]]))
    after = after.with_table("a", np.array([0.55, 0.45]))
    moved = moved_parameters(hidden_truth, after, top=3)
    assert {(m.node, m.column, m.state) for m in moved[:2]} == {
        ("x2", "yes", "no"),
        ("x2", "yes", "yes"),
    }
    assert moved[2].node == "a" and moved[2].column == ""  # a root: no column key
    no_row = next(m for m in moved if m.state == "no")
    assert no_row.before == pytest.approx(0.25) and no_row.after == pytest.approx(0.55)
    assert no_row.delta == pytest.approx(0.30)
    assert len(moved_parameters(hidden_truth, after, top=None)) == 4


def test_every_parameter_combination_is_counted_once(hidden_truth):
    rows = list(itertools.product(YN, YN, LMH))
    cases = pd.DataFrame(rows, columns=["a", "h", "x1"])
    est = DirichletRefit(hidden_truth, nodes=["x1"]).fit(cases)
    np.testing.assert_array_equal(est.counts_["x1"], np.full((2, 3), 2.0))
