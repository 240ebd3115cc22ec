"""Pooling calibrations (confidence-weighted linear pool) and diffing them number by number."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.diff import diff_calibrations
from calibration.loader import load_calibration, parse_calibration
from calibration.pool import pool_calibrations
from calibration.schema import Calibration, NodeSpec
from calibration.writer import to_toml

ROOT = Path(__file__).resolve().parents[2]
YN = ("no", "yes")
LMH = ("lo", "mid", "hi")


def make_calibration(spec: dict, confidence: float = 10.0) -> Calibration:
    nodes = {
        n: NodeSpec(name=n, states=tuple(s), parents=tuple(p), confidence=confidence)
        for n, (s, p, _) in spec.items()
    }
    cal = Calibration(nodes=nodes)
    for n, (_, _, table) in spec.items():
        cal = cal.with_table(n, np.asarray(table, dtype=float))
    return cal


def small(b_table, a_table=(0.5, 0.5), confidence: float = 10.0) -> Calibration:
    return make_calibration(
        {"a": (YN, (), list(a_table)), "b": (LMH, ("a",), b_table)}, confidence
    )


B1 = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
B2 = [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]


@pytest.fixture(scope="module")
def shipped() -> Calibration:
    return load_calibration()


# ---- pool -------------------------------------------------------------------------------------


def test_pool_is_the_confidence_weighted_average_and_sums_confidence():
    one, two = small(B1, confidence=10.0), small(B2, confidence=30.0)
    pooled = pool_calibrations([one, two])
    np.testing.assert_allclose(
        pooled.cpt("b"), (10 * np.array(B1) + 30 * np.array(B2)) / 40, atol=1e-15
    )
    assert pooled.nodes["b"].confidence == 40.0
    # identical numbers keep their form; the confidence still adds up
    assert pooled.nodes["a"].confidence == 40.0
    np.testing.assert_allclose(pooled.cpt("a"), [0.5, 0.5])
    # extra weights scale each version's worth
    weighted = pool_calibrations([one, two], weights=[3.0, 1.0])
    np.testing.assert_allclose(weighted.cpt("b"), (np.array(B1) + np.array(B2)) / 2)
    assert weighted.nodes["b"].confidence == 60.0


def test_pooling_one_or_identical_versions_changes_no_number(shipped):
    assert pool_calibrations([shipped]).nodes == {
        n: replace(node) for n, node in shipped.nodes.items()
    }
    twice = pool_calibrations([shipped, shipped])
    d = diff_calibrations(shipped, twice)
    assert d.parameters == () and d.structure == ()
    assert {c.field for c in d.settings} == {"confidence"}
    assert twice.nodes["stabilizer_overload"].cpt == "noisy_or"  # form kept
    assert twice.nodes["stabilizer_overload"].confidence == 40.0


def test_pooling_a_canonical_node_with_a_table_writes_a_table(shipped):
    other = shipped.with_table(
        "other_cause", shipped.cpt("other_cause") * 0.5 + np.array([0.25, 0.25])
    )
    pooled = pool_calibrations([shipped, other])
    assert pooled.nodes["other_cause"].cpt == "table"
    np.testing.assert_allclose(
        pooled.cpt("other_cause"), (shipped.cpt("other_cause") + other.cpt("other_cause")) / 2
    )
    again = parse_calibration(to_toml(pooled), base_dir=shipped.path.parent)
    np.testing.assert_allclose(again.cpt("other_cause"), pooled.cpt("other_cause"))


def test_pool_aligns_state_and_parent_order_by_name():
    one = small(B1)
    flipped = Calibration(
        nodes={
            "b": NodeSpec("b", states=("hi", "mid", "lo"), parents=("a",), confidence=10.0),
            "a": NodeSpec("a", states=("yes", "no"), confidence=10.0),
        }
    )
    flipped = flipped.with_table("a", np.array([0.5, 0.5]))
    flipped = flipped.with_table("b", np.array(B2)[::-1, ::-1])  # rows yes,no; states hi..lo
    pooled = pool_calibrations([one, flipped])
    np.testing.assert_allclose(pooled.cpt("b"), (np.array(B1) + np.array(B2)) / 2)
    assert pooled.nodes["b"].states == LMH  # the first calibration's order


def test_pool_weights_each_column_by_its_own_confidence():
    """A refitted version's columns are worth the cases behind each (column_confidence)."""
    one = small(B1, confidence=10.0)
    two = small(B2, confidence=10.0)
    two = two.with_node(replace(two.nodes["b"], column_confidence={"no": 90.0}))
    pooled = pool_calibrations([one, two])
    np.testing.assert_allclose(pooled.cpt("b")[0], (10 * np.array(B1[0]) + 90 * np.array(B2[0]))
                               / 100, atol=1e-15)
    np.testing.assert_allclose(pooled.cpt("b")[1], (np.array(B1[1]) + np.array(B2[1])) / 2,
                               atol=1e-15)
    assert pooled.nodes["b"].column_confidence == {"no": 100.0, "yes": 20.0}
    np.testing.assert_array_equal(pooled.column_confidences("b"), [100.0, 20.0])
    # the same version written with its parent's states the other way round
    flipped = Calibration(nodes={
        "b": NodeSpec("b", states=LMH, parents=("a",), confidence=10.0,
                      column_confidence={"no": 90.0}),
        "a": NodeSpec("a", states=("yes", "no"), confidence=10.0),
    })
    flipped = flipped.with_table("a", np.array([0.5, 0.5]))
    flipped = flipped.with_table("b", np.array(B2)[::-1])
    again = pool_calibrations([one, flipped])
    np.testing.assert_allclose(again.cpt("b"), pooled.cpt("b"), atol=1e-15)
    assert again.nodes["b"].column_confidence == {"no": 100.0, "yes": 20.0}


def test_pooled_canonical_nodes_add_their_parameters_confidences(shipped):
    node = shipped.nodes["stabilizer_overload"]
    refitted = shipped.with_node(replace(node, column_confidence={"leak": 400.0}))
    pooled = pool_calibrations([shipped, refitted])
    out = pooled.nodes["stabilizer_overload"]
    assert out.cpt == "noisy_or"
    assert out.column_confidence == {"leak": node.confidence + 400.0}
    assert out.confidence == 2 * node.confidence


def test_column_confidences_of_tables_and_canonical_models(shipped):
    b = small(B1)
    b = b.with_node(replace(b.nodes["b"], column_confidence={"yes": 250.0}))
    np.testing.assert_array_equal(b.column_confidences("b"), [10.0, 250.0])
    np.testing.assert_array_equal(b.column_confidences("a"), 10.0)
    # a canonical column is as well known as the least known parameter it uses
    name = "stabilizer_overload"
    node = shipped.nodes[name]
    link = next(f"{p}={s}" for p, by in node.params.items() for s in by)
    parent, state = link.split("=")
    cal = shipped.with_node(replace(node, confidence=10.0,
                                    column_confidence={"leak": 400.0, link: 300.0}))
    conf = cal.column_confidences(name)
    assert conf.shape == tuple(len(shipped.nodes[p].states) for p in node.parents)
    # every parent in its state without a link (absent, or the reference): the leak alone
    first = tuple(next(i for i, s in enumerate(shipped.nodes[p].states)
                       if s not in node.params.get(p, {})) for p in node.parents)
    assert conf[first] == 400.0
    only = list(first)
    only[node.parents.index(parent)] = shipped.nodes[parent].states.index(state)
    assert conf[tuple(only)] == 300.0  # min(leak 400, that link 300)
    assert conf.min() == 10.0  # columns using other links (node-wide 10)


def test_pool_refuses_different_networks():
    one = small(B1)
    other = make_calibration(
        {"a": (YN, (), [0.5, 0.5]), "b": (YN, ("a",), [[0.5, 0.5], [0.5, 0.5]])}
    )
    with pytest.raises(ValueError, match=r"different networks(.|\n)*b: states"):
        pool_calibrations([one, other])
    with pytest.raises(ValueError, match="at least one"):
        pool_calibrations([])
    with pytest.raises(ValueError, match="weights"):
        pool_calibrations([one, one], weights=[1.0])
    with pytest.raises(ValueError, match="weights"):
        pool_calibrations([one, one], weights=[0.0, 0.0])


column = st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3).map(
    lambda xs: [x / sum(xs) for x in xs]
)


@settings(max_examples=40, deadline=None)
@given(
    tables=st.lists(st.tuples(column, column), min_size=1, max_size=4),
    confidences=st.lists(st.floats(0.5, 100.0), min_size=4, max_size=4),
)
def test_pooled_numbers_are_convex_combinations(tables, confidences):
    cals = [small([list(t[0]), list(t[1])], confidence=c)
            for t, c in zip(tables, confidences, strict=False)]
    pooled = pool_calibrations(cals).cpt("b")
    stack = np.stack([c.cpt("b") for c in cals])
    assert np.all(pooled >= stack.min(axis=0) - 1e-12)
    assert np.all(pooled <= stack.max(axis=0) + 1e-12)
    np.testing.assert_allclose(pooled.sum(axis=-1), 1.0)
    assert pool_calibrations(cals).nodes["b"].confidence == pytest.approx(
        sum(confidences[: len(cals)])
    )


# ---- diff -------------------------------------------------------------------------------------


def test_diff_lists_each_changed_number(shipped):
    table = shipped.cpt("glute_soreness").copy()
    table[0, 1] = [0.5, 0.5]
    changed = shipped.with_table("glute_soreness", table)
    d = diff_calibrations(shipped, changed)
    assert d.structure == ()
    assert d.settings == ()  # glute_soreness is a table in both
    keys = shipped.columns("glute_soreness")
    key = ",".join(keys[1])
    # two states: only the second is listed (the first is its mirror image)
    assert [(c.node, c.column, c.state) for c in d.parameters] == [
        ("glute_soreness", key, "yes"),
    ]
    before = shipped.cpt("glute_soreness")[0, 1]
    assert d.parameters[0].a == pytest.approx(before[1])
    assert d.parameters[0].b == 0.5
    assert d.parameters[0].delta == pytest.approx(0.5 - before[1])
    assert d.largest(1)[0].node == "glute_soreness"
    assert d.rows()[0]["delta"] == pytest.approx(0.5 - before[1])
    assert "glute_soreness" in str(d)
    assert diff_calibrations(shipped, shipped).identical
    assert str(diff_calibrations(shipped, shipped)) == "No differences."


def test_diff_compares_canonical_and_table_forms_by_their_numbers(shipped):
    as_table = shipped.with_table("stabilizer_overload", shipped.cpt("stabilizer_overload"))
    d = diff_calibrations(shipped, as_table)
    assert d.parameters == ()
    assert [(c.node, c.field, c.a, c.b) for c in d.settings] == [
        ("stabilizer_overload", "cpt", "noisy_or", "table")
    ]
    assert not d.structural


def test_diff_reports_structure_and_skips_incomparable_nodes():
    one = small(B1)
    more_states = make_calibration(
        {"a": (("no", "yes", "maybe"), (), [0.4, 0.4, 0.2]),
         "b": (LMH, ("a",), [*B1, [0.3, 0.3, 0.4]]),
         "c": (YN, (), [0.9, 0.1])}
    )
    d = diff_calibrations(one, more_states)
    fields = {(c.node, c.field) for c in d.structure}
    assert fields == {("c", "node"), ("a", "states"), ("b", "columns")}
    assert d.structural and d.compared == ()
    text = str(d)
    assert "Structural differences" in text and "b: columns" in text
    no_parent = make_calibration({"a": (YN, (), [0.5, 0.5]), "b": (LMH, (), [0.3, 0.3, 0.4])})
    d2 = diff_calibrations(one, no_parent)
    assert [(c.node, c.field) for c in d2.structure] == [("b", "parents")]
    assert d2.compared == ("a",)


def test_diff_matches_reordered_states_by_name():
    one = small(B1)
    flipped = Calibration(
        nodes={
            "a": NodeSpec("a", states=YN, confidence=10.0),
            "b": NodeSpec("b", states=("hi", "mid", "lo"), parents=("a",), confidence=10.0),
        }
    )
    flipped = flipped.with_table("a", np.array([0.5, 0.5]))
    flipped = flipped.with_table("b", np.array(B1)[:, ::-1])
    d = diff_calibrations(one, flipped)
    assert d.parameters == ()
    assert [(c.node, c.field) for c in d.structure] == [("b", "state_order")]


# ---- layering ---------------------------------------------------------------------------------




def test_per_column_confidence_changes_are_listed():
    one = small(B1)
    two = one.with_node(replace(one.nodes["b"], column_confidence={"no": 90.0, "yes": 12.5}))
    (change,) = diff_calibrations(one, two).settings
    assert (change.node, change.field) == ("b", "column_confidence")
    assert change.a.startswith("none") and change.b == "2 column(s), 12.5 to 90"


def test_rationale_and_source_changes_are_listed(shipped):
    node = shipped.nodes["other_cause"]
    changed = shipped.with_node(replace(node, rationale="rewritten", source="a new study"))
    d = diff_calibrations(shipped, changed)
    assert {(c.node, c.field) for c in d.settings} == {("other_cause", "rationale"),
                                                       ("other_cause", "source")}
    assert d.parameters == () and not d.identical
    assert "other_cause: rationale" in str(d)
