"""Shared pieces of the app pages: the cached model, the session's answers, small formatting.

No reasoning happens here: probabilities come from :mod:`model`, words from
:mod:`model.text.report` and :mod:`model.text.verbal`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

import model
from calibration.schema import Calibration, NodeSpec
from model.results import Diagnosis, Interval
from model.text import report
from model.text.safe import plain

#: Widget value meaning "not sure" (unobserved); never a state name (states are lower case).
UNKNOWN = "__not_sure__"
NOT_SURE = "Not sure"

#: Session-state keys. Answers live outside widget keys so they survive page switches.
ANSWERS = "kp_answers"
FLAGS = "kp_flags"
NONE_APPLY = "kp_none_apply"
NONE_APPLY_WIDGET = "flag__none_apply"
NOTICES = "kp_notices"

#: How observable roles are grouped on the Assess page.
GROUPS: tuple[tuple[str, str], ...] = (
    ("context", "Training"),
    ("technique", "Technique"),
    ("symptom", "Symptoms"),
)
#: Questions about the soreness itself: asked only once the outcome is present.
SYMPTOM_DETAILS = ("onset", "pain_character", "soreness_duration", "trend_across_sessions")


def answer_key(node: str) -> str:
    return f"ans_{node}"


def flag_key(flag_id: str) -> str:
    return f"flag_{flag_id}"


# ---- the model -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedModel:
    """A model plus a token that identifies this loaded instance in data caches."""

    model: model.Model
    token: str

    @property
    def calibration(self) -> Calibration:
        return self.model.calibration


@st.cache_resource(show_spinner="Loading the model…")
def load_model(path: str | None = None) -> LoadedModel:
    """The model for a calibration file (the shipped default when ``path`` is None).

    Loaded once per process and shared by every session: read it, never change it.
    """
    return LoadedModel(model.load_model(path), uuid.uuid4().hex)


def current_model() -> LoadedModel:
    """What lifters see (:func:`model.service.lifter_version`): the store's active version
    once a therapist has a store, else the shipped default. A missing store is not created."""
    from app_pages import therapist  # the store pieces live with the therapist pages
    from model.errors import CalibrationError, StoreError
    from model.service.clinic import lifter_version

    try:
        version = lifter_version(therapist.settings())
        if version is not None:
            return LoadedModel(therapist.version_model(version), version.content_hash)
    except (StoreError, CalibrationError, OSError) as exc:
        st.warning(
            f"The clinic's calibration store could not be read ({plain(str(exc))}); showing the "
            "shipped calibration instead.",
            icon=":material/warning:",
        )
    return load_model()


@st.cache_data(max_entries=4096, show_spinner=False)
def _diagnose(
    token: str,
    evidence: tuple[tuple[str, str], ...],
    flags: tuple[tuple[str, bool], ...],
    _model: model.Model,
) -> Diagnosis:
    return _model.diagnose(dict(evidence), flags=dict(flags))


def diagnose(loaded: LoadedModel, evidence: Mapping[str, str], flags: frozenset[str],
             none_apply: bool = False) -> Diagnosis:
    """``Model.diagnose`` once per distinct (model, evidence, warning-sign answers).

    Ticked signs are answered yes; the others are answered no only when the lifter said
    none of the other signs apply — an unticked box alone is not a "no"."""
    answers = report.flag_answers(flags, none_apply, loaded.calibration)
    return _diagnose(loaded.token, report.evidence_key(evidence),
                     tuple(sorted(answers.items())), loaded.model)


# ---- the session's answers -------------------------------------------------------------------
def init_session(cal: Calibration) -> None:
    """On a session's first run, take the answers from the link (query parameters)."""
    ss = st.session_state
    if ANSWERS in ss:
        return
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    parsed = report.parse_link(params, cal)
    ss[ANSWERS] = dict(parsed.evidence)
    ss[FLAGS] = frozenset(parsed.flags)
    ss[NONE_APPLY] = parsed.none_apply
    ss[NOTICES] = parsed.notices


def answers() -> dict[str, str]:
    return dict(st.session_state.get(ANSWERS, {}))


def ticked_flags() -> frozenset[str]:
    return frozenset(st.session_state.get(FLAGS, frozenset()))


def none_apply() -> bool:
    """Whether the lifter said none of the (other) warning signs apply."""
    return bool(st.session_state.get(NONE_APPLY, False))


def outcome_present(cal: Calibration, answered: Mapping[str, str]) -> bool:
    """True when the outcome (low-back soreness) is answered and not absent."""
    out = cal.outcome
    return bool(out) and answered.get(out) not in (None, cal.outcome_absent)


def details(cal: Calibration) -> tuple[str, ...]:
    return tuple(n for n in SYMPTOM_DETAILS if n in cal.nodes and n != cal.outcome)


def visible(cal: Calibration, node: str, answered: Mapping[str, str]) -> bool:
    """Whether a question is shown (and so counts): details need the outcome present."""
    return node not in details(cal) or outcome_present(cal, answered)


def active_evidence(cal: Calibration, answered: Mapping[str, str]) -> dict[str, str]:
    """The answers that count: the visible ones."""
    return {n: s for n, s in answered.items() if visible(cal, n, answered)}


def reset_answers(cal: Calibration) -> None:
    """Callback: every question back to 'not sure' and every warning sign unticked."""
    ss = st.session_state
    ss[ANSWERS] = {}
    ss[FLAGS] = frozenset()
    ss[NONE_APPLY] = False
    ss[NONE_APPLY_WIDGET] = False
    ss[NOTICES] = ()
    for n in cal.nodes:
        ss[answer_key(n)] = UNKNOWN
    for f in cal.red_flags:
        ss[flag_key(f.id)] = False


def questions_by_group(cal: Calibration) -> list[tuple[str, list[NodeSpec]]]:
    out = []
    for role, title in GROUPS:
        specs = [s for s in cal.nodes.values() if s.role == role]
        if specs:
            out.append((title, specs))
    return out


# ---- formatting ------------------------------------------------------------------------------
BAR_FILL = "#3d6fa3"


def _pct(p: float) -> float:
    return round(100 * max(0.0, min(1.0, p)), 1)


def bar_html(p: float, prior: float | None = None, interval: Interval | None = None) -> str:
    """A horizontal bar for ``p``: hatching spans the interval, a tick marks the prior.

    Shapes, not colours, carry the meaning (solid fill, hatched band, tick labelled
    "before"); the numbers and words are always printed next to it as text.
    """
    label = f"{report.percent(p)}"
    parts = [
        f'<div role="img" aria-label="bar: {label}" style="position:relative;height:16px;'
        'margin:4px 0 22px 0;border:1px solid rgba(128,128,128,.7);border-radius:4px;">',
        f'<div style="position:absolute;left:0;top:0;bottom:0;width:{_pct(p)}%;'
        f'background:{BAR_FILL};border-radius:3px 0 0 3px;"></div>',
    ]
    if interval is not None and interval.high == interval.high:  # not NaN
        lo, hi = _pct(interval.low), _pct(interval.high)
        parts.append(
            f'<div style="position:absolute;top:3px;bottom:3px;left:{lo}%;width:{hi - lo}%;'
            "background:repeating-linear-gradient(135deg,rgba(255,255,255,.85) 0 2px,"
            'rgba(120,120,120,.55) 2px 5px);"></div>'
        )
    if prior is not None:
        at = _pct(prior)
        shift = "0" if at < 12 else ("-100%" if at > 88 else "-50%")
        parts.append(
            f'<div style="position:absolute;top:-5px;bottom:-5px;left:calc({at}% - 1px);'
            'width:3px;background:currentColor;"></div>'
            f'<div style="position:absolute;top:19px;left:{at}%;transform:translateX({shift});'
            'font-size:0.75rem;line-height:1;white-space:nowrap;opacity:.8;">▲ before</div>'
        )
    parts.append("</div>")
    return "".join(parts)


def share_link(params: Mapping[str, str]) -> str:
    """The app's address in the user's browser with these query parameters ("" if unknown)."""
    base = st.context.url
    if not base:
        return ""
    return f"{base}?{urlencode(params)}" if params else base


def nb(text: str) -> str:
    """Keep a number and its percent sign on one line (narrow screens)."""
    return text.replace(" %", "\u00a0%")


def disclaimer(cal: Calibration) -> None:
    """The calibration's disclaimer, shown on every page."""
    st.info(plain(cal.messages.disclaimer), icon=":material/info:")


def state_label(spec: NodeSpec, state: str) -> str:
    """An answer's label for a widget (Markdown: the calibration's text is escaped)."""
    return NOT_SURE if state == UNKNOWN else plain(spec.state_label(state))
