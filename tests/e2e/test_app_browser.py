"""End to end: `streamlit run app.py` in a subprocess, driven by a real headless Chromium.

Answers are set by clicking, the shown numbers must move, a red flag must hide every
percentage, and screenshots (1280 px and 390 px wide) go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_server import CHROMIUM, ROOT, chromium, running_app

import model

SHOTS = ROOT / "test-artifacts" / "screenshots"
PERCENT = re.compile(r"(<|>)?(\d+)\s?%")
WAIT_MS = 20_000

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} is missing (CI installs Debian's chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CAL = model.load_model().calibration


# ---- the server ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_app(tmp_path_factory.mktemp("home"),
                     tmp_path_factory.mktemp("streamlit") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(sync_api) as b:
        yield b


@pytest.fixture
def page_at(browser) -> Iterator[Callable[..., object]]:
    contexts = []

    def open_page(url: str, width: int = 1280, height: int = 900):
        ctx = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        return page

    yield open_page
    for ctx in contexts:
        ctx.close()


# ---- helpers ------------------------------------------------------------------------------------
def ready(page) -> None:
    """Wait until the Assess page has run and drawn its results."""
    page.get_by_role("heading", name="3 · What's likely and what to do").wait_for()
    page.locator(".st-key-results").wait_for(state="attached")
    page.locator(".st-key-warning_signs").wait_for(state="attached")
    # the results stream in; the report button comes after all of them (red flag or not)
    page.locator(".st-key-results").get_by_text("Download report (Markdown)").wait_for()


def percent_in(page, key: str) -> int:
    block = page.locator(f".st-key-{key}")
    block.scroll_into_view_if_needed()
    m = PERCENT.search(block.inner_text())
    assert m, f"no percentage in {key}"
    return {"<": 0, ">": 100}.get(m.group(1) or "", int(m.group(2)))


def wait_for_change(read: Callable[[], int], old: int, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = read()
        except Exception:  # element re-rendering
            value = old
        if value != old:
            return value
        time.sleep(0.1)
    raise AssertionError(f"the shown number stayed at {old}")


def slide_to(page, node: str, label: str) -> None:
    """Click the slider track of a question at the stop showing ``label``."""
    widget = page.locator(f".st-key-ans_{node}")
    widget.scroll_into_view_if_needed()
    rng = widget.locator("input[type=range]")
    n = int(rng.get_attribute("max")) + 1
    spec = CAL.nodes[node]
    stops = ["Not sure", *(spec.state_label(s) for s in spec.states)]
    assert len(stops) == n, stops
    index = stops.index(label)
    track = widget.locator("[role=group] > div").first
    box = track.bounding_box()
    inner = box["width"] - 4  # stay inside the track at both ends
    page.mouse.click(box["x"] + 2 + inner * index / (n - 1), box["y"] + box["height"] / 2)
    page.wait_for_function(
        "([sel, want]) => document.querySelector(sel)?.getAttribute('aria-valuetext') === want",
        arg=[f".st-key-ans_{node} input[type=range]", label],
    )


def full_screenshot(page, name: str) -> Path:
    """Screenshot the whole app (Streamlit scrolls an inner element, not the document)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stAppViewContainer]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": width, "height": max(int(height), 600)})
    page.wait_for_function("document.querySelectorAll('[data-testid=stSkeleton]').length === 0")
    page.wait_for_timeout(500)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"
    )


# ---- tests --------------------------------------------------------------------------------------
def test_clicking_answers_moves_the_numbers(server, page_at):
    page = page_at(server)
    ready(page)
    # no estimates until the warning signs are answered: unticked boxes are not a "no"
    results = page.locator(".st-key-results")
    page.get_by_text("Answer the warning signs first").wait_for()
    assert not PERCENT.search(results.inner_text())
    none = page.locator(".st-key-flag__none_apply")
    none.scroll_into_view_if_needed()
    none.locator("label").click()
    page.locator(".st-key-cause_stabilizer_overload").wait_for()
    stab = percent_in(page, "cause_stabilizer_overload")
    full_screenshot(page, "assess-start-1280.png")
    page.set_viewport_size({"width": 1280, "height": 900})

    slide_to(page, "training_age", "First few sessions")
    new_stab = wait_for_change(lambda: percent_in(page, "cause_stabilizer_overload"), stab)
    assert new_stab > stab, "first sessions raise stabilizer overload"

    wrong = percent_in(page, "cause_wrong_prime_mover")
    slide_to(page, "bracing_loss", "Often")
    new_wrong = wait_for_change(lambda: percent_in(page, "cause_wrong_prime_mover"), wrong)
    assert new_wrong > wrong, "bracing lost often raises back as prime mover"

    other = percent_in(page, "cause_other_cause")
    radio = page.locator(".st-key-ans_max_attempt")
    radio.scroll_into_view_if_needed()
    radio.get_by_text("Yes", exact=True).click()
    assert wait_for_change(lambda: percent_in(page, "cause_other_cause"), other) > other

    # the answers are in the address, ready to send to a coach
    page.wait_for_function("location.search.includes('max_attempt=yes')")
    assert "training_age=first_sessions" in page.url
    assert "bracing_loss=often" in page.url
    share = page.locator(".st-key-results [data-testid=stCode]")
    share.scroll_into_view_if_needed()
    assert "max_attempt=yes" in share.inner_text()  # a link to copy for a coach
    # soreness details appear once the back is sore
    assert page.locator(".st-key-ans_onset").count() == 0
    slide_to(page, "low_back_soreness", "Mild")
    page.locator(".st-key-ans_onset").wait_for()
    full_screenshot(page, "assess-answered-1280.png")


def test_red_flag_hides_every_percentage(server, page_at):
    page = page_at(f"{server}/?training_age=first_sessions&bracing_loss=often&none_apply=1")
    ready(page)
    results = page.locator(".st-key-results")
    assert PERCENT.search(results.inner_text())
    flag = page.locator(".st-key-flag_saddle_numbness")
    flag.scroll_into_view_if_needed()
    flag.locator("label").click()
    page.get_by_text("Stop and get checked.").wait_for()
    page.wait_for_function("document.querySelectorAll('[class*=st-key-cause_]').length === 0")
    assert not PERCENT.search(results.inner_text()), results.inner_text()
    assert not PERCENT.search(page.locator(".st-key-routing").inner_text())
    assert "flags=saddle_numbness" in page.url
    full_screenshot(page, "assess-red-flag-1280.png")


def test_amber_banner_on_a_phone(server, page_at):
    url = (f"{server}/?training_age=novice&low_back_soreness=mild"
           "&soreness_duration=over_7_days&bracing_loss=sometimes&none_apply=1")
    page = page_at(url, width=390, height=844)
    ready(page)
    assert no_horizontal_scroll(page), "no sideways scrolling at 390 px"
    banner = page.locator(".st-key-results [data-testid=stAlert]").first
    banner.scroll_into_view_if_needed()
    assert "before your next heavy session" in banner.inner_text()
    assert percent_in(page, "cause_stabilizer_overload") > 0
    path = full_screenshot(page, "assess-amber-390.png")
    assert path.stat().st_size > 10_000


def test_red_flag_on_a_phone(server, page_at):
    page = page_at(f"{server}/?flags=both_legs_symptoms&training_age=trained",
                   width=390, height=844)
    ready(page)
    assert no_horizontal_scroll(page)
    assert page.get_by_text("Stop and get checked.").is_visible()
    assert not PERCENT.search(page.locator(".st-key-results").inner_text())
    full_screenshot(page, "assess-red-flag-390.png")


def test_how_it_works_draws_the_network(server, page_at):
    for width in (1280, 390):
        page = page_at(f"{server}/how_it_works", width=width, height=900)
        page.get_by_role("heading", name="How it works").wait_for()
        page.locator("[data-testid=stGraphVizChart] svg").first.wait_for()
        page.get_by_text("What the model cannot do").wait_for()
        assert no_horizontal_scroll(page)
        full_screenshot(page, f"how-it-works-{width}.png")
