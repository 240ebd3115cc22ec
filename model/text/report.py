"""Plain-language text around a :class:`~model.results.Diagnosis`: links, phrases, report.

Everything here is generic over the calibration (labels, questions and messages come from it)
and free of Streamlit, so the app, the command line and tests can share the same words:

* :func:`parse_link` / :func:`link_params` — answers to and from URL query parameters, with a
  plain-language notice for every part of a link that had to be ignored;
* small phrase builders (:func:`percent`, :func:`interval_text`, :func:`push_phrase`,
  :func:`gain_word`, :func:`what_if`) — every number comes with words;
* :func:`build_report` — a Markdown summary of answers, results, fixes and the disclaimer.
  When a red flag fired the report, like the app, shows no cause percentages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.text.verbal import describe, word_for

if TYPE_CHECKING:
    from calibration.schema import Calibration
    from model.results import Contribution, Diagnosis, Fix, Forecast, Interval, Question

__all__ = [
    "FLAGS_PARAM",
    "NONE_APPLY_PARAM",
    "UNANSWERED_VALUES",
    "LinkAnswers",
    "build_report",
    "effect_word",
    "evidence_key",
    "flag_answers",
    "gain_word",
    "interval_text",
    "link_params",
    "parse_link",
    "percent",
    "push_phrase",
    "push_word",
    "what_if",
]

#: Query parameter holding the ticked warning signs, comma separated.
FLAGS_PARAM = "flags"
#: Query parameter saying the warning signs not ticked were answered "no" (value ``1``).
NONE_APPLY_PARAM = "none_apply"
#: Values in a link that mean "not answered" (accepted silently).
UNANSWERED_VALUES = frozenset({"", "not_sure", "unknown", "none_given"})
#: Cause and question lines below this size of push are left out of "why" lists.
MIN_PUSH = 0.05


# ---- links ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkAnswers:
    """What a link said: hard evidence, ticked warning signs, and what had to be ignored."""

    evidence: dict[str, str]
    flags: frozenset[str]
    notices: tuple[str, ...] = ()
    none_apply: bool = False


def _values(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def parse_link(
    params: Mapping[str, str | Sequence[str]], calibration: Calibration
) -> LinkAnswers:
    """Read answers from query parameters ``node=state`` and ``flags=id,id``.

    Unknown nodes, unknown states, unknown warning-sign ids and questions that cannot be
    answered (latent nodes) are ignored, each with one plain-language notice. A repeated key
    keeps its last value. Values in :data:`UNANSWERED_VALUES` mean "not sure" and are dropped
    without a notice.
    """
    nodes = calibration.nodes
    flag_ids = {f.id for f in calibration.red_flags}
    evidence: dict[str, str] = {}
    flags: set[str] = set()
    notices: list[str] = []
    none_apply = False
    for key, raw in params.items():
        values = _values(raw)
        if key == NONE_APPLY_PARAM:
            none_apply = values[-1].strip() == "1" if values else False
            continue
        if key == FLAGS_PARAM:
            for item in (v.strip() for value in values for v in value.split(",")):
                if not item:
                    continue
                if item in flag_ids:
                    flags.add(item)
                else:
                    notices.append(
                        f"The link named a warning sign '{item}' that this app does not know; "
                        "it was ignored. Please check the warning signs yourself."
                    )
            continue
        node = nodes.get(key)
        if node is None:
            notices.append(f"The link contained '{key}', which is not one of the questions; "
                           "it was ignored.")
            continue
        if not node.observable:
            notices.append(f"'{node.title}' cannot be answered directly (the model works it "
                           "out), so that part of the link was ignored.")
            continue
        state = values[-1].strip() if values else ""
        if state in UNANSWERED_VALUES and state not in node.states:
            continue
        if state not in node.states:
            valid = ", ".join(node.state_label(s) for s in node.states)
            notices.append(
                f"'{state}' is not an answer to '{node.title}' (possible answers: {valid}); "
                "that question was left at 'not sure'."
            )
            continue
        evidence[key] = state
    return LinkAnswers(evidence=evidence, flags=frozenset(flags), notices=tuple(notices),
                       none_apply=none_apply)


def link_params(
    evidence: Mapping[str, str], flags: Iterable[str], calibration: Calibration,
    none_apply: bool = False,
) -> dict[str, str]:
    """The query parameters that :func:`parse_link` reads back as the same answers.

    Nodes come in calibration order and ticked warning signs in screen order, so the same
    answers always give the same link.
    """
    out = {n: evidence[n] for n in calibration.nodes if n in evidence}
    ticked = set(flags)
    ordered = [f.id for f in calibration.red_flags if f.id in ticked]
    if ordered:
        out[FLAGS_PARAM] = ",".join(ordered)
    if none_apply:
        out[NONE_APPLY_PARAM] = "1"
    return out


def flag_answers(ticked: Iterable[str], none_apply: bool, calibration: Calibration
                 ) -> dict[str, bool]:
    """The screen's answers: ticked signs are yes; with ``none_apply`` every other sign is
    no; without it the others stay unanswered (an unticked box is not a "no")."""
    ticked = set(ticked)
    return {f.id: f.id in ticked for f in calibration.red_flags
            if f.id in ticked or none_apply}


def evidence_key(evidence: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """A hashable, order-free key for an evidence dict (for caches)."""
    return tuple(sorted(evidence.items()))


# ---- phrases -------------------------------------------------------------------------------
def percent(p: float) -> str:
    """A probability as a whole percent, never reading as impossible or certain."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "unknown"
    value = math.floor(p * 100 + 0.5)
    if value < 1:
        return "<1 %"
    if value > 99:
        return ">99 %"
    return f"{value} %"


def interval_text(interval: Interval | None) -> str:
    """``"90 % interval: 66–87 %"``, or an empty string when there is none."""
    if interval is None or math.isnan(interval.low) or math.isnan(interval.high):
        return ""
    level = round(interval.level * 100)
    low = percent(interval.low).removesuffix(" %")
    return f"{level} % interval: {low}–{percent(interval.high)}"


def push_word(log_odds: float) -> str:
    """How strongly a finding moved a cause, from the change in log-odds."""
    size = abs(log_odds)
    if size < 0.15:
        strength = "slightly"
    elif size < 0.5:
        strength = "somewhat"
    elif size < 1.0:
        strength = "clearly"
    else:
        strength = "strongly"
    return f"{strength} {'raises' if log_odds > 0 else 'lowers'}"


def push_phrase(contribution: Contribution, calibration: Calibration) -> str:
    """One line of "why": ``"↑ Training age: First few sessions — strongly raises it ..."``."""
    nodes = calibration.nodes
    node = nodes.get(contribution.node)
    name = node.title if node else contribution.node
    answer = node.state_label(contribution.state) if node else contribution.state
    arrow = "↑" if contribution.log_odds > 0 else "↓"
    via = [nodes[n].title.lower() for n in contribution.path[1:-1] if n in nodes]
    through = f", through {' and '.join(via)}" if via else ""
    return (
        f"{arrow} {name}: {answer} — {push_word(contribution.log_odds)} it{through} "
        f"(without this answer: {describe(contribution.without)})"
    )


def gain_word(bits: float) -> str:
    """A word for the expected information gain of a question, in bits."""
    if bits >= 0.15:
        return "very useful"
    if bits >= 0.05:
        return "useful"
    if bits >= 0.01:
        return "a little useful"
    return "barely useful"


def effect_word(effect: float) -> str:
    """How much a fix helps, from the drop in the outcome's probability."""
    if effect >= 0.10:
        return "a big help"
    if effect >= 0.04:
        return "a clear help"
    if effect >= 0.01:
        return "a small help"
    return "barely helps"


def outcome_label(calibration: Calibration) -> str:
    out = calibration.outcome
    if out and out in calibration.nodes:
        return calibration.nodes[out].title.lower()
    return "the outcome"


def points(fix: Fix) -> str:
    """How many points a fix takes off, with its interval: ``"-19 points, 90 % interval
    12-26"`` (no interval for a minor fix, whose draws are not run)."""
    drop = round(100 * fix.effect)
    text = "under 1 point" if drop < 1 else "-1 point" if drop == 1 else f"-{drop} points"
    iv = fix.effect_interval
    if iv is not None and math.isfinite(iv.low) and math.isfinite(iv.high):
        lo, hi = round(100 * iv.low), round(100 * iv.high)
        text += f", {round(iv.level * 100)} % interval {lo} to {hi} points"
    return text


def what_if(fix: Fix, calibration: Calibration) -> str:
    """``"64 % → 31 % chance of low-back soreness at the next session (expected →
    unlikely; -33 points, 90 % interval 25 to 40 points)"``."""
    return (
        f"{percent(fix.outcome_before)} → {percent(fix.outcome_after)} chance of "
        f"{outcome_label(calibration)} at the next session "
        f"({word_for(fix.outcome_before)} → {word_for(fix.outcome_after)}; {points(fix)})"
    )


def forecast_text(forecast: Forecast, calibration: Calibration) -> str:
    """``"Next session, if nothing changes: 45 % — fifty-fifty chance of low-back soreness
    (90 % interval: 36–55 %)"``."""
    band = interval_text(forecast.interval)
    band = f" ({band})" if band else ""
    return (f"Next session, if nothing changes: {describe(forecast.next)} chance of "
            f"{outcome_label(calibration)}{band}")


def question_text(question: Question, calibration: Calibration) -> str:
    node = calibration.nodes.get(question.node)
    return (node.question or node.title) if node else question.node


# ---- the report ----------------------------------------------------------------------------
def _plan_section(calibration: Calibration, d: Diagnosis) -> list[str]:
    """What to do: the forecast, the advice, the fixes (minor ones listed apart)."""
    lines = ["## What to do", ""]
    if d.forecast is not None:
        lines += [forecast_text(d.forecast, calibration) + ".", ""]
    for a in d.advice:
        lines += [f"**{a.title}.** {a.text}", ""]
    main = [f for f in d.fixes if not f.minor]
    minor = [f for f in d.fixes if f.minor]
    if main:
        lines += ["### What to change, most helpful first", ""]
    for i, f in enumerate(main, start=1):
        lines += [f"#### {i}. {f.title} ({effect_word(f.effect)})", "",
                  f"Fixing this: {what_if(f, calibration)}.", ""]
        if f.cues:
            lines += ["Cues: " + "; ".join(f.cues) + ".", ""]
        if f.drills:
            lines.append("Drills:")
            lines += [f"- {x}" for x in f.drills]
            lines.append("")
        if f.advice:
            lines += [f.advice, ""]
        if f.source:
            lines += [f"_Source: {f.source}_", ""]
    if minor:
        lines += [f"Minor changes (each under {round(100 * calibration.fix_policy.min_effect)} "
                  "points at the next session): "
                  + "; ".join(f"{f.title} ({points(f)})" for f in minor) + ".", ""]
    if not (d.forecast or d.advice or d.fixes):
        lines += ["Nothing to change on this evidence.", ""]
    return lines

_ROLE_TITLES = {"context": "Training", "technique": "Technique", "symptom": "Symptoms"}


def _answers_section(calibration: Calibration, evidence: Mapping[str, str]) -> list[str]:
    lines = ["## Your answers", ""]
    answered = [n for n in calibration.nodes if n in evidence]
    if not answered:
        return [*lines, "No questions answered: the results are the starting estimates.", ""]
    for role, title in _ROLE_TITLES.items():
        rows = [n for n in answered if calibration.nodes[n].role == role]
        if not rows:
            continue
        lines.append(f"**{title}**")
        lines.append("")
        for n in rows:
            node = calibration.nodes[n]
            lines.append(f"- {node.title}: {node.state_label(evidence[n])}")
        lines.append("")
    others = [n for n in answered if calibration.nodes[n].role not in _ROLE_TITLES]
    for n in others:
        node = calibration.nodes[n]
        lines.append(f"- {node.title}: {node.state_label(evidence[n])}")
    unanswered = sum(1 for n, node in calibration.nodes.items()
                     if node.observable and n not in evidence)
    if unanswered:
        lines += [f"Left at 'not sure': {unanswered} question(s).", ""]
    return lines


def _flags_section(calibration: Calibration, flags: Iterable[str], unanswered: Sequence[str]
                   ) -> list[str]:
    ticked = set(flags)
    lines = ["## Warning signs", ""]
    fired = [f for f in calibration.red_flags if f.id in ticked]
    kinds = {"red": "urgent", "amber": "get checked", "context": "noted"}
    for f in fired:
        lines.append(f"- ({kinds.get(f.level, f.level)}) {f.question}")
    if unanswered:
        lines.append(f"- {len(unanswered)} of {len(calibration.red_flags)} warning-sign "
                     "questions were not answered.")
    elif not fired:
        lines.append("None of the warning signs apply (each was answered).")
    return [*lines, ""]


def build_report(
    calibration: Calibration,
    diagnosis: Diagnosis,
    flags: Iterable[str] = (),
    *,
    title: str = "knowpain summary",
    link: str = "",
    notices: Sequence[str] = (),
    top_questions: int = 3,
) -> str:
    """A Markdown summary of the answers, the triage, the results, the fixes and the disclaimer.

    ``flags`` are the ids of the ticked warning signs. With a red triage level the cause
    estimates, questions and fixes are left out and the routing message is given instead.
    """
    d = diagnosis
    nodes = calibration.nodes
    lines = [f"# {title}", "", "_Decision support, not a diagnosis._", ""]
    if link:
        lines += [f"Answers as a link: {link}", ""]
    if notices:
        lines += ["Parts of the link that were ignored:", ""]
        lines += [f"- {n}" for n in notices]
        lines.append("")
    lines += _flags_section(calibration, flags, d.triage.unanswered)
    lines += _answers_section(calibration, d.evidence)

    level = d.triage.level
    if level != "none":
        heading = "Stop: see a clinician" if level == "red" else "Get assessed first"
        lines += [f"## {heading}", "", d.triage.message, ""]
        lines += [f"- {r}" for r in d.triage.reasons]
        lines.append("")
    if d.triage.blocks_results:
        lines += [
            "Likely causes, questions and fixes are not shown while a warning sign is present.",
            "",
        ]
    elif d.triage.withhold_estimates:
        lines += ["## Warning signs not answered", "", calibration.messages.unanswered, ""]
    else:
        lines += ["## Likely explanations", ""]
        if level == "amber":
            lines += ["_For information only: less reliable until you have been assessed._",
                      ""]
        for c in sorted(d.causes, key=lambda c: -d.causes[c]):
            name = nodes[c].title if c in nodes else c
            band = interval_text(d.cause_intervals.get(c))
            band = f"; {band}" if band else ""
            prior = d.prior_causes.get(c)
            before = f"; before your answers {describe(prior)}" if prior is not None else ""
            lines.append(f"- **{name}**: {describe(d.causes[c])}{band}{before}")
        lines.append("")
        if d.best_guess:
            lines += [d.best_guess, ""]
        lines += ["### Why", ""]
        for c in sorted(d.causes, key=lambda c: -d.causes[c]):
            pushes = [x for x in d.explanation.get(c, ()) if abs(x.log_odds) >= MIN_PUSH]
            name = nodes[c].title if c in nodes else c
            if not pushes:
                lines.append(f"- {name}: no answer moved it noticeably.")
                continue
            lines.append(f"- {name}:")
            lines += [f"  - {push_phrase(x, calibration)}" for x in pushes[:4]]
        lines.append("")
        if d.next_questions and top_questions:
            lines += ["## Worth asking next", ""]
            for q in d.next_questions[:top_questions]:
                lines.append(f"- {question_text(q, calibration)} — {gain_word(q.gain)}")
            lines.append("")
        lines += _plan_section(calibration, d)
    lines += ["---", "", calibration.messages.disclaimer, ""]
    return "\n".join(lines)
