"""How fast the Streamlit app answers, measured with AppTest (server-side time, no browser).

    .venv/bin/python benchmarks/bench_app.py [--reruns 40]

Prints one table:

* first render: the first run of ``app.py`` in this fresh process — the page imports,
  the model load (``st.cache_resource``) and the first ``diagnose`` (target ≤ 5 s);
* rerun after a slider move, with new answers (the diagnosis cache cleared before each
  run, so ``Model.diagnose`` really runs) and with answers seen before (cache hit);
  target ≤ 150 ms;
* the same for the How it works page.

AppTest runs the script in-process exactly as the server does, plus a little bookkeeping
to build its element tree, so the numbers are a slight overestimate of server time. This is
a measurement, not a test: nothing fails, the targets are printed next to the numbers.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest


def import_seconds() -> float:
    """``import streamlit`` in a fresh process, less the bare interpreter's start-up."""
    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - t0
    bare = statistics.median(run("pass") for _ in range(3))
    return statistics.median(run("import streamlit") for _ in range(3)) - bare

# clearing a cache outside a server logs a warning each time; keep the table readable
for name in ("streamlit.runtime.caching.cache_data_api",
             "streamlit.runtime.scriptrunner_utils.script_run_context"):
    logging.getLogger(name).disabled = True

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
sys.path.insert(0, str(ROOT))

# (node, states in the order the slider is moved through); every rerun moves one slider.
SLIDERS = (
    ("training_age", ("first_sessions", "novice", "trained")),
    ("load_jump", ("within_plan", "moderate", "large")),
    ("bracing_loss", ("no", "sometimes", "often")),
    ("pulling_with_back", ("no", "sometimes", "often")),
    ("low_back_soreness", ("none", "mild", "marked")),
)


def timed_run(at: AppTest) -> float:
    t = time.perf_counter()
    at.run()
    dt = time.perf_counter() - t
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return dt


def slider(at: AppTest, node: str):
    return next(w for w in at.select_slider if w.key == f"ans_{node}")


def moves(n: int):
    """n slider moves that keep producing new combinations of answers."""
    pos = [0] * len(SLIDERS)
    for i in range(n):
        k = i % len(SLIDERS) if i % 7 else (i // 7) % len(SLIDERS)
        node, states = SLIDERS[k]
        pos[k] = (pos[k] + 1) % len(states)
        yield node, states[pos[k]]


def rerun_times(at: AppTest, n: int, clear_cache: bool) -> list[float]:
    out = []
    for node, state in moves(n):
        slider(at, node).set_value(state)
        if clear_cache:
            st.cache_data.clear()
        out.append(timed_run(at))
    return out


def row(name: str, times: list[float], target: str) -> str:
    ms = sorted(t * 1000 for t in times)
    med = statistics.median(ms)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"| {name:<48} | {len(ms):>3} | {med:>9.1f} | {p90:>9.1f} | {target:>8} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reruns", type=int, default=40, help="reruns per measurement")
    args = ap.parse_args(argv)

    at = AppTest.from_file(str(APP), default_timeout=60)
    first = timed_run(at)
    second = timed_run(at)  # same answers: everything cached

    misses = rerun_times(at, args.reruns, clear_cache=True)
    hits = rerun_times(at, args.reruns, clear_cache=False)  # replays the same moves

    how = AppTest.from_file(str(APP), default_timeout=60)
    how.run()
    how.switch_page("app_pages/how_it_works.py")
    how_first = timed_run(how)
    how_reruns = []
    for _ in range(args.reruns):
        st.cache_data.clear()
        how_reruns.append(timed_run(how))

    print(f"import streamlit in a fresh process (before the server is up): "
          f"{import_seconds() * 1000:.0f} ms\n")
    print(f"| {'measurement':<48} | {'n':>3} | {'median ms':>9} | {'p90 ms':>9} | "
          f"{'target':>8} |")
    print(f"|{'-' * 50}|{'-' * 5}|{'-' * 11}|{'-' * 11}|{'-' * 10}|")
    print(row("Assess: first render (cold process)", [first], "≤ 5000"))
    print(row("Assess: rerun, same answers", [second], "≤ 150"))
    print(row("Assess: rerun after a slider move, new answers", misses, "≤ 150"))
    print(row("Assess: rerun after a slider move, seen before", hits, "≤ 150"))
    print(row("How it works: first render (model warm)", [how_first], "≤ 5000"))
    print(row("How it works: rerun, diagnosis not cached", how_reruns, "≤ 150"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
