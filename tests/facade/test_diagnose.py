"""The analyses behind diagnose(), each checked against a direct computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import model
from model.inference.batching import entropy


def p_yes(m, cause, evidence):
    return m.probability(f"{cause}=yes", evidence)


def test_diagnose_causes_equal_posterior(default_model):
    ev = {"training_age": "first_sessions", "low_back_soreness": "mild"}
    d = default_model.diagnose(ev)
    post = default_model.posterior(ev)
    for c in default_model.causes:
        assert d.causes[c] == pytest.approx(post[c]["yes"], abs=1e-12)
        assert d.prior_causes[c] == pytest.approx(default_model.posterior({})[c]["yes"])
    assert set(d.causes) == {"stabilizer_overload", "wrong_prime_mover", "other_cause"}


def test_results_are_frozen(default_model):
    d = default_model.diagnose({})
    with pytest.raises(AttributeError):
        d.causes = {}  # type: ignore[misc]


def test_explanation_is_log_odds_change_when_withheld(default_model):
    m = default_model
    ev = {"bracing_loss": "often", "glute_soreness": "yes", "low_back_soreness": "mild"}
    d = m.diagnose(ev)
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    for c in m.causes:
        items = {x.node: x for x in d.explanation[c]}
        assert set(items) == set(ev)
        for f in ev:
            without = {k: v for k, v in ev.items() if k != f}
            expected = logit(p_yes(m, c, ev)) - logit(p_yes(m, c, without))
            assert items[f].log_odds == pytest.approx(expected, abs=1e-9)
    wpm = {x.node: x for x in d.explanation["wrong_prime_mover"]}
    assert wpm["bracing_loss"].log_odds > 0  # bracing lost pushes the wrong mover up
    assert wpm["glute_soreness"].log_odds < 0  # sore glutes push it down
    assert wpm["bracing_loss"].path == ("bracing_loss", "wrong_prime_mover")


def test_shapley_values_sum_to_total_log_odds_shift(default_model):
    m = default_model
    ev = {"bracing_loss": "often", "training_age": "novice", "onset": "next_day"}
    d = m.diagnose(ev, shapley=True)
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    for c in m.causes:
        total = sum(x.shapley for x in d.explanation[c])
        assert total == pytest.approx(logit(p_yes(m, c, ev)) - logit(p_yes(m, c, {})), abs=1e-9)


def test_information_gain_matches_brute_force(default_model):
    m = default_model
    ev = {"low_back_soreness": "mild"}
    d = m.diagnose(ev)

    def cause_entropy(evidence):
        """H(causes | evidence) from the chain rule, one direct query per factor."""
        joint = np.zeros((2, 2, 2))
        for states in itertools.product(("no", "yes"), repeat=3):
            p, cond = 1.0, dict(evidence)
            for cause, state in zip(m.causes, states, strict=True):
                p *= m.probability(f"{cause}={state}", cond)
                cond[cause] = state
            joint[tuple(("no", "yes").index(s) for s in states)] = p
        return float(entropy(joint.ravel()))

    h0 = cause_entropy(ev)
    for q in d.next_questions[:3]:
        post = m.posterior(ev)[q.node]
        expected = h0 - sum(p * cause_entropy({**ev, q.node: s}) for s, p in post.items())
        assert q.gain == pytest.approx(expected, abs=1e-9)
    gains = [q.gain for q in d.next_questions]
    assert gains == sorted(gains, reverse=True)
    assert all(g >= 0 for g in gains)
    assert not {q.node for q in d.next_questions} & (set(ev) | set(m.latents))


def no_signs(m):
    return dict.fromkeys(m.warning_signs, False)


def next_session_by_enumeration(m, ev, do=None):
    """P(soreness at the next session), computed without the twin network.

    Enumerate this session's roots and the carried-over causes given the evidence (chain
    rule over ``Model.posterior``), move each root on by its carry-over table (or keep it,
    or set it by ``do``), and score the next session in a copy of the network whose cause
    tables apply the repeated-bout protection and the persistence for that state of the
    causes now.
    """
    import numpy as np

    cal = m.calibration
    roots = [n for n in m.variables if not m.parents[n]]
    carried = [n for n, c in cal.next_session.items() if c.protection or c.persistence]
    order = roots + carried
    cards = [m.cards[n] for n in order]
    joint = np.zeros(cards)
    for states in itertools.product(*(range(c) for c in cards)):
        p, cond = 1.0, dict(ev)
        for n, k in zip(order, states, strict=True):
            state = m.variables[n][k]
            if n in ev:
                p *= float(ev[n] == state)
            else:
                p *= m.posterior(cond)[n][state]
            cond[n] = state
            if p == 0.0:
                break
        joint[states] = p
    # P(sore next | next roots) for each state of the carried causes now
    scores = {}
    for now in itertools.product(*(range(m.cards[c]) for c in carried)):
        changed = cal
        for c, k in zip(carried, now, strict=True):
            rule = cal.next_session[c]
            table = cal.cpt(c).copy()
            yes = m.present_index(c)
            if m.variables[c][k] == m.variables[c][yes]:
                p_yes = table[..., yes] * (1 - rule.protection)
                p_yes = 1 - (1 - p_yes) * (1 - rule.persistence)
                table[..., yes], table[..., 1 - yes] = p_yes, 1 - p_yes
            changed = changed.with_table(c, table)
        nm = model.Model(changed)
        grid = list(itertools.product(*(m.variables[r] for r in roots)))
        frame = pd.DataFrame(grid, columns=roots)
        sore = 1 - nm.posterior_batch(frame)["low_back_soreness=none"].to_numpy()
        scores[now] = sore.reshape([m.cards[r] for r in roots])
    # move the roots on: contract each root axis with its carry-over (or do) matrix
    total = 0.0
    for now, score in scores.items():
        moved = score
        for axis, r in enumerate(roots):
            card = m.cards[r]
            if do and r in do:
                trans = np.zeros((card, card))
                trans[:, m.variables[r].index(do[r])] = 1.0
            elif r in cal.next_session and cal.next_session[r].table:
                trans = np.array([cal.next_session[r].table[s] for s in m.variables[r]])
            else:
                trans = np.eye(card)
            moved = np.moveaxis(np.tensordot(trans, moved, axes=([1], [axis])), 0, axis)
        total += float((joint[(..., *now)] * moved).sum())
    return total / joint.sum()


FORECAST_CASES = [
    {"low_back_soreness": "marked", "training_age": "novice", "onset": "next_day"},
    {"low_back_soreness": "mild", "training_age": "first_sessions", "max_attempt": "yes"},
]


@pytest.mark.parametrize("ev", FORECAST_CASES)
def test_forecast_and_fixes_match_enumeration_without_the_twin(default_model, ev):
    m = default_model
    d = m.diagnose(ev, no_signs(m))
    assert d.forecast.next == pytest.approx(next_session_by_enumeration(m, ev), abs=1e-9)
    fixes = {f.target: f for f in d.fixes}
    for target, good in (("bracing_loss", "no"), ("load_jump", "within_plan")):
        after = next_session_by_enumeration(m, ev, {target: good})
        assert fixes[target].outcome_after == pytest.approx(after, abs=1e-9)
        assert fixes[target].effect == pytest.approx(d.forecast.next - after, abs=1e-9)
    effects = [(f.minor, -f.effect) for f in d.fixes]
    assert effects == sorted(effects)  # fixes that count first, largest effect first


def test_fix_not_offered_when_already_good(default_model):
    d = default_model.diagnose({"bracing_loss": "no", "max_attempt": "no"})
    targets = {f.target for f in d.fixes}
    assert "bracing_loss" not in targets and "max_attempt" not in targets


def test_symptoms_inform_the_next_session_through_shared_habits(default_model):
    """Glutes that are not sore point to the back doing the lifting, so an unanswered brace
    is likelier to be the problem, and fixing it helps more at the next session."""
    m = default_model
    base = {"training_age": "trained", "low_back_soreness": "mild"}
    plain = {f.target: f.effect for f in m.diagnose(base, no_signs(m)).fixes}
    telling = {f.target: f.effect
               for f in m.diagnose({**base, "glute_soreness": "no"}, no_signs(m)).fixes}
    assert telling["bracing_loss"] > plain["bracing_loss"]


def test_mpe_matches_enumeration(default_model):
    m = default_model
    ev = {"training_age": "first_sessions", "low_back_soreness": "marked", "onset": "next_day"}
    d = m.diagnose(ev)
    best, best_p = None, -1.0
    for states in itertools.product(*(m.variables[n] for n in m.latents)):
        assign = dict(zip(m.latents, states, strict=True))
        p, cond = 1.0, dict(ev)
        for n, s in assign.items():
            p *= m.probability(f"{n}={s}", cond)
            cond[n] = s
        if p > best_p:
            best, best_p = assign, p
    assert d.most_probable_explanation == best
    assert d.mpe_probability == pytest.approx(best_p, abs=1e-9)


def test_intervals_bracket_the_estimate_and_narrow_with_confidence(default_model):
    from dataclasses import replace

    d = default_model.diagnose({"bracing_loss": "often"})
    for c, iv in d.cause_intervals.items():
        assert 0 <= iv.low < iv.high <= 1
        assert iv.low - 0.05 <= d.causes[c] <= iv.high + 0.05
    cal = default_model.calibration
    sure = replace(cal, nodes={n: replace(s, confidence=s.confidence * 50)
                               for n, s in cal.nodes.items()})
    d2 = model.Model(sure).diagnose({"bracing_loss": "often"})
    for c in d.causes:
        width = d.cause_intervals[c].high - d.cause_intervals[c].low
        width2 = d2.cause_intervals[c].high - d2.cause_intervals[c].low
        assert width2 < width / 3


def _per_column(cal, factor: float):
    """``cal`` with every column's (or parameter's) own confidence ``factor`` × the node's."""
    from dataclasses import replace

    from calibration.schema import column_key

    nodes = {}
    for n, s in cal.nodes.items():
        if s.cpt == "table":
            keys = [column_key(c) for c in cal.columns(n)]
        else:
            keys = ["leak"] + [f"{p}={st}" for p, by in s.params.items() for st in by]
        nodes[n] = replace(s, column_confidence={k: s.confidence * factor for k in keys})
    return replace(cal, nodes=nodes)


def test_intervals_follow_each_columns_own_confidence(default_model):
    """After a refit every column carries its own confidence (prior + cases): the draws
    behind the intervals use it, exactly as if the node's confidence were that number."""
    from dataclasses import replace

    cal = default_model.calibration
    ev = {"training_age": "first_sessions", "low_back_soreness": "mild"}
    by_node = replace(cal, nodes={n: replace(s, confidence=s.confidence * 50)
                                  for n, s in cal.nodes.items()})
    wide = default_model.diagnose(ev).cause_intervals
    narrow = model.Model(by_node).diagnose(ev).cause_intervals
    by_column = model.Model(_per_column(cal, 50)).diagnose(ev).cause_intervals
    for c in wide:
        assert by_column[c].low == pytest.approx(narrow[c].low, abs=1e-12)
        assert by_column[c].high == pytest.approx(narrow[c].high, abs=1e-12)
        assert by_column[c].high - by_column[c].low < (wide[c].high - wide[c].low) / 3


def test_a_refit_from_many_cases_narrows_the_intervals(default_model):
    from model.learning.sampling import sample_cases
    from model.service.refit import refit

    cal = default_model.calibration
    fitted = refit(cal, sample_cases(cal, 5000, seed=3), folds=0).calibration
    ev = {"training_age": "first_sessions", "low_back_soreness": "mild"}
    before = default_model.diagnose(ev).cause_intervals
    after = model.Model(fitted).diagnose(ev).cause_intervals
    for c in before:
        assert after[c].high - after[c].low < (before[c].high - before[c].low) / 3, c


def test_sensitivity_finds_the_parameters_that_matter(default_model):
    items = default_model.sensitivity("wrong_prime_mover=yes", {"bracing_loss": "often"})
    assert items[0].swing >= items[-1].swing
    assert {it.node for it in items[:5]} & {"wrong_prime_mover", "bracing_loss"}
    # a parameter of a disconnected-by-evidence part barely matters
    swing = {(it.node, it.column, it.state): it.swing for it in
             default_model.sensitivity("wrong_prime_mover=yes", {"bracing_loss": "often"},
                                       top=None)}
    assert swing[("bracing_loss", "", "often")] == pytest.approx(0.0, abs=1e-9)


def test_impossible_evidence_is_an_error_not_nan():
    from calibration.loader import parse_calibration

    cal = parse_calibration(
        '[nodes.a]\nstates = ["x", "y"]\ncpt = "table"\ntable = [1.0, 0.0]\n'
        '[nodes.b]\nstates = ["u", "v"]\nparents = ["a"]\ncpt = "table"\n'
        '[nodes.b.table]\nx = [1.0, 0.0]\ny = [0.5, 0.5]\n'
    )
    m = model.Model(cal)
    with pytest.raises(model.EvidenceError, match="impossible evidence: b=v"):
        m.posterior({"b": "v"})


def test_soft_evidence_is_accepted_and_validated(default_model):
    post = default_model.posterior({"bracing_loss": {"often": 0.8, "sometimes": 0.2}})
    assert "bracing_loss" in post
    with pytest.raises(model.EvidenceError, match="valid states"):
        default_model.posterior({"bracing_loss": {"always": 1.0}})


def test_explanation_paths_follow_active_trails_only(default_model):
    d = default_model.diagnose({"training_age": "first_sessions", "low_back_soreness": "mild"})
    path = {x.node: x.path for x in d.explanation["wrong_prime_mover"]}["training_age"]
    # glute_soreness is an unobserved collider, so the influence runs through the observed
    # soreness instead (explaining away between the causes)
    assert "glute_soreness" not in path
    assert path[0] == "training_age" and path[-1] == "wrong_prime_mover"
    assert "low_back_soreness" in path


