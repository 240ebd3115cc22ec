"""Assess: warning signs first, then the questions, then what is likely and what to change."""

from __future__ import annotations

from functools import partial

import streamlit as st

from app_pages import common
from app_pages.case_capture import render_case_capture
from calibration.schema import NodeSpec
from model.results import Diagnosis, Fix
from model.text import report
from model.text.safe import plain
from model.text.verbal import describe

TOP_QUESTIONS = 3
TOP_PUSHES = 4

loaded = common.current_model()
cal = loaded.calibration
common.init_session(cal)
ss = st.session_state

st.title("Why is my low back sore after deadlifts?")
st.markdown(
    "Answer what you know and leave the rest at **Not sure**. The estimates update as you "
    "go, and your answers are kept in this page's address so you can send it to a coach."
)
common.disclaimer(cal)

for notice in ss.get(common.NOTICES, ()):
    st.warning(plain(notice), icon=":material/link_off:")


# ---- 1. warning signs --------------------------------------------------------------------------
def warning_signs() -> tuple[frozenset[str], bool]:
    """The screen: the ticked signs, and whether the lifter said none of the others apply."""
    st.subheader("1 · Warning signs first")
    st.markdown(
        "Tick any that apply, then confirm the rest do not. These are checked by fixed rules "
        "before the model is used, because a rare but serious problem must never be averaged "
        "away. No estimates are shown until every sign is answered."
    )
    ticked_before = common.ticked_flags()
    ticked: set[str] = set()

    def box(flag) -> None:
        key = common.flag_key(flag.id)
        if key not in ss:
            ss[key] = flag.id in ticked_before
        if st.checkbox(plain(flag.question), key=key, help=plain(flag.help) or None,
                       wrap=True):
            ticked.add(flag.id)

    context = [f for f in cal.red_flags if f.level == "context"]
    if context:
        st.markdown("**About you**")
        for flag in context:
            box(flag)
    groups = (
        ("red", "**Get medical help** if any of these apply"),
        ("amber", "**Get checked before heavy lifting** if any of these apply"),
    )
    cols = st.columns(len(groups), gap="medium")
    for col, (level, heading) in zip(cols, groups, strict=True):
        with col:
            st.markdown(heading)
            for flag in (f for f in cal.red_flags if f.level == level):
                box(flag)
    if common.NONE_APPLY_WIDGET not in ss:
        ss[common.NONE_APPLY_WIDGET] = common.none_apply()
    label = ("None of the other signs apply to me" if ticked
             else "None of these apply to me")
    none = st.checkbox(f"**{label}**", key=common.NONE_APPLY_WIDGET,
                       help="Unticked boxes are not taken as a no: confirm it here.")
    return frozenset(ticked), bool(none)


with st.container(border=True, key="warning_signs"):
    flags, none_apply = warning_signs()
ss[common.FLAGS] = flags
ss[common.NONE_APPLY] = none_apply
routing = st.container(key="routing")  # the red routing message goes right under the screen


# ---- 2. questions -------------------------------------------------------------------------------
def ask(spec: NodeSpec, stored: dict[str, str]) -> str:
    """Draw one question (slider if ordinal, radio otherwise); return its state or UNKNOWN."""
    key = common.answer_key(spec.name)
    if key not in ss:
        ss[key] = stored.get(spec.name, common.UNKNOWN)
    options = [common.UNKNOWN, *spec.states]
    label = f"{plain(spec.title)}: {plain(spec.question)}"
    fmt = partial(common.state_label, spec)
    if spec.ordinal:
        value = st.select_slider(label, options, format_func=fmt, key=key,
                                 help=plain(spec.help) or None)
        st.caption(" · ".join(fmt(o) for o in options))
        return value
    return st.radio(label, options, format_func=fmt, key=key, help=plain(spec.help) or None,
                    horizontal=True)


def questions() -> dict[str, str]:
    stored = common.answers()
    current = dict(stored)
    head, reset = st.columns([3, 1], vertical_alignment="bottom")
    head.subheader("2 · Your session")
    reset.button("Reset answers", on_click=common.reset_answers, args=(cal,),
                 help="Set every question back to 'Not sure' and untick the warning signs.")
    for title, specs in common.questions_by_group(cal):
        with st.container(border=True, key=f"group_{title.lower()}"):
            st.markdown(f"#### {title}")
            hidden = 0
            for spec in specs:
                if not common.visible(cal, spec.name, current):
                    hidden += 1
                    continue
                value = ask(spec, stored)
                if value == common.UNKNOWN:
                    current.pop(spec.name, None)
                else:
                    current[spec.name] = value
            if hidden:
                outcome = cal.nodes[cal.outcome].title.lower() if cal.outcome else "soreness"
                st.caption(f"{hidden} more questions about the soreness appear once you say "
                           f"there is some {plain(outcome)}.")
    ss[common.ANSWERS] = current
    return current


# ---- 3. results ---------------------------------------------------------------------------------
def red_screen(d: Diagnosis) -> None:
    with routing:
        st.error(f"**Stop and get checked.** {plain(d.triage.message)}",
                 icon=":material/emergency:")
        for reason in d.triage.reasons:
            st.markdown(f"- {plain(reason)}")
        st.caption("Ticked a warning sign by mistake? Untick it to see the estimates.")
    st.error("**No estimates are shown** while a warning sign is ticked: see the message "
             "under the warning signs.", icon=":material/block:")


def cause_card(d: Diagnosis, cause: str) -> None:
    spec = cal.nodes[cause]
    p, prior = d.causes[cause], d.prior_causes[cause]
    with st.container(border=True, key=f"cause_{cause}"):
        st.markdown(common.nb(f"**{plain(spec.title)}** · {describe(p)}"))
        interval = d.cause_intervals.get(cause)
        st.markdown(common.bar_html(p, prior, interval), unsafe_allow_html=True)
        band = report.interval_text(interval)
        band = f"{band} (hatched) · " if band else ""
        st.caption(common.nb(f"{band}▲ before your answers: {describe(prior)}"))
        pushes = [x for x in d.explanation.get(cause, ()) if abs(x.log_odds) >= report.MIN_PUSH]
        with st.expander("Why?"):
            if not d.evidence:
                st.markdown("Nothing answered yet: this is the starting estimate.")
            elif not pushes:
                st.markdown("None of your answers moved this noticeably.")
            for x in pushes[:TOP_PUSHES]:
                st.markdown(common.nb(f"- {plain(report.push_phrase(x, cal))}"))


def next_questions(d: Diagnosis, answered: dict[str, str]) -> None:
    shown = [q for q in d.next_questions if common.visible(cal, q.node, answered)]
    if not shown:
        return
    st.markdown("##### Worth asking next")
    for q in shown[:TOP_QUESTIONS]:
        spec = cal.nodes[q.node]
        st.markdown(common.nb(
            f"- **{plain(spec.title)}** — {report.gain_word(q.gain)} to answer "
            f"(likely answer: {plain(spec.state_label(q.likely_answer))}, "
            f"{describe(q.answer_probabilities[q.likely_answer])})"
        ))


def advice(d: Diagnosis) -> None:
    for item in d.advice:
        with st.container(border=True, key=f"advice_{item.id}"):
            st.markdown(f"**{plain(item.title)}**")
            st.markdown(plain(item.text))
            if item.source:
                st.caption(f"Source: {plain(item.source)}")


def fix_card(i: int, fix: Fix, expanded: bool) -> None:
    with st.container(border=True, key=f"fix_{fix.target}"):
        st.markdown(f"**{i}. {plain(fix.title)}** — {report.effect_word(fix.effect)}")
        st.markdown(common.nb(f"Fixing this: {plain(report.what_if(fix, cal))}."))
        with st.expander("Cues, drills and advice", expanded=expanded):
            if fix.cues:
                st.markdown("**Cues:** " + " · ".join(f"“{plain(c)}”" for c in fix.cues))
            if fix.drills:
                st.markdown("**Drills:**\n" + "\n".join(f"- {plain(x)}" for x in fix.drills))
            if fix.advice:
                st.markdown(plain(fix.advice))
            if fix.source:
                st.caption(f"Source: {plain(fix.source)}")


def what_to_do(d: Diagnosis) -> None:
    st.markdown("##### What to do")
    if d.forecast is not None:
        st.markdown(common.nb(plain(report.forecast_text(d.forecast, cal)) + "."))
    advice(d)
    main = [f for f in d.fixes if not f.minor]
    minor = [f for f in d.fixes if f.minor]
    limit = round(100 * cal.fix_policy.min_effect)
    if main:
        st.markdown("**What to change, most helpful first**")
        for i, fix in enumerate(main, start=1):
            fix_card(i, fix, expanded=i == 1)
    elif d.forecast is not None:
        st.markdown(f"No single change is expected to lower next session's chance of "
                    f"soreness by {limit} points or more.")
    if minor:
        with st.expander(f"Minor changes (each under {limit} points)"):
            for i, fix in enumerate(minor, start=len(main) + 1):
                fix_card(i, fix, expanded=False)


def results(d: Diagnosis, answered: dict[str, str]) -> None:
    st.subheader("3 · What's likely and what to do")
    level = d.triage.level
    if d.triage.blocks_results:
        red_screen(d)
        return
    if d.triage.withhold_estimates:
        st.info("**Answer the warning signs first.** Tick any that apply, or tick *None of "
                "these apply to me*. The estimates appear once every sign is answered.",
                icon=":material/checklist:")
        return
    if level == "amber":
        st.warning(f"**{plain(d.triage.message)}**", icon=":material/warning:")
        for reason in d.triage.reasons:
            st.markdown(f"- {plain(reason)}")
        st.badge("Less reliable: for information only", icon=":material/warning:",
                 color="orange")
    if d.best_guess:
        st.markdown(common.nb(f"**Best guess:** {plain(d.best_guess)}"))
    st.caption(
        "Each bar is the chance that this explanation applies, with its 90 % interval "
        "hatched and ▲ marking the starting estimate before your answers. Explanations can "
        "act together, so they need not add up."
    )
    for cause in sorted(d.causes, key=lambda c: -d.causes[c]):
        cause_card(d, cause)
    next_questions(d, answered)
    what_to_do(d)


def share(d: Diagnosis, params: dict[str, str]) -> None:
    st.markdown("##### Keep or share")
    link = common.share_link(params)
    text = report.build_report(cal, d, flags, link=link, notices=ss.get(common.NOTICES, ()))
    st.download_button("Download report (Markdown)", text, file_name="knowpain-report.md",
                       mime="text/markdown", icon=":material/download:", on_click="ignore")
    if link:
        st.caption("Or send this link to a coach; it carries your answers:")
        st.code(link, language=None, wrap_lines=True)
    else:
        st.caption("Or send this page's address to a coach; it carries your answers.")


def sync_link(params: dict[str, str]) -> None:
    current = {k: st.query_params.get(k) for k in st.query_params}
    if current != params:
        st.query_params.from_dict(params)


left, right = st.columns([5, 6], gap="large")
with left, st.container(key="questions"):
    answered = questions()
evidence = common.active_evidence(cal, answered)
diagnosis = common.diagnose(loaded, evidence, flags, none_apply)
link_params = report.link_params(evidence, flags, cal, none_apply)
with right, st.container(key="results"):
    results(diagnosis, answered)
    share(diagnosis, link_params)
    render_case_capture(loaded.model, evidence)  # draws nothing unless a therapist unlocked
sync_link(link_params)
