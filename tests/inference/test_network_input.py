"""Hostile input to the any-network API: every bad file, network or evidence is a
KnowpainError naming what is wrong, within 2 s and without large memory (one test per
problem an attacker review found, and a property over any BIF text)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bounds import bounded_block, result_or_refusal, untrusted
from hypothesis import given
from hypothesis import strategies as st
from networks import bnlearn_networks

import model
from calibration import limits
from model.errors import EvidenceError, InputError, KnowpainError, UsageError
from model.inference import Network, NetworkEvidenceError, load_network
from model.inference.formats import NetworkFormatError


@pytest.fixture
def bounded():
    """Fail the test if it took more than 2 s or allocated more than 64 MB (Python heap and
    numpy arrays)."""
    with bounded_block(2.0, 64):
        yield


def var(name: str, card: int = 2) -> str:
    states = ", ".join(f"s{i}" for i in range(card))
    return f"variable {name} {{ type discrete [ {card} ] {{ {states} }}; }}\n"


def bif(tmp_path: Path, text: str, name: str = "net.bif") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(path: Path, needle: str, error: type[Exception] = NetworkFormatError) -> str:
    with pytest.raises(error) as info:
        load_network(path)
    assert needle in str(info.value), str(info.value)
    return str(info.value)


TWO = var("a") + var("b") + "probability ( a ) { table 0.5, 0.5; }\n" \
    "probability ( b | a ) { (s0) 0.5, 0.5; (s1) 0.1, 0.9; }\n"


@pytest.fixture
def two(tmp_path) -> Network:
    return load_network(bif(tmp_path, TWO))


# ---- 1. no pattern rescans the file ---------------------------------------------------------
@pytest.mark.parametrize("text", [
    var("a") + "probability(" * 20_000,
    var("a") + "probability ( a ) {" + "(" * 20_000 + "}",
    var("a") + "probability ( a ) {" + "(s0)" * 20_000 + "}",
    var("a") + "probability ( a ) {" + "table " * 40_000 + "}",
    "variable a { type discrete [ 2 ] {" * 20_000,
    var("a") + "/*" * 100_000,
], ids=["probability", "open-rows", "rows-without-semicolon", "table-without-semicolon",
        "unclosed-variables", "unclosed-comments"])
def test_repeated_openers_are_read_in_linear_time(tmp_path, text, bounded):
    with pytest.raises(NetworkFormatError):
        load_network(bif(tmp_path, text))


# ---- 2. tables are counted before they are built ----------------------------------------------
def test_a_table_over_the_limit_is_refused_before_it_is_built(tmp_path, bounded):
    parents = "".join(var(f"p{i}", 150) for i in range(4)) + var("c")
    text = parents + "probability ( c | p0, p1, p2, p3 ) { default 0.5, 0.5; }"
    message = refused(bif(tmp_path, text), "1,012,500,000 numbers")
    assert f"{limits.MAX_NETWORK_TABLE_ENTRIES:,}" in message
    sixty = "".join(var(f"p{i}") for i in range(60)) + var("c")
    given = ", ".join(f"p{i}" for i in range(60))
    text = sixty + f"probability ( c | {given} ) {{ default 0.5, 0.5; }}"
    refused(bif(tmp_path, text), "MAX_NETWORK_TABLE_ENTRIES")
    xml = ("<BIF><NETWORK>" + "".join(
        f"<VARIABLE><NAME>p{i}</NAME><OUTCOME>a</OUTCOME><OUTCOME>b</OUTCOME></VARIABLE>"
        for i in range(41)) + "<DEFINITION><FOR>p40</FOR>"
        + "".join(f"<GIVEN>p{i}</GIVEN>" for i in range(40))
        + "<TABLE>0.5 0.5</TABLE></DEFINITION></NETWORK></BIF>")
    refused(bif(tmp_path, xml, "net.xml"), f"{2**41:,} numbers")  # no int64 overflow


def test_many_default_tables_together_are_refused(tmp_path):
    parents = [f"p{i}" for i in range(20)]  # 2**21 entries per child: each one allowed
    text = "".join(var(p) for p in parents) + "".join(var(f"c{j}") for j in range(8))
    text += "".join(f"probability ( c{j} | {', '.join(parents)} ) {{ default 0.5, 0.5; }}\n"
                    for j in range(8))
    outcome = result_or_refusal(lambda: load_network(bif(tmp_path, text)), megabytes=100)
    assert isinstance(outcome, NetworkFormatError), outcome
    assert "MAX_NETWORK_ENTRIES" in str(outcome)  # after 4 tables of 2**21: 64 MB at most


def test_a_pgmpy_model_and_tables_are_held_to_the_same_limits():
    with pytest.raises(NetworkFormatError, match="MAX_NETWORK_TABLE_ENTRIES"):
        Network({**{f"p{i}": ["a", "b"] for i in range(30)}, "c": ["a", "b"]},
                {"c": [f"p{i}" for i in range(30)]}, {})
    with pytest.raises(NetworkFormatError, match="MAX_NETWORK_STATES"):
        Network({"a": [f"s{i}" for i in range(limits.MAX_NETWORK_STATES + 1)]}, {}, {})
    with pytest.raises(UsageError, match="pgmpy DiscreteBayesianNetwork"):
        Network.from_pgmpy(object())


# ---- 3. exact inference's size is bounded -------------------------------------------------------
def grid(n: int) -> str:
    out = []
    for i in range(n):
        for j in range(n):
            out.append(var(f"g{i}_{j}"))
    for i in range(n):
        for j in range(n):
            pa = [f"g{i - 1}_{j}"] * bool(i) + [f"g{i}_{j - 1}"] * bool(j)
            k = 2 ** len(pa)
            given = f" | {', '.join(pa)}" if pa else ""
            out.append(f"probability ( g{i}_{j}{given} ) {{ table "
                       f"{', '.join(['0.3'] * k + ['0.7'] * k)}; }}")
    return "\n".join(out)


def test_a_network_too_wide_for_exact_inference_is_refused_quickly(tmp_path):
    path = bif(tmp_path, grid(24))  # was 8.4 s and 5.2 GB, then a MemoryError
    outcome = result_or_refusal(lambda: load_network(path), megabytes=100)
    assert isinstance(outcome, InputError), outcome
    assert "MAX_NETWORK_CLIQUE_ENTRIES" in str(outcome)
    assert f"{limits.MAX_NETWORK_CLIQUE_ENTRIES:,}" in str(outcome)


def test_the_clique_limit_admits_every_bnlearn_network():
    from model.inference.formats import read_network_file

    widest = 0
    for path in bnlearn_networks().values():
        net = model.inference.CompiledNetwork(*read_network_file(path))
        total = sum(int(np.prod([net.cards[n] for n in c])) for c in net.cliques)
        widest = max(widest, total)
    assert widest < limits.MAX_NETWORK_CLIQUE_ENTRIES / 2  # munin1: 128 million


# ---- 4. tables must be distributions ------------------------------------------------------------
@pytest.mark.parametrize(("table", "needle"), [
    ("-0.5, 1.5", "= -0.5; probabilities must be finite numbers >= 0"),
    ("0.2, 0.2", "sums to 0.4, not 1"),
    ("nan, 0.5", "= nan;"),
    ("inf, 0", "= inf;"),
])
def test_a_table_that_is_not_a_distribution_is_refused(tmp_path, table, needle, bounded):
    text = var("a") + var("b") + "probability ( a ) { table 0.5, 0.5; }\n" \
        f"probability ( b | a ) {{ (s0) 0.5, 0.5; (s1) {table}; }}\n"
    message = refused(bif(tmp_path, text), needle)
    assert "table of 'b', parents a=s1" in message


def test_rows_are_used_as_written_within_the_tolerance(tmp_path):
    text = var("a", 3) + "probability ( a ) { table 0.333, 0.333, 0.333; }\n"
    net = load_network(bif(tmp_path, text))
    assert net.cpts["a"].tolist() == [0.333, 0.333, 0.333]  # not renormalised


# ---- 5. no other exception --------------------------------------------------------------------
def test_a_variable_without_states_is_refused(tmp_path, bounded):
    refused(bif(tmp_path, "variable a { type discrete [ 0 ] { }; }\nprobability ( a ) { table ; }"),
            "variable 'a' has no states")
    xml = ("<BIF><NETWORK><VARIABLE><NAME>a</NAME></VARIABLE><DEFINITION><FOR>a</FOR>"
           "<TABLE></TABLE></DEFINITION></NETWORK></BIF>")
    refused(bif(tmp_path, xml, "net.xml"), "variable 'a' has no states")


@pytest.mark.parametrize(("path", "error", "needle"), [
    (None, UsageError, "must be a path"),
    (3, UsageError, "not int 3"),
    ("a\0b.bif", NetworkFormatError, "NUL character"),
])
def test_a_path_that_is_not_a_path_is_refused(path, error, needle):
    with pytest.raises(error, match=needle):
        load_network(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_before_it_is_opened(tmp_path, bounded):
    os.mkfifo(tmp_path / "pipe.bif")
    refused(tmp_path / "pipe.bif", "named pipe")


def test_evidence_that_is_not_a_mapping_is_refused(two, bounded):
    for evidence in (["a"], "ab", 3):
        with pytest.raises(NetworkEvidenceError, match="must be a mapping of node to state"):
            two.marginals(evidence)


@pytest.mark.parametrize("weight", [10**400, "abc", None, float("nan"), -1, True])
def test_bad_soft_weights_are_refused(two, weight, default_model):
    with pytest.raises(NetworkEvidenceError, match="weight of 's0'"):
        two.marginals({"a": {"s0": weight, "s1": 1}})
    with pytest.raises(NetworkEvidenceError, match="weights"):
        two.marginals({"a": [weight, 1]}) if not isinstance(weight, bool) else two.marginals(
            {"a": weight})
    node = default_model.observable[0]
    state = default_model.variables[node][0]
    with pytest.raises(EvidenceError, match="weight of"):  # the same rule in the Model
        default_model.posterior({node: {state: weight}})


def test_posterior_batch_uses_the_models_frame_checks(two):
    with pytest.raises(NetworkEvidenceError, match="row 0, column 'a': dict"):
        two.posterior_batch(pd.DataFrame({"a": [{"x": 1}]}))
    with pytest.raises(NetworkEvidenceError, match="row 0, column 'a': list"):
        two.posterior_batch(pd.DataFrame({"a": [[1]]}))
    with pytest.raises(NetworkEvidenceError, match="appears 2 times"):
        two.posterior_batch(pd.DataFrame([["s0", "s1"]], columns=["a", "a"]))
    with pytest.raises(UsageError, match="must be a pandas DataFrame"):
        two.posterior_batch({"a": ["s0"]})


def test_mpe_nodes_are_checked_and_a_string_is_one_node(two):
    with pytest.raises(NetworkEvidenceError, match="unknown node 'zz' in nodes"):
        two.mpe({}, nodes=["zz"])
    with pytest.raises(NetworkEvidenceError, match="unknown node 'ab' in nodes"):
        two.mpe({}, nodes="ab")
    with pytest.raises(NetworkEvidenceError, match="node name or a list"):
        two.mpe({}, nodes=3)
    assert two.mpe({}, nodes="b") == two.mpe({}, nodes=["b", "b"])


# ---- 6. structure ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "needle"), [
    (var("a") + var("b") + "probability ( a | b ) { table 0.5, 0.5, 0.5, 0.5; }"
     "probability ( b | a ) { table 0.5, 0.5, 0.5, 0.5; }", "has a cycle (a -> b -> a)"),
    (var("a") + "probability ( a | a ) { table 0.5, 0.5, 0.5, 0.5; }", "is its own parent"),
    (var("a") + var("a", 3) + "probability ( a ) { table 0.5, 0.5; }", "declared twice"),
    (var("a") + "probability ( a ) { table 0.5, 0.5; }probability ( a ) { table 0.1, 0.9; }",
     "two probability blocks"),
    ("variable a { type discrete [ 2 ] { x, x }; }probability ( a ) { table 0.5, 0.5; }",
     "lists the state 'x' twice"),
])
def test_structure_problems_are_refused(tmp_path, text, needle, bounded):
    refused(bif(tmp_path, text), needle)


def test_an_xmlbif_variable_without_a_name_is_refused(tmp_path):
    xml = ("<BIF><NETWORK><VARIABLE><NAME></NAME><OUTCOME>a</OUTCOME></VARIABLE>"
           "<DEFINITION><FOR></FOR><TABLE>1</TABLE></DEFINITION></NETWORK></BIF>")
    refused(bif(tmp_path, xml, "net.xml"), "a variable has no name")


def test_tables_given_directly_are_checked_like_files():
    with pytest.raises(NetworkFormatError, match="cycle"):
        Network({"a": ["x"], "b": ["x"]}, {"a": ["b"], "b": ["a"]},
                {"a": np.ones((1, 1)), "b": np.ones((1, 1))})
    with pytest.raises(NetworkFormatError, match="unknown parent 'c'"):
        Network({"a": ["x"]}, {"a": ["c"]}, {"a": np.ones((1, 1))})
    with pytest.raises(NetworkFormatError, match=r"has shape \(3,\), needs \(2,\)"):
        Network({"a": ["x", "y"]}, {}, {"a": np.ones(3) / 3})


# ---- any text ---------------------------------------------------------------------------------
WORDS = ["variable", "probability", "table", "default", "type", "discrete", "network", "a",
         "b", "s0", "s1", "{", "}", "(", ")", "[", "]", ";", ",", "|", "//", "/*", "*/", "2",
         "0", "0.5", "1", "-1", "nan", "inf", "1e400", "\n", " "]


def check(path: Path) -> None:
    outcome = result_or_refusal(lambda: load_network(path), megabytes=100)
    assert isinstance(outcome, Network | KnowpainError), outcome
    if isinstance(outcome, KnowpainError):
        assert len(str(outcome)) < 2_000


@untrusted(60)
@given(st.one_of(st.text(max_size=300),
                 st.lists(st.sampled_from(WORDS), max_size=80).map(" ".join)))
def test_any_text_as_a_bif_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("any") / "net.bif"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


numbers = st.one_of(st.sampled_from(["0.5", "0.25", "0", "1", "-0.5", "nan", "inf", "x", ""]),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr))


@st.composite
def structured_bif(draw) -> str:
    """A small BIF with random states, parents (maybe cyclic) and tables of random numbers."""
    n = draw(st.integers(1, 4))
    names = [f"v{i}" for i in range(n)]
    cards = [draw(st.integers(0, 3)) for _ in names]
    state = st.sampled_from(["x", "y", "z", ""])
    text = "".join(f"variable {v} {{ type discrete [ {k} ] {{ "
                   f"{', '.join(draw(st.lists(state, min_size=k, max_size=k)))} }}; }}\n"
                   for v, k in zip(names, cards, strict=True))
    for v, k in zip(names, cards, strict=True):
        pa = draw(st.lists(st.sampled_from(names), max_size=2))
        size = k * int(np.prod([cards[names.index(p)] for p in pa]))
        size += draw(st.sampled_from([0, 0, 0, 1, -1]))
        values = draw(st.lists(numbers, min_size=max(size, 0), max_size=max(size, 0)))
        given = f" | {', '.join(pa)}" if pa else ""
        text += f"probability ( {v}{given} ) {{ table {', '.join(values)}; }}\n"
    return text + draw(st.sampled_from(["", "garbage {", "probability ( v0 ) { table 1; }"]))


@untrusted(60)
@given(structured_bif())
def test_any_small_structured_bif(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("structured") / "net.bif"
    path.write_text(text)
    check(path)
