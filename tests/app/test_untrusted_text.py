"""Text that is not the project's own, rendered by the real pages under AppTest.

A store whose active version carries hostile Markdown in every therapist-written field, and a
crafted shared link: every value Streamlit would render as Markdown (prose, alerts, widget
labels, radio options, help texts, expander labels, table cells) must hold it escaped — no
link, image, HTML or colour directive — and the link's own content must never appear.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest
from apptest_helpers import ROOT, TIMEOUT, assert_ok, shown, start
from hostile import EVIL, EVIL_LINK, hostile_calibration
from streamlit.testing.v1 import AppTest

from calibration.store import Store
from model.service.policy import self_contained, shipped_default
from model.service.settings import PASSCODE_ENV
from model.text.safe import plain

PASSCODE = "a long passcode for tests"
#: Markup that would make the browser show a link or an image, run HTML, or colour text.
UNESCAPED = re.compile(r"(?<!\\)(\]\(|<img|<b>|<script|:red\[|!\[)|https?://evil|www\.evil")
MARKDOWN_KINDS = ("title", "header", "subheader", "markdown", "caption", "error", "warning",
                  "info", "success")


@pytest.fixture
def hostile_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store whose active version is the shipped calibration with hostile text."""
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path))
    monkeypatch.setenv(PASSCODE_ENV, PASSCODE)
    text = self_contained(hostile_calibration(shipped_default()))
    Store(tmp_path / "knowpain.sqlite", seed_toml=text).close()
    return tmp_path


def markdown_values(at: AppTest) -> list[str]:
    """Every string on the page that Streamlit renders as Markdown."""
    values: list[str] = []
    for kind in MARKDOWN_KINDS:
        values += [str(el.value) for el in getattr(at, kind)]
    values += [e.label for e in at.expander]
    for kind in ("radio", "checkbox", "select_slider", "selectbox", "multiselect", "slider",
                 "text_input", "text_area", "button", "number_input"):
        for w in getattr(at, kind):
            values.append(str(w.label))
            if getattr(w, "help", None):
                values.append(str(w.help))
            if kind in ("radio", "select_slider"):
                values += [str(o) for o in w.options]
    for table in at.table:
        frame: pd.DataFrame = table.value
        values += [str(v) for v in frame.to_numpy().ravel()]
        values += [str(v) for v in frame.index] + [str(c) for c in frame.columns]
    return values


def assert_escaped(at: AppTest, expect_evil: bool = True) -> None:
    assert_ok(at)
    values = markdown_values(at)
    for value in values:
        assert UNESCAPED.search(value) is None, value
    if expect_evil:  # the hostile text did reach the page, escaped
        assert any(plain(EVIL) in v for v in values)
        assert any(EVIL in shown(v) for v in values)


# ---- lifter pages -------------------------------------------------------------------------------
@pytest.mark.parametrize("query", [
    {},
    {"training_age": "first_sessions", "low_back_soreness": "mild", "bracing_loss": "often"},
    {"low_back_soreness": "mild", "soreness_duration": "over_7_days"},  # amber
    {"flags": "saddle_numbness"},  # red
])
def test_assess_shows_hostile_calibration_text_escaped(hostile_home, query):
    assert_escaped(start(query))


def test_how_it_works_shows_hostile_calibration_text_escaped(hostile_home):
    at = AppTest.from_file(str(ROOT / "app_pages" / "how_it_works.py"),
                           default_timeout=TIMEOUT).run()
    assert_escaped(at)


def test_a_crafted_link_is_never_echoed():
    at = start(EVIL_LINK)
    assert_escaped(at, expect_evil=False)
    notices = [shown(w.value) for w in at.warning]
    assert len(notices) == 1
    page = " ".join(shown(v) for v in markdown_values(at))
    for payload in ("evil.example", "127.0.0.1", "bogus", "[x]"):
        assert payload not in page


def test_five_thousand_flags_give_one_notice_quickly():
    link = {"flags": ",".join(f"fake_{i}" for i in range(5000))}
    start(None)  # warm up the model cache, so the timing is the link's alone
    began = time.perf_counter()
    at = start(link)
    elapsed = time.perf_counter() - began
    assert_ok(at)
    assert len(at.warning) == 1 and "too long" in at.warning[0].value
    assert elapsed < 5, f"{elapsed:.1f} s"


# ---- therapist pages ----------------------------------------------------------------------------
def unlocked(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=TIMEOUT)
    at.run()
    at.text_input(key="kp_gate_passcode").input(PASSCODE)
    next(b for b in at.button if b.label == "Unlock").click()
    at.run()
    assert_ok(at)
    at.text_input(key="kp_therapist_name").input("Dr <b>[x](https://evil.example)</b>").run()
    return at


@pytest.mark.parametrize("name", ["calibrate", "cases"])
def test_therapist_pages_show_hostile_text_escaped(hostile_home, name):
    at = unlocked(name)
    assert_escaped(at, expect_evil=name == "calibrate")


def test_versions_tab_escapes_author_and_note(hostile_home):
    with Store(hostile_home / "knowpain.sqlite") as store:
        text = store.active_version().toml_text
        store.add_version(text, author=EVIL, note=EVIL)
    at = unlocked("calibrate")
    assert_escaped(at)

