"""Regenerate the screenshots of calibration/README.md from the real app.

Run from the repository root::

    .venv/bin/python calibration/docs/take_screenshots.py

It starts ``streamlit run app.py`` on a free local port with a throw-away store (a temporary
``KNOWPAIN_HOME``) and a demo passcode, drives headless Chromium (Debian's
``/usr/bin/chromium``) through the therapist pages with Playwright, writes the PNGs next to
this file and always stops the server. The practice cases it imports are *synthetic*: drawn
from the shipped calibration by forward sampling, for the pictures only.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page, sync_playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import model  # noqa: E402  (needs ROOT on the path)
from model.learning.sampling import sample_cases, with_missing  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSCODE = "demo-passcode"
WIDTH = 1280
WAIT_MS = 30_000
DEBUG = os.environ.get("KP_SHOTS_DEBUG")  # a folder: also save a full page per step there


# ---- practice data --------------------------------------------------------------------------
def practice_cases(path: Path, n: int = 120, seed: int = 4) -> Path:
    """Synthetic cases in the import format: causes adjudicated in about 70 % of rows."""
    import numpy as np

    cal = model.load_model().calibration
    frame = sample_cases(cal, n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for cause in cal.causes:
        frame["cause:" + cause] = frame[cause].where(rng.random(n) < 0.7, "")
    frame = frame.drop(columns=list(cal.causes))
    frame = with_missing(frame, {"technique_breakdown": 1.0, "lumbar_rounding": 0.5,
                                 "onset": 0.3, "pain_character": 0.3, "soreness_duration": 0.4,
                                 "trend_across_sessions": 0.5, "glute_soreness": 0.2}, seed=seed)
    frame.insert(0, "case_id", [f"P{i:03d}" for i in range(1, n + 1)])
    frame.fillna("").to_csv(path, index=False)
    return path


BROKEN_CSV = """\
case_id,training_age,bracing_loss,low_back_soreness,cause:stabilizer_overload,outcome
B1,beginner,no,mild,yes,none
B2,trained,often,Mild,no,
B3,novice,,marked,maybe,
B1,novice,,marked,,
B4,first_sessions,no,mild,yes,none
B5,trained,sometimes,none,no,none
"""


# ---- the server -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(home: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "KNOWPAIN_HOME": str(home), "KNOWPAIN_THERAPIST_PASSCODE": PASSCODE}
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {home / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("streamlit did not start within 60 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


# ---- page helpers ---------------------------------------------------------------------------
def key(name: str) -> str:
    """CSS selector of the container Streamlit gives a widget or container with this key."""
    return ".st-key-" + "".join(c if c.isalnum() or c in "_-" else "-" for c in name.strip())


def settle(page: Page, pause_ms: int = 400) -> None:
    """Wait until the script run has finished and nothing is still loading."""
    page.wait_for_timeout(pause_ms)
    page.wait_for_function(
        "!document.querySelector('[data-testid=stStatusWidget]')"
        " && document.querySelectorAll('[data-testid=stSkeleton]').length === 0",
        timeout=WAIT_MS,
    )
    page.wait_for_timeout(pause_ms)


def grow(page: Page) -> None:
    """Make the viewport as tall as the page, so that every element can be clipped."""
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stAppViewContainer]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": WIDTH, "height": max(int(height), 700)})
    settle(page, 300)


def shoot(page: Page, name: str, top: Locator, bottom: Locator, pad: int = 12,
          narrow: bool = False) -> None:
    """Save the band from the top of ``top`` to the bottom of ``bottom``: the full width, or
    with ``narrow`` only the width of ``top``."""
    grow(page)
    a, b = top.bounding_box(), bottom.bounding_box()
    if a is None or b is None:
        raise RuntimeError(f"{name}: an element to clip is not visible")
    y0 = max(0, a["y"] - pad)
    y1 = b["y"] + b["height"] + pad
    x0, x1 = (max(0, a["x"] - pad), min(WIDTH, a["x"] + a["width"] + pad)) if narrow \
        else (0, WIDTH)
    path = HERE / name
    page.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
    if DEBUG:
        page.screenshot(path=str(Path(DEBUG) / f"full-{name}"), full_page=True)
    page.set_viewport_size({"width": WIDTH, "height": 900})
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")


def nav(page: Page, title: str) -> None:
    """Go to another page through the top navigation (keeps the session, so stays unlocked)."""
    page.locator("[data-testid=stTopNavLink]", has_text=title).first.click()
    settle(page)


def choose(page: Page, selector: str, option: str, prefix: bool = False) -> None:
    """Pick ``option`` (or the option starting with it) in the select box in ``selector``."""
    box = page.locator(selector).get_by_role("combobox")
    box.click()
    if not page.get_by_role("option").count():  # an empty select opens on the arrow key
        box.press("ArrowDown")
    name = re.compile("^" + re.escape(option)) if prefix else option
    page.get_by_role("option", name=name, exact=not prefix).first.click()
    settle(page)


def open_tab(page: Page, name: str) -> None:
    """Select a tab (again: a rerun that changes the page above it can reset the tabs)."""
    tab = page.get_by_role("tab", name=name)
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
        settle(page)


def type_name(page: Page, name: str) -> None:
    box = page.locator(key("kp_therapist_name")).locator("input")
    box.fill(name)
    box.press("Enter")
    settle(page)


def unlock(page: Page, passcode: str) -> None:
    form = page.locator("[data-testid=stForm]").first
    form.locator("input[type=password]").fill(passcode)
    form.get_by_role("button", name="Unlock").click()
    settle(page)


# ---- the tour -------------------------------------------------------------------------------
def tour(page: Page, url: str, work: Path) -> None:
    page.goto(f"{url}/calibrate")
    page.get_by_role("heading", name="Calibrate the numbers").wait_for()
    settle(page)

    # 1. the gate, after a wrong passcode
    unlock(page, "not-the-passcode")
    page.get_by_text("Wrong passcode").wait_for()
    shoot(page, "01-gate.png", page.get_by_role("heading", name="Calibrate the numbers"),
          page.locator("[data-testid=stAlert]").last)

    # 2. unlocked: edit one number on the verbal-numerical scale
    unlock(page, PASSCODE)
    page.get_by_text("Therapist mode is unlocked").wait_for()
    type_name(page, "Dr A")
    choose(page, key("kp_cal_node"), "Back muscles met a new load (leaky noisy-OR)")
    number = "kp_cal_v_stabilizer_overload|training_age=first_sessions|yes"
    choose(page, key(number + "|w"), "expected")  # the word snaps the slider to 75
    page.locator(key(number + "|n")).get_by_text("75.0 %").first.wait_for()
    note = page.locator(key("kp_cal_note")).locator("input")
    note.fill("first sessions alone: 65 -> 75 (expected)")
    note.press("Enter")
    settle(page)
    shoot(page, "02-calibrate-edit.png", page.get_by_role("tablist").first,
          page.locator(key("kp_cal_preview") + "_back_puller"))

    # save it, then compare with version 1 on the Versions tab
    page.locator(key("kp_cal_save_button")).locator("button").click()
    page.get_by_text("Saved version 2").wait_for()
    settle(page)
    # Compare starts on the two newest versions
    open_tab(page, "Versions")
    page.locator(key("kp_cal_diff")).wait_for()
    shoot(page, "03-versions-diff.png", page.locator(key("kp_cal_versions")),
          page.locator(key("kp_cal_diff")))

    # 3. Cases: a file with broken rows: every problem listed, nothing imported unless asked
    nav(page, "Cases")
    open_tab(page, "Import and export")
    broken = work / "broken_cases.csv"
    broken.write_text(BROKEN_CSV, encoding="utf-8")
    uploader = page.locator("[data-testid=stFileUploader] input[type=file]").first
    uploader.set_input_files(str(broken))
    page.locator(key("kp_cases_import")).get_by_text("Import the valid rows").wait_for()
    settle(page)
    shoot(page, "04-cases-import-errors.png",
          page.get_by_role("heading", name="Import cases from a CSV file"),
          page.locator(key("kp_cases_import")))

    # import the practice cases, then preview a refit with its held-out metrics
    uploader = page.locator("[data-testid=stFileUploader] input[type=file]").first
    uploader.set_input_files(str(practice_cases(work / "practice_cases.csv")))
    page.locator(key("kp_cases_import_button")).locator("button").click()
    page.get_by_text("Imported 120 case(s)").wait_for()
    settle(page)
    open_tab(page, "Refit from cases")
    page.locator(key("kp_cases_refit_button")).locator("button").click()
    settle(page)
    open_tab(page, "Refit from cases")
    page.locator(key("kp_cases_metrics")).wait_for(timeout=120_000)
    page.get_by_text("Points on the dashed diagonal").wait_for()  # under the reliability plot
    settle(page, 1000)
    shoot(page, "05-cases-refit-metrics.png", page.locator(key("kp_cases_metrics")),
          page.locator(key("kp_cases_save")))

    # 4. Assess, still unlocked: answer a few questions, then the 'save this case' panel
    nav(page, "Assess")
    page.get_by_role("heading", name="3 · What's likely and what to do").wait_for()
    # the warning signs come first: "None of these apply to me" lets the estimates show
    page.locator(key("flag__none_apply")).get_by_text("None of these apply to me").click()
    settle(page)
    for question in ("max_attempt", "grinding_reps"):
        page.locator(key(f"ans_{question}")).get_by_text("Yes", exact=True).click()
        settle(page)
    panel = page.locator(key("kp_case_capture"))
    panel.get_by_text("2 answers from this page").wait_for()
    panel.locator(key("kp_cc_cause_stabilizer_overload")).get_by_text("Yes", exact=True).click()
    panel.locator(key("kp_cc_cause_other_cause")).get_by_text("No", exact=True).click()
    choose(page, key("kp_cc_outcome"), "None")
    panel.get_by_text("Therapist: save this case").click()  # move the focus off the select
    shoot(page, "06-assess-save-case.png", panel, panel, narrow=True)
    panel.get_by_role("button", name="Save this case").click()
    page.get_by_text("Saved as case 121.").wait_for()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="knowpain-shots-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        with streamlit_server(home) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": WIDTH, "height": 900})
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                try:
                    tour(page, url, work)
                except Exception:
                    if DEBUG:
                        grow(page)
                        page.screenshot(path=str(Path(DEBUG) / "failed.png"), full_page=True)
                    raise
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
