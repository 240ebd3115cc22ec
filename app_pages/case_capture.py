"""'Save this case' on the Assess page, for an unlocked therapist session.

Records the therapist's adjudicated causes and the follow-up outcome together with the
answers on the page, and saves the case to the store. This is a module, not a page.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app_pages.therapist import (
    SAVED,
    UNKNOWN,
    UNKNOWN_LABEL,
    is_unlocked,
    open_clinic,
    store_error,
    therapist_name,
)
from model.errors import KnowpainError
from model.network_model import Model
from model.service.clinic import NewCase
from model.text.safe import plain, printable


def _state_label(m: Model, node: str, state: str) -> str:
    if state == UNKNOWN:
        return UNKNOWN_LABEL
    return plain(m.calibration.nodes[node].state_label(state))  # a radio option: Markdown


def _option_label(m: Model, node: str, state: str) -> str:
    if state == UNKNOWN:
        return UNKNOWN_LABEL
    return printable(m.calibration.nodes[node].state_label(state))


def render_case_capture(model: Model, evidence: Mapping[str, str]) -> None:
    """'Save this case' for therapists: adjudicated causes, follow-up outcome, then save.

    Draws nothing unless the session is unlocked (see :func:`gate`). ``evidence`` is the
    answers that count on the Assess page, ``{node: state}``.
    """
    if not is_unlocked():
        return
    cal = model.calibration
    outcome = cal.outcome
    with st.container(border=True, key="kp_case_capture"):
        st.markdown("##### Therapist: save this case")
        answered = len(evidence)
        answers = "1 answer from this page goes" if answered == 1 else (
            f"{answered} answers from this page go")
        st.caption(f"{answers} with the case. Add your judgement after the assessment; leave "
                   "anything you do not know as Unknown.")
        saved = st.session_state.pop(SAVED, None)
        if saved:
            st.success(saved, icon=":material/check_circle:")
        with st.form("kp_cc_form", clear_on_submit=False, border=False):
            adjudicated: dict[str, str] = {}
            for cause in cal.causes:
                spec = cal.nodes[cause]
                options = [UNKNOWN, *spec.states]
                value = st.radio(f"After assessment — {plain(spec.title)}?", options,
                                 horizontal=True,
                                 key=f"kp_cc_cause_{cause}",
                                 format_func=lambda s, c=cause: _state_label(model, c, s))
                if value != UNKNOWN:
                    adjudicated[cause] = value
            follow_up: str | None = None
            if outcome:
                spec = cal.nodes[outcome]
                options = [UNKNOWN, *spec.states]
                value = st.selectbox(f"Follow-up: {plain(spec.title.lower())} at the next session",
                                     options, key="kp_cc_outcome",  # options: plain text
                                     format_func=lambda s: _option_label(model, outcome, s))
                follow_up = None if value == UNKNOWN else value
            name = therapist_name()
            submitted = st.form_submit_button("Save this case", icon=":material/save:")
        if not submitted:
            return
        if not name:
            st.error("Enter your name first: it is saved with the case.", icon=":material/badge:")
            return
        if not evidence and not adjudicated and follow_up is None:
            st.error("There is nothing to save yet: answer some questions first.",
                     icon=":material/info:")
            return
        case = NewCase(evidence=dict(evidence), adjudicated=adjudicated, outcome=follow_up)
        with open_clinic() as clinic:
            if clinic is None:
                return
            try:
                (case_id,) = clinic.record_cases([case], name)
            except KnowpainError as exc:
                store_error(exc)
                return
        for key in [*(f"kp_cc_cause_{c}" for c in cal.causes), "kp_cc_outcome"]:
            st.session_state.pop(key, None)  # a fresh form for the next case
        st.session_state[SAVED] = f"Saved as case {case_id}."
        st.rerun()
