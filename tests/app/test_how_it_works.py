"""The How it works page under AppTest: the drawn network, rationale, limits, disclaimer."""

from __future__ import annotations

from apptest_helpers import PERCENT, assert_ok, shown, start, texts

import model

CAL = model.load_model().calibration
PAGE = "app_pages/how_it_works.py"


def open_page(query=None):
    at = start(query)
    return at.switch_page(PAGE).run()


def test_how_it_works_renders_network_rationale_and_disclaimer():
    at = open_page()
    assert_ok(at)
    assert at.title[0].value == "How it works"
    assert any(CAL.messages.disclaimer in shown(i.value) for i in at.info)
    charts = at.get("graphviz_chart")
    assert len(charts) == 1
    spec = charts[0].proto.spec
    for name, node in CAL.nodes.items():
        assert f"{name} [" in spec, name
        for parent in node.parents:
            assert f"{parent} -> {name};" in spec
    for role in ("context", "technique", "cause", "symptom"):
        assert f"subgraph cluster_{role}" in spec
    labels = [shown(e.label) for e in at.expander]
    assert all(node.title in labels for node in CAL.nodes.values())
    body = " ".join(texts(at))
    assert "no gold standard" in body.lower()
    assert "contested" in body.lower()
    assert "Saraceni" in body  # the rationale of the contested edge is shown


def test_graph_follows_the_answers_from_assess():
    at = start({"training_age": "first_sessions"})
    at.switch_page(PAGE).run()
    spec = at.get("graphviz_chart")[0].proto.spec
    assert "answered: First few sessions" in spec
    assert "— " in spec and PERCENT.search(spec)  # shaded nodes carry number and word
    # back on Assess the answer is still there
    at.switch_page("app_pages/assess.py").run()
    slider = next(w for w in at.select_slider if w.key == "ans_training_age")
    assert slider.value == "first_sessions"


def test_graph_shows_no_numbers_after_a_red_flag():
    at = open_page({"flags": "saddle_numbness", "training_age": "novice"})
    assert_ok(at)
    spec = at.get("graphviz_chart")[0].proto.spec
    assert not PERCENT.search(spec)
    assert any("warning sign is ticked" in c.value for c in at.caption)


def test_a_refitted_active_version_says_how_many_cases_each_number_is_worth(
        tmp_path, monkeypatch):
    from dataclasses import replace

    from calibration.store import Store
    from model.service.policy import self_contained

    node = CAL.nodes["bracing_loss"]  # a root: its one column
    refitted = CAL.with_node(replace(node, column_confidence={"": 1234.0}))
    lb = CAL.nodes["low_back_soreness"]
    links = [f"{p}={s}" for p, by in lb.params.items() for s in by]
    worth = {"leak": 1000.0} | {k: 100.0 + 10 * i for i, k in enumerate(links)}
    refitted = refitted.with_node(replace(lb, column_confidence=worth))
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path))
    Store(tmp_path / "knowpain.sqlite", seed_toml=self_contained(refitted)).close()
    at = open_page()
    assert_ok(at)
    body = " ".join(texts(at))
    assert "count as about 1,234 cases' worth" in body  # one column: one number
    low, high = 100, 1000  # a column is as well known as its least known parameter
    assert (f"recorded cases refined them; each counts as between {low:,} and {high:,} "
            "cases' worth") in body
