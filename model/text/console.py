"""A diagnosis as the command line shows it: plain text, or JSON for scripts.

Warning signs come first. Behind a red flag, or while the warning signs are not all answered,
nothing but the routing (or the request to answer them) goes out — no cause percentages,
fixes or questions — in the text and in the JSON alike.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from calibration.schema import Calibration
from model.results import Diagnosis
from model.text.report import effect_word, forecast_text, gain_word, interval_text, points
from model.text.verbal import describe

__all__ = ["HOW_TO_ANSWER", "diagnosis_json", "diagnosis_text"]


#: How to answer the warning signs on the command line.
HOW_TO_ANSWER = ("Add --flag ID for each sign that applies and --no-warning-signs to say the "
                 "others do not; `knowpain diagnose --list-signs` lists them.")


def diagnosis_text(d: Diagnosis, cal: Calibration) -> str:
    """The diagnosis in words, warning signs first, the disclaimer last."""
    lines = []
    t = d.triage
    if t.level != "none":
        lines.append(f"WARNING ({t.level.upper()}): {t.message}")
        lines += [f"  - {r}" for r in t.reasons]
        lines.append("")
    if t.blocks_results:
        lines.append("Cause estimates are withheld: see a clinician about the warning sign first.")
    elif t.withhold_estimates:
        lines.append(f"{t.message} {HOW_TO_ANSWER}")
    else:
        if t.level == "amber":
            lines.append("The estimates below are for information only: they are less reliable "
                         "until you have been assessed.")
        lines.append("Likely causes:")
        for c, p in sorted(d.causes.items(), key=lambda kv: -kv[1]):
            band = interval_text(d.cause_intervals.get(c))
            band = f", {band}" if band else ""
            lines.append(f"  {cal.nodes[c].title}: {describe(p)}{band}  "
                         f"(before your answers: {describe(d.prior_causes[c])})")
        if d.best_guess:
            lines.append(d.best_guess)
        if d.forecast is not None:
            lines += ["", forecast_text(d.forecast, cal) + "."]
        for a in d.advice:
            lines += ["", f"{a.title}:", f"  {a.text}"]
        main = [f for f in d.fixes if not f.minor]
        minor = [f for f in d.fixes if f.minor]
        if main:
            lines += ["", "What to change, most helpful first:"]
            for f in main:
                lines.append(f"  {f.title} ({effect_word(f.effect)}): chance of soreness next "
                             f"session {describe(f.outcome_before)} -> "
                             f"{describe(f.outcome_after)} ({points(f)})")
                if f.cues:
                    lines.append(f"    cues: {'; '.join(f.cues)}")
        if minor:
            lines.append("")
            lines.append(f"Minor (each under {round(100 * cal.fix_policy.min_effect)} points): "
                         + "; ".join(f"{f.title} ({points(f)})" for f in minor))
        if d.next_questions:
            lines += ["", "Worth answering next:"]
            for q in d.next_questions[:3]:
                lines.append(f"  {cal.nodes[q.node].question or q.node}  ({gain_word(q.gain)})")
    lines += ["", cal.messages.disclaimer]
    return "\n".join(lines)


def diagnosis_json(d: Diagnosis, cal: Calibration) -> dict[str, Any]:
    """The diagnosis as plain data; behind a red flag, or with the warning signs not all
    answered, only the evidence, the triage and why the rest is withheld."""
    if d.triage.withhold_estimates:
        why = ("a warning sign needs a clinician first" if d.triage.blocks_results
               else f"the warning signs were not all answered. {HOW_TO_ANSWER}")
        payload: dict[str, Any] = {
            "evidence": d.evidence,
            "triage": asdict(d.triage),
            "withheld": f"cause estimates, fixes and questions are withheld: {why}",
        }
    else:
        payload = asdict(d)
    payload["disclaimer"] = cal.messages.disclaimer
    return payload
