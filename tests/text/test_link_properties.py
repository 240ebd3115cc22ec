"""Property: any shared link gives answers and at most one bounded notice — never an exception
— within a time and memory bound, and never repeats what the link held (hypothesis)."""

from __future__ import annotations

import re

from bounds import UNTRUSTED, result_or_refusal
from hypothesis import given
from hypothesis import strategies as st

import model
from calibration.limits import LINK_MAX_CHARS
from model.text.report import LinkAnswers, link_params, parse_link

CAL = model.load_model().calibration
NODES = list(CAL.nodes)
STATES = sorted({s for n in CAL.nodes.values() for s in n.states})
FLAGS = [f.id for f in CAL.red_flags]
LATENT = next(n for n in NODES if not CAL.nodes[n].observable)
ASKED = next(n for n in NODES if CAL.nodes[n].observable)
#: Every word a notice may use: the app's own (from notices of every kind, singular and
#: plural) and the calibration's question titles. Anything else came from the link.
OWN_NOTICES = [
    notice
    for params in ({"k": "1", LATENT: "x", ASKED: "x", "flags": "f"},
                   {"k": "1", "j": "2", "flags": "f,g", ASKED: "x", NODES[1]: "x"},
                   {"k": "1"},
                   {n: "x" for n in NODES},  # more than five titles: "... and 12 more"
                   {"k" * 9000: "x"})
    for notice in parse_link(params, CAL).notices
]
TITLES = [n.title for n in CAL.nodes.values()]
OWN_WORDS = {w for text in OWN_NOTICES + TITLES for w in re.findall(r"\w+", text)}
OWN_MARKS = {c for text in OWN_NOTICES + TITLES for c in text if not c.isalnum()}

keys = st.one_of(st.sampled_from([*NODES, "flags"]), st.text(min_size=1, max_size=30))
texts = st.one_of(st.sampled_from([*STATES, *FLAGS, "", "not_sure", ",", ",,"]),
                  st.text(max_size=40))
values = st.one_of(texts, st.lists(texts, max_size=4),
                   st.lists(st.sampled_from([*FLAGS, "x"]), max_size=300).map(",".join))
links = st.dictionaries(keys, values, max_size=12)


def check(params: dict) -> LinkAnswers:
    parsed = result_or_refusal(lambda: parse_link(params, CAL), seconds=0.5, megabytes=20)
    assert isinstance(parsed, LinkAnswers)
    for node, state in parsed.evidence.items():
        assert CAL.nodes[node].observable and state in CAL.nodes[node].states
    assert parsed.flags <= set(FLAGS)
    assert len(parsed.notices) <= 1
    for notice in parsed.notices:
        assert len(notice) < 600
    return parsed


@UNTRUSTED
@given(links)
def test_any_link(params):
    parsed = check(params)
    for notice in parsed.notices:
        for word in re.findall(r"\w+", notice):
            assert word in OWN_WORDS or word.isdigit(), word
        assert {c for c in notice if not c.isalnum()} <= OWN_MARKS, notice


@UNTRUSTED
@given(st.integers(1, 40), st.integers(0, 3))
def test_huge_links_are_refused_whole(repeat, extra):
    params = {f"k{i}": "v" * (LINK_MAX_CHARS // 20) for i in range(repeat * 4 + extra)}
    params["flags"] = ",".join(["fake"] * (repeat * 100))
    parsed = check(params)
    if sum(len(k) + len(v) for k, v in params.items()) > LINK_MAX_CHARS:
        assert parsed.evidence == {} and parsed.flags == frozenset()
        assert len(parsed.notices) == 1


@UNTRUSTED
@given(st.fixed_dictionaries({}, optional={n: st.sampled_from(CAL.nodes[n].states)
                                           for n in NODES if CAL.nodes[n].observable}),
       st.sets(st.sampled_from(FLAGS)))
def test_links_the_app_writes_read_back_the_same(evidence, flags):
    parsed = check(link_params(evidence, flags, CAL))
    assert parsed.evidence == evidence and parsed.flags == flags and parsed.notices == ()
