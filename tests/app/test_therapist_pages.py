"""The therapist pages under AppTest: the passcode gate, Calibrate, Cases and case capture.

Every test gets its own store (``KNOWPAIN_HOME`` = a temporary folder) and a passcode in the
environment, exactly as a deployment would configure them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apptest_helpers import ROOT, TIMEOUT, assert_ok, shown, texts
from streamlit.proto.Block_pb2 import Block as BlockProto
from streamlit.testing.v1 import AppTest

import model
from app_pages import therapist
from calibration import editing as ed
from calibration.cases import parse_cases_csv
from calibration.loader import parse_calibration
from calibration.store import NewCase, Store
from model.analysis.checks import run_checks
from model.learning.sampling import sample_cases
from model.service import views
from model.service.policy import review, self_contained, shipped_default
from model.service.settings import PASSCODE_ENV as ENV_VAR
from model.text.verbal import describe

PASSCODE = "correct horse 42"
NAME = "Dr Test"
M = model.load_model()
CAL = M.calibration
BEGINNER = next(s for s in CAL.scenarios if s.id == "first_week_beginner")
ANCHOR = re.compile(r"(<|>)?(\d+)\s%\s—\s(\(almost\) certain|probable|expected|fifty-fifty|"
                    r"unlikely|improbable|\(almost\) impossible)$")


# ---- helpers ------------------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path))
    monkeypatch.setenv(ENV_VAR, PASSCODE)
    return tmp_path


def store_file(home: Path) -> Path:
    return home / "knowpain.sqlite"


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=TIMEOUT)


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def unlock(at: AppTest, passcode: str = PASSCODE, name: str | None = NAME) -> AppTest:
    at.run()
    assert_ok(at)
    at.text_input(key="kp_gate_passcode").input(passcode)
    button(at, "Unlock").click()
    at.run()
    assert_ok(at)
    if name is not None:
        at.text_input(key=therapist.NAME_WIDGET).input(name).run()
    return at


def slider_key(node: str, slot: str) -> str:
    return f"kp_cal_v_{node}|{slot}|n"


def preview(at: AppTest, scenario: str = BEGINNER.id, key: str = "kp_cal_preview"):
    """The preview table of one reference lifter, indexed by cause title."""
    block = at.get_by_key(f"{key}_{scenario}")
    label = next(s.label for s in CAL.scenarios if s.id == scenario)
    assert block.markdown[0].value == f"**{label}**"
    return block.table[0].value.set_index("cause")


def preview_cell(frame, cause: str, column: str) -> str:
    return frame.loc[CAL.nodes[cause].title, column]


def percent(text: str) -> int:
    m = ANCHOR.search(text)
    assert m, f"{text!r} is not a number with its word"
    return int(m.group(2))


def edit_stabilizer(at: AppTest, slot: str, value: float) -> AppTest:
    at.selectbox(key="kp_cal_node").set_value("stabilizer_overload").run()
    at.slider(key=slider_key("stabilizer_overload", slot)).set_value(value).run()
    assert_ok(at)
    return at


def versions(home: Path):
    with Store(store_file(home)) as store:
        return store.list_versions(), store.active_version()


def stored_cases(home: Path):
    if not store_file(home).exists():
        return []
    with Store(store_file(home)) as store:
        return store.list_cases()


def shown_in_browser(widget, before):
    """What the browser shows for a widget after a run: what it showed (``before``) unless
    the run sent it a new value. Deleting a widget's key in the script does not."""
    proto = widget.proto
    if not proto.set_value:
        return before
    return proto.raw_value if hasattr(proto, "raw_value") else proto.value


def open_tab(at: AppTest) -> str:
    """The label of the tab the browser opens in the page's (only) tab container."""
    containers, stack = [], [at.main]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if isinstance(proto, BlockProto) and proto.WhichOneof("type") == "tab_container":
            containers.append(node)
        stack += list(getattr(node, "children", {}).values())
    (container,) = containers
    labels = [t.label for t in container.children.values()]
    return labels[container.proto.tab_container.default_tab_index]


# ---- the passcode gate --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["calibrate", "cases"])
def test_locked_when_no_passcode_is_configured(home, monkeypatch, name):
    monkeypatch.delenv(ENV_VAR, raising=False)
    at = page(name).run()
    assert_ok(at)
    shown = " ".join(texts(at))
    assert "no therapist passcode is configured" in shown
    assert ENV_VAR in shown and ".streamlit/secrets.toml" in shown
    assert not at.text_input  # nothing to type into: it stays locked
    assert not at.slider and not at.file_uploader
    assert not store_file(home).exists()  # the store is not even opened


@pytest.mark.parametrize("name", ["calibrate", "cases"])
def test_wrong_passcode_stays_locked_and_is_never_echoed(home, name):
    at = unlock(page(name), passcode="guess", name=None)
    assert any("wrong passcode" in e.value.lower() for e in at.error)
    assert not at.slider and not at.file_uploader
    assert at.text_input(key="kp_gate_passcode").value == ""  # the field is cleared
    assert not any("guess" in t for t in texts(at))
    assert therapist.UNLOCKED not in at.session_state


def test_right_passcode_unlocks_for_the_session_and_lock_locks_again(home):
    at = unlock(page("calibrate"))
    assert not at.error
    assert at.slider, "the editors are shown once unlocked"
    assert not any(PASSCODE in t for t in texts(at))
    assert all(w.value != PASSCODE for w in at.text_input)
    at.run()  # a rerun (any widget change) keeps the session unlocked
    assert at.slider
    button(at, "Lock").click().run()
    assert not at.slider
    assert any(t.key == "kp_gate_passcode" for t in at.text_input)


def test_passcode_and_store_path_from_streamlit_secrets(home, monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    other = tmp_path / "elsewhere" / "clinic.sqlite"
    at = page("calibrate")
    at.secrets["therapist_passcode"] = "from secrets"
    at.secrets["store_path"] = str(other)
    unlock(at, passcode="from secrets")
    assert at.slider
    assert other.exists() and not store_file(home).exists()


# ---- Calibrate: live preview, checks, validation ------------------------------------------------
def test_editing_a_number_changes_the_preview_after_values(home):
    at = unlock(page("calibrate"))
    at.selectbox(key="kp_cal_node").set_value("stabilizer_overload").run()
    first = preview(at)
    before = preview_cell(first, "stabilizer_overload", "before")
    assert preview_cell(first, "stabilizer_overload", "after") == before
    edit_stabilizer(at, "training_age=first_sessions|yes", 20.0)
    second = preview(at)
    after = preview_cell(second, "stabilizer_overload", "after")
    assert preview_cell(second, "stabilizer_overload", "before") == before
    assert percent(after) < percent(before)
    # the page shows exactly what the library computes for the edited calibration
    edited = review(ed.edit_node(CAL, "stabilizer_overload",
                                      {"training_age=first_sessions|yes": 0.20}))
    expected = model.Model(edited.calibration).posterior(dict(BEGINNER.evidence))
    assert after == describe(expected["stabilizer_overload"]["yes"])
    assert before == describe(M.posterior(dict(BEGINNER.evidence))["stabilizer_overload"]["yes"])
    for scenario in CAL.scenarios:  # every number has its word
        table = preview(at, scenario.id)
        assert all(ANCHOR.search(v) for v in (*table["before"], *table["after"]))
    assert any("Back muscles met a new load" in m.value for m in at.markdown
               if m.value.startswith("Changed"))


def test_a_change_that_breaks_a_behaviour_check_names_it_and_blocks_saving(home):
    at = unlock(page("calibrate"))
    at.selectbox(key="kp_cal_node").set_value("stabilizer_overload").run()
    assert any("All" in s.value and "behaviour checks pass" in s.value for s in at.success)
    edit_stabilizer(at, "training_age=novice|yes", 90.0)  # novice above first sessions
    errors = [e.value for e in at.get_by_key("kp_cal_checks").error]
    assert errors and "stabilizer_by_training_age" in errors[0]
    table = at.get_by_key("kp_cal_checks").dataframe[0].value
    assert table.set_index("check").loc["stabilizer_by_training_age", "result"] == "FAIL"
    passing = {r.id for r in run_checks(M)} - {"stabilizer_by_training_age"}
    assert all(table.set_index("check").loc[c, "result"] == "pass" for c in passing
               if c not in errors[0])
    assert at.button(key="kp_cal_save_button").disabled


def test_invalid_numbers_list_every_problem_and_cannot_be_saved(home):
    at = unlock(page("calibrate"))
    edit_stabilizer(at, "leak|yes", 50.0)  # a leak above parents' numbers
    problems = " ".join(shown(e.value) for e in at.get_by_key("kp_cal_problems").error)
    assert "'stabilizer_overload'" in problems and "below the leak" in problems
    assert problems.count("below the leak") >= 3
    assert not any(b.key == "kp_cal_save_button" for b in at.button)


def test_anchor_word_snaps_the_slider_and_any_point_is_allowed(home):
    at = unlock(page("calibrate"))
    at.selectbox(key="kp_cal_node").set_value("stabilizer_overload").run()
    slot = "training_age=novice|yes"
    at.selectbox(key=f"kp_cal_v_stabilizer_overload|{slot}|w").set_value("fifty-fifty").run()
    assert at.slider(key=slider_key("stabilizer_overload", slot)).value == 50.0
    assert at.selectbox(key=f"kp_cal_v_stabilizer_overload|{slot}|w").value is None
    assert any(m.value == "**Yes: 50 % — fifty-fifty**" for m in at.markdown)
    at.slider(key=slider_key("stabilizer_overload", slot)).set_value(31.5).run()
    assert any(m.value == "**Yes: 32 % — unlikely**" for m in at.markdown)
    assert all(s.label for s in at.slider) and all(s.label for s in at.selectbox)


def test_table_nodes_are_edited_one_column_at_a_time_with_the_rest_shown(home):
    at = unlock(page("calibrate"))
    at.selectbox(key="kp_cal_node").set_value("soreness_duration").run()
    columns = at.selectbox(key="kp_cal_column_soreness_duration")
    assert len(columns.options) == len(CAL.columns("soreness_duration"))
    states = CAL.nodes["soreness_duration"].states
    assert len(at.slider) == len(states) - 1  # the first state takes the rest
    assert any(m.value.startswith(f"{CAL.nodes['soreness_duration'].state_label(states[0])} "
                                  "(the rest):") for m in at.markdown)


def test_untouched_numbers_off_the_slider_steps_do_not_count_as_edits(home):
    odd = ed.edit_node(CAL, "stabilizer_overload", {"training_age=novice|yes": 0.2468013579})
    odd = odd.with_table("onset", CAL.cpt("onset") * 0.9 + 0.1 / 3)  # off-grid table entries
    with Store(store_file(home), seed_toml=self_contained(shipped_default())) as store:
        store.add_version(self_contained(odd), author="refit", activate=True)
    at = unlock(page("calibrate"))
    for node in ("training_age", "stabilizer_overload", "onset"):
        at.selectbox(key="kp_cal_node").set_value(node).run()
        assert any("No changes yet" in c.value for c in at.caption), node
        if node == "stabilizer_overload":
            shown = at.slider(key=slider_key(node, "training_age=novice|yes")).value
            assert shown == pytest.approx(24.68013579)


def test_sensitivity_lists_the_numbers_the_scenarios_depend_on(home):
    at = unlock(page("calibrate"))
    table = at.get_by_key("kp_cal_sensitivity").table[0].value
    expected = views.scenario_sensitivity(M, top=10)
    assert len(table) == len(expected) > 0
    assert table.iloc[0]["moves a cause by"] == f"{100 * expected[0].swing:.1f} points"
    assert all(ANCHOR.search(v) for v in table["now"])


# ---- Calibrate: versions ------------------------------------------------------------------------
def save_edit(at: AppTest, value: float = 70.0, note: str = "stiffer first sessions",
              activate: bool = True) -> None:
    edit_stabilizer(at, "training_age=first_sessions|yes", value)
    at.text_input(key="kp_cal_note").input(note).run()
    if activate:
        at.checkbox(key="kp_cal_activate").check().run()
    at.button(key="kp_cal_save_button").click().run()
    assert_ok(at)


def test_save_creates_version_2_with_author_note_and_the_new_number(home):
    at = unlock(page("calibrate"))
    save_edit(at)
    assert any("Saved version 2" in s.value for s in at.success)
    listed, active = versions(home)
    assert [v.id for v in listed] == [1, 2]
    v2 = listed[1]
    assert (v2.author, v2.note, v2.parent_id, active.id) == (NAME, "stiffer first sessions", 1, 2)
    saved = parse_calibration(v2.toml_text)
    assert saved.nodes["stabilizer_overload"].params["training_age"]["first_sessions"] == 0.70
    assert saved.nodes["stabilizer_overload"].cpt == "noisy_or"
    # the draft now starts from version 2: nothing left to save, the slider shows 70
    assert at.slider(key=slider_key("stabilizer_overload",
                                    "training_age=first_sessions|yes")).value == 70.0
    assert at.button(key="kp_cal_save_button").disabled


def test_save_needs_a_name(home):
    at = unlock(page("calibrate"), name=None)
    edit_stabilizer(at, "training_age=first_sessions|yes", 70.0)
    assert at.button(key="kp_cal_save_button").disabled
    assert [v.id for v in versions(home)[0]] == [1]


def test_rollback_and_activate_move_the_active_version(home):
    at = unlock(page("calibrate"))
    save_edit(at)
    assert versions(home)[1].id == 2
    at.button(key="kp_cal_rollback").click().run()
    assert_ok(at)
    assert any("version 1 is active again" in s.value for s in at.success)
    assert versions(home)[1].id == 1
    assert at.button(key="kp_cal_rollback").disabled  # version 1 has no parent
    at.selectbox(key="kp_cal_activate_id").set_value(2).run()
    at.button(key="kp_cal_activate_button").click().run()
    assert versions(home)[1].id == 2
    with Store(store_file(home)) as store:
        actions = [(a.action, a.who) for a in store.audit_log()]
    assert ("rollback", NAME) in actions and ("activate", NAME) in actions


def test_compare_two_versions_parameter_by_parameter(home):
    at = unlock(page("calibrate"))
    save_edit(at)
    at.selectbox(key="kp_cal_cmp_a").set_value(1).run()
    at.selectbox(key="kp_cal_cmp_b").set_value(2).run()
    diff = at.get_by_key("kp_cal_diff")
    table = diff.table[0].value
    assert len(table) == 1
    row = table.iloc[0]
    assert "First" in row["number"] and "Back muscles met a new load" in row["number"]
    assert (row["version 1"], row["version 2"]) == (describe(0.65), describe(0.70))
    assert row["change"] == "+5.0 points"


def test_version_selects_follow_the_store_right_after_save_activate_and_rollback(home):
    at = unlock(page("calibrate"))
    save_edit(at)  # version 2, made active
    shown = "1 (active): the label the browser showed before the save"

    def assert_selects(active: int, a: int, b: int) -> None:
        nonlocal shown
        chosen = at.selectbox(key="kp_cal_activate_id")
        assert chosen.value == active
        shown = shown_in_browser(chosen, shown)
        assert shown.startswith(f"{active} (active)")
        assert at.button(key="kp_cal_activate_button").disabled  # it is already active
        assert (at.selectbox(key="kp_cal_cmp_a").value, at.selectbox(key="kp_cal_cmp_b").value
                ) == (a, b)
        assert not any("Pick two different" in c.value for c in at.caption)
        assert at.get_by_key("kp_cal_diff")

    assert_selects(active=2, a=1, b=2)
    at.button(key="kp_cal_rollback").click().run()
    assert_selects(active=1, a=1, b=2)
    at.selectbox(key="kp_cal_activate_id").set_value(2).run()
    assert not at.button(key="kp_cal_activate_button").disabled
    at.button(key="kp_cal_activate_button").click().run()
    assert_selects(active=2, a=1, b=2)
    at.run()  # the next interaction changes nothing
    assert_selects(active=2, a=1, b=2)
    at.selectbox(key="kp_cal_cmp_a").set_value(2).run()  # a choice is kept while nothing
    at.run()  # changes in the store
    assert at.selectbox(key="kp_cal_cmp_a").value == 2
    assert any("Pick two different" in c.value for c in at.caption)


def test_save_empties_the_note_and_unticks_activate_in_the_browser(home):
    at = unlock(page("calibrate"))
    save_edit(at, note="stiffer first sessions")
    note = at.text_input(key="kp_cal_note")
    assert note.value == "" and shown_in_browser(note, "stiffer first sessions") == ""
    ticked = at.checkbox(key="kp_cal_activate")
    assert ticked.value is False and shown_in_browser(ticked, True) is False
    at.multiselect(key="kp_cal_pool").set_value([1, 2]).run()
    at.text_input(key="kp_cal_pool_note").input("both agree").run()
    at.button(key="kp_cal_pool_save").click().run()
    assert_ok(at)
    assert versions(home)[0][-1].note == "pool of versions 1, 2: both agree"
    assert at.multiselect(key="kp_cal_pool").value == []  # a new pool starts empty
    assert not any(t.key == "kp_cal_pool_note" for t in at.text_input)
    at.multiselect(key="kp_cal_pool").set_value([2, 3]).run()
    assert at.text_input(key="kp_cal_pool_note").value == ""


def flashed(at: AppTest) -> bool:
    """A success message from the last save, import or activation is shown."""
    return any(m.value.startswith(("Saved", "Imported", "Version", "Rolled back"))
               for m in at.success)


def test_the_open_tab_survives_save_and_activate_and_the_next_interaction(home):
    at = unlock(page("calibrate"))
    assert open_tab(at) == "Edit numbers"
    at.session_state["kp_cal_tab"] = "Versions"  # the therapist opens Versions
    at.run()
    assert open_tab(at) == "Versions"
    save_edit(at, activate=False)  # the draft is edited and saved while Versions is open
    assert flashed(at) and open_tab(at) == "Versions"
    at.selectbox(key="kp_cal_activate_id").set_value(2).run()  # the flash message goes
    assert not flashed(at) and open_tab(at) == "Versions"
    at.button(key="kp_cal_activate_button").click().run()
    assert any("Version 2 is now active" in m.value for m in at.success)
    assert open_tab(at) == "Versions"
    at.selectbox(key="kp_cal_cmp_a").set_value(2).run()
    assert not flashed(at) and open_tab(at) == "Versions"


def test_pool_two_versions_into_a_new_version(home):
    at = unlock(page("calibrate"))
    save_edit(at)
    at.multiselect(key="kp_cal_pool").set_value([1, 2]).run()
    assert_ok(at)
    at.button(key="kp_cal_pool_save").click().run()
    assert_ok(at)
    listed, active = versions(home)
    assert [v.id for v in listed] == [1, 2, 3] and active.id == 2
    assert listed[2].note.startswith("pool of versions 1, 2")
    pooled = parse_calibration(listed[2].toml_text)
    # equal confidence (20 each): the pooled number is the average of 0.65 and 0.70
    cell = pooled.cpt("stabilizer_overload")[0, 0, 0, 0, 1]  # first sessions, all else off
    assert cell == pytest.approx(0.675)


def test_a_busy_store_is_reported_and_nothing_is_saved(home):
    """Another writer holds the store's write lock past the timeout while the save runs."""
    import sqlite3

    at = unlock(page("calibrate"))
    blocker = sqlite3.connect(store_file(home), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        save_edit(at)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert any("store is busy" in e.value.lower() for e in at.error)
    assert [v.id for v in versions(home)[0]] == [1]


@pytest.mark.parametrize("name", ["calibrate", "cases"])
def test_a_corrupt_store_is_refused_and_left_untouched(home, name):
    junk = b"this is not a knowpain store\n" * 20
    store_file(home).write_bytes(junk)
    at = unlock(page(name), name=None)
    errors = " ".join(e.value for e in at.error)
    assert "could not be used" in errors and "not a knowpain store" in errors
    assert store_file(home).read_bytes() == junk


# ---- Cases: import and export -------------------------------------------------------------------
def cases_page(home: Path) -> AppTest:
    return unlock(page("cases"))


def upload(at: AppTest, content: bytes, filename: str = "clinic.csv") -> AppTest:
    at.file_uploader[0].set_value((filename, content, "text/csv"))
    return at.run()


def test_csv_import_error_lists_row_and_column_and_stores_nothing(home):
    at = cases_page(home)
    bad = (b"training_age,low_back_soreness,cause:stabilizer_overload\n"
           b"novice,mild,yes\n"
           b"veteran,mild,yes\n"
           b"novice,mild,maybe\n")
    upload(at, bad)
    assert_ok(at)
    block = at.get_by_key("kp_cases_import")
    assert "2 broken row(s)" in block.error[0].value
    assert "nothing is imported unless you ask" in block.error[0].value
    listed = shown(block.markdown[0].value)
    assert 'row 3, column "training_age"' in listed and "veteran" in listed
    assert 'row 4, column "cause:stabilizer_overload"' in listed and "maybe" in listed
    assert at.button(key="kp_cases_import_button").disabled  # not without asking
    assert stored_cases(home) == []
    # asking for the valid rows imports them and names what was skipped
    at.checkbox(key="kp_cases_skip_broken").check().run()
    at.button(key="kp_cases_import_button").click().run()
    assert_ok(at)
    (case,) = stored_cases(home)
    assert case.evidence == {"training_age": "novice", "low_back_soreness": "mild"}
    message = next(shown(s.value) for s in at.success if shown(s.value).startswith("Imported"))
    assert "Imported 1 case(s)" in message and "2 broken row(s) skipped as asked: rows 3, 4" \
        in message


def test_a_header_problem_refuses_the_whole_file(home):
    at = cases_page(home)
    upload(at, b"training_age,bogus\nnovice,1\n")
    block = at.get_by_key("kp_cases_import")
    assert "Nothing was stored" in block.error[0].value
    assert 'unknown column "bogus"' in block.markdown[0].value
    assert not any(b.key == "kp_cases_import_button" for b in at.button)


def test_the_same_file_twice_is_recognised_not_doubled(home):
    at = cases_page(home)
    data = b"training_age,low_back_soreness\n" + b"novice,mild\n" * 40  # identical rows
    upload(at, data, "week1.csv")
    at.button(key="kp_cases_import_button").click().run()
    assert len(stored_cases(home)) == 40  # identical rows are 40 cases
    upload(at, data, "week1-again.csv")
    assert_ok(at)
    info = shown(at.get_by_key("kp_cases_import").info[0].value)
    assert "week1-again.csv was imported before: import 1 (week1.csv" in info
    assert "40 case(s) stored" in info and "not doubled" in info
    assert not any(b.key == "kp_cases_import_button" for b in at.button)
    assert len(stored_cases(home)) == 40


def test_rows_whose_case_id_is_stored_are_skipped_with_where_they_came_from(home):
    at = cases_page(home)
    upload(at, b"case_id,training_age\na1,novice\na2,trained\n", "monday.csv")
    at.button(key="kp_cases_import_button").click().run()
    upload(at, b"case_id,training_age\na1,novice\na2,trained\na3,novice\n", "tuesday.csv")
    captions = " ".join(shown(c.value) for c in at.get_by_key("kp_cases_import").caption)
    assert "2 row(s) already stored (same case_id): 2 from import 1 (monday.csv" in captions
    at.button(key="kp_cases_import_button").click().run()
    assert [c.case_ref for c in stored_cases(home)] == ["a1", "a2", "a3"]
    message = next(shown(s.value) for s in at.success if shown(s.value).startswith("Imported"))
    assert "Imported 1 case(s)" in message and "2 row(s) were already stored" in message


def test_a_valid_csv_import_stores_every_case(home, downloads):
    at = cases_page(home)
    good = (b"training_age,bracing_loss,low_back_soreness,cause:wrong_prime_mover,outcome,"
            b"therapist\n"
            b"novice,often,mild,yes,none,\n"
            b"trained,,marked,,mild,Dr Other\n"
            b"first_sessions,no,mild,no,,\n")
    upload(at, good)
    assert any("3 case(s), all valid" in shown(s.value) for s in at.success)
    at.button(key="kp_cases_import_button").click().run()
    assert_ok(at)
    assert any("Imported 3 case(s)" in shown(s.value) for s in at.success)
    cases = stored_cases(home)
    assert len(cases) == 3
    assert cases[0].evidence == {"training_age": "novice", "bracing_loss": "often",
                                 "low_back_soreness": "mild"}
    assert cases[0].adjudicated == {"wrong_prime_mover": "yes"}
    assert cases[0].outcome == "none"
    assert [c.therapist for c in cases] == [NAME, "Dr Other", NAME]
    assert at.file_uploader[0].value is None  # emptied: the same file is not imported twice
    assert len(at.get_by_key("kp_cases_list").dataframe[0].value) == 3
    exported = [d for d, _, name in downloads if name == "knowpain-cases.csv"][-1]
    again = parse_cases_csv(exported, CAL.variables, CAL.causes, outcome_node=CAL.outcome)
    assert [(c.evidence, c.adjudicated, c.outcome) for c in again] == [
        (c.evidence, c.adjudicated, c.outcome) for c in cases]


def test_the_open_tab_survives_an_import_and_the_next_interaction(home):
    at = cases_page(home)
    assert open_tab(at) != "Import and export"
    at.session_state["kp_cases_tab"] = "Import and export"  # the therapist opens it
    at.run()
    upload(at, b"training_age,low_back_soreness\nnovice,mild\n")
    at.button(key="kp_cases_import_button").click().run()
    assert any("Imported 1 case(s)" in shown(s.value) for s in at.success)
    assert open_tab(at) == "Import and export"
    at.text_input(key=therapist.NAME_WIDGET).input("Dr Other").run()  # the flash goes
    assert not flashed(at) and open_tab(at) == "Import and export"
    assert at.get_by_key("kp_cases_list").markdown[0].value.startswith("**1 case(s)**")


# ---- Cases: refit -------------------------------------------------------------------------------
def seed_cases(home: Path, n: int = 300, seed: int = 3) -> None:
    frame = sample_cases(CAL, n, seed=seed)
    observable = [n for n, s in CAL.nodes.items() if s.observable]
    new = [NewCase(evidence={k: row[k] for k in observable},
                   adjudicated={c: row[c] for c in CAL.causes})
           for row in frame.to_dict("records")]
    with Store(store_file(home), seed_toml=self_contained(shipped_default())) as store:
        store.add_cases(new, therapist="seed")


def test_refit_preview_shows_convergence_moves_checks_and_held_out_metrics(home):
    seed_cases(home)
    at = cases_page(home)
    at.button(key="kp_cases_refit_button").click().run()
    assert_ok(at)
    fit = " ".join(m.value for m in at.get_by_key("kp_cases_fit").markdown)
    assert "EM" in fit and "converged after" in fit  # a latent node is never observed
    moved = at.get_by_key("kp_cases_moved").table[0].value
    assert len(moved) == 10 and all(ANCHOR.search(v) for v in moved["after"])
    assert at.get_by_key("kp_cases_checks").dataframe[0].value["result"].isin(
        ["pass", "FAIL"]).all()
    metrics = at.get_by_key("kp_cases_metrics").table[0].value
    for name in views.METRICS.values():
        assert name in set(metrics["metric"]), name
    assert set(metrics["cause"]) == {CAL.nodes[c].title for c in CAL.causes}
    numbers = metrics[["before", "after"]].map(float)  # every metric is defined here
    assert numbers.notna().all().all()
    assert (numbers["before"] != numbers["after"]).any()
    assert at.get_by_key("kp_cases_metrics").get("vega_lite_chart"), "reliability plot"
    for scenario in CAL.scenarios:
        table = preview(at, scenario.id, key="kp_cases_preview")
        assert [shown(i) for i in table.index] == [CAL.nodes[c].title for c in CAL.causes]
        assert all(ANCHOR.search(v) for v in (*table["before"], *table["after"]))


def test_refit_is_saved_as_a_new_version(home):
    seed_cases(home, n=400)
    at = cases_page(home)
    at.radio(key="kp_cases_method").set_value("em").run()
    at.button(key="kp_cases_refit_button").click().run()
    save = at.button(key="kp_cases_save_button")
    assert not save.disabled, [e.value for e in at.error]
    save.click().run()
    assert_ok(at)
    listed, active = versions(home)
    assert [v.id for v in listed] == [1, 2] and active.id == 1  # saved, not activated
    assert listed[1].note == "refit from 400 cases (em)" and listed[1].author == NAME
    assert ed.changed_nodes(CAL, parse_calibration(listed[1].toml_text))


def test_make_it_active_starts_unticked_and_reads_the_same_on_both_pages(home):
    seed_cases(home, n=100)
    cases = cases_page(home)
    cases.button(key="kp_cases_refit_button").click().run()
    calibrate = unlock(page("calibrate"))
    edit_stabilizer(calibrate, "training_age=first_sessions|yes", 70.0)
    boxes = [cases.checkbox(key="kp_cases_activate"), calibrate.checkbox(key="kp_cal_activate")]
    assert [b.value for b in boxes] == [False, False]
    assert boxes[0].label == boxes[1].label == therapist.ACTIVATE_LABEL
    calibrate.button(key="kp_cal_save_button").click().run()
    assert any("Saved version 2 (not active yet)" in m.value for m in calibrate.success)
    assert versions(home)[1].id == 1


def test_refit_without_adjudicated_causes_explains_the_missing_metrics(home):
    with Store(store_file(home), seed_toml=self_contained(shipped_default())) as store:
        store.add_cases([NewCase({"training_age": "novice", "low_back_soreness": "mild"})] * 6,
                        therapist="seed")
    at = cases_page(home)
    at.button(key="kp_cases_refit_button").click().run()
    assert_ok(at)
    info = " ".join(i.value for i in at.get_by_key("kp_cases_metrics").info)
    assert "no case has an adjudicated cause" in info


def test_a_refit_the_cases_contradict_names_the_check_and_the_cases_and_cannot_be_saved(home):
    table = CAL.cpt("soreness_duration").copy()
    table[..., 1, :] = [0.75, 0.20, 0.05]  # a non-training cause makes soreness shorter
    frame = sample_cases(CAL.with_table("soreness_duration", table), 600, seed=0)
    observable = [n for n, s in CAL.nodes.items() if s.observable]
    with Store(store_file(home), seed_toml=self_contained(shipped_default())) as store:
        store.add_cases([NewCase({k: r[k] for k in observable}, {c: r[c] for c in CAL.causes})
                         for r in frame.to_dict("records")], therapist="seed")
    at = cases_page(home)
    assert "Starts from the active version 1 (an expert calibration) and uses all 600 " \
        "stored case(s)" in " ".join(m.value for m in at.markdown)
    at.button(key="kp_cases_refit_button").click().run()
    assert_ok(at)
    shown = at.get_by_key("kp_cases_behaviour").error[0].value
    assert "The cases contradict these behaviour checks" in shown
    assert "duration_points_to_other_cause: P(other_cause=yes | soreness_duration=3_to_7_days)" \
        in shown and "short by" in shown and "% likely" in shown
    assert "pulled by case " in shown and "other_cause=yes, soreness_duration=under_3_days" \
        in shown
    assert at.button(key="kp_cases_save_button").disabled
    assert versions(home)[0][-1].id == 1


def test_a_small_refit_keeps_the_experts_orderings_and_says_so(home):
    seed_cases(home, n=100, seed=4)  # a sample whose plain refit breaks a check
    at = cases_page(home)
    at.button(key="kp_cases_refit_button").click().run()
    assert_ok(at)
    info = at.get_by_key("kp_cases_behaviour").info[0].value
    assert info.startswith("**Kept the experts' orderings:** ")
    assert "of the cases' weight, so that" in info and "needed to overturn" in info
    assert not at.get_by_key("kp_cases_behaviour").error
    save = at.button(key="kp_cases_save_button")
    assert not save.disabled
    save.click().run()
    listed, _ = versions(home)
    assert listed[-1].kind == "refit" and listed[-1].fitted_from == 1


# ---- case capture (Assess page, therapist mode) -------------------------------------------------
def capture_script() -> None:
    import model
    from app_pages import case_capture, therapist

    therapist.gate()
    case_capture.render_case_capture(
        model.load_model(), {"training_age": "novice", "low_back_soreness": "mild"}
    )


def locked_capture_script() -> None:
    import model
    from app_pages import case_capture

    case_capture.render_case_capture(model.load_model(), {"training_age": "novice"})


def test_case_capture_draws_nothing_while_locked(home):
    at = AppTest.from_function(locked_capture_script, default_timeout=TIMEOUT).run()
    assert_ok(at)
    assert not at.radio and not at.button and not at.text_input


def test_case_capture_saves_the_case_with_adjudication_and_outcome(home):
    at = unlock(AppTest.from_function(capture_script, default_timeout=TIMEOUT), name=None)
    assert [shown(r.label) for r in at.radio] == [
        f"After assessment — {CAL.nodes[c].title}?" for c in CAL.causes]
    at.radio(key="kp_cc_cause_stabilizer_overload").set_value("yes")
    at.radio(key="kp_cc_cause_other_cause").set_value("no")
    at.selectbox(key="kp_cc_outcome").set_value("none")
    button(at, "Save this case").click().run()
    assert any("Enter your name" in e.value for e in at.error)
    assert stored_cases(home) == []
    at.text_input(key=therapist.NAME_WIDGET).input(NAME)
    button(at, "Save this case").click().run()
    assert_ok(at)
    assert any("Saved as case 1" in s.value for s in at.success)
    (case,) = stored_cases(home)
    assert case.evidence == {"training_age": "novice", "low_back_soreness": "mild"}
    assert case.adjudicated == {"stabilizer_overload": "yes", "other_cause": "no"}
    assert (case.outcome, case.therapist) == ("none", NAME)
    assert all(r.value == therapist.UNKNOWN for r in at.radio)  # ready for the next case


def answers_capture_script(evidence: dict) -> None:
    import model
    from app_pages import case_capture, therapist

    therapist.gate()
    case_capture.render_case_capture(model.load_model(), evidence)


@pytest.mark.parametrize(("evidence", "said"), [
    ({"training_age": "novice"}, "1 answer from this page goes with the case."),
    ({"training_age": "novice", "low_back_soreness": "mild"},
     "2 answers from this page go with the case."),
    ({}, "0 answers from this page go with the case."),
])
def test_case_capture_counts_the_answers_in_good_english(home, evidence, said):
    at = AppTest.from_function(answers_capture_script, args=(evidence,),
                               default_timeout=TIMEOUT)
    unlock(at, name=None)
    captions = [c.value for c in at.get_by_key("kp_case_capture").caption]
    assert any(c.startswith(said) for c in captions), captions


def test_assess_follows_the_active_version_and_rollback(home):
    """Activating a version changes what lifters see; rolling back restores it."""
    from dataclasses import replace

    from apptest_helpers import cause_percent

    from calibration.store import Store
    from calibration.writer import to_toml

    def shown_prior() -> int:
        at = AppTest.from_file(str(ROOT / "app_pages" / "assess.py"), default_timeout=TIMEOUT)
        at.query_params["none_apply"] = "1"  # the warning signs answered: estimates shown
        at.run()
        assert not at.exception
        return cause_percent(at, "stabilizer_overload")

    node = CAL.nodes["stabilizer_overload"]
    params = {**node.params, "training_age": {**node.params["training_age"], "novice": 0.9}}
    edited = replace(CAL, nodes={**CAL.nodes, "stabilizer_overload": replace(node, params=params)})
    new_prior = round(100 * model.Model(edited).prior_causes["stabilizer_overload"])
    old_prior = round(100 * model.Model(CAL).prior_causes["stabilizer_overload"])
    assert new_prior >= old_prior + 3
    assert shown_prior() == old_prior  # no store yet: the shipped calibration
    with Store(store_file(home), seed_toml=self_contained(shipped_default())) as store:
        store.add_version(to_toml(edited), author=NAME, note="higher leak", activate=True)
    assert shown_prior() == new_prior
    with Store(store_file(home)) as store:
        store.rollback(who=NAME)
    assert shown_prior() == old_prior


# ---- the gate slows guessing down ---------------------------------------------------------------
def test_wrong_passcodes_back_off_and_are_audited(home):
    from datetime import UTC, datetime

    from model.service.access import FREE_TRIES

    at = page("calibrate")
    for _ in range(2):
        at = unlock(at, passcode="wrong guess", name=None)
        assert any("wrong passcode" in shown(e.value).lower() for e in at.error)
    assert len(at.session_state[therapist.FAILURES]) == 2
    with Store(store_file(home)) as store:
        failed = [e for e in store.audit_log() if e.action == "unlock_failed"]
    assert [e.who for e in failed] == ["app", "app"]
    assert "wrong guess" not in repr(failed)
    # this session has failed many times just now: even the right passcode must wait
    at.session_state[therapist.FAILURES] = [datetime.now(UTC)] * (FREE_TRIES + 5)
    at = unlock(at, name=None)
    assert any("too many wrong passcodes" in shown(e.value).lower() for e in at.error)
    assert therapist.UNLOCKED not in at.session_state
