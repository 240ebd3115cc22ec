"""Calibrate (therapists): set the numbers on the verbal–numerical scale, see what they change,
save versions, compare, activate, roll back and pool.

Numbers are edited with :mod:`calibration.editing`; every save, activation and roll back goes
through :class:`model.service.Clinic` (the same policy as the command line). This page only
draws widgets. Edits build new calibrations: nothing shared is ever changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app_pages import therapist
from calibration import editing as ed
from calibration.pool import pool_calibrations
from calibration.schema import Calibration, NodeSpec
from model.errors import KnowpainError
from model.network_model import Model
from model.service import views
from model.service.clinic import CalibrationVersion, Clinic
from model.service.policy import Review
from model.text.safe import code_span, plain, plain_join
from model.text.verbal import ANCHORS, CONFIDENCE_LEVELS, describe, number_for

ss = st.session_state
DRAFT = "kp_cal_draft"
VERSIONS_SEEN = "kp_cal_versions_seen"  # the store revision the version selects were set for
VALUE_PREFIX = "kp_cal_v_"  # every per-number widget key starts with this
KIND_WORDS = {"noisy_or": "leaky noisy-OR", "noisy_max": "leaky noisy-MAX", "table": "full table"}
CUSTOM = "number"
SCALE = " · ".join(f"{a.percent} {a.word}" for a in sorted(ANCHORS, key=lambda a: a.percent))


@dataclass(frozen=True)
class Draft:
    """The session's unsaved edits: a calibration derived from stored version ``base_id``.

    Kept in session state as a plain dict (this module is re-run, so its classes are new on
    every run and cannot be recognised with ``isinstance`` later).
    """

    base_id: int
    calibration: Calibration

    def save(self) -> None:
        ss[DRAFT] = {"base_id": self.base_id, "calibration": self.calibration}

    @staticmethod
    def load() -> Draft | None:
        raw = ss.get(DRAFT)
        if isinstance(raw, dict) and isinstance(raw.get("calibration"), Calibration):
            return Draft(int(raw["base_id"]), raw["calibration"])
        return None


def clear_value_widgets() -> None:
    for key in [k for k in ss if isinstance(k, str) and k.startswith(VALUE_PREFIX)]:
        del ss[key]


def discard_draft() -> None:
    ss.pop(DRAFT, None)
    clear_value_widgets()


# ---- page head ----------------------------------------------------------------------------------
st.title("Calibrate the numbers")
st.markdown(
    "Set each number on the verbal–numerical scale, watch what it changes for the reference "
    "lifters, then save it as a new version. Versions are never overwritten: you can compare, "
    "activate and roll back at any time."
)
if not therapist.gate():
    st.stop()
therapist.show_flash()
who = therapist.therapist_name()


# ---- editing one node ---------------------------------------------------------------------------
def group_title(cal: Calibration, node: NodeSpec, group: str) -> str:
    """Plain-text name of a group of numbers (``leak``, ``parent=state`` or a column key)."""
    if group == ed.LEAK:
        return "leak: none of the listed causes present"
    if "=" in group:
        parent_name, _, state = group.partition("=")
        parent = cal.nodes[parent_name]
        return f"only {parent.title}: {parent.state_label(state)}"
    if not node.parents:
        return "overall (no parents)"
    return "when " + ", ".join(f"{cal.nodes[p].title}: {cal.nodes[p].state_label(s)}"
                               for p, s in zip(node.parents, group.split(","), strict=True))


def snap(slider_key: str, select_key: str) -> None:
    """Callback: a word chosen in the select moves the slider onto that anchor."""
    chosen = ss.get(select_key)
    if chosen:
        ss[slider_key] = 100 * number_for(chosen)
    ss[select_key] = None


def number_editor(node: NodeSpec, slot: ed.Slot, where: str, help_text: str) -> float:
    """Slider 0–100 (any point) plus a select of anchor words that snaps it; returns p."""
    base = f"{VALUE_PREFIX}{node.name}|{slot.key}"
    slider_key, select_key = f"{base}|n", f"{base}|w"
    if slider_key not in ss:
        ss[slider_key] = 100 * slot.value  # exact: an untouched number stays unchanged
    state = node.state_label(slot.state)
    label = plain(f"{where[:1].upper()}{where[1:]} → {node.title}: {state} (chance, 0–100)")
    value = st.slider(label, 0.0, 100.0, step=0.5, key=slider_key, format="%.1f %%",
                      help=plain(help_text) or None)
    p = value / 100
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.markdown(f"**{plain(state)}: {describe(p)}**")
    right.selectbox("Snap to a word", [a.word for a in ANCHORS], index=None, key=select_key,
                    placeholder="Snap to a word…", on_change=snap, args=(slider_key, select_key),
                    help="Choosing a word moves the number onto that word's point of the scale.")
    return p


def confidence_editor(node: NodeSpec) -> float:
    level_key, number_key = f"{VALUE_PREFIX}{node.name}|conf", f"{VALUE_PREFIX}{node.name}|confn"
    levels = {float(v): k for k, v in CONFIDENCE_LEVELS.items()}
    if level_key not in ss:
        ss[level_key] = levels.get(float(node.confidence), CUSTOM)
    if number_key not in ss:
        ss[number_key] = float(node.confidence)
    options = [*CONFIDENCE_LEVELS, CUSTOM]
    fmt = {k: f"{k} ({v})" for k, v in CONFIDENCE_LEVELS.items()} | {CUSTOM: "a number"}
    level = st.radio("Confidence: how many cases these numbers are worth", options,
                     key=level_key, horizontal=True, format_func=fmt.__getitem__,
                     help="The equivalent sample size. Refits from cases move numbers with "
                          "low confidence quickly and numbers with high confidence slowly.")
    if level == CUSTOM:
        return float(st.number_input("Confidence (equivalent number of cases)", min_value=0.5,
                                     step=1.0, key=number_key))
    return float(CONFIDENCE_LEVELS[level])


def edit(draft: Draft, name: str) -> Calibration:
    """Draw the editors for node ``name``; return the draft with what they now say."""
    cal = draft.calibration
    node = cal.nodes[name]
    column = None
    if node.cpt == "table" and node.parents:
        keys = [",".join(c) for c in cal.columns(name)]
        column = st.selectbox(
            "Column (one combination of the parents at a time)", keys,
            key=f"kp_cal_column_{name}",
            format_func=lambda k: ", ".join(
                f"{cal.nodes[p].title}: {cal.nodes[p].state_label(s)}"
                for p, s in zip(node.parents, k.split(","), strict=True)),
        )
    if node.cpt == "noisy_or":
        st.caption(f"Each number: the chance that **{plain(node.title.lower())}** is present when "
                   "only that one thing is true (the leak included).")
    elif node.cpt == "noisy_max":
        st.caption(f"Each group: how **{plain(node.title.lower())}** is spread over its levels "
                   "when only that one thing is true. The first level takes the rest.")
    else:
        st.caption("One column at a time; the first state takes the rest.")
    values: dict[str, float] = {}
    for group in ed.number_groups(cal, name, column):
        where = group_title(cal, node, group.group)
        with st.container(border=True):
            if len(group.slots) > 1:  # one heading for the numbers of one distribution
                st.markdown(f"**{plain(where[:1].upper() + where[1:])}**")
            if group.note:
                st.caption(f"Note: {plain(group.note)}")
            for slot in group.slots:
                values[slot.key] = number_editor(node, slot, where, group.note)
            if len(group.slots) > 1:
                rest = 1 - sum(values[s.key] for s in group.slots)
                label = plain(node.state_label(group.rest_state))
                if rest < -1e-9:
                    st.markdown(f":red[**{label}: the numbers above add up to more than "
                                f"100 % ({100 * (1 - rest):.1f} %).**]")
                else:
                    st.markdown(f"{label} (the rest): {describe(max(0.0, min(1.0, rest)))}")
    confidence = confidence_editor(node)
    why_key = f"{VALUE_PREFIX}{name}|why"
    if why_key not in ss:
        ss[why_key] = node.rationale
    rationale = st.text_area("Rationale: why these numbers, with their sources", key=why_key,
                             height=160)
    return ed.edit_node(cal, name, values, confidence=confidence, rationale=rationale)


# ---- live results ----------------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner="Working out the sensitivity…")
def sensitivity(text: str, _model: Model) -> list[views.SensitiveParameter]:
    return views.scenario_sensitivity(_model, top=10)


def sensitivity_panel(text: str, m: Model) -> None:
    cal = m.calibration
    labels = {s.id: s.label for s in cal.scenarios}
    items = sensitivity(text, m)
    with st.container(key="kp_cal_sensitivity"):
        st.markdown("##### What the reference lifters depend on most")
        st.caption("Each table entry nudged by 5 points: how far the chance of a cause moves "
                   "for the reference lifter where it matters most.")
        rows = [{"number": plain(therapist.parameter_label(cal, it.node, it.column, it.state)),
                 "now": describe(it.value), "moves a cause by": f"{100 * it.swing:.1f} points",
                 "most for": f"{plain(labels.get(it.scenario, it.scenario))} · "
                             f"{plain(cal.nodes[it.cause].title)}"}
                for it in items]
        st.table(pd.DataFrame(rows), hide_index=True, border="horizontal")


def save_panel(clinic: Clinic, draft: Draft, base: Calibration, verdict: Review) -> None:
    changed = ed.changed_nodes(base, draft.calibration)
    with st.container(border=True, key="kp_cal_save"):
        st.markdown("##### Save as a new version")
        note = st.text_input("Note: what changed and why", key="kp_cal_note", max_chars=300)
        activate = therapist.activate_choice("kp_cal_activate")
        blockers = []
        if not changed:
            blockers.append("nothing has changed yet")
        if verdict.calibration is None:
            blockers.append("the draft has problems")
        elif not verdict.ok:
            blockers.append("a behaviour check fails or the red-flag screen would be weakened")
        if not who:
            blockers.append("enter your name at the top")
        if blockers:
            st.caption("Not ready to save: " + "; ".join(blockers) + ".")
        if st.button("Save version", type="primary", disabled=bool(blockers),
                     icon=":material/save:", key="kp_cal_save_button"):
            try:
                version = clinic.save(draft.calibration, who, note, activate=activate,
                                      parent=draft.base_id, source="the draft")
            except KnowpainError as exc:
                therapist.store_error(exc)
                return
            discard_draft()
            therapist.set_next_run(kp_cal_note="", kp_cal_activate=False)  # ready for the next
            state = "and made it active" if activate else "(not active yet)"
            therapist.flash("success", f"Saved version {version.id} {state}.")
            st.rerun()


def editing_tab(clinic: Clinic, active: CalibrationVersion, base_model: Model) -> None:
    base = base_model.calibration
    draft = Draft.load()
    if draft is None or draft.base_id != active.id:
        if draft is not None and ed.changed_nodes(base, draft.calibration):
            st.warning(f"The active version changed to {active.id}, so unsaved edits made on "
                       f"version {draft.base_id} were put aside.", icon=":material/info:")
        clear_value_widgets()
        draft = Draft(active.id, base)
    names = list(base.nodes)
    editor, live = st.columns([5, 6], gap="large")
    with editor, st.container(key="kp_cal_editor"):
        name = st.selectbox(
            "Node to calibrate", names, key="kp_cal_node",
            format_func=lambda n: f"{base.nodes[n].title} ({KIND_WORDS[base.nodes[n].cpt]})",
        )
        spec = draft.calibration.nodes[name]
        if spec.parents:
            st.caption("Parents: " + plain_join(base.nodes[p].title for p in spec.parents))
        draft = Draft(draft.base_id, edit(draft, name))
        draft.save()
        st.button("Discard all unsaved edits", on_click=discard_draft, icon=":material/undo:",
                  key="kp_cal_discard")
    verdict = clinic.review(draft.calibration, source="the draft")
    with live:
        changed = ed.changed_nodes(base, draft.calibration)
        st.markdown(f"##### Your draft (from version {active.id})")
        if changed:
            st.markdown("Changed: " + ", ".join(f"**{plain(base.nodes[n].title)}**"
                                                for n in changed))
        else:
            st.caption("No changes yet: before and after are the same.")
        with st.container(key="kp_cal_problems"):
            if verdict.problems:
                st.error("**The draft cannot be used yet:**\n"
                         + "\n".join(f"- {plain(p)}" for p in verdict.problems),
                         icon=":material/error:")
            for warning in verdict.warnings:
                st.warning(plain(warning), icon=":material/warning:")
        if verdict.calibration is None:
            return
        after = (therapist.calibration_model(verdict.text, verdict.calibration) if changed
                 else base_model)
        therapist.checks_panel(verdict, "kp_cal_checks")
        therapist.preview_panel(base_model, after, "kp_cal_preview")
        sensitivity_panel(verdict.text, after)
        save_panel(clinic, draft, base, verdict)


# ---- versions -----------------------------------------------------------------------------------
def version_label(v: CalibrationVersion, active_id: int) -> str:
    mark = " (active)" if v.id == active_id else ""
    note = f" — {v.note}" if v.note else ""
    return f"{v.id}{mark}: {v.author}, {v.created_at:%Y-%m-%d %H:%M}{note}"


def act(clinic: Clinic, action: str, version_id: int | None = None) -> None:
    if not who:
        st.error("Enter your name at the top first: it is recorded with the change.",
                 icon=":material/badge:")
        return
    try:
        if action == "activate":
            v = clinic.activate(version_id, who)
            message = f"Version {v.id} is now active."
        else:
            v = clinic.rollback(who)
            message = f"Rolled back: version {v.id} is active again."
    except KnowpainError as exc:
        therapist.store_error(exc)
        return
    therapist.flash("success", message)
    st.rerun()


def compare(versions: list[CalibrationVersion], active_id: int) -> None:
    st.markdown("##### Compare two versions")
    ids = [v.id for v in versions]
    by_id = {v.id: v for v in versions}
    fmt = {v.id: version_label(v, active_id) for v in versions}.__getitem__
    left, right = st.columns(2)
    a = left.selectbox("Version A", ids, key="kp_cal_cmp_a", format_func=fmt)
    b = right.selectbox("Version B", ids, key="kp_cal_cmp_b", format_func=fmt)
    if a == b:
        st.caption("Pick two different versions to compare them.")
        return
    ma, mb = therapist.model_or_error(by_id[a]), therapist.model_or_error(by_id[b])
    if ma is None or mb is None:
        return
    ca, cb = ma.calibration, mb.calibration
    d = views.compare(ca, cb)
    changes, other_form, entries = d.numbers, d.other_form, d.entries.largest(None)
    other = [str(c) for c in d.entries.structure]
    other += [str(c) for c in d.entries.settings if c.field not in ("rationale", "source")]
    reasons = [c.node for c in d.entries.settings if c.field == "rationale"]
    with st.container(key="kp_cal_diff"):
        if d.identical:
            st.caption(f"Versions {a} and {b} have the same numbers and settings.")
            return
        st.markdown(f"**{len(changes)} number(s) as set differ**, largest change first.")
        rows = [{"number": plain(f"{ca.nodes[c.node].title}: "
                                 f"{ca.nodes[c.node].state_label(c.state)}, "
                                 f"{group_title(ca, ca.nodes[c.node], c.group)}"),
                 f"version {a}": describe(c.a), f"version {b}": describe(c.b),
                 "change": therapist.points(c.change)} for c in changes]
        if rows:
            st.table(pd.DataFrame(rows), hide_index=True, border="horizontal")
        if other_form:
            st.markdown("Written differently in the two versions (compare their table "
                        "entries below): " + plain_join(ca.nodes[n].title for n in other_form))
        for line in other:
            st.markdown(f"- {plain(line)}")
        if reasons:
            st.markdown("Rationale rewritten for: "
                        + plain_join(ca.nodes[n].title for n in reasons))
        with st.expander(f"Every table entry that differs ({len(entries)})"):
            st.caption("Canonical models expanded into full tables: what inference uses.")
            rows = [{"entry": therapist.parameter_label(ca, r.node, r.column, r.state),
                     f"version {a}": describe(r.a), f"version {b}": describe(r.b),
                     "change": therapist.points(r.delta)} for r in entries]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def pool(clinic: Clinic, versions: list[CalibrationVersion], active: CalibrationVersion,
         base_model: Model) -> None:
    st.markdown("##### Pool versions")
    st.caption("A confidence-weighted average: each version counts as many cases as its "
               "confidence says, and the pooled confidence is their sum — an upper bound "
               "when the versions share sources. Compare them first: pooling hides "
               "disagreement.")
    by_id = {v.id: v for v in versions}
    chosen = st.multiselect("Versions to pool (two or more)", list(by_id), key="kp_cal_pool",
                            format_func=lambda i: version_label(by_id[i], active.id))
    if len(chosen) < 2:
        return
    models = [therapist.model_or_error(by_id[i]) for i in chosen]
    if any(m is None for m in models):
        return
    try:
        pooled = pool_calibrations([m.calibration for m in models])
    except ValueError as exc:
        st.error(plain(str(exc)), icon=":material/error:")
        return
    verdict = clinic.review(pooled, source="the pooled calibration")
    if verdict.calibration is None:
        st.error("**The pooled calibration has problems:**\n"
                 + "\n".join(f"- {plain(p)}" for p in verdict.problems), icon=":material/error:")
        return
    after = therapist.calibration_model(verdict.text, verdict.calibration)
    if verdict.ok:
        st.success("All behaviour checks pass for the pool.", icon=":material/rule:")
    else:
        st.error("The pool cannot be saved:\n"
                 + "\n".join(f"- {plain(r)}" for r in verdict.reasons), icon=":material/rule:")
    with st.expander("Reference lifters, active version → pool"):
        therapist.preview_panel(base_model, after, "kp_cal_pool_preview")
    note = st.text_input("Note for the pooled version", key="kp_cal_pool_note", max_chars=300)
    if st.button("Save the pool as a new version", disabled=not verdict.ok or not who,
                 key="kp_cal_pool_save", icon=":material/merge:"):
        text_note = f"pool of versions {', '.join(map(str, chosen))}"
        if note.strip():
            text_note += f": {note.strip()}"
        try:
            v = clinic.save(pooled, who, text_note, source="the pooled calibration")
        except KnowpainError as exc:
            therapist.store_error(exc)
            return
        therapist.set_next_run(kp_cal_pool_note="")
        therapist.flash("success", f"Saved the pool as version {v.id} (not active yet).")
        st.rerun()


def versions_tab(clinic: Clinic, active: CalibrationVersion, base_model: Model) -> None:
    versions = clinic.versions()
    ids = [v.id for v in versions]
    # the selects show the store as it is now: the active version to activate, the two
    # newest versions to compare, nothing to pool (see therapist.follow_store)
    therapist.follow_store(VERSIONS_SEEN, (tuple(ids), active.id), {
        "kp_cal_activate_id": active.id, "kp_cal_cmp_a": ids[max(0, len(ids) - 2)],
        "kp_cal_cmp_b": ids[-1], "kp_cal_pool": []})
    rows = [{"version": v.id, "active": "active" if v.id == active.id else "",
             "author": v.author, "saved": f"{v.created_at:%Y-%m-%d %H:%M}",
             "from": "" if v.parent_id is None else str(v.parent_id), "note": v.note}
            for v in reversed(versions)]
    with st.container(key="kp_cal_versions"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=220)
    left, right = st.columns(2, vertical_alignment="bottom")
    with left:
        chosen = st.selectbox("Version to activate", ids[::-1], key="kp_cal_activate_id",
                              format_func=lambda i: version_label(
                                  next(v for v in versions if v.id == i), active.id))
        if st.button("Activate", key="kp_cal_activate_button", icon=":material/check:",
                     disabled=chosen == active.id):
            act(clinic, "activate", chosen)
    with right:
        parent = active.parent_id
        st.caption(f"Roll back makes version {parent} active again (the one version "
                   f"{active.id} was made from)." if parent is not None
                   else f"Version {active.id} has no parent to roll back to.")
        if st.button("Roll back", key="kp_cal_rollback", icon=":material/history:",
                     disabled=parent is None):
            act(clinic, "rollback")
    st.divider()
    compare(versions, active.id)
    st.divider()
    pool(clinic, versions, active, base_model)


# ---- the page ---------------------------------------------------------------------------------
with therapist.open_clinic() as clinic:
    if clinic is None:
        st.stop()
    active, base_model = therapist.active_model(clinic)
    st.caption(f"Store: {code_span(clinic.path)} · active version {active.id} by "
               f"{plain(active.author)}" + (f" — {plain(active.note)}" if active.note else ""))
    st.caption(f"Scale: {SCALE}")
    tab_edit, tab_versions = therapist.state_tabs(["Edit numbers", "Versions"], "kp_cal_tab")
    with tab_edit:
        editing_tab(clinic, active, base_model)
    with tab_versions:
        versions_tab(clinic, active, base_model)
