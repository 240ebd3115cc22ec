"""Therapist pieces shared by the Calibrate, Cases and (in therapist mode) Assess pages.

* :func:`gate` — the therapist passcode gate (unlocked for the session, never echoed);
* :func:`open_clinic` — the clinic's store behind :class:`model.service.Clinic`, the one door
  every save, import, activation and roll back goes through (same policy as the command line);
* :func:`version_model` — a read-only :class:`model.Model` per stored version, cached by
  content hash;
* shared displays (numbers with words, checks and scenario previews).

This is a module, not a page: import it, do not run it with ``st.Page``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from calibration.schema import Calibration
from model.analysis.checks import CheckResult
from model.errors import (
    AccessError,
    BackOffError,
    CalibrationError,
    StoreBusyError,
    StoreError,
)
from model.network_model import Model
from model.service.clinic import (
    CalibrationVersion,
    Clinic,
    Grant,
    calibration_of,
    grant_is_valid,
    unlock,
)
from model.service.policy import Review
from model.service.settings import PASSCODE_ENV, SECRETS_KEY, Settings, load_settings
from model.service.views import scenario_preview
from model.text.safe import code_span, plain
from model.text.verbal import describe

#: Session-state keys (all under the ``kp_`` prefix used by the app).
UNLOCKED = "kp_therapist_unlocked"
PASSCODE_WIDGET = "kp_gate_passcode"
REFUSED = "kp_gate_refused"
FAILURES = "kp_gate_failures"
NAME = "kp_therapist"
NAME_WIDGET = "kp_therapist_name"
FLASH = "kp_therapist_flash"
NEXT_RUN = "kp_therapist_next_run"
SAVED = "kp_cc_saved"
UNKNOWN = "__unknown__"
UNKNOWN_LABEL = "Unknown"
ACTIVATE_LABEL = "Make it the active version"


# ---- settings and the passcode gate -------------------------------------------------------------
def settings() -> Settings:
    """The store file and passcode, read from st.secrets then the environment — the same
    sources the command line reads."""
    return load_settings(st.secrets)


def session_grant() -> Grant | None:
    """This session's grant while it matches the passcode configured now (else ``None``)."""
    grant = st.session_state.get(UNLOCKED)
    return grant if isinstance(grant, Grant) and grant_is_valid(grant, settings()) else None


def is_unlocked() -> bool:
    """True when this session was unlocked with the passcode that is configured now."""
    return session_grant() is not None


def _lock() -> None:
    st.session_state.pop(UNLOCKED, None)


def gate() -> bool:
    """Draw the passcode gate; True when the therapist pages are unlocked for this session.

    Without a configured passcode the pages stay locked and say how to configure one. The
    passcode field is emptied by the submit callback, before the page runs again, and the
    passcode is never shown or kept.
    """
    if settings().locked:
        _lock()
        st.warning("**Therapist pages are locked: no therapist passcode is configured.**",
                   icon=":material/lock:")
        st.markdown(
            "Whoever runs knowpain sets it, outside the repository, in one of two ways:\n"
            f"- the environment variable `{PASSCODE_ENV}` before starting the app, or\n"
            f"- a line `{SECRETS_KEY} = \"…\"` in `.streamlit/secrets.toml` next to the app.\n\n"
            "Then restart the app and enter the passcode here."
        )
        return False
    if is_unlocked():
        with st.container(key="kp_gate_open", horizontal=True, vertical_alignment="center"):
            st.caption("Therapist mode is unlocked for this browser session.")
            st.button("Lock", on_click=_lock, icon=":material/lock:",
                      help="Lock the therapist pages again for this session.")
        return True
    st.info("These pages change the numbers the app uses. Enter the therapist passcode.",
            icon=":material/lock:")
    with st.form("kp_gate", enter_to_submit=True):
        st.text_input("Therapist passcode", type="password", key=PASSCODE_WIDGET,
                      autocomplete="current-password")
        st.form_submit_button("Unlock", icon=":material/lock_open:", on_click=_try_unlock)
    refused = st.session_state.pop(REFUSED, None)
    if refused:
        st.error(f"{plain(refused[:1].upper() + refused[1:])}: the therapist pages stay locked.",
                 icon=":material/block:")
    return False


def _try_unlock() -> None:
    """Form callback: check the passcode, then empty the field (it is never kept).

    Wrong passcodes are counted for this session (:data:`FAILURES`) and, by the service, in
    the store's audit log; both slow further guesses down (see ``model.service.access``).
    """
    ss = st.session_state
    given = ss.get(PASSCODE_WIDGET) or ""
    ss[PASSCODE_WIDGET] = ""
    failures = list(ss.get(FAILURES, ()))
    try:
        ss[UNLOCKED] = unlock(settings(), given, source="app", session_failures=failures)
    except BackOffError as exc:
        ss[REFUSED] = str(exc)
    except AccessError as exc:
        if given:
            ss[FAILURES] = [*failures, datetime.now(UTC)]
        ss[REFUSED] = str(exc)  # the message never contains the passcode
    except StoreError as exc:
        ss[REFUSED] = f"the store could not be used to check the passcode ({exc})"


def therapist_name() -> str:
    """'Your name' — who is acting, recorded with every change (kept across pages)."""
    ss = st.session_state
    if NAME_WIDGET not in ss:
        ss[NAME_WIDGET] = ss.get(NAME, "")
    name = st.text_input("Your name (who is acting: recorded with every change you make)",
                         key=NAME_WIDGET, max_chars=80, placeholder="e.g. Dr A. Jones")
    ss[NAME] = name.strip()
    return ss[NAME]


def flash(kind: str, text: str) -> None:
    """Keep a message to show after the next rerun (e.g. after a save)."""
    st.session_state[FLASH] = (kind, text)


def set_next_run(**values: object) -> None:
    """Set widgets (by key) to these values at the start of the next run.

    A widget's value cannot be changed once the widget is drawn in a run, and deleting its
    key does not change what the browser shows: the browser keeps the old value and sends
    it back on the next interaction. A value *set* before the widget is drawn is sent to
    the browser. :func:`show_flash` applies them, so call this before ``st.rerun()``.
    """
    pending = st.session_state.get(NEXT_RUN) or {}
    st.session_state[NEXT_RUN] = {**pending, **values}


def show_flash() -> None:
    """Show the message kept by :func:`flash`; apply the values kept by :func:`set_next_run`."""
    for key, value in (st.session_state.pop(NEXT_RUN, None) or {}).items():
        st.session_state[key] = value
    kind, text = st.session_state.pop(FLASH, (None, ""))
    if kind == "success":
        st.success(text, icon=":material/check_circle:")
    elif kind == "error":
        st.error(text, icon=":material/error:")


def follow_store(marker: str, revision: object, defaults: dict[str, object]) -> None:
    """Put widgets whose options come from the store back to ``defaults`` when it changed.

    ``revision`` is what their options and labels depend on (e.g. the version ids and the
    active one). A select remembers its choice by its label, so a choice made before a
    save, activation or roll back (or one made in another session) would show a stale
    label or a version nobody picked; the defaults are set before the widgets are drawn,
    so the browser shows them right away. Widgets whose state was dropped (another page was
    shown in between) get their default too.
    """
    ss = st.session_state
    changed = ss.get(marker) != revision
    ss[marker] = revision
    for key, value in defaults.items():
        if changed or key not in ss:
            ss[key] = value


def activate_choice(key: str) -> bool:
    """'Make it the active version', unticked: a therapist activates a version deliberately."""
    return st.checkbox(ACTIVATE_LABEL, value=False, key=key,
                       help="Unticked, the version is saved without changing what lifters "
                            "see; you can activate it later under Calibrate → Versions.")


def state_tabs(labels: list[str], key: str) -> list:
    """``st.tabs`` that keep the open tab across reruns (after a save, import or activation).

    Stateless tabs live only in the browser and fall back to the first tab when the page
    around them changes (a message appears or disappears above them); these report the open
    tab to the script (``st.session_state[key]`` is its label), which sends it back on
    every run. The labels must not change between runs: they are part of the identity.
    """
    return list(st.tabs(labels, key=key, on_change="rerun"))


# ---- the store ----------------------------------------------------------------------------------
def store_error(exc: Exception) -> None:
    """Show a store problem or a refusal plainly: what happened and that nothing was saved."""
    if isinstance(exc, StoreBusyError):
        st.error("**The store is busy** (someone else is saving right now). Nothing was "
                 "saved — try again in a moment.", icon=":material/hourglass_top:")
    elif isinstance(exc, StoreError):
        st.error(f"**The store could not be used.** {plain(str(exc))}\n\nNothing was changed.",
                 icon=":material/database:")
    else:
        st.error(f"**Not saved.** {plain(str(exc))}", icon=":material/block:")


@contextmanager
def open_clinic() -> Iterator[Clinic | None]:
    """The clinic's store for this run (``None`` after showing why it could not be opened);
    writes are allowed while this session is unlocked."""
    try:
        clinic = Clinic(settings(), session_grant())
    except (StoreError, OSError) as exc:
        store_error(exc)
        yield None
        return
    try:
        yield clinic
    finally:
        clinic.close()


@st.cache_resource(max_entries=16, show_spinner=False)
def _model_of(content_hash: str, _version: CalibrationVersion) -> Model:
    return Model(calibration_of(_version))


def version_model(version: CalibrationVersion) -> Model:
    """A read-only model of a stored version (shared by every session; never change it).

    Raises :class:`CalibrationError` when the stored text is not a valid calibration.
    """
    return _model_of(version.content_hash, version)


def active_model(clinic: Clinic) -> tuple[CalibrationVersion, Model]:
    """The store's active version and its model; shows why and stops the page if unusable."""
    try:
        active = clinic.active()
    except StoreError as exc:
        store_error(exc)
        st.stop()
    base_model = model_or_error(active)
    if base_model is None:
        st.stop()
    return active, base_model


def model_or_error(version: CalibrationVersion) -> Model | None:
    try:
        return version_model(version)
    except CalibrationError as exc:
        st.error(f"Stored version {version.id} is not a valid calibration:\n\n"
                 + "\n".join(f"- {plain(p)}" for p in exc.problems), icon=":material/error:")
        return None


@st.cache_resource(max_entries=32, show_spinner=False)
def calibration_model(text: str, _calibration: Calibration) -> Model:
    """A read-only model of a validated calibration, cached by its TOML text."""
    return Model(_calibration)


# ---- shared displays --------------------------------------------------------------------------
def word(p: float) -> str:
    """A probability as number and word ('impossible evidence' when it cannot be computed)."""
    return describe(p) if math.isfinite(p) else "— (impossible evidence)"


def points(delta: float) -> str:
    """A change of probability in percentage points."""
    return f"{100 * delta:+.1f} points" if math.isfinite(delta) else "—"


def parameter_label(cal: Calibration, node: str, column: str, state: str) -> str:
    """``P(Node = State | parent states…)`` in the calibration's own labels."""
    spec = cal.nodes[node]
    given = ""
    if spec.parents:
        given = " | " + ", ".join(f"{cal.nodes[p].title}: {cal.nodes[p].state_label(s)}"
                                  for p, s in zip(spec.parents, column.split(","), strict=True))
    return f"P({spec.title} = {spec.state_label(state)}{given})"


def checks_panel(review: Review, key: str) -> bool:
    """The save policy's verdict: every behaviour check (failures first) and any weakening of
    the red-flag screen; True when the calibration may be saved."""
    results: Sequence[CheckResult] = review.checks
    failed = review.failed_checks
    with st.container(key=key):
        st.markdown("##### Behaviour checks")
        if failed:
            st.error(f"**{len(failed)} of {len(results)} behaviour checks fail:** "
                     + ", ".join(code_span(r.id) for r in failed)
                     + ". Every version must keep these orderings, so it cannot be saved.",
                     icon=":material/rule:")
        else:
            st.success(f"All {len(results)} behaviour checks pass.", icon=":material/rule:")
        if review.weakened:
            st.error("**It cannot be saved: the red-flag screen may not be weakened.**\n"
                     + "\n".join(f"- {plain(r)}" for r in review.screen_reasons),
                     icon=":material/shield:")
        rows = [{"check": r.id, "result": "pass" if r.passed else "FAIL",
                 "values (must fall)": r.detail or " > ".join(word(v) for v in r.values),
                 "what it says": r.description}
                for r in sorted(results, key=lambda r: r.passed)]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=240)
    return review.ok


def preview_panel(before: Model, after: Model, key: str) -> None:
    """The reference lifters' cause chances before → after, with words: one small table per
    lifter (container ``<key>_<scenario id>``), so it stays readable on a phone."""
    by_scenario: dict[str, list] = {}
    for c in scenario_preview(before, after):
        by_scenario.setdefault(c.scenario, []).append(c)
    with st.container(key=key):
        st.markdown("##### Reference lifters: chance of each cause, before → after")
        if not by_scenario:
            st.caption("This calibration has no reference scenarios.")
            return
        for scenario, changes in by_scenario.items():
            with st.container(key=f"{key}_{scenario}"):
                st.markdown(f"**{plain(changes[0].label)}**")
                rows = [{"cause": plain(after.calibration.nodes[c.cause].title),
                         "before": word(c.before), "after": word(c.after),
                         "change": points(c.change)} for c in changes]
                st.table(pd.DataFrame(rows), hide_index=True, border="horizontal")

